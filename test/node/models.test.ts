import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as ortNode from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { staleFiles } from "../../scripts/models-index";
import { linearParamsSchema, linearScorer, scoreLinear } from "../../src/models/linear";
import { type ModelManifest, parseManifest } from "../../src/models/manifest";
import { linearFromOnnx } from "../../src/models/onnx-linear";
import { fields } from "../../src/models/onnx-proto";
import { scoreTrees, treesFromOnnx } from "../../src/models/onnx-trees";
import { editTreeAttr, encode, marginGraph, textField, thresholdRows, withModes } from "../onnx-edit";

// The plain TypeScript LR and onnxruntime-node (the bench's native baseline)
// against the Python model's scores in parity.json; and models/index.ts
// matching the folders under models/.

const FIXTURES = "test/fixtures/models";

const paritySchema = z.object({
  features: z.array(z.string()),
  rows: z.array(z.array(z.number().nullable())),
  scores: z.array(z.number()),
});

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, "utf8"));

function manifestAt(dir: string): ModelManifest {
  const parsed = parseManifest(readJson(`${dir}/manifest.json`));
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.manifest;
}

function parityAt(dir: string) {
  const parity = paritySchema.parse(readJson(`${dir}/parity.json`));
  const width = parity.features.length;
  const matrix = new Float32Array(parity.rows.length * width);
  parity.rows.forEach((row, r) => {
    row.forEach((v, f) => {
      matrix[r * width + f] = v ?? Number.NaN;
    });
  });
  return { ...parity, matrix };
}

const worst = (a: ArrayLike<number>, b: readonly number[]) =>
  b.reduce((w, s, i) => Math.max(w, Math.abs((a[i] as number) - s)), 0);

describe("plain TypeScript logistic regression", () => {
  const dir = `${FIXTURES}/lr`;
  const manifest = manifestAt(dir);
  const params = linearParamsSchema.parse(readJson(`${dir}/linear.json`));

  it("matches the Python model's scores (float64: within 1e-6)", async () => {
    const parity = parityAt(dir);
    const scorer = linearScorer({ source: "fixtures", name: "lr", version: "fixture-1" }, manifest, params);
    const scores = await scorer.score(parity.matrix, parity.rows.length);
    expect(worst(scores, parity.scores)).toBeLessThan(1e-6);
  });

  it("refuses parameters for other features and a matrix of the wrong size", async () => {
    expect(() =>
      linearScorer({ source: "s", name: "n", version: "v" }, manifest, {
        ...params,
        features: [...params.features].reverse(),
      }),
    ).toThrow();
    const scorer = linearScorer({ source: "s", name: "n", version: "v" }, manifest, params);
    await expect(scorer.score(new Float32Array(7), 1)).rejects.toThrow();
  });
});

describe("onnxruntime-node on the fixture models", () => {
  for (const kind of ["lr", "xgboost"]) {
    it(`${kind}: within 1e-5 of the Python model`, async () => {
      const dir = `${FIXTURES}/${kind}`;
      const manifest = manifestAt(dir);
      const parity = parityAt(dir);
      const session = await ortNode.InferenceSession.create(readFileSync(`${dir}/model.onnx`));
      const out = await session.run({
        [manifest.input]: new ortNode.Tensor("float32", parity.matrix, [parity.rows.length, parity.features.length]),
      });
      expect(worst(out[manifest.output.name]?.data as Float32Array, parity.scores)).toBeLessThanOrEqual(1e-5);
      await session.release();
    });
  }
});

describe("models/index.ts", () => {
  it("imports exactly the model folders under models/ (npx tsx scripts/models-index.ts)", () => {
    expect(staleFiles()).toEqual([]);
  });
});

