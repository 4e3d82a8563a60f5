import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/errors";
import type { CurrentExperiment } from "../../src/recommend/experiments";
import {
  addMoment,
  dcgOfClicks,
  emptyMoments,
  experimentReadout,
  meanDifference,
  meanInterval,
  proportionDifference,
  ReadoutAccumulator,
  type ReadoutPorts,
  readoutDays,
  sampleVariance,
  wilson,
} from "../../src/recommend/readout";

// The readout's arithmetic against published values, and the log reading
// (dedupe, join, caps) over an in-memory reader.

const moments = (xs: number[]) => {
  const m = emptyMoments();
  for (const x of xs) addMoment(m, x);
  return m;
};

describe("intervals", () => {
  it("Wilson score interval matches the published values (Newcombe 1998, Table I)", () => {
    const w = wilson(10, 100);
    expect(w.low).toBeCloseTo(0.0552, 4);
    expect(w.high).toBeCloseTo(0.1744, 4);
    const zero = wilson(0, 10);
    expect(zero.low).toBe(0);
    expect(zero.high).toBeCloseTo(0.2775, 4);
    const w81 = wilson(81, 263);
    expect([w81.low, w81.high].map((x) => Number(x.toFixed(4)))).toEqual([0.2553, 0.3662]);
    expect(wilson(0, 0)).toEqual({ low: 0, high: 1 });
    const all = wilson(5, 5);
    expect(all.high).toBe(1);
    expect(all.low).toBeCloseTo(0.5655, 4);
  });

  it("Newcombe's hybrid score interval for a difference matches the published values (Newcombe 1998, Table II)", () => {
    const a = proportionDifference(56, 70, 48, 80);
    expect(a.diff).toBeCloseTo(0.2, 12);
    expect([a.low, a.high].map((x) => Number(x.toFixed(4)))).toEqual([0.0524, 0.3339]);
    const c = proportionDifference(9, 10, 3, 10);
    expect([c.low, c.high].map((x) => Number(x.toFixed(4)))).toEqual([0.1705, 0.809]);
    // Swapping the arms mirrors the interval.
    const back = proportionDifference(48, 80, 56, 70);
    expect(back.low).toBeCloseTo(-a.high, 12);
    expect(back.high).toBeCloseTo(-a.low, 12);
  });

  it("mean with a normal interval from the sample variance (n − 1)", () => {
    const m = moments([1, 2, 3, 4, 5]);
    expect(sampleVariance(m)).toBeCloseTo(2.5, 12);
    const i = meanInterval(m);
    expect(i.mean).toBe(3);
    expect(i.sd).toBeCloseTo(Math.sqrt(2.5), 12);
    expect(i.high - i.mean).toBeCloseTo((1.959963984540054 * Math.sqrt(2.5)) / Math.sqrt(5), 12);
    expect(meanInterval(moments([7]))).toMatchObject({ mean: 7, sd: 0, low: 7, high: 7 });
    expect(meanInterval(emptyMoments())).toMatchObject({ mean: 0, low: 0, high: 0 });
    // A constant sample has no spread, never a NaN from a rounding below zero.
    expect(sampleVariance(moments([0.1, 0.1, 0.1]))).toBe(0);
  });

  it("difference of means with Welch's standard error", () => {
    const a = moments([2, 4, 6]); // mean 4, var 4
    const b = moments([1, 1, 2, 2]); // mean 1.5, var 1/3
    const d = meanDifference(a, b);
    expect(d.diff).toBeCloseTo(2.5, 12);
    const se = Math.sqrt(4 / 3 + 1 / 3 / 4);
    expect(d.high - d.diff).toBeCloseTo(1.959963984540054 * se, 12);
  });

  it("DCG of clicks: 1/log2(rank + 1) with the 1-based rank the log carries", () => {
    expect(dcgOfClicks([1])).toBe(1);
    expect(dcgOfClicks([2])).toBeCloseTo(1 / Math.log2(3), 12);
    expect(dcgOfClicks([1, 3])).toBeCloseTo(1.5, 12);
    expect(dcgOfClicks([])).toBe(0);
  });
});

