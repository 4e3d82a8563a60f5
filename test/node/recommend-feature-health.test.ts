import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { platformRegistry } from "../../src/metrics/platform-metrics";
import { Registry } from "../../src/metrics/registry";
import {
  DEFAULT_DRIFT_THRESHOLD,
  deriveFeatureHealth,
  driftThreshold,
  FEATURE_METRICS,
  featureHealth,
  featureStatsOf,
  tallyServedFeatures,
  trainingStatsBySource,
} from "../../src/recommend/feature-health";

// Feature health's arithmetic and the registry's gauges it needs.

/** The shipped recommender models (models/index.ts imports .onnx files, which node cannot). */
const bundledModels = ["archive", "channel_browser", "composer_dm", "invite", "leave", "send_time"].map((dir) => ({
  dir,
  manifest: JSON.parse(readFileSync(`models/${dir}/manifest.json`, "utf8")) as unknown,
}));

const stats = (mean: number, std: number, missing_rate = 0) => ({ mean, std, min: 0, max: 10, missing_rate });

const servedLine = (source: string, names: string[], rows: Array<Array<number | null>>) =>
  JSON.stringify({
    kind: "served",
    request_id: "r",
    team: "T",
    user: "U",
    source,
    experiment: "e",
    arm: "a",
    model: "m",
    version: "v",
    fallback: false,
    ts: 0,
    feature_names: names,
    items: rows.map((features, i) => ({ item: `C${i}`, rank: i + 1, score: 0, features })),
  });

describe("tallyServedFeatures", () => {
  it("counts values, nulls, sum, min and max per source and feature, from served lines only", () => {
    const lines = [
      servedLine(
        "invite",
        ["a", "b"],
        [
          [1, null],
          [3, 2],
        ],
      ),
      servedLine("invite", ["a"], [[-2]]),
      JSON.stringify({ kind: "feedback", request_id: "r", source: "invite", item: "C0", action: "click" }),
      servedLine("not_a_source", ["a"], [[100]]),
      "{broken",
    ];
    const t = tallyServedFeatures(lines, new Set(["invite"]));
    expect(t).toEqual([
      { source: "invite", feature: "a", values: 3, missing: 0, sum: 2, min: -2, max: 3 },
      { source: "invite", feature: "b", values: 1, missing: 1, sum: 2, min: 2, max: 2 },
    ]);
  });
});

describe("featureHealth", () => {
  it("drift is the standardized mean shift; alerts past the threshold or on a missing rate 0.2 over training", () => {
    const h = featureHealth({ values: 4, missing: 0, sum: 4 * 2.5 }, stats(2, 1));
    expect(h.mean).toBe(2.5);
    expect(h.drift).toBeCloseTo(0.5, 12);
    expect(h.alert).toBe(false); // exactly at the threshold: not over it
    expect(featureHealth({ values: 4, missing: 0, sum: 4 * 2.6 }, stats(2, 1)).alert).toBe(true);
    expect(featureHealth({ values: 4, missing: 0, sum: 4 * 2.6 }, stats(2, 1), 1).alert).toBe(false);
    // Missing: 3 of 10 against a training rate of 0.05: 0.3 > 0.25.
    const m = featureHealth({ values: 7, missing: 3, sum: 14 }, stats(2, 1, 0.05));
    expect([m.missingRate, m.drift, m.alert]).toEqual([0.3, 0, true]);
    expect(featureHealth({ values: 8, missing: 2, sum: 16 }, stats(2, 1, 0.05)).alert).toBe(false);
    // A feature constant in training: any move is infinite drift, none is none.
    expect(featureHealth({ values: 2, missing: 0, sum: 2 }, stats(1, 0)).drift).toBe(0);
    expect(featureHealth({ values: 2, missing: 0, sum: 4 }, stats(1, 0)).drift).toBe(Number.POSITIVE_INFINITY);
  });

  it("reads the threshold var, falling back to 0.5 on anything that is not a positive number", () => {
    expect(driftThreshold("1.5")).toBe(1.5);
    for (const v of [undefined, "", "zero", "-1", "0"]) expect(driftThreshold(v)).toBe(DEFAULT_DRIFT_THRESHOLD);
  });
});