describe("LR graphs read without onnxruntime (src/models/onnx-linear.ts)", () => {
  const dir = `${FIXTURES}/lr`;
  const manifest = manifestAt(dir);
  const onnx = new Uint8Array(readFileSync(`${dir}/model.onnx`));
  const width = manifest.features.length;

  it("reads the exporter's LinearRegressor → Sigmoid graph and matches the Python model", () => {
    const folded = linearFromOnnx(onnx, manifest.input, manifest.output.name, width);
    if (!folded) throw new Error("not recognized");
    expect(folded.weights).toHaveLength(width);
    const parity = parityAt(dir);
    expect(worst(scoreLinear(folded, parity.matrix, parity.rows.length), parity.scores)).toBeLessThan(1e-5);
  });

  it("answers null for anything else: another graph, other names or width, bytes that are not ONNX", () => {
    const xgb = manifestAt(`${FIXTURES}/xgboost`);
    const trees = new Uint8Array(readFileSync(`${FIXTURES}/xgboost/model.onnx`));
    expect(linearFromOnnx(trees, xgb.input, xgb.output.name, xgb.features.length)).toBeNull();
    expect(linearFromOnnx(onnx, "x", manifest.output.name, width)).toBeNull();
    expect(linearFromOnnx(onnx, manifest.input, "probability", width)).toBeNull();
    expect(linearFromOnnx(onnx, manifest.input, manifest.output.name, width + 1)).toBeNull();
    expect(linearFromOnnx(new TextEncoder().encode("not an onnx model"), "features", "score", width)).toBeNull();
    expect(linearFromOnnx(onnx.subarray(0, onnx.length - 7), manifest.input, manifest.output.name, width)).toBeNull();
  });
});

// --- tree ensembles read without onnxruntime (src/models/onnx-trees.ts) -------------------

/** The XGBoost models: the fixture and every model under models/ whose manifest says xgboost. */
const xgboostDirs = [
  `${FIXTURES}/xgboost`,
  ...readdirSync("models")
    .map((d) => `models/${d}`)
    // models/slackbot is the Slack bot's classifier, with a manifest of its own (platform/slackbot-model.ts).
    .filter((d) => d !== "models/slackbot" && existsSync(`${d}/manifest.json`) && manifestAt(d).kind === "xgboost"),
];

/**
 * The parity rows and `extra` generated rows: per value, a split threshold of
 * that feature exactly or one float32 either side, NaN, ±0, or a parity value.
 */
function treeRows(dir: string, extra: number) {
  const manifest = manifestAt(dir);
  const parity = parityAt(dir);
  const width = manifest.features.length;
  const e = treesFromOnnx(readModel(dir), manifest.input, manifest.output.name, width);
  if (!e) throw new Error(`${dir}: not recognized`);
  const matrix = thresholdRows(e, parity.matrix, extra, dir.length);
  return { manifest, matrix, rows: matrix.length / width, width, ensemble: e };
}

const readModel = (dir: string) => new Uint8Array(readFileSync(`${dir}/model.onnx`));

/** onnxruntime-node on `onnx`: one intra-op thread (onnxruntime-web's budget, trees summed in order) or its default pool. */
async function nativeScores(
  onnx: Uint8Array,
  manifest: ModelManifest,
  matrix: Float32Array,
  rows: number,
  threads = 1,
) {
  const session = await ortNode.InferenceSession.create(
    onnx,
    threads === 1 ? { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: "sequential" } : {},
  );
  const width = manifest.features.length;
  const out = await session.run({ [manifest.input]: new ortNode.Tensor("float32", matrix, [rows, width]) });
  await session.release();
  return Float32Array.from(out[manifest.output.name]?.data as Float32Array);
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs((a[i] as number) - (b[i] as number)));
  return w;
};

