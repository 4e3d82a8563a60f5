import { describe, expect, it } from "vitest";
import { platformRegistry } from "../../src/metrics/platform-metrics";
import { Registry } from "../../src/metrics/registry";
import { type FeaturedCandidate, fromBlock, toBlock } from "../../src/recommend/candidate-block";
import { armModel, assignArm, bucketOf, type Experiment, experimentSchema } from "../../src/recommend/experiments";
import {
  asScored,
  logObjects,
  parseRecLogBody,
  parseRecLogMessage,
  recLogEnvelope,
  servedItems,
} from "../../src/recommend/logs";
import {
  type Candidate,
  RecommendError,
  type Recommender,
  type RecRequest,
  runRecommender,
  type Scorer,
} from "../../src/recommend/pipeline";

// The recommend framework's rules, on tiny fixture steps: merging fetchers,
// optional steps degrading, required ones failing, ordering, experiments and
// the metrics registry.

const req: RecRequest = { team: "T1", user: "U1", source: "test", limit: 3, context: {}, now: 0 };

const byFeature = (name: string): Scorer => ({
  name: "by-feature",
  version: "1",
  kind: "hand_tuned",
  async score(rows) {
    return rows.map((r) => Number(r[name] ?? 0));
  },
});

function recommender(over: Partial<Recommender<null>> = {}): Recommender<null> {
  return {
    fetchers: [
      { kind: "fetch", name: "a", run: async () => [{ id: "C1", features: { x: 1 } }, { id: "C2" }] },
      {
        kind: "fetch",
        name: "b",
        run: async () => [
          { id: "C2", features: { x: 5 } },
          { id: "C3", features: { x: 3 } },
        ],
      },
    ],
    filters: [],
    rerankers: [],
    handTuned: byFeature("x"),
    ...over,
  };
}

describe("runRecommender", () => {
  it("merges fetchers by id, scores, and ranks highest first", async () => {
    const out = await runRecommender(recommender(), req, null, byFeature("x"));
    expect(out.items.map((c) => [c.id, c.score, c.from])).toEqual([
      ["C2", 5, ["a", "b"]],
      ["C3", 3, ["b"]],
      ["C1", 1, ["a"]],
    ]);
    expect(out.degraded).toEqual([]);
    expect(out.steps.map((s) => [s.step, s.kind, s.out])).toEqual([
      ["a", "fetch", 2],
      ["b", "fetch", 2],
      ["by-feature@1", "score", 3],
    ]);
  });

  it("skips a failing optional step and says so; a failing required step fails the request", async () => {
    const flaky = recommender({
      filters: [
        {
          kind: "filter",
          name: "slow-store",
          optional: true,
          run: async () => {
            throw new Error("timeout");
          },
        },
      ],
    });
    const out = await runRecommender(flaky, req, null, byFeature("x"));
    expect(out.degraded).toEqual([{ step: "slow-store", error: "timeout" }]);
    expect(out.items).toHaveLength(3);
    const strict = recommender({
      filters: [
        {
          kind: "filter",
          name: "visibility",
          run: async () => {
            throw new Error("cache down");
          },
        },
      ],
    });
    await expect(runRecommender(strict, req, null, byFeature("x"))).rejects.toBeInstanceOf(RecommendError);
  });

  it("applies filters before scoring, rerankers after, then the limit; ties break by id", async () => {
    const rec = recommender({
      filters: [{ kind: "filter", name: "no-C3", run: async (_r, cs) => cs.filter((c) => c.id !== "C3") }],
      rerankers: [{ kind: "rerank", name: "reverse", run: async (_r, cs: Candidate[]) => [...cs].reverse() }],
    });
    // No candidate has feature "flat": every score is 0, a tie.
    const out = await runRecommender(rec, { ...req, limit: 1 }, null, byFeature("flat"));
    expect(out.scored.map((c) => c.id)).toEqual(["C1", "C2"]);
    expect(out.items.map((c) => c.id)).toEqual(["C2"]);
  });

  it("falls back to the hand-tuned scorer when the model fails while scoring", async () => {
    const broken: Scorer = {
      name: "lr",
      version: "2",
      kind: "lr",
      score: async () => {
        throw new Error("bad tensor");
      },
    };
    const out = await runRecommender(recommender(), req, null, broken);
    expect(out.scorer.name).toBe("by-feature");
    expect(out.scoringError).toBe("bad tensor");
    expect(out.items.map((c) => c.id)).toEqual(["C2", "C3", "C1"]);
    await expect(runRecommender(recommender({ handTuned: broken }), req, null, broken)).rejects.toBeInstanceOf(
      RecommendError,
    );
  });
});

