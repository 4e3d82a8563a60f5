import { foldedLinearScorer } from "../../src/models/linear";
import { featureMatrix, type ModelKey, type ModelManifest, modelKeyString } from "../../src/models/manifest";
import { linearFromOnnx } from "../../src/models/onnx-linear";
import { readGraph } from "../../src/models/onnx-proto";
import { treeEnsembleScorer, treesFromOnnx } from "../../src/models/onnx-trees";
import type { ModelEngine, ModelLoader, ModelLoadResult, ModelRecordStore, ModelScorer } from "../../src/models/ports";
import { type GraphProblem, needsOnnxRuntime, onnxRuntimeEngine } from "./runtime-registry";

// The recommenders' ONNX models in the Worker, behind the ModelScorer /
// ModelLoader ports. A logistic regression graph or a tree ensemble (XGBoost)
// of the exporter's shape, which is every model that ships, is read into
// plain TypeScript (src/models/onnx-linear.ts and src/models/onnx-trees.ts
// say why). Any other graph goes to the ONNX runtime registered by the ONNX
// build (runtime-registry.ts, onnxruntime-web.ts); the default build has none
// and answers such a graph with runtime_unavailable naming the ONNX build, so
// the recommender falls back to its hand-tuned model (never a 5xx).
//
// Everything is per isolate: scorers are cached per model key (and engine)
// while the isolate stays warm (a key names an immutable model version).

/** Counters for tests and the bench: a warm isolate starts the runtime and creates each session once. */
export const onnxRuntimeStats = { runtimeStarts: 0, sessionsCreated: 0 };

/** Starts the registered ONNX runtime (what the bench times); rejects, naming the ONNX build, without one. */
export async function ortRuntime(): Promise<void> {
  const engine = onnxRuntimeEngine();
  if (!engine) throw new Error(needsOnnxRuntime("starting an ONNX runtime"));
  await engine.start();
}

const sessions = new Map<string, Promise<ModelLoadResult<ModelScorer>>>();

/**
 * A scorer for ONNX bytes, cached under `key` while the isolate is warm: a
 * second call with the same key returns the cached scorer without reading the
 * bytes again. A failure is not cached. `engine` "auto" reads the graph into
 * TypeScript when a reader covers it, else runs it on the registered runtime;
 * "linear" / "trees" force a reader, "onnxruntime-web" the runtime.
 */
export function onnxScorer(
  key: ModelKey,
  manifest: ModelManifest,
  onnx: Uint8Array,
  { engine = "auto" }: { engine?: ModelEngine | "auto" } = {},
): Promise<ModelLoadResult<ModelScorer>> {
  const id = `${modelKeyString(key)}${engine === "auto" ? "" : ` (${engine})`}`;
  let pending = sessions.get(id);
  if (!pending) {
    const plain = engine === "onnxruntime-web" ? null : plainScorer(key, manifest, onnx, engine);
    if (engine !== "auto" && engine !== "onnxruntime-web" && !plain) {
      const shape = engine === "linear" ? "a LinearRegressor → Sigmoid graph" : "a TreeEnsembleRegressor graph";
      return Promise.resolve({ ok: false, error: { code: "invalid_model", key, message: `not ${shape}` } });
    }
    pending = (plain ? Promise.resolve(plain) : runtimeScorer(key, manifest, onnx, engine)).catch(
      (e): ModelLoadResult<ModelScorer> => ({
        ok: false,
        error: { code: "invalid_model", key, message: errorMessage(e) },
      }),
    );
    sessions.set(id, pending);
    pending.then((r) => {
      if (!r.ok) sessions.delete(id);
    });
  }
  return pending;
}

/** The registered runtime's scorer; without one, why not (bytes that are no graph stay invalid_model). */
function runtimeScorer(
  key: ModelKey,
  manifest: ModelManifest,
  onnx: Uint8Array,
  engine: ModelEngine | "auto",
): Promise<ModelLoadResult<ModelScorer>> {
  const runtime = onnxRuntimeEngine();
  if (runtime) return runtime.scorer(key, manifest, onnx);
  const problem = graphProblem(manifest, onnx);
  const what =
    engine === "onnxruntime-web"
      ? `engine "onnxruntime-web" (requested for ${modelKeyString(key)})`
      : `${modelKeyString(key)} (a graph no TypeScript reader covers: ${problem.message})`;
  return Promise.resolve({
    ok: false,
    error:
      problem.code === "invalid_model"
        ? { code: "invalid_model", key, message: problem.message }
        : { code: "runtime_unavailable", key, message: needsOnnxRuntime(what) },
  });
}

