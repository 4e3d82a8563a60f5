import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { modelParity } from "../../models/parity";
import { bundledModelStore } from "../../platform/models/bundled";
import { onnxModelLoader, onnxRuntimeStats, onnxScorer } from "../../platform/models/onnx-runtime";
import { r2ModelPrefix, r2ModelStore } from "../../platform/models/r2-model-store";
import { featureMatrix, type ModelKey, type ModelManifest, parseManifest } from "../../src/models/manifest";
import { treesFromOnnx } from "../../src/models/onnx-trees";
import type { ModelEngine } from "../../src/models/ports";
import lrManifest from "../fixtures/models/lr/manifest.json";
import lrOnnx from "../fixtures/models/lr/model.onnx";
import lrParity from "../fixtures/models/lr/parity.json";
import xgbManifest from "../fixtures/models/xgboost/manifest.json";
import xgbOnnx from "../fixtures/models/xgboost/model.onnx";
import xgbParity from "../fixtures/models/xgboost/parity.json";
import { editTreeAttr, textField, thresholdRows } from "../onnx-edit";

// onnxruntime-web inside workerd scores like the Python model that was
// exported (training/onnx_export.py wrote parity.json with the native
// sklearn / xgboost scores), loads lazily once, caches sessions, and reports
// a broken model as a typed failure.

const TOLERANCE = 1e-5;

const paritySchema = z.object({
  features: z.array(z.string()),
  rows: z.array(z.array(z.number().nullable())),
  scores: z.array(z.number()),
});

function manifestOf(json: unknown): ModelManifest {
  const parsed = parseManifest(json);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.manifest;
}

const keyOf = (m: ModelManifest): ModelKey => ({ source: m.source, name: m.name, version: m.version });

/** The XGBoost fixture with MAX instead of SUM: a valid graph onnx-trees.ts does not take, so onnxruntime-web does. */
const xgbMaxOnnx = () =>
  editTreeAttr(new Uint8Array(xgbOnnx), "aggregate_function", (a) => [
    ...a.filter((f) => f.no !== 4),
    textField(4, "MAX"),
  ]);

/** Scores the parity rows (null = NaN: a missing value, straight into the matrix) and returns the worst difference. */
async function worstDifference(
  manifest: ModelManifest,
  onnx: ArrayBuffer,
  parityJson: unknown,
  key = keyOf(manifest),
  engine: ModelEngine | "auto" = "auto",
) {
  const parity = paritySchema.parse(parityJson);
  expect(parity.features).toEqual(manifest.features.map((f) => f.name));
  const width = parity.features.length;
  const matrix = new Float32Array(parity.rows.length * width);
  parity.rows.forEach((row, r) => {
    row.forEach((v, f) => {
      matrix[r * width + f] = v ?? Number.NaN;
    });
  });
  const loaded = await onnxScorer(key, manifest, new Uint8Array(onnx), { engine });
  if (!loaded.ok) throw new Error(`${loaded.error.code}: ${loaded.error.message}`);
  if (engine !== "auto") expect(loaded.value.engine).toBe(engine);
  const scores = await loaded.value.score(matrix, parity.rows.length);
  expect(scores.length).toBe(parity.scores.length);
  let worst = 0;
  parity.scores.forEach((s, i) => {
    worst = Math.max(worst, Math.abs((scores[i] as number) - s));
  });
  return { worst, rows: parity.rows.length, missing: parity.rows.flat().filter((v) => v === null).length };
}