const served = (mid: string, request: string, arm: string, items: string[], experiment = "exp") => ({
  message_id: mid,
  kind: "served",
  request_id: request,
  team: "T",
  user: "U",
  source: "invite",
  experiment,
  arm,
  model: arm === "control" ? "hand_tuned" : "lr",
  version: "1",
  fallback: false,
  ts: 0,
  feature_names: [],
  items: items.map((item, i) => ({ item, rank: i + 1, score: 1 - i / 10, features: [] })),
});
const feedback = (mid: string, request: string, item: string, action: string) => ({
  message_id: mid,
  kind: "feedback",
  request_id: request,
  team: "T",
  user: "U",
  source: "invite",
  arm: "x",
  item,
  action,
  ts: 0,
});

describe("ReadoutAccumulator", () => {
  it("counts each message once, joins feedback in any order, and compares with the control arm", () => {
    const acc = new ReadoutAccumulator("exp");
    const lines = [
      feedback("f1", "r1", "A", "click"), // before its answer
      served("s1", "r1", "treatment", ["A", "B", "C"]),
      served("s1", "r1", "treatment", ["A", "B", "C"]), // a retried batch
      feedback("f1", "r1", "A", "click"),
      feedback("f2", "r1", "C", "click"),
      feedback("f3", "r1", "C", "click"), // the same click again under a new id: one click
      served("s2", "r2", "treatment", ["A", "B"]),
      served("s3", "r3", "control", ["A", "B", "C", "D"]),
      feedback("f4", "r3", "B", "click"),
      feedback("f5", "r3", "Z", "click"), // not served
      feedback("f6", "r9", "A", "click"), // no such request
      served("s4", "r4", "control", ["A"], "other"),
      served("s5", "r1", "treatment", ["A"]), // the same request under another id
    ];
    acc.addText(`${lines.map((l) => JSON.stringify(l)).join("\n")}\n{not json\n`);
    const r = acc.readout(["treatment", "control"]);
    expect(r.baseline).toBe("control");
    expect(r.impressionBasis).toBe("served");
    expect(r.tally).toEqual({
      lines: 14,
      duplicateMessages: 2,
      duplicateRequests: 1,
      malformed: 1,
      otherExperiments: 1,
      unmatchedFeedback: 1,
      unknownItems: 1,
    });
    const [t, c] = r.arms;
    expect(t).toMatchObject({ arm: "treatment", models: ["lr@1"], requests: 2, served_items: 5, clicks: 2 });
    expect(t?.impressions).toBe(5);
    expect(t?.ctr.value).toBeCloseTo(0.4, 6);
    // Per request: r1 1 + 1/log2(4) = 1.5, r2 0.
    expect(t?.dcg.mean).toBeCloseTo(0.75, 6);
    expect(t?.dcg.sd).toBeCloseTo(Math.sqrt(((1.5 - 0.75) ** 2 * 2) / 1), 6);
    expect(c).toMatchObject({ arm: "control", requests: 1, served_items: 4, clicks: 1, vs_baseline: null });
    expect(c?.dcg.mean).toBeCloseTo(1 / Math.log2(3), 6);
    const expected = proportionDifference(2, 5, 1, 4);
    expect(t?.vs_baseline?.ctr.diff).toBeCloseTo(expected.diff, 6);
    expect(t?.vs_baseline?.ctr.low).toBeCloseTo(expected.low, 6);
    expect(t?.vs_baseline?.dcg.diff).toBeCloseTo(0.75 - 1 / Math.log2(3), 6);
  });

  it("uses impression feedback as the denominator when clients send it (a click counts as seen)", () => {
    const acc = new ReadoutAccumulator("exp");
    for (const l of [
      served("s1", "r1", "a", ["A", "B", "C", "D"]),
      feedback("f1", "r1", "A", "impression"),
      feedback("f2", "r1", "B", "impression"),
      feedback("f3", "r1", "B", "click"),
      feedback("f4", "r1", "C", "click"), // clicked without an impression event
      served("s2", "r2", "b", ["A", "B"]),
    ])
      acc.add(l);
    const r = acc.readout([]);
    expect(r.impressionBasis).toBe("feedback");
    expect(r.baseline).toBe("a"); // no control: the first arm (by name for a past experiment)
    expect(r.arms.map((a) => [a.arm, a.impression_events, a.impressions, a.served_items, a.clicks])).toEqual([
      ["a", 2, 3, 4, 2],
      ["b", 0, 0, 2, 0],
    ]);
    expect(r.arms[0]?.ctr.value).toBeCloseTo(2 / 3, 6);
    expect(r.arms[0]?.ctr_served.value).toBeCloseTo(0.5, 6);
  });

  it("lists a configured arm that served nothing, with empty counts", () => {
    const r = new ReadoutAccumulator("exp").readout(["control", "new"]);
    expect(r.arms.map((a) => [a.arm, a.requests, a.ctr.low, a.ctr.high])).toEqual([
      ["control", 0, 0, 1],
      ["new", 0, 0, 1],
    ]);
  });
});

