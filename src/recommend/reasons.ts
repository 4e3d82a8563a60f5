import type { Candidate } from "./pipeline";

// Why an item was chosen, in terms a person can read, for any model (a
// linear model, trees, the hand-tuned one): the feature that did most to
// lift this item above the other candidates in this very answer.
//
// For each feature, across the candidates scored: how far each candidate's
// value stands from the mean (z), and whether the answer's scores rose or
// fell with that feature (the sign of the feature's correlation with the
// score). An item's reason is the feature maximising z × correlation: high
// where higher scored better, or low where lower did. Nothing is read but
// the features the model was given, so the reason explains the answer, not
// a model's internals. A feature that is the same for every candidate never
// explains anything.

export interface Reason {
  /** The feature's name as the model's manifest names it (e.g. "ch_active_users_30_log"). */
  feature: string;
  /** The item's value of it. */
  value: number;
  /** "high" when a higher value scored better in this answer, "low" when a lower one did. */
  direction: "high" | "low";
}

/** Each item's reason (by id); items with no feature that explains them are left out. */
export function reasonsFor(scored: readonly Candidate[], items: readonly Candidate[]): Map<string, Reason> {
  const out = new Map<string, Reason>();
  const n = scored.length;
  if (n < 2 || items.length === 0) return out;
  const names = new Set<string>();
  for (const c of items) for (const k of Object.keys(c.features)) names.add(k);
  let scoreMean = 0;
  for (const c of scored) scoreMean += c.score;
  scoreMean /= n;
  let scoreVar = 0;
  for (const c of scored) scoreVar += (c.score - scoreMean) ** 2;
  if (scoreVar === 0) return out;
  const stats: Array<{ name: string; mean: number; sd: number; corr: number }> = [];
  for (const name of names) {
    let mean = 0;
    for (const c of scored) mean += c.features[name] ?? 0;
    mean /= n;
    let v = 0;
    let cov = 0;
    for (const c of scored) {
      const d = (c.features[name] ?? 0) - mean;
      v += d * d;
      cov += d * (c.score - scoreMean);
    }
    if (v === 0) continue;
    const corr = cov / Math.sqrt(v * scoreVar);
    if (Math.abs(corr) < 1e-9) continue;
    stats.push({ name, mean, sd: Math.sqrt(v / n), corr });
  }
  for (const item of items) {
    let best: { name: string; lift: number; corr: number } | null = null;
    for (const s of stats) {
      const lift = (((item.features[s.name] ?? 0) - s.mean) / s.sd) * s.corr;
      if (lift > 0 && (best === null || lift > best.lift)) best = { name: s.name, lift, corr: s.corr };
    }
    if (best) {
      out.set(item.id, {
        feature: best.name,
        value: round(item.features[best.name] ?? 0),
        direction: best.corr > 0 ? "high" : "low",
      });
    }
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
