import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { onnxScorer } from "../../platform/models/onnx-runtime";
import { matrixScorer, ndcgAtK, ndcgPerCut, parseEvalSet, rankOrder, recordScorer } from "../../src/recommend/eval-set";
import { BASELINES, type BaselineName, baselineScore, handTunedScore } from "../../src/recommend/features/spec";
import {
  type BaselineModel,
  bestBaseline,
  compare,
  DEFAULT_GATE_RULE,
  gateDecision,
  sampleStd,
  spread,
} from "../../src/recommend/promotion-gate";
import cases from "../fixtures/recommend/gate-cases.json";

// The promotion gate's rule in TypeScript (src/recommend/promotion-gate.ts)
// against its definition (training/gate.py) and the pipeline's metric
// (training/metrics.py): the same per-cut numbers must give the same D, S,
// required margin and decision, and the same rankings the same NDCG@10.
// The Python cases need /usr/bin/python3 with numpy; without it they are
// skipped with a line saying so (the pure TypeScript cases always run).

const ROOT = join(__dirname, "..", "..");
// /usr/bin/python3 is the pipeline's interpreter (package.json "train"); a python3 on PATH with numpy
// (a pyenv, a venv) is taken when Debian's numpy is not installed.
const PYTHON = ["/usr/bin/python3", "python3"].find(
  (bin) => spawnSync(bin, ["-c", "import numpy"], { encoding: "utf8" }).status === 0,
);
const pythonMissing = PYTHON ? null : "neither /usr/bin/python3 nor python3 on PATH imports numpy";
const inCI = process.env.CI === "true" || process.env.CI === "1";
if (pythonMissing && inCI) throw new Error(`CI runs the gate's Python parity: ${pythonMissing}`);
if (pythonMissing) {
  console.warn(`promotion-gate parity with training/gate.py skipped: ${pythonMissing} (npm run setup:training)`);
}