describe("ONNX parity with the Python models (1e-5)", () => {
  it("logistic regression fixture, read into TypeScript and in onnxruntime-web", async () => {
    const manifest = manifestOf(lrManifest);
    for (const engine of ["linear", "onnxruntime-web"] as const) {
      const r = await worstDifference(manifest, lrOnnx, lrParity, keyOf(manifest), engine);
      expect(r.rows).toBe(64);
      expect(r.worst, engine).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it("serves LR and tree-ensemble graphs without the runtime, every other graph with it", async () => {
    const lr = manifestOf(lrManifest);
    const xgb = manifestOf(xgbManifest);
    const a = await onnxScorer(keyOf(lr), lr, new Uint8Array(lrOnnx));
    const b = await onnxScorer(keyOf(xgb), xgb, new Uint8Array(xgbOnnx));
    const c = await onnxScorer({ ...keyOf(xgb), version: "max" }, xgb, xgbMaxOnnx());
    expect(a.ok && a.value.engine).toBe("linear");
    expect(b.ok && b.value.engine).toBe("trees");
    expect(c.ok && c.value.engine).toBe("onnxruntime-web");
    const forced = await onnxScorer({ ...keyOf(xgb), version: "forced" }, xgb, new Uint8Array(xgbOnnx), {
      engine: "linear",
    });
    expect(forced.ok ? "ok" : forced.error.code).toBe("invalid_model");
    const forcedTrees = await onnxScorer({ ...keyOf(lr), version: "forced" }, lr, new Uint8Array(lrOnnx), {
      engine: "trees",
    });
    expect(forcedTrees.ok ? "ok" : forcedTrees.error.code).toBe("invalid_model");
  });

  it("XGBoost: the auto engine is trees, and scores like onnxruntime-web (1e-6) with NaN and values at thresholds", async () => {
    const models = [
      { dir: "fixture", manifest: xgbManifest, onnx: xgbOnnx },
      ...modelParity.filter((m) => manifestOf(m.manifest).kind === "xgboost"),
    ];
    expect(models.length).toBeGreaterThanOrEqual(3);
    for (const m of models) {
      const manifest = manifestOf(m.manifest);
      const bytes = new Uint8Array(m.onnx);
      const ensemble = treesFromOnnx(bytes, manifest.input, manifest.output.name, manifest.features.length);
      if (!ensemble) throw new Error(`${m.dir}: not recognized`);
      const matrix = thresholdRows(ensemble, new Float32Array(0), 400, m.dir.length);
      const rows = matrix.length / manifest.features.length;
      const auto = await onnxScorer(keyOf(manifest), manifest, bytes);
      const web = await onnxScorer(keyOf(manifest), manifest, bytes, { engine: "onnxruntime-web" });
      if (!auto.ok || !web.ok) throw new Error(`${m.dir}: not loaded`);
      expect(auto.value.engine, m.dir).toBe("trees");
      const [a, w] = [await auto.value.score(matrix, rows), await web.value.score(matrix, rows)];
      let worst = 0;
      for (let i = 0; i < rows; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (w[i] as number)));
      expect(worst, m.dir).toBeLessThanOrEqual(1e-6);
    }
  });

  it("XGBoost fixture (200 trees, depth 6; rows at split thresholds and with missing values)", async () => {
    const manifest = manifestOf(xgbManifest);
    expect(manifest.metrics.trees).toBe(200);
    for (const engine of ["trees", "onnxruntime-web"] as const) {
      const r = await worstDifference(manifest, xgbOnnx, xgbParity, keyOf(manifest), engine);
      expect(r.rows).toBe(64);
      expect(r.missing).toBeGreaterThan(0);
      expect(r.worst, engine).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it("every model shipped under models/ (models/parity.ts)", async () => {
    for (const m of modelParity) {
      const manifest = manifestOf(m.manifest);
      const r = await worstDifference(manifest, m.onnx, m.parity);
      expect(r.worst, m.dir).toBeLessThanOrEqual(TOLERANCE);
    }
  });
});

describe("model loading", () => {
  const lr = manifestOf(lrManifest);
  const fixtures = bundledModelStore([
    { dir: "lr", manifest: lrManifest, onnx: lrOnnx },
    { dir: "xgboost", manifest: xgbManifest, onnx: xgbOnnx },
  ]);

  beforeAll(async () => {
    // Start the runtime so the counters below only see sessions.
    const r = await onnxScorer({ ...keyOf(lr), version: "warmup" }, lr, new Uint8Array(lrOnnx), {
      engine: "onnxruntime-web",
    });
    expect(r.ok).toBe(true);
  });

  it("starts the runtime once per isolate and reuses a warm session", async () => {
    // A key no other test has loaded in this isolate.
    const key = { source: "fixtures", name: "xgboost", version: "reuse-test" };
    // The MAX variant: a graph that onnxruntime-web serves (the exporter's XGBoost graph is scored in TypeScript).
    const maxOnnx = xgbMaxOnnx();
    const loader = onnxModelLoader(
      bundledModelStore([
        {
          dir: "x",
          manifest: { ...xgbManifest, ...key },
          onnx: maxOnnx.buffer.slice(maxOnnx.byteOffset, maxOnnx.byteOffset + maxOnnx.byteLength) as ArrayBuffer,
        },
      ]),
    );
    const before = onnxRuntimeStats.sessionsCreated;
    const [a, b] = await Promise.all([loader.scorer(key), loader.scorer(key)]);
    const c = await loader.scorer(key);
    expect(a.ok && b.ok && c.ok).toBe(true);
    expect(onnxRuntimeStats.sessionsCreated - before).toBe(1);
    if (a.ok && c.ok) expect(c.value).toBe(a.value);
    expect(onnxRuntimeStats.runtimeStarts).toBe(1);
  });

  it("reports a corrupt model as invalid_model, then still loads good ones", async () => {
    const key = { source: "test", name: "corrupt", version: "1" };
    const corrupt = new Uint8Array(new Uint8Array(lrOnnx).slice(0, 200));
    corrupt.fill(0xff, 20, 120);
    const r = await onnxScorer(key, { ...lr, ...key }, corrupt);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe("invalid_model");
    const garbage = await onnxScorer(key, { ...lr, ...key }, new TextEncoder().encode("not an onnx model"));
    expect(garbage.ok ? "ok" : garbage.error.code).toBe("invalid_model");
    // The failure was not cached and the runtime still works.
    const good = await onnxScorer(key, { ...lr, ...key }, new Uint8Array(lrOnnx));
    expect(good.ok).toBe(true);
  });

  it("reports a manifest naming an input the model lacks as invalid_model", async () => {
    const key = { source: "test", name: "wrong-input", version: "1" };
    const r = await onnxScorer(key, { ...lr, ...key, input: "x" }, new Uint8Array(lrOnnx));
    expect(r.ok ? "ok" : r.error.code).toBe("invalid_model");
  });

  it("reports a model that is nowhere as not_found", async () => {
    const r = await onnxModelLoader(fixtures).scorer({ source: "nope", name: "nope", version: "1" });
    expect(r.ok ? "ok" : r.error.code).toBe("not_found");
  });

  it("reads R2 first, falls back to the bundle, and reports a broken R2 model", async () => {
    const store = r2ModelStore(env.MODELS, fixtures);
    // Not in R2: the bundled fixture.
    const bundled = await store.load(keyOf(lr));
    expect(bundled.ok && bundled.value.origin).toBe("bundled");

    // In R2: the R2 copy wins.
    const key = { source: "r2test", name: "lr", version: "2" };
    const prefix = r2ModelPrefix(key);
    await env.MODELS.put(`${prefix}manifest.json`, JSON.stringify({ ...lr, ...key }));
    await env.MODELS.put(`${prefix}model.onnx`, lrOnnx);
    const fromR2 = await store.load(key);
    expect(fromR2.ok && fromR2.value.origin).toBe("r2");
    const scorer = await onnxModelLoader(store).scorer(key);
    expect(scorer.ok).toBe(true);

    // A manifest for another key, a manifest that is not JSON, bytes that are not a model.
    const other = { source: "r2test", name: "other", version: "1" };
    await env.MODELS.put(`${r2ModelPrefix(other)}manifest.json`, JSON.stringify(lr));
    await env.MODELS.put(`${r2ModelPrefix(other)}model.onnx`, lrOnnx);
    const wrongKey = await store.load(other);
    expect(wrongKey.ok ? "ok" : wrongKey.error.code).toBe("invalid_manifest");

    const bad = { source: "r2test", name: "bad", version: "1" };
    await env.MODELS.put(`${r2ModelPrefix(bad)}manifest.json`, "{not json");
    await env.MODELS.put(`${r2ModelPrefix(bad)}model.onnx`, lrOnnx);
    expect(((await store.load(bad)) as { ok: false; error: { code: string } }).error.code).toBe("invalid_manifest");

    const broken = { source: "r2test", name: "broken", version: "1" };
    await env.MODELS.put(`${r2ModelPrefix(broken)}manifest.json`, JSON.stringify({ ...lr, ...broken }));
    await env.MODELS.put(`${r2ModelPrefix(broken)}model.onnx`, "definitely not protobuf");
    const brokenScorer = await onnxModelLoader(store).scorer(broken);
    expect(brokenScorer.ok ? "ok" : brokenScorer.error.code).toBe("invalid_model");

    // Half a model in R2 and none bundled.
    const half = { source: "r2test", name: "half", version: "1" };
    await env.MODELS.put(`${r2ModelPrefix(half)}model.onnx`, lrOnnx);
    const halfLoad = await store.load(half);
    expect(halfLoad.ok ? "ok" : halfLoad.error.code).toBe("not_found");
  });

  it("works without a bucket binding (bundled only)", async () => {
    const r = await r2ModelStore(undefined, fixtures).load(keyOf(manifestOf(xgbManifest)));
    expect(r.ok && r.value.origin).toBe("bundled");
  });
});

describe("feature assembly", () => {
  const manifest = {
    features: [
      { name: "a", default: 1.5 },
      { name: "b", default: -2 },
      { name: "c", default: 0 },
    ],
  };

  it("lays rows out in manifest order and defaults what is missing or not finite in float32", () => {
    const m = featureMatrix(manifest, [
      { c: 3, a: 1, b: 2, extra: 99 },
      {},
      { a: null, b: Number.NaN, c: Number.POSITIVE_INFINITY },
      { a: 1e39, b: -1e39, c: 0.1 },
      { a: undefined, b: 0, c: -0 },
    ]);
    expect(Array.from(m)).toEqual([1, 2, 3, 1.5, -2, 0, 1.5, -2, 0, 1.5, -2, Math.fround(0.1), 1.5, 0, -0]);
  });

  it("an empty batch is an empty matrix", () => {
    expect(featureMatrix(manifest, []).length).toBe(0);
  });

  it("scores an assembled batch with a fixture model", async () => {
    const xgb = manifestOf(xgbManifest);
    const loaded = await onnxScorer(keyOf(xgb), xgb, new Uint8Array(xgbOnnx));
    if (!loaded.ok) throw new Error(loaded.error.message);
    const rows = Array.from({ length: 500 }, (_, i) => ({ shared_channels: i % 7, messages_30d: i, is_guest: i % 2 }));
    const scores = await loaded.value.score(featureMatrix(xgb, rows), rows.length);
    expect(scores.length).toBe(500);
    for (const s of scores) expect(s).toBeGreaterThan(0);
    for (const s of scores) expect(s).toBeLessThan(1);
    expect(await loaded.value.score(new Float32Array(0), 0)).toEqual(new Float32Array(0));
  });
});