/**
 * An LR graph (onnx-linear.ts) or a tree ensemble (onnx-trees.ts) scored in
 * TypeScript ("auto": whichever the graph is; else only that engine), or null
 * when the graph has another shape.
 */
function plainScorer(
  key: ModelKey,
  manifest: ModelManifest,
  onnx: Uint8Array,
  engine: "auto" | "linear" | "trees",
): ModelLoadResult<ModelScorer> | null {
  const args = [onnx, manifest.input, manifest.output.name, manifest.features.length] as const;
  const folded = engine === "trees" ? null : linearFromOnnx(...args);
  if (folded) return { ok: true, value: foldedLinearScorer(key, manifest, folded) };
  const trees = engine === "linear" ? null : treesFromOnnx(...args);
  return trees ? { ok: true, value: treeEnsembleScorer(key, manifest, trees) } : null;
}

/**
 * Why a graph no reader takes as the manifest describes it is not taken,
 * without a runtime: invalid_model for bytes that are no ONNX graph, names
 * the manifest does not have, or a covered graph of another feature count;
 * runtime_unavailable (the message lists its ops) for a graph only a runtime
 * can tell.
 */
function graphProblem(manifest: ModelManifest, onnx: Uint8Array): GraphProblem {
  let graph: ReturnType<typeof readGraph>;
  try {
    graph = readGraph(onnx);
  } catch (e) {
    return { code: "invalid_model", message: `not an ONNX model: ${errorMessage(e)}` };
  }
  if (!graph) return { code: "invalid_model", message: "not an ONNX model: no graph" };
  const inputs = graph.inputs.map((v) => v.name);
  const outputs = graph.outputs.map((v) => v.name);
  if (!inputs.includes(manifest.input) || !outputs.includes(manifest.output.name)) {
    return {
      code: "invalid_model",
      message: `model has inputs [${inputs}] and outputs [${outputs}], manifest names ${manifest.input} -> ${manifest.output.name}`,
    };
  }
  const declared = graph.inputs.find((v) => v.name === manifest.input)?.dims?.[1];
  const width = manifest.features.length;
  if (typeof declared === "number" && declared !== width) {
    const args = [onnx, manifest.input, manifest.output.name, declared] as const;
    if (linearFromOnnx(...args) || treesFromOnnx(...args)) {
      return {
        code: "invalid_model",
        message: `scoring a sample of ${width} features failed: the graph takes ${declared}`,
      };
    }
  }
  return { code: "runtime_unavailable", message: `ops ${[...new Set(graph.nodes.map((n) => n.op))].join(", ")}` };
}

/**
 * Whether a graph is taken as the manifest describes it, in TypeScript: a
 * reader covers it and scores a sample of two all-default rows (one score
 * each). Without a runtime this is the upload check (model-uploads.ts), and
 * runtime_unavailable then means only the ONNX build can take the graph.
 */
export async function plainGraphCheck(manifest: ModelManifest, onnx: Uint8Array): Promise<GraphProblem | null> {
  const key = { source: manifest.source, name: manifest.name, version: manifest.version };
  const plain = plainScorer(key, manifest, onnx, "auto");
  if (!plain?.ok) {
    const problem = graphProblem(manifest, onnx);
    if (problem.code === "invalid_model") return problem;
    return {
      code: "runtime_unavailable",
      message: needsOnnxRuntime(`a graph no TypeScript reader covers (${problem.message})`),
    };
  }
  const rows = 2;
  const scores = await plain.value.score(featureMatrix(manifest, [{}, {}]), rows);
  return scores.length === rows
    ? null
    : { code: "invalid_model", message: `output ${manifest.output.name} is not float32[${rows}] for ${rows} rows` };
}

/** ModelLoader over a store: bytes from the store, scorers from onnxScorer's cache. */
export function onnxModelLoader(store: ModelRecordStore): ModelLoader {
  return {
    async scorer(key) {
      const cached = sessions.get(modelKeyString(key));
      if (cached) return cached;
      const stored = await store.load(key);
      if (!stored.ok) return stored;
      return onnxScorer(key, stored.value.manifest, stored.value.onnx);
    },
  };
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
