import { ldSince, log } from "./common";
import { NW, W90, W365, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// The candidate-person features shared by composer_dm and invite (the v_*
// block of features.py `Cut.features`). A person the snapshot does not know
// gets the values of a person with no rows: counts 0, days since ld(3650).

export function personFeatures(t: FeatureTables, v: number): Record<string, number> {
  const w = (a: Float64Array, win: number) => (v >= 0 ? (a[v * NW + win] as number) : 0);
  let last = Number.NaN;
  if (v >= 0) {
    // the later of the last activity and the last interaction
    const a = t.uLast[v] as number;
    const i = t.uILast[v] as number;
    last = Number.isNaN(a) ? i : Number.isNaN(i) ? a : Math.max(a, i);
  }
  return {
    v_partners_log: log(w(t.uPartners, WALL)),
    v_partners_90_log: log(w(t.uPartners, W90)),
    v_partners_365_log: log(w(t.uPartners, W365)),
    v_interactions_365_log: log(w(t.uInteractions, W365)),
    v_active_days_90_log: log(w(t.uDays, W90)),
    v_active_days_365_log: log(w(t.uDays, W365)),
    v_days_since_last_log: ldSince(t.cut, last),
    v_new_partners_90_log: log(w(t.uNewPartners, W90)),
    v_new_partners_365_log: log(w(t.uNewPartners, W365)),
    v_out_365_log: log(w(t.uOut, W365)),
    v_in_365_log: log(w(t.uIn, W365)),
    v_newcomer_partners_365_log: log(v >= 0 ? (t.uNewcomerPartners365[v] as number) : 0),
  };
}

/** Σ over people x of the all-time interaction counts of x with everyone (features.py uu_count[None][X].sum(0)). */
export function interactionsWith(t: FeatureTables, people: readonly number[]): Float64Array {
  const out = new Float64Array(t.U);
  for (const x of people) {
    for (let e = t.pp.ptr[x] as number; e < (t.pp.ptr[x + 1] as number); e++) {
      out[t.pp.col[e] as number] = (out[t.pp.col[e] as number] as number) + (t.pCount[e * NW + WALL] as number);
    }
  }
  return out;
}

/** Σ over people x of |M(x) ∩ M(v)| for every v, all-time memberships. */
export function sharedChannelsWith(t: FeatureTables, people: readonly number[]): Float64Array {
  const out = new Float64Array(t.U);
  for (const x of people) {
    for (let e = t.mm.ptr[x] as number; e < (t.mm.ptr[x + 1] as number); e++) {
      if (!((t.mDays[e * NW + WALL] as number) > 0)) continue;
      const c = t.mm.col[e] as number;
      for (let f = t.cm.ptr[c] as number; f < (t.cm.ptr[c + 1] as number); f++) {
        if ((t.mDays[(t.cmEntry[f] as number) * NW + WALL] as number) > 0)
          out[t.cm.col[f] as number] = (out[t.cm.col[f] as number] as number) + 1;
      }
    }
  }
  return out;
}

/** Σ_p weight[p] · P_w[p, ·]: common partners, weighted (features.py P @ vector). */
export function partnersWeighted(t: FeatureTables, weight: Float64Array, w: number): Float64Array {
  const out = new Float64Array(t.U);
  for (let p = 0; p < t.U; p++) {
    const x = weight[p] as number;
    if (x === 0) continue;
    for (let e = t.pp.ptr[p] as number; e < (t.pp.ptr[p + 1] as number); e++) {
      if ((t.pCount[e * NW + w] as number) > 0) out[t.pp.col[e] as number] = (out[t.pp.col[e] as number] as number) + x;
    }
  }
  return out;
}

/** The dense 0/1 partner row of u in window w (features.py dense_row(P[w], u)). */
export function partnerRow(t: FeatureTables, u: number, w: number): Float64Array {
  const out = new Float64Array(t.U);
  if (u < 0) return out;
  for (let e = t.pp.ptr[u] as number; e < (t.pp.ptr[u + 1] as number); e++) {
    if ((t.pCount[e * NW + w] as number) > 0) out[t.pp.col[e] as number] = 1;
  }
  return out;
}
