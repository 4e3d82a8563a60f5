import type { Registry } from "../metrics/registry";

// Feature health: what the served features look like next to the rows the
// model was trained on. The rec-logs consumer folds every served answer's
// feature values into per-source, per-feature totals (values, nulls, sum,
// min, max: sums merge across isolates by addition); the Metrics object
// derives each feature's drift from those totals and the training
// statistics the model's manifest carries (`feature_stats`, written by
// training/onnx_export.py), and raises an alert past a threshold.
//
// Drift is the standardized mean shift |served mean − training mean| /
// training std: how many training standard deviations the served values
// have moved. It sees a shifted or broken feature (a unit change, a join
// that went empty), not a change of shape at the same mean.

/** Training-window statistics of one feature (manifest `feature_stats`). */
export interface FeatureStats {
  mean: number;
  std: number;
  min: number;
  max: number;
  missing_rate: number;
}

/** Alert past this drift unless REC_FEATURE_DRIFT_THRESHOLD says otherwise. */
export const DEFAULT_DRIFT_THRESHOLD = 0.5;
/** Alert when the served missing rate exceeds the training one by more than this. */
export const MISSING_RATE_MARGIN = 0.2;

/** The feature metric names (src/metrics/platform-metrics.ts declares them). */
export const FEATURE_METRICS = {
  values: "rec_feature_values_total",
  missing: "rec_feature_missing_total",
  sum: "rec_feature_sum",
  min: "rec_feature_min",
  max: "rec_feature_max",
  drift: "rec_feature_drift",
  alert: "rec_feature_alert",
} as const;

/** One feature's values in one batch of served answers. */
export interface FeatureTally {
  source: string;
  feature: string;
  values: number;
  missing: number;
  sum: number;
  min: number;
  max: number;
}

/**
 * Per source and feature, the values of every served item in these log lines
 * (a served line's items carry an array aligned with its `feature_names`;
 * null where the item had no value). Feedback and lines that are not served
 * answers are skipped; so are sources not in `sources` (label cardinality
 * stays the platform's own).
 */
export function tallyServedFeatures(lines: Iterable<string>, sources: ReadonlySet<string>): FeatureTally[] {
  const out = new Map<string, FeatureTally>();
  for (const line of lines) {
    // Feedback lines are small: parsing them to see their kind costs little.
    let m: unknown;
    try {
      m = JSON.parse(line);
    } catch {
      continue;
    }
    if (!isRecord(m) || m.kind !== "served" || typeof m.source !== "string" || !sources.has(m.source)) continue;
    const names = m.feature_names;
    const items = m.items;
    if (!Array.isArray(names) || !Array.isArray(items)) continue;
    const tallies = names.map((name) => {
      const feature = String(name);
      const key = `${m.source}\u0000${feature}`;
      let t = out.get(key);
      if (!t) {
        t = {
          source: m.source as string,
          feature,
          values: 0,
          missing: 0,
          sum: 0,
          min: Number.POSITIVE_INFINITY,
          max: Number.NEGATIVE_INFINITY,
        };
        out.set(key, t);
      }
      return t;
    });
    for (const it of items) {
      const features = isRecord(it) ? it.features : undefined;
      if (!Array.isArray(features) || features.length !== tallies.length) continue;
      for (const [i, t] of tallies.entries()) {
        const v = features[i];
        if (typeof v === "number" && Number.isFinite(v)) {
          t.values++;
          t.sum += v;
          if (v < t.min) t.min = v;
          if (v > t.max) t.max = v;
        } else {
          t.missing++;
        }
      }
    }
  }
  return [...out.values()];
}

/** A manifest's `feature_stats` (null when it has none, or they are not well formed). */
export function featureStatsOf(manifest: unknown): Map<string, FeatureStats> | null {
  if (!isRecord(manifest) || !isRecord(manifest.feature_stats)) return null;
  const out = new Map<string, FeatureStats>();
  for (const [name, s] of Object.entries(manifest.feature_stats)) {
    if (!isRecord(s)) return null;
    const { mean, std, min, max, missing_rate } = s;
    if (![mean, std, min, max, missing_rate].every((x) => typeof x === "number" && Number.isFinite(x))) return null;
    out.set(name, {
      mean: mean as number,
      std: std as number,
      min: min as number,
      max: max as number,
      missing_rate: missing_rate as number,
    });
  }
  return out;
}