describe("tree ensembles read without onnxruntime (src/models/onnx-trees.ts)", () => {
  it("finds the XGBoost models: the fixture and the shipped ones", () => {
    expect(xgboostDirs.length).toBeGreaterThanOrEqual(2);
  });

  for (const dir of xgboostDirs) {
    it(`${dir}: scores like onnxruntime-node (1e-6) on 364 rows with NaN and values at thresholds`, async () => {
      const { manifest, matrix, rows, ensemble } = treeRows(dir, 300);
      expect(ensemble.sigmoid).toBe(true);
      expect(ensemble.complete).not.toBeNull();
      expect(matrix.some(Number.isNaN)).toBe(true);
      const ts = scoreTrees(ensemble, matrix, rows);
      const onnx = readModel(dir);
      expect(maxAbs(ts, await nativeScores(onnx, manifest, matrix, rows))).toBeLessThanOrEqual(1e-6);
      // ORT's default pool sums the trees in per-thread chunks: other float32 roundings, still within 1e-6.
      expect(maxAbs(ts, await nativeScores(onnx, manifest, matrix, rows, 0))).toBeLessThanOrEqual(1e-6);
      // The pointer walk alone (what NaN rows and too-deep trees take) agrees too.
      expect(maxAbs(scoreTrees({ ...ensemble, complete: null }, matrix, rows), ts)).toBe(0);
    });

    it(`${dir}: the margin equals onnxruntime's to the bit (float32 sums, trees in order)`, async () => {
      const { manifest, matrix, rows, ensemble } = treeRows(dir, 300);
      const native = await nativeScores(marginGraph(readModel(dir)), manifest, matrix, rows);
      const ts = scoreTrees({ ...ensemble, sigmoid: false }, matrix, rows);
      expect(maxAbs(ts, native)).toBe(0);
      expect(maxAbs(scoreTrees({ ...ensemble, sigmoid: false, complete: null }, matrix, rows), native)).toBe(0);
    });

    it(`${dir}: matches the Python model's scores in parity.json (1e-5)`, () => {
      const manifest = manifestAt(dir);
      const parity = parityAt(dir);
      const e = treesFromOnnx(readModel(dir), manifest.input, manifest.output.name, manifest.features.length);
      if (!e) throw new Error("not recognized");
      expect(worst(scoreTrees(e, parity.matrix, parity.rows.length), parity.scores)).toBeLessThanOrEqual(1e-5);
    });
  }

  it("BRANCH_LEQ / GT / GTE and mixed modes: the same margins as onnxruntime-node, to the bit", async () => {
    const dir = xgboostDirs[1] ?? `${FIXTURES}/xgboost`;
    const { manifest, matrix, rows } = treeRows(dir, 300);
    const modes = ["BRANCH_LT", "BRANCH_LEQ", "BRANCH_GT", "BRANCH_GTE"];
    const variants = [...modes.slice(1).map((m) => () => m), (i: number) => modes[i % 4] as string];
    for (const mode of variants) {
      const onnx = withModes(readModel(dir), mode);
      const e = treesFromOnnx(onnx, manifest.input, manifest.output.name, manifest.features.length);
      if (!e) throw new Error(`${mode(1)}: not recognized`);
      const native = await nativeScores(marginGraph(onnx), manifest, matrix, rows);
      expect(maxAbs(scoreTrees({ ...e, sigmoid: false }, matrix, rows), native), mode(1)).toBe(0);
    }
  });

  it("answers null for anything else: other graphs, aggregation, modes, names, width, bytes", async () => {
    const dir = `${FIXTURES}/xgboost`;
    const m = manifestAt(dir);
    const onnx = readModel(dir);
    const read = (bytes: Uint8Array, input = m.input, output = m.output.name, width = m.features.length) =>
      treesFromOnnx(bytes, input, output, width);
    expect(read(onnx)).not.toBeNull();
    expect(encode(fields(onnx))).toEqual(onnx); // the test's writer round-trips, so the edits below are the only change
    const lr = manifestAt(`${FIXTURES}/lr`);
    expect(read(readModel(`${FIXTURES}/lr`), lr.input, lr.output.name, lr.features.length)).toBeNull();
    const max = editTreeAttr(onnx, "aggregate_function", (a) => [...a.filter((f) => f.no !== 4), textField(4, "MAX")]);
    expect(read(max)).toBeNull();
    // ... which is still a model onnxruntime runs (so onnxruntime-web takes it).
    expect((await nativeScores(max, m, new Float32Array(m.features.length), 1)).length).toBe(1);
    const logistic = editTreeAttr(onnx, "post_transform", (a) => [
      ...a.filter((f) => f.no !== 4),
      textField(4, "LOGISTIC"),
    ]);
    expect(read(logistic)).toBeNull();
    expect(read(withModes(onnx, () => "BRANCH_EQ"))).toBeNull();
    expect(read(marginGraph(onnx))).toBeNull();
    expect(read(onnx, "x")).toBeNull();
    expect(read(onnx, m.input, "probability")).toBeNull();
    expect(read(onnx, m.input, m.output.name, m.features.length + 1)).toBeNull();
    expect(read(onnx, m.input, m.output.name, m.features.length - 1)).toBeNull();
    expect(read(new TextEncoder().encode("not an onnx model"))).toBeNull();
    expect(read(onnx.subarray(0, onnx.length - 7))).toBeNull();
  });

  it("refuses a matrix of the wrong size", () => {
    const dir = `${FIXTURES}/xgboost`;
    const m = manifestAt(dir);
    const e = treesFromOnnx(readModel(dir), m.input, m.output.name, m.features.length);
    if (!e) throw new Error("not recognized");
    expect(() => scoreTrees(e, new Float32Array(7), 1)).toThrow();
    expect(scoreTrees(e, new Float32Array(0), 0)).toEqual(new Float32Array(0));
  });
});
