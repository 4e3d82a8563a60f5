// The promotion gate's rule, ported from training/gate.py (`compare`,
// `best_baseline`, `spread`) so that a model uploaded by hand passes the same
// test as one the training pipeline registers. test/node/promotion-gate.test.ts
// runs both on the same per-cut numbers and checks they agree.
//
// For a candidate c and a reference r with NDCG@10 c_i, r_i at cut i (i = 1..n):
// d_i = c_i - r_i, D = mean(d_i), S = std(d_i) (sample standard deviation,
// ddof 1). c clears r when D > max(k·S, min_margin). With one cut S is
// infinite (the noise is unknown), so nothing clears; the gate also needs
// at least `minCuts` cuts before comparing at all.

export const GATE_K = 1;
export const GATE_MIN_MARGIN = 0.005;
export const GATE_MIN_CUTS = 3;

export interface GateRule {
  k: number;
  min_margin: number;
  min_cuts: number;
}

export const DEFAULT_GATE_RULE: GateRule = { k: GATE_K, min_margin: GATE_MIN_MARGIN, min_cuts: GATE_MIN_CUTS };

export const BASELINE_NAMES = ["popularity", "recent_popularity", "hand_tuned"] as const;
export type BaselineModel = (typeof BASELINE_NAMES)[number];

/** gate.py `compare`: one candidate against one reference. */
export interface Comparison {
  improvement: number;
  /** D over the reference's mean; null when that mean is not positive. */
  relative: number | null;
  improvement_per_cut: number[];
  /** S; null with one cut. */
  improvement_std: number | null;
  /** max(k·S, min_margin); null with one cut. */
  required: number | null;
  passes: boolean;
}

/** Python's round(x, 6) for the values the gate reports (decimal rounding, half to even at exact ties). */
export function round6(x: number): number {
  const r = Number(x.toFixed(6));
  // toFixed rounds half away from zero on the binary value, as Python does on it, except for exact
  // decimal ties, which binary doubles of these magnitudes essentially never are.
  return Object.is(r, -0) ? 0 : r;
}

export function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sample standard deviation (ddof 1), as numpy's std(ddof=1); NaN below two values. */
export function sampleStd(values: readonly number[]): number {
  if (values.length < 2) return Number.NaN;
  const m = mean(values);
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return Math.sqrt(s / (values.length - 1));
}

export function compare(
  candidate: readonly number[],
  reference: readonly number[],
  rule: Pick<GateRule, "k" | "min_margin"> = DEFAULT_GATE_RULE,
): Comparison {
  if (candidate.length !== reference.length || candidate.length === 0) {
    throw new Error(`per-cut series differ in length: ${candidate.length} vs ${reference.length}`);
  }
  const d = candidate.map((c, i) => c - (reference[i] as number));
  const D = mean(d);
  const sd = d.length > 1 ? sampleStd(d) : Number.POSITIVE_INFINITY;
  const required = Math.max(rule.k * sd, rule.min_margin);
  const refMean = mean(reference);
  return {
    improvement: round6(D),
    relative: refMean > 0 ? round6(D / refMean) : null,
    improvement_per_cut: d.map(round6),
    improvement_std: Number.isFinite(sd) ? round6(sd) : null,
    required: Number.isFinite(required) ? round6(required) : null,
    passes: D > required,
  };
}

/** gate.py `best_baseline`: the highest mean, the first of BASELINE_NAMES on a tie. */
export function bestBaseline(perCut: Readonly<Record<BaselineModel, readonly number[]>>): BaselineModel {
  let best: BaselineModel = BASELINE_NAMES[0];
  for (const name of BASELINE_NAMES) if (mean(perCut[name]) > mean(perCut[best])) best = name;
  return best;
}

/** gate.py `spread`: mean, sample std (null for one value), min, max and the values, rounded. */
export function spread(values: readonly number[]) {
  if (values.length === 0) return { mean: null, std: null, min: null, max: null, per_cut: [] as number[] };
  return {
    mean: round6(mean(values)),
    std: values.length > 1 ? round6(sampleStd(values)) : null,
    min: round6(Math.min(...values)),
    max: round6(Math.max(...values)),
    per_cut: values.map(round6),
  };
}

/** One reference the candidate must clear, by name ("serving", "best_baseline:<name>"). */
export interface GateReference {
  name: string;
  per_cut: readonly number[];
}

export interface GateDecision {
  passes: boolean;
  rule: GateRule;
  cuts: string[];
  /** Every reference's comparison (empty when there are too few cuts). */
  comparisons: Record<string, Comparison>;
  /** The references the candidate did not clear. */
  failed: string[];
  reason: string;
}

/**
 * The decision for one candidate: it passes when there are at least
 * `min_cuts` cuts and it clears every reference (gate.py `decide`, for the
 * one candidate an operator names).
 */
export function gateDecision(
  cuts: readonly string[],
  candidate: readonly number[],
  references: readonly GateReference[],
  rule: GateRule = DEFAULT_GATE_RULE,
): GateDecision {
  const base = { rule, cuts: [...cuts] };
  if (cuts.length < rule.min_cuts) {
    return {
      ...base,
      passes: false,
      comparisons: {},
      failed: references.map((r) => r.name),
      reason: `only ${cuts.length} cut(s) with rankings (the gate needs ${rule.min_cuts} to measure noise)`,
    };
  }
  const comparisons: Record<string, Comparison> = {};
  const failed: string[] = [];
  for (const ref of references) {
    const c = compare(candidate, ref.per_cut, rule);
    comparisons[ref.name] = c;
    if (!c.passes) failed.push(ref.name);
  }
  const fmt = (v: number | null) => (v === null ? "n/a" : v.toFixed(4));
  const sign = (v: number) => (v >= 0 ? `+${v.toFixed(4)}` : v.toFixed(4));
  const reason =
    failed.length === 0
      ? `clears every reference: ${references
          .map(
            (r) =>
              `vs ${r.name}: ${sign(comparisons[r.name]?.improvement ?? 0)} > ${fmt(comparisons[r.name]?.required ?? null)}`,
          )
          .join("; ")}`
      : failed
          .map((name) => {
            const c = comparisons[name] as Comparison;
            return `vs ${name}: mean improvement ${sign(c.improvement)} <= required ${fmt(c.required)} (std of the per-cut improvement ${fmt(c.improvement_std)})`;
          })
          .join("; ");
  return { ...base, passes: failed.length === 0, comparisons, failed, reason };
}