function python(code: string, input: unknown): unknown {
  const run = spawnSync(PYTHON ?? "/usr/bin/python3", ["-c", code], {
    cwd: join(ROOT, "training"),
    input: JSON.stringify(input),
    encoding: "utf8",
    timeout: 120_000,
  });
  if (run.status !== 0) throw new Error(`python failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

describe("promotion gate rule (TypeScript)", () => {
  it("passes when the mean improvement exceeds both the noise and the margin", () => {
    // d = [0.01, 0.02, 0.03]: D = 0.02, S = 0.01 (ddof 1), required = max(0.01, 0.005).
    const c = compare([0.31, 0.32, 0.33], [0.3, 0.3, 0.3]);
    expect(c).toMatchObject({ improvement: 0.02, improvement_std: 0.01, required: 0.01, passes: true });
    expect(c.improvement_per_cut).toEqual([0.01, 0.02, 0.03]);
  });

  it("refuses a steady improvement under min_margin, an equal model and a noisy one", () => {
    expect(compare([0.304, 0.304, 0.304], [0.3, 0.3, 0.3])).toMatchObject({ required: 0.005, passes: false });
    expect(compare([0.4, 0.41], [0.4, 0.41])).toMatchObject({ improvement: 0, passes: false });
    // Better on average (+0.0303) but by less than its spread across cuts (0.0396).
    const noisy = compare([0.42655, 0.42401, 0.36385], [0.38938, 0.35791, 0.37607]);
    expect(noisy.passes).toBe(false);
    expect(noisy.improvement).toBeGreaterThan(0);
    expect(noisy.required).toBeGreaterThan(noisy.improvement);
  });

  it("never passes one cut (the noise is unknown) and needs min_cuts cuts to decide", () => {
    expect(compare([0.9], [0.1])).toMatchObject({ improvement_std: null, required: null, passes: false });
    const two = gateDecision(["2024-01-01", "2025-01-01"], [0.6, 0.7], [{ name: "serving", per_cut: [0.5, 0.55] }]);
    expect(two.passes).toBe(false);
    expect(two.reason).toContain("needs 3");
    expect(DEFAULT_GATE_RULE).toEqual({ k: 1, min_margin: 0.005, min_cuts: 3 });
  });

  it("fails when any reference is not cleared, and names it", () => {
    const d = gateDecision(
      ["a", "b", "c"],
      [0.4, 0.41, 0.42],
      [
        { name: "serving", per_cut: [0.3, 0.31, 0.32] },
        { name: "best_baseline:hand_tuned", per_cut: [0.4, 0.41, 0.42] },
      ],
    );
    expect(d.passes).toBe(false);
    expect(d.failed).toEqual(["best_baseline:hand_tuned"]);
    expect(d.comparisons.serving?.passes).toBe(true);
  });

  it("picks the best baseline by mean, the first listed on a tie", () => {
    expect(bestBaseline({ popularity: [0.2], recent_popularity: [0.3], hand_tuned: [0.25] })).toBe("recent_popularity");
    expect(bestBaseline({ popularity: [0.3], recent_popularity: [0.3], hand_tuned: [0.3] })).toBe("popularity");
  });

  it("computes NDCG@10 as training/metrics.py: ties by the smaller item, IDCG over every positive", () => {
    expect(rankOrder([0.5, 0.9, 0.5, 0.1], [7, 3, 2, 1])).toEqual([1, 2, 0, 3]);
    expect(rankOrder([1, 1], ["b", "a"])).toEqual([1, 0]);
    expect(ndcgAtK([1, 0, 0], 1)).toBe(1);
    expect(ndcgAtK([0, 1], 1)).toBeCloseTo(1 / Math.log2(3), 12);
    // A second positive the candidates missed still counts in the ideal DCG.
    expect(ndcgAtK([1, 0], 2)).toBeCloseTo(1 / (1 + 1 / Math.log2(3)), 12);
    expect(ndcgAtK([0, 0], 0)).toBe(0);
    expect(sampleStd([1])).toBeNaN();
  });
});

describe.skipIf(pythonMissing !== null)("promotion gate parity with training/gate.py", () => {
  it("gives the same comparison numbers and decisions on the fixture's per-cut series", () => {
    const py = python(
      `import json, sys, gate
doc = json.load(sys.stdin)
out = {"compare": [gate.compare(c["candidate"], c["reference"]) for c in doc["cases"]],
       "best": [gate.best_baseline(b) for b in doc["baselines"]],
       "spread": [gate.spread(c["candidate"]) for c in doc["cases"]]}
print(json.dumps(out))`,
      cases,
    ) as { compare: unknown[]; best: string[]; spread: unknown[] };
    const ts = {
      compare: cases.cases.map((c) => compare(c.candidate, c.reference)),
      best: cases.baselines.map((b) => bestBaseline(b as Record<BaselineModel, number[]>)),
      spread: cases.cases.map((c) => spread(c.candidate)),
    };
    expect(ts.compare).toEqual(py.compare);
    expect(ts.best).toEqual(py.best);
    expect(ts.spread).toEqual(py.spread);
    // The fixture covers both decisions.
    expect(new Set(ts.compare.map((c) => c.passes))).toEqual(new Set([true, false]));
  });

  it("ranks and scores NDCG@10 as training/metrics.py on random rankings with ties", () => {
    let seed = 12345;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const groups = Array.from({ length: 200 }, () => {
      const n = 1 + Math.floor(rand() * 30);
      const items = Array.from({ length: n }, (_, i) => i * 3 + Math.floor(rand() * 3));
      // Coarse scores, so that ties are common.
      const scores = items.map(() => Math.floor(rand() * 5) / 4);
      const labels = items.map((): number => (rand() < 0.2 ? 1 : 0));
      const positives = labels.reduce((s, l) => s + l, 0) + Math.floor(rand() * 3);
      return { items, scores, labels, positives };
    });
    const py = python(
      `import json, sys
import numpy as np
from metrics import rank_order, ndcg_at_k
out = []
for g in json.load(sys.stdin):
    order = rank_order(g["scores"], g["items"])
    out.append(ndcg_at_k(np.asarray(g["labels"])[order], g["positives"]))
print(json.dumps(out))`,
      groups,
    ) as number[];
    const ts = groups.map((g) =>
      ndcgAtK(
        rankOrder(g.scores, g.items).map((i) => g.labels[i] as number),
        g.positives,
      ),
    );
    expect(ts).toHaveLength(py.length);
    ts.forEach((v, i) => {
      expect(v).toBeCloseTo(py[i] as number, 12);
    });
  });

  it("scores the baselines and the bundled model on an exported eval set exactly as the pipeline recorded them", async () => {
    // training/export_eval_set.py on the shipped dataset writes the rankings train.py evaluates;
    // training/report/metrics_by_cut.json holds what train.py measured on them.
    const out = mkdtempSync(join(tmpdir(), "eval-set-"));
    try {
      const run = spawnSync(
        PYTHON ?? "/usr/bin/python3",
        [
          "training/export_eval_set.py",
          "--data",
          "datasets/rails-collab",
          "--out",
          out,
          "--sources",
          "channel_browser",
        ],
        { cwd: ROOT, encoding: "utf8", timeout: 300_000 },
      );
      if (run.status !== 0) throw new Error(`export_eval_set.py failed: ${run.stderr}`);
      const set = parseEvalSet(readFileSync(join(out, "channel_browser.eval-set.ndjson"), "utf8"), "channel_browser");
      const recorded = JSON.parse(readFileSync(join(ROOT, "training/report/metrics_by_cut.json"), "utf8")) as {
        cuts: Array<{ cut: string; sources: Record<string, { models: Record<string, { ndcg10: number }> }> }>;
      };
      const byCut = new Map(recorded.cuts.map((c) => [c.cut, c.sources.channel_browser?.models]));
      expect(set.cuts.every((c) => byCut.has(c))).toBe(true);
      const models = ["hand_tuned", ...(Object.keys(BASELINES.channel_browser) as BaselineName[])] as const;
      for (const model of models) {
        const per = await ndcgPerCut(
          set,
          recordScorer(set, async (rows) =>
            rows.map((r) =>
              model === "hand_tuned"
                ? handTunedScore("channel_browser", r as Record<string, number>)
                : baselineScore("channel_browser", model, r as Record<string, number>),
            ),
          ),
        );
        per.forEach((v, i) => {
          expect(v, `${model} at ${set.cuts[i]}`).toBeCloseTo(
            byCut.get(set.cuts[i] as string)?.[model]?.ndcg10 ?? -1,
            10,
          );
        });
      }
      // The bundled model, scored by the Worker's TypeScript reader on the latest cut, gives what its
      // training run recorded there (manifest.metrics.latest_cut).
      const manifest = JSON.parse(readFileSync(join(ROOT, "models/channel_browser/manifest.json"), "utf8"));
      const onnx = new Uint8Array(readFileSync(join(ROOT, "models/channel_browser/model.onnx")));
      const key = { source: "channel_browser", name: manifest.name, version: manifest.version };
      const loaded = await onnxScorer(key, manifest, onnx);
      if (!loaded.ok) throw new Error(loaded.error.message);
      const model = await ndcgPerCut(
        set,
        matrixScorer(set, manifest.features, (m, n) => loaded.value.score(m, n)),
      );
      expect(set.cuts.at(-1)).toBe(manifest.metrics.latest_cut.cut);
      expect(model.at(-1)).toBeCloseTo(manifest.metrics.latest_cut.ndcg10, 10);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
