import {
  cosineRows,
  type FeatureValues,
  ldAge,
  ldSince,
  log,
  memberChannels,
  membersAmong,
  type PreparedSubject,
  partnersOf,
  topK,
  topKOrdered,
  unionCandidates,
} from "./common";
import { CANDIDATES_PER_GENERATOR, NW, W30, W90, W365, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// channel_browser: channels a user may join (features.py `_cb_vectors`, the
// channel_browser branch of `Cut.features` and `Cut.candidates`). A user
// the snapshot does not know (cold start) has no channels, partners or
// vector: the candidates are then the channels most active in the last 90
// days, and the user-dependent features take their "never happened" values.

interface CbVectors {
  cos: Float64Array;
  cfSum: Float64Array;
  cfMax: Float64Array;
  cfRecent: Float64Array;
  cfCond: Float64Array;
  sameday: Float64Array;
  exp365: Float64Array;
  partnersMembers: Float64Array;
  partnersActive: Float64Array;
  ucf: Float64Array;
}

function vectors(t: FeatureTables, u: number): CbVectors {
  const C = t.C;
  const M = memberChannels(t, u, WALL);
  const M365 = memberChannels(t, u, W365);
  const cos = new Float64Array(C);
  if (u >= 0) cosineRows(t.chanVec, t.chanNorm, t.dims, t.userVec, u * t.dims, t.userNorm[u] as number, cos);

  // item-based CF over channel co-membership: rows of sim summed in ascending row order
  const cfSum = new Float64Array(C);
  const cfMax = new Float64Array(C);
  for (const m of M) {
    for (let e = t.co.ptr[m] as number; e < (t.co.ptr[m + 1] as number); e++) {
      const c = t.co.col[e] as number;
      const s = t.coSim[e] as number;
      cfSum[c] = (cfSum[c] as number) + s;
      if (s > (cfMax[c] as number)) cfMax[c] = s;
    }
  }
  const cfRecent = new Float64Array(C);
  const cfCond = new Float64Array(C);
  const sameday = new Float64Array(C);
  const exp365 = new Float64Array(C);
  for (const m of M365) {
    const diag = Math.max(t.chUsers[m * NW + WALL] as number, 1);
    for (let e = t.co.ptr[m] as number; e < (t.co.ptr[m + 1] as number); e++) {
      const c = t.co.col[e] as number;
      cfRecent[c] = (cfRecent[c] as number) + (t.coSim[e] as number);
      cfCond[c] = (cfCond[c] as number) + (t.coCount[e] as number) / diag;
    }
    for (let e = t.sd.ptr[m] as number; e < (t.sd.ptr[m + 1] as number); e++) {
      sameday[t.sd.col[e] as number] = (sameday[t.sd.col[e] as number] as number) + (t.sdCount[e] as number);
    }
  }
  if (M365.length) for (let c = 0; c < C; c++) cfCond[c] = (cfCond[c] as number) / M365.length;
  // expected same-day days: Σ_i days365(u, i) / sameday365[i, i] · sameday365[i, ·]
  if (u >= 0) {
    for (let e = t.mm.ptr[u] as number; e < (t.mm.ptr[u + 1] as number); e++) {
      const i = t.mm.col[e] as number;
      const x = (t.mDays[e * NW + W365] as number) * (t.sdInvDiag[i] as number);
      if (x === 0) continue;
      for (let f = t.sd.ptr[i] as number; f < (t.sd.ptr[i + 1] as number); f++) {
        exp365[t.sd.col[f] as number] = (exp365[t.sd.col[f] as number] as number) + x * (t.sdCount[f] as number);
      }
    }
  }

  const P = partnersOf(t, u);
  const partnersMembers = membersAmong(t, P, WALL);
  const partnersActive = membersAmong(t, P, W365);

  // user-based CF: shared[v] = |M365(u) ∩ M365(v)| (v ≠ u), ucf = B365ᵀ shared
  const ucf = new Float64Array(C);
  if (M365.length) {
    const shared = new Float64Array(t.U);
    for (const c of M365) {
      for (let e = t.cm.ptr[c] as number; e < (t.cm.ptr[c + 1] as number); e++) {
        if ((t.mDays[(t.cmEntry[e] as number) * NW + W365] as number) > 0)
          shared[t.cm.col[e] as number] = (shared[t.cm.col[e] as number] as number) + 1;
      }
    }
    shared[u] = 0;
    for (let v = 0; v < t.U; v++) {
      const s = shared[v] as number;
      if (s === 0) continue;
      for (let e = t.mm.ptr[v] as number; e < (t.mm.ptr[v + 1] as number); e++) {
        if ((t.mDays[e * NW + W365] as number) > 0)
          ucf[t.mm.col[e] as number] = (ucf[t.mm.col[e] as number] as number) + s;
      }
    }
  }
  return { cos, cfSum, cfMax, cfRecent, cfCond, sameday, exp365, partnersMembers, partnersActive, ucf };
}

export function prepareChannelBrowser(t: FeatureTables, subject: string | null): PreparedSubject {
  const u = subject === null ? -1 : t.user(subject);
  const T = t.cut;
  const g = vectors(t, u);
  const at = (a: Float64Array, i: number, w: number) => a[i * NW + w] as number;
  const uActive365 = u >= 0 ? log(at(t.uDays, u, W365)) : 0;
  const uChannels = u >= 0 ? log(at(t.uChannels, u, WALL)) : 0;
  const uSince = u >= 0 ? ldSince(T, t.uLast[u] as number) : ldSince(T, Number.NaN);
  return {
    candidates(k = CANDIDATES_PER_GENERATOR) {
      const universe = new Uint8Array(t.C);
      for (let c = 0; c < t.C; c++) universe[c] = t.existingChannel[c] as number;
      for (const m of memberChannels(t, u, WALL)) universe[m] = 0;
      return unionCandidates(t.channelIds, [
        ["popular_90", topKOrdered(t.channelsByActive90, universe, k)],
        ["embedding", topK(g.cos, universe, k)],
        ["co_membership", topK(g.cfSum, universe, k)],
        ["partners", topK(g.partnersActive, universe, k)],
      ]);
    },
    features(items) {
      return items.map((id): FeatureValues => {
        const c = t.channel(id);
        const v = (a: Float64Array) => (c >= 0 ? (a[c] as number) : 0);
        const w = (a: Float64Array, win: number) => (c >= 0 ? at(a, c, win) : 0);
        return {
          ch_members_log: log(w(t.chUsers, WALL)),
          ch_active_users_90_log: log(w(t.chUsers, W90)),
          ch_active_users_365_log: log(w(t.chUsers, W365)),
          ch_new_members_90_log: log(w(t.chNewMembers, W90)),
          ch_new_members_365_log: log(w(t.chNewMembers, W365)),
          ch_commits_30_log: log(w(t.chCommits, W30)),
          ch_days_since_last_log: ldSince(T, c >= 0 ? (t.chLast[c] as number) : Number.NaN),
          ch_age_log: ldAge(T, c >= 0 ? (t.chFirst[c] as number) : Number.NaN),
          cos_user_channel: v(g.cos),
          cf_sum: v(g.cfSum),
          cf_max: v(g.cfMax),
          cf_recent_sum: v(g.cfRecent),
          cf_cond_365: v(g.cfCond),
          sameday_365_log: log(v(g.sameday)),
          expected_days_365_log: log(v(g.exp365)),
          partners_members_log: log(v(g.partnersMembers)),
          partners_active_365_log: log(v(g.partnersActive)),
          ucf_365_log: log(v(g.ucf)),
          u_active_days_365_log: uActive365,
          u_channels_log: uChannels,
          u_days_since_last_log: uSince,
        };
      });
    },
  };
}