describe("experiments", () => {
  const exp: Experiment = {
    name: "cb-2026-11",
    arms: [
      { name: "control", weight: 1, model: "hand_tuned" },
      { name: "lr", weight: 1, model: "channel_browser-lr@v2" },
      { name: "xgb", weight: 2, model: "channel_browser-xgboost@v2" },
    ],
  };

  it("assigns a user to the same arm every time, in proportion to the weights", () => {
    const users = Array.from({ length: 20_000 }, (_, i) => `U${i}`);
    const counts: Record<string, number> = {};
    for (const u of users) {
      const arm = assignArm(exp, u).name;
      expect(assignArm(exp, u).name).toBe(arm);
      counts[arm] = (counts[arm] ?? 0) + 1;
    }
    expect((counts.control ?? 0) / users.length).toBeCloseTo(0.25, 1);
    expect((counts.xgb ?? 0) / users.length).toBeCloseTo(0.5, 1);
  });

  it("splits users independently across experiments", () => {
    const users = Array.from({ length: 10_000 }, (_, i) => `U${i}`);
    let both = 0;
    for (const u of users) if (bucketOf("e1", u) < 0.5 && bucketOf("e2", u) < 0.5) both++;
    expect(both / users.length).toBeCloseTo(0.25, 1);
  });

  it("validates the configuration and reads arm models", () => {
    expect(experimentSchema.safeParse(exp).success).toBe(true);
    expect(experimentSchema.safeParse({ name: "x", arms: [] }).success).toBe(false);
    expect(experimentSchema.safeParse({ name: "x", arms: [{ name: "a", weight: 1, model: "lr" }] }).success).toBe(
      false,
    );
    expect(armModel({ name: "a", weight: 1, model: "hand_tuned" })).toBeNull();
    expect(armModel({ name: "a", weight: 1, model: "cb-lr@2026-11-24.1" })).toEqual({
      name: "cb-lr",
      version: "2026-11-24.1",
    });
  });
});

describe("metrics registry", () => {
  it("renders counters and cumulative histograms in Prometheus text", () => {
    const r = platformRegistry();
    r.inc("http_requests_total", { route: "/v1/recommend", status: "200" });
    r.inc("http_requests_total", { status: "200", route: "/v1/recommend" });
    r.observe("rec_model_scoring_ms", { source: "channel_browser", model: "lr" }, 0.7);
    r.observe("rec_model_scoring_ms", { source: "channel_browser", model: "lr" }, 30);
    const text = r.render();
    expect(text).toContain('http_requests_total{route="/v1/recommend",status="200"} 2');
    expect(text).toContain('rec_model_scoring_ms_bucket{model="lr",source="channel_browser",le="0.5"} 0');
    expect(text).toContain('rec_model_scoring_ms_bucket{model="lr",source="channel_browser",le="1"} 1');
    expect(text).toContain('rec_model_scoring_ms_bucket{model="lr",source="channel_browser",le="+Inf"} 2');
    expect(text).toContain('rec_model_scoring_ms_sum{model="lr",source="channel_browser"} 30.7');
    expect(text).toContain('rec_model_scoring_ms_count{model="lr",source="channel_browser"} 2');
    expect(text).toContain("# TYPE rec_served_items_total counter");
  });

  it("merges snapshots from several isolates by addition, and take() starts over", () => {
    const a = platformRegistry();
    const b = platformRegistry();
    const total = platformRegistry();
    a.inc("rec_served_items_total", { source: "s", arm: "x" }, 3);
    b.inc("rec_served_items_total", { source: "s", arm: "x" }, 4);
    total.merge(a.take());
    total.merge(b.take());
    total.merge(a.take());
    expect(total.render()).toContain('rec_served_items_total{arm="x",source="s"} 7');
    expect(() => new Registry([]).inc("nope")).toThrow(/unknown metric/);
  });
});

