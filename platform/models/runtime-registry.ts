import type { ModelKey, ModelManifest } from "../../src/models/manifest";
import type { ModelLoadResult, ModelScorer } from "../../src/models/ports";

// Where an ONNX runtime plugs in. The default build (wrangler.toml,
// workers/index.ts) has none: every model that ships is read from its ONNX
// file into plain TypeScript (src/models/onnx-linear.ts, onnx-trees.ts,
// src/slackbot/onnx-tfidf.ts), and onnxruntime-web's wasm (~3.5 MiB gzip)
// would alone put the Worker over the free plan's 1 MiB. The ONNX build
// (wrangler.onnx.toml, workers/index-onnx.ts) registers onnxruntime-web here
// (platform/models/onnxruntime-web.ts) before serving, for graphs no reader
// covers. Nothing imports the runtime but that entry, so the default bundle
// leaves it out entirely.

/** Why a graph cannot be taken as the manifest describes it (upload validation). */
export interface GraphProblem {
  code: "invalid_model" | "runtime_unavailable";
  message: string;
}

/** Runs a graph of one float32 input [rows, width] and one float32 output; answers the output's values. */
export type GraphRun = (input: Float32Array, rows: number, width: number) => Promise<Float32Array>;

/** An ONNX runtime, for the graphs the TypeScript readers do not cover. */
export interface OnnxRuntimeEngine {
  readonly name: "onnxruntime-web";
  /** Starts the runtime (once per isolate); rejects when it cannot start. */
  start(): Promise<void>;
  /** A recommender's scorer on the runtime: a session from the bytes, checked against the manifest. */
  scorer(key: ModelKey, manifest: ModelManifest, onnx: Uint8Array): Promise<ModelLoadResult<ModelScorer>>;
  /** Whether the runtime takes an uploaded graph as the manifest describes it (null: it does). */
  check(manifest: ModelManifest, onnx: Uint8Array): Promise<GraphProblem | null>;
  /** A session on any graph with those input and output names (the Slack bot's classifier). */
  runner(onnx: Uint8Array, input: string, output: string): Promise<GraphRun>;
}

let registered: OnnxRuntimeEngine | null = null;

/** Called once by the ONNX build's entry (and the ONNX test project's setup), before anything is served. */
export function registerOnnxRuntime(engine: OnnxRuntimeEngine): void {
  registered = engine;
}

/** The registered runtime, or null in the default build. */
export function onnxRuntimeEngine(): OnnxRuntimeEngine | null {
  return registered;
}

/** How to get a build with the runtime: the second half of every "needs onnxruntime-web" message. */
export const ONNX_BUILD_HINT =
  "deploy the ONNX build, which includes onnxruntime-web (npx wrangler deploy --config wrangler.onnx.toml; docs/deploy.md, Builds)";

/** The message for something only onnxruntime-web can run, in a build without it. */
export function needsOnnxRuntime(what: string): string {
  return `${what} needs onnxruntime-web, which this build of the Worker leaves out (it keeps the bundle under the Workers free plan's 1 MiB); ${ONNX_BUILD_HINT}`;
}