describe("experimentReadout", () => {
  const now = Date.parse("2026-03-15T12:00:00Z");
  const current: CurrentExperiment = {
    experiment: { name: "exp", arms: [{ name: "control", weight: 1, model: "hand_tuned" }] },
    origin: "stored",
    problem: null,
  };
  function ports(objects: Record<string, string>, maxBytes = 1 << 20): ReadoutPorts & { reads: string[] } {
    const reads: string[] = [];
    return {
      reads,
      maxBytes,
      clock: { now: () => now },
      experiments: { current: async () => current },
      logs: {
        async list(source, day) {
          const prefix = `rec-logs/source=${source}/day=${day}/`;
          return Object.entries(objects)
            .filter(([k]) => k.startsWith(prefix))
            .map(([key, text]) => ({ key, size: new TextEncoder().encode(text).byteLength }));
        },
        async read(key) {
          reads.push(key);
          return objects[key] ?? null;
        },
      },
    };
  }
  const body = (ls: unknown[]) => `${ls.map((l) => JSON.stringify(l)).join("\n")}\n`;

  it("reads the default 14 days (today included), every object once, and nothing outside them", async () => {
    const p = ports({
      "rec-logs/source=invite/day=2026-03-15/a.ndjson": body([served("s1", "r1", "control", ["A"])]),
      "rec-logs/source=invite/day=2026-03-02/b.ndjson": body([feedback("f1", "r1", "A", "click")]),
      "rec-logs/source=invite/day=2026-03-01/c.ndjson": body([served("s2", "r2", "control", ["A"])]),
    });
    const r = await experimentReadout(p, "invite", {});
    expect([r.from, r.to, r.experiment]).toEqual(["2026-03-02", "2026-03-15", { name: "exp", current: true }]);
    expect(p.reads.sort()).toEqual([
      "rec-logs/source=invite/day=2026-03-02/b.ndjson",
      "rec-logs/source=invite/day=2026-03-15/a.ndjson",
    ]);
    expect(r.arms).toHaveLength(1);
    expect(r.arms[0]).toMatchObject({ arm: "control", requests: 1, clicks: 1 });
    expect(r.read).toMatchObject({ objects: 2, lines: 2 });
  });

  it("refuses a range over the byte cap before reading anything, and bad days", async () => {
    const big = body(Array.from({ length: 50 }, (_, i) => served(`s${i}`, `r${i}`, "control", ["A", "B"])));
    const p = ports({ "rec-logs/source=invite/day=2026-03-10/a.ndjson": big }, 1000);
    const err = await experimentReadout(p, "invite", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).kind).toBe("invalid");
    expect((err as DomainError).message).toMatch(/exceed.*fewer days/);
    expect(p.reads).toEqual([]);
    for (const q of [
      { from: "2026-03-10", to: "2026-03-01" },
      { from: "2026-01-01", to: "2026-03-15" },
      { from: "2026-02-30" },
      { to: "15-03-2026" },
    ]) {
      const e = await experimentReadout(p, "invite", q).catch((x: unknown) => x);
      expect((e as DomainError).kind, JSON.stringify(q)).toBe("invalid");
    }
    expect(readoutDays({ from: "2026-01-01", to: "2026-03-03" }, now).days).toHaveLength(62);
  });
});
