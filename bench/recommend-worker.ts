import { onnxRuntimeStats, onnxScorer, ortRuntime } from "../platform/models/onnx-runtime";
import { registerOnnxRuntimeWeb } from "../platform/models/onnxruntime-web";
import { foldLinear, linearParamsSchema, scoreLinear } from "../src/models/linear";
import { featureMatrix, type ModelManifest, parseManifest } from "../src/models/manifest";
import type { ModelEngine, ModelScorer } from "../src/models/ports";
import lrLinear from "../test/fixtures/models/lr/linear.json";
import lrManifestJson from "../test/fixtures/models/lr/manifest.json";
import lrOnnx from "../test/fixtures/models/lr/model.onnx";
import xgbManifestJson from "../test/fixtures/models/xgboost/manifest.json";
import xgbOnnx from "../test/fixtures/models/xgboost/model.onnx";
import { BATCH, benchRecords } from "./recommend-rows";

// The bench measures onnxruntime-web beside the TypeScript readers: it is the ONNX build (workers/index-onnx.ts).
registerOnnxRuntimeWeb();

// Benchmark-only Worker for `npm run bench:recommend` (bench/wrangler.recommend.toml,
// never deployed): the fixture models (test/fixtures/models) through the real
// model runtime (platform/models/onnx-runtime.ts: onnxruntime-web, wasm, one
// thread), as served (LR and XGBoost graphs read into TypeScript) and the
// plain TypeScript LR, on the bench batch (bench/recommend-rows.ts).
//   POST /bench/cold   first use in a fresh isolate: runtime start, then each session
//   POST /bench/loop   {op, n}: the op n times in a loop, timed in the Worker
//   POST /bench/score  {op}: one batch, scores returned (client-seen latency, agreement)

export type ScoreOp = "empty" | "lr" | "ort-lr" | "xgboost" | "ort-xgboost" | "ts-lr" | "assemble";

export interface LoopResult {
  n: number;
  /** performance.now() around the loop, read after an awaited timer (workerd's clock only moves across I/O). */
  ms: number;
  /** The same clock read before that timer: ~0 when the clock stood still during the loop. */
  msBeforeIo: number;
  /** The timer alone, measured the same way after the loop: subtract it from `ms`. */
  msIo: number;
}

export interface ColdResult {
  /** First read of the XGBoost fixture into TypeScript (onnx-trees.ts), cold code, before the runtime starts. */
  treesReadMs: number;
  runtimeMs: number;
  lrSessionMs: number;
  xgboostSessionMs: number;
  runtimeStarts: number;
  sessionsCreated: number;
}

function manifestOf(json: unknown): ModelManifest {
  const parsed = parseManifest(json);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.manifest;
}

const lrManifest = manifestOf(lrManifestJson);
const xgbManifest = manifestOf(xgbManifestJson);
const records = benchRecords();
const matrix = featureMatrix(lrManifest, records);
const folded = foldLinear(linearParamsSchema.parse(lrLinear));

/** `engine`: "auto" is what the platform serves with (LR and tree-ensemble graphs run as TypeScript); else forced. */
async function scorer(manifest: ModelManifest, onnx: ArrayBuffer, engine: ModelEngine | "auto"): Promise<ModelScorer> {
  const key = { source: manifest.source, name: manifest.name, version: manifest.version };
  const r = await onnxScorer(key, manifest, new Uint8Array(onnx), { engine });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

async function runOp(op: ScoreOp): Promise<Float32Array | null> {
  switch (op) {
    case "empty":
      await Promise.resolve();
      return null;
    case "lr":
      return (await scorer(lrManifest, lrOnnx, "auto")).score(matrix, BATCH);
    case "ort-lr":
      return (await scorer(lrManifest, lrOnnx, "onnxruntime-web")).score(matrix, BATCH);
    case "xgboost":
      return (await scorer(xgbManifest, xgbOnnx, "auto")).score(matrix, BATCH);
    case "ort-xgboost":
      return (await scorer(xgbManifest, xgbOnnx, "onnxruntime-web")).score(matrix, BATCH);
    case "ts-lr":
      await Promise.resolve();
      return scoreLinear(folded, matrix, BATCH);
    case "assemble":
      await Promise.resolve();
      return featureMatrix(xgbManifest, records);
  }
}

/** Wall time of `fn` in workerd: the clock is read after an awaited timer, whose own cost is measured and subtracted. */
async function timed(fn: () => Promise<unknown>): Promise<{ ms: number; msBeforeIo: number; msIo: number }> {
  const t0 = performance.now();
  await fn();
  const t1 = performance.now();
  await scheduler.wait(1);
  const t2 = performance.now();
  await scheduler.wait(1);
  const t3 = performance.now();
  return { ms: t2 - t0, msBeforeIo: t1 - t0, msIo: t3 - t2 };
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const body = request.method === "POST" ? ((await request.json()) as { op?: ScoreOp; n?: number }) : {};
    switch (url.pathname) {
      case "/bench/cold": {
        const trees = await timed(() => scorer(xgbManifest, xgbOnnx, "trees"));
        const runtime = await timed(() => ortRuntime());
        const lr = await timed(() => scorer(lrManifest, lrOnnx, "onnxruntime-web"));
        const xgb = await timed(() => scorer(xgbManifest, xgbOnnx, "onnxruntime-web"));
        return Response.json({
          treesReadMs: trees.ms - trees.msIo,
          runtimeMs: runtime.ms - runtime.msIo,
          lrSessionMs: lr.ms - lr.msIo,
          xgboostSessionMs: xgb.ms - xgb.msIo,
          ...onnxRuntimeStats,
        } satisfies ColdResult);
      }
      case "/bench/loop": {
        const op = body.op ?? "empty";
        const n = body.n ?? 1;
        await runOp(op); // warm: sessions exist before the clock starts
        const t = await timed(async () => {
          for (let i = 0; i < n; i++) await runOp(op);
        });
        return Response.json({ n, ...t } satisfies LoopResult);
      }
      case "/bench/score": {
        const scores = await runOp(body.op ?? "empty");
        return Response.json({ scores: scores ? Array.from(scores) : [] });
      }
      default:
        return new Response("not found", { status: 404 });
    }
  },
};