describe("candidate blocks (the RecStore → Worker hop)", () => {
  it("round-trips records, leaving out what a candidate lacks", () => {
    const items: FeaturedCandidate[] = [
      { id: "C1", features: { a: 1, b: 2.5 } },
      { id: "C2", features: { b: -3 } },
      { id: "C3", features: { c: 0, a: 7 } },
      { id: "C4", features: {} },
    ];
    const block = toBlock(items);
    expect(block.names).toEqual(["a", "b", "c"]);
    expect(block.values).toBeInstanceOf(Float64Array);
    expect(fromBlock(block)).toEqual(items);
  });

  it("refuses a block whose values do not fill ids × names", () => {
    expect(() => fromBlock({ ids: ["C1", "C2"], names: ["a"], values: new Float64Array(3) })).toThrow(/3 values/);
  });
});

describe("served log lines", () => {
  const items: Array<FeaturedCandidate & { score: number }> = [
    { id: "C1", score: 0.9, features: { a: 1, b: 2 } },
    { id: "C2", score: 0.4, features: { b: Number.NaN, c: 3 } },
  ];
  const base = {
    kind: "served" as const,
    request_id: "r1",
    team: "T1",
    user: "U1",
    source: "channel_browser",
    experiment: "e",
    arm: "default",
    model: "m",
    version: "v",
    fallback: false,
    ts: 1,
  };

  it("names the features once and aligns every item's values with them (null: absent or not finite)", () => {
    const logged = servedItems(items);
    expect(logged.feature_names).toEqual(["a", "b", "c"]);
    expect(logged.items).toEqual([
      { item: "C1", rank: 1, score: 0.9, features: [1, 2, null] },
      { item: "C2", rank: 2, score: 0.4, features: [null, null, 3] },
    ]);
    expect(parseRecLogMessage({ ...base, ...logged })).not.toBeNull();
  });

  it("logs each value as the float32 the model saw, in at most 9 significant digits", () => {
    for (const v of [Math.log1p(7), 1 / 3, 123456.789, 1e-7, 0, -2.5, 3]) {
      const logged = asScored(v);
      expect(Math.fround(logged)).toBe(Math.fround(v));
      expect(
        String(logged)
          .replace(/^-|\.|e.*$/g, "")
          .replace(/^0+/, "").length,
      ).toBeLessThanOrEqual(9);
    }
    expect(servedItems([{ id: "C1", score: 1, features: { a: Math.log1p(7) } }]).items[0]?.features).toEqual([
      2.07944155,
    ]);
  });

  it("rejects a served line whose features do not line up with its names", () => {
    const logged = servedItems(items);
    const short = { ...logged, items: logged.items.map((it) => ({ ...it, features: it.features.slice(1) })) };
    expect(parseRecLogMessage({ ...base, ...short })).toBeNull();
    expect(parseRecLogMessage({ ...base, items: [] })).toBeNull(); // no feature_names
  });

  it("writes an envelope's line as the message with its queue message id first", () => {
    const message = parseRecLogMessage({ ...base, ...servedItems(items) });
    if (!message) throw new Error("fixture message rejected");
    const envelope = parseRecLogBody(recLogEnvelope(message));
    if (!envelope) throw new Error("envelope rejected");
    const [object] = logObjects([{ id: "m-1", body: envelope }]);
    expect(object?.key).toMatch(/^rec-logs\/source=channel_browser\/day=1970-01-01\/[0-9a-f]{16}\.ndjson$/);
    const line = JSON.parse(object?.body.trimEnd() ?? "") as Record<string, unknown>;
    expect(Object.keys(line)[0]).toBe("message_id");
    expect(line).toEqual({ message_id: "m-1", ...message });
    expect(parseRecLogMessage(line)).not.toBeNull();
  });

  it("takes a bare message from an older producer only when it checks out in full", () => {
    const logged = servedItems(items);
    expect(parseRecLogBody({ ...base, ...logged })?.line).toBe(JSON.stringify({ ...base, ...logged }));
    expect(parseRecLogBody({ ...base, items: [] })).toBeNull();
  });

  it("drops envelopes that are not one: another version, no source, a bad day, a line that is not one JSON object", () => {
    const good = recLogEnvelope({ ...base, ...servedItems(items) });
    expect(parseRecLogBody(good)).toEqual(good);
    for (const bad of [
      { ...good, v: 1 },
      { ...good, source: "" },
      { ...good, ts: Number.NaN },
      { ...good, ts: 1e20 },
      { ...good, line: "{}" },
      { ...good, line: "[1,2]" },
      { ...good, line: `${good.line}\n{"kind":"served"}` },
      { ...good, line: "x".repeat(10) },
      { ...good, line: 42 },
      null,
      "text",
    ]) {
      expect(parseRecLogBody(bad)).toBeNull();
    }
  });
});