/**
 * The training statistics of each source's reference model: among the given
 * manifests (the bundled models), the greatest version of the source that
 * carries `feature_stats`, as the default experiment picks the bundled model.
 */
export function trainingStatsBySource(manifests: readonly unknown[]): Map<string, Map<string, FeatureStats>> {
  const best = new Map<string, { version: string; stats: Map<string, FeatureStats> }>();
  for (const m of manifests) {
    const stats = featureStatsOf(m);
    if (!stats || !isRecord(m) || typeof m.source !== "string") continue;
    const version = typeof m.version === "string" ? m.version : "";
    const had = best.get(m.source);
    if (!had || had.version < version) best.set(m.source, { version, stats });
  }
  return new Map([...best].map(([source, b]) => [source, b.stats]));
}

export interface FeatureHealth {
  missingRate: number;
  mean: number;
  drift: number;
  alert: boolean;
}

/**
 * One feature's health from its served totals and its training statistics.
 * A training std of 0 (a constant feature) makes any move of the mean an
 * infinite drift, and none a drift of 0.
 */
export function featureHealth(
  served: { values: number; missing: number; sum: number },
  training: FeatureStats,
  threshold = DEFAULT_DRIFT_THRESHOLD,
): FeatureHealth {
  const total = served.values + served.missing;
  const missingRate = total > 0 ? served.missing / total : 0;
  const mean = served.values > 0 ? served.sum / served.values : training.mean;
  const shift = Math.abs(mean - training.mean);
  const drift =
    training.std > 0 ? shift / training.std : shift > 1e-12 * Math.max(1, Math.abs(training.mean)) ? Infinity : 0;
  const alert = drift > threshold || missingRate > training.missing_rate + MISSING_RATE_MARGIN;
  return { missingRate, mean, drift, alert };
}

/**
 * Sets rec_feature_drift and rec_feature_alert for every source and feature
 * the registry has counted and the training statistics cover, from the
 * registry's totals (the Metrics object's, before it renders). A feature the
 * reference model was not trained on has no drift series.
 */
export function deriveFeatureHealth(
  registry: Registry,
  training: ReadonlyMap<string, ReadonlyMap<string, FeatureStats>>,
  threshold: number,
): void {
  const key = (l: Record<string, string>) => `${l.source}\u0000${l.feature}`;
  const totals = new Map<string, { labels: Record<string, string>; values: number; missing: number; sum: number }>();
  const at = (labels: Record<string, string>) => {
    let t = totals.get(key(labels));
    if (!t) {
      t = { labels: { source: labels.source ?? "", feature: labels.feature ?? "" }, values: 0, missing: 0, sum: 0 };
      totals.set(key(labels), t);
    }
    return t;
  };
  for (const s of registry.read(FEATURE_METRICS.values)) at(s.labels).values = s.values[0] ?? 0;
  for (const s of registry.read(FEATURE_METRICS.missing)) at(s.labels).missing = s.values[0] ?? 0;
  for (const s of registry.read(FEATURE_METRICS.sum)) at(s.labels).sum = s.values[0] ?? 0;
  for (const t of totals.values()) {
    const stats = training.get(t.labels.source ?? "")?.get(t.labels.feature ?? "");
    if (!stats) continue;
    const h = featureHealth(t, stats, threshold);
    registry.gauge(FEATURE_METRICS.drift, t.labels, h.drift);
    registry.gauge(FEATURE_METRICS.alert, t.labels, h.alert ? 1 : 0);
  }
}

/** REC_FEATURE_DRIFT_THRESHOLD as set (a positive number), else the default. */
export function driftThreshold(value: string | undefined): number {
  const n = Number(value);
  return value !== undefined && value !== "" && Number.isFinite(n) && n > 0 ? n : DEFAULT_DRIFT_THRESHOLD;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
