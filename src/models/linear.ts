import { z } from "zod";
import type { ModelKey, ModelManifest } from "./manifest";
import { type ModelScorer, plainScorer } from "./ports";

// Logistic regression in plain TypeScript, no wasm: the baseline of the
// scoring bench and a scorer that needs no runtime at all. Its parameters come
// from linear.json, which training/onnx_export.py writes next to model.onnx
// for kind "lr" (the same numbers the ONNX graph holds, before the float32
// cast): score = sigmoid(intercept + Σ coef[i] · (x[i] − mean[i]) / scale[i]).
// It computes in float64, so it agrees with the Python model to ~1e-7 (the
// ONNX graph, in float32, to ~1e-6).

export const linearParamsSchema = z
  .object({
    features: z.array(z.string()).min(1),
    mean: z.array(z.number()),
    scale: z.array(z.number()),
    coef: z.array(z.number()),
    intercept: z.number(),
  })
  .refine(
    (p) =>
      p.mean.length === p.features.length &&
      p.scale.length === p.features.length &&
      p.coef.length === p.features.length,
    "mean, scale and coef need one entry per feature",
  );
export type LinearParams = z.infer<typeof linearParamsSchema>;

export interface FoldedLinear {
  weights: Float64Array;
  bias: number;
}

/** Folds the standardization once: w = coef / scale, b = intercept − Σ w·mean (in float64: no digits lost). */
export function foldLinear(params: LinearParams): FoldedLinear {
  const width = params.features.length;
  const weights = new Float64Array(width);
  let bias = params.intercept;
  for (let i = 0; i < width; i++) {
    weights[i] = (params.coef[i] as number) / (params.scale[i] as number);
    bias -= (weights[i] as number) * (params.mean[i] as number);
  }
  return { weights, bias };
}

export function linearScorer(key: ModelKey, manifest: ModelManifest, params: LinearParams): ModelScorer {
  const names = manifest.features.map((f) => f.name);
  if (names.join("\u0000") !== params.features.join("\u0000")) {
    throw new Error("linear.json features differ from the manifest's");
  }
  return foldedLinearScorer(key, manifest, foldLinear(params));
}

/** A scorer over weights already folded (from linear.json, or read out of an LR ONNX graph: onnx-linear.ts). */
export function foldedLinearScorer(key: ModelKey, manifest: ModelManifest, folded: FoldedLinear): ModelScorer {
  return plainScorer(key, manifest, "linear", (matrix, rows) => scoreLinear(folded, matrix, rows));
}

/** The synchronous core, exported for the bench's inner loop. */
export function scoreLinear({ weights, bias }: FoldedLinear, matrix: Float32Array, rows: number): Float32Array {
  const width = weights.length;
  if (matrix.length !== rows * width)
    throw new Error(`matrix has ${matrix.length} values, expected ${rows} × ${width}`);
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let z = bias;
    const base = r * width;
    for (let i = 0; i < width; i++) z += (weights[i] as number) * (matrix[base + i] as number);
    out[r] = 1 / (1 + Math.exp(-z));
  }
  return out;
}
