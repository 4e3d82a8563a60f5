import { readFileSync } from "node:fs";
import * as ortNode from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { staleFiles } from "../../scripts/models-index";
import { linearParamsSchema, linearScorer, scoreLinear } from "../../src/models/linear";
import { type ModelManifest, parseManifest } from "../../src/models/manifest";
import { linearFromOnnx } from "../../src/models/onnx-linear";

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