describe("training statistics in the manifests", () => {
  it("every bundled recommender model carries feature_stats for exactly its features", () => {
    const bySource = trainingStatsBySource(bundledModels.map((m) => m.manifest));
    for (const m of bundledModels) {
      const manifest = m.manifest as { source: string; features: Array<{ name: string }> };
      const s = featureStatsOf(manifest);
      expect(s, m.dir).not.toBeNull();
      expect([...(s?.keys() ?? [])].sort()).toEqual(manifest.features.map((f) => f.name).sort());
      for (const [name, f] of s ?? []) {
        expect(f.min, name).toBeLessThanOrEqual(f.mean);
        expect(f.mean, name).toBeLessThanOrEqual(f.max);
        expect(f.std, name).toBeGreaterThanOrEqual(0);
        expect(f.missing_rate, name).toBeGreaterThanOrEqual(0);
      }
      expect(bySource.get(manifest.source)).toEqual(s);
    }
    expect(featureStatsOf({ feature_stats: { a: { mean: 1 } } })).toBeNull();
    expect(featureStatsOf({})).toBeNull();
  });
});

describe("registry gauges", () => {
  const defs = [
    { name: "g_sum", type: "gauge", merge: "sum", help: "s" },
    { name: "g_min", type: "gauge", merge: "min", help: "m" },
    { name: "g_max", type: "gauge", merge: "max", help: "x" },
    { name: "g_last", type: "gauge", merge: "last", help: "l" },
  ] as const;

  it("fold by their merge rule within an isolate and across snapshots, and render as gauges", () => {
    const a = new Registry(defs);
    const b = new Registry(defs);
    const total = new Registry(defs);
    const l = { k: "v" };
    a.gauge("g_sum", l, -2);
    a.gauge("g_sum", l, 5);
    a.gauge("g_min", l, 3);
    a.gauge("g_min", l, 4);
    a.gauge("g_max", l, -7);
    a.gauge("g_last", l, 1);
    b.gauge("g_sum", l, 1);
    b.gauge("g_min", l, -1);
    b.gauge("g_max", l, -9);
    b.gauge("g_last", l, Number.POSITIVE_INFINITY);
    total.merge(a.take());
    total.merge(b.take());
    const text = total.render();
    expect(text).toContain("# TYPE g_sum gauge");
    expect(text).toContain('g_sum{k="v"} 4');
    expect(text).toContain('g_min{k="v"} -1');
    expect(text).toContain('g_max{k="v"} -7');
    expect(text).toContain('g_last{k="v"} +Inf');
    expect(total.read("g_min")).toEqual([{ labels: { k: "v" }, values: [-1] }]);
    // Taken: a fresh start for the isolate.
    expect(a.read("g_sum")).toEqual([]);
  });

  it("derives drift and alert gauges from the feature totals", () => {
    const r = platformRegistry();
    const l = { source: "invite", feature: "f" };
    r.inc(FEATURE_METRICS.values, l, 10);
    r.inc(FEATURE_METRICS.missing, l, 0);
    r.gauge(FEATURE_METRICS.sum, l, 30);
    r.inc(FEATURE_METRICS.values, { source: "invite", feature: "untrained" }, 1);
    deriveFeatureHealth(r, new Map([["invite", new Map([["f", stats(2, 0.5)]])]]), 0.5);
    expect(r.read(FEATURE_METRICS.drift)).toEqual([{ labels: l, values: [2] }]);
    expect(r.read(FEATURE_METRICS.alert)).toEqual([{ labels: l, values: [1] }]);
    deriveFeatureHealth(r, new Map([["invite", new Map([["f", stats(3, 0.5)]])]]), 0.5);
    expect(r.read(FEATURE_METRICS.alert)).toEqual([{ labels: l, values: [0] }]);
  });
});
