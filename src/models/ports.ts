import type { ModelKey, ModelManifest } from "./manifest";

// What recommenders need to score candidates with a trained model. The Worker
// builds these from its bindings (platform/models/): R2 or the bundled defaults
// for bytes; TypeScript readers of the graphs for scoring, or onnxruntime-web
// in the ONNX build for graphs they do not cover. Domain code never imports bindings.

export type ModelEngine = "onnxruntime-web" | "linear" | "trees";

/** Scores rows of a feature matrix built with `featureMatrix` (row-major, N × manifest.features.length). */
export interface ModelScorer {
  readonly key: ModelKey;
  readonly manifest: ModelManifest;
  /**
   * What runs it: "onnxruntime-web", "linear" (an LR graph read into plain TypeScript; see onnx-linear.ts)
   * or "trees" (a tree ensemble read into plain TypeScript; see onnx-trees.ts).
   */
  readonly engine?: ModelEngine;
  /** One score per row, in row order; the meaning is manifest.output.meaning. */
  score(matrix: Float32Array, rows: number): Promise<Float32Array>;
}

/** A scorer computed in plain TypeScript (the engines that skip onnxruntime-web). */
export function plainScorer(
  key: ModelKey,
  manifest: ModelManifest,
  engine: Exclude<ModelEngine, "onnxruntime-web">,
  score: (matrix: Float32Array, rows: number) => Float32Array,
): ModelScorer {
  return { key, manifest, engine, score: async (matrix, rows) => score(matrix, rows) };
}

/** The bytes of a model.onnx file: a serialized ONNX graph (models/, or an upload). */
export type OnnxGraph = Uint8Array;

/** A model version as stored (in R2 or bundled): its manifest and its ONNX graph. */
export interface ModelRecord {
  key: ModelKey;
  manifest: ModelManifest;
  onnx: OnnxGraph;
  /** Where it came from, for logs: "r2" or "bundled". */
  origin: "r2" | "bundled";
}

/**
 * Why a model could not be loaded. Callers fall back to the recommender's
 * hand-tuned model on any of these; none of them is a crash.
 * - not_found: neither the bucket nor the bundle has this key.
 * - invalid_manifest: manifest.json is missing fields, not JSON, or names another key.
 * - invalid_model: the runtime rejected the ONNX bytes (corrupt, wrong input/output).
 * - runtime_unavailable: the ONNX runtime itself could not start in this isolate.
 * - storage: reading the bucket failed.
 */
export type ModelLoadErrorCode = "not_found" | "invalid_manifest" | "invalid_model" | "runtime_unavailable" | "storage";

export interface ModelLoadError {
  code: ModelLoadErrorCode;
  key: ModelKey;
  message: string;
}

export type ModelLoadResult<T> = { ok: true; value: T } | { ok: false; error: ModelLoadError };

/** Model records (manifest and ONNX graph) by key. */
export interface ModelRecordStore {
  load(key: ModelKey): Promise<ModelLoadResult<ModelRecord>>;
}

/** Ready-to-use scorers by key, cached while the isolate is warm. */
export interface ModelLoader {
  scorer(key: ModelKey): Promise<ModelLoadResult<ModelScorer>>;
}
