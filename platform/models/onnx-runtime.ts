import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import { foldedLinearScorer } from "../../src/models/linear";
import { type ModelKey, type ModelManifest, modelKeyString } from "../../src/models/manifest";
import { linearFromOnnx } from "../../src/models/onnx-linear";
import { treeEnsembleScorer, treesFromOnnx } from "../../src/models/onnx-trees";
import type {
  ModelEngine,
  ModelLoadError,
  ModelLoader,
  ModelLoadResult,
  ModelRecordStore,
  ModelScorer,
} from "../../src/models/ports";

// onnxruntime-web (wasm build, one thread) inside workerd: the thin adapter
// behind the ModelScorer / ModelLoader ports.
//
// workerd refuses to compile WebAssembly from bytes, so the runtime's .wasm is
// imported as a module (wrangler's default CompiledWasm rule for **/*.wasm: a
// WebAssembly.Module compiled at upload) and handed to the runtime. ORT 1.30
// has no option that takes a WebAssembly.Module (env.wasm.wasmBinary wants the
// bytes, and the Emscripten `instantiateWasm` hook is not reachable from
// `env`), so while the runtime starts, WebAssembly.instantiate is wrapped: a
// call with bytes instantiates the precompiled module instead. env.wasm.wasmBinary
// is set to a stub so ORT uses the factory bundled into `onnxruntime-web/wasm`
// rather than looking for it next to `import.meta.url`, which workerd leaves
// empty. The wrapper is removed as soon as the runtime is up.
//
// A logistic regression graph or a tree ensemble (XGBoost) of the exporter's
// shape skips the runtime: it is read into plain TypeScript
// (src/models/onnx-linear.ts and src/models/onnx-trees.ts say why).
//
// Everything is per isolate: the runtime starts once, on first use; sessions
// are cached per model key while the isolate stays warm (a key names an
// immutable model version).

type Ort = typeof import("onnxruntime-web/wasm");
type Session = Awaited<ReturnType<Ort["InferenceSession"]["create"]>>;

/** A 68-byte ONNX model (Identity, float[1]): creating a session from it starts the runtime. */
const BOOT_MODEL = Uint8Array.from(
  atob("CAg6OgoQCgF4EgF5IghJZGVudGl0eRIEYm9vdFoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEBE="),
  (c) => c.charCodeAt(0),
);

/** Counters for tests and the bench: a warm isolate creates each session once. */
export const onnxRuntimeStats = { runtimeStarts: 0, sessionsCreated: 0 };

let runtime: Promise<Ort> | undefined;

/** Starts onnxruntime-web once per isolate; a failure is remembered (ORT cannot be restarted in the same isolate). */
export function ortRuntime(): Promise<Ort> {
  runtime ??= startRuntime();
  return runtime;
}

async function startRuntime(): Promise<Ort> {
  onnxRuntimeStats.runtimeStarts++;
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1; // workerd has no Web Workers to run wasm threads on
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = new Uint8Array(0); // stub: see the note at the top
  ort.env.logLevel = "error";
  const wasm = WebAssembly as unknown as { instantiate: (source: unknown, imports?: unknown) => Promise<unknown> };
  const original = wasm.instantiate;
  wasm.instantiate = async (source, imports) => {
    if (source instanceof WebAssembly.Module) return original.call(WebAssembly, source, imports);
    const instance = await original.call(WebAssembly, ortWasm, imports);
    return { instance, module: ortWasm };
  };
  try {
    const boot = await ort.InferenceSession.create(BOOT_MODEL);
    await boot.release();
  } finally {
    wasm.instantiate = original;
  }
  return ort;
}

const sessions = new Map<string, Promise<ModelLoadResult<ModelScorer>>>();

/**
 * A scorer for ONNX bytes, cached under `key` while the isolate is warm: a
 * second call with the same key returns the cached scorer without creating a
 * session (the bytes are not looked at again). A failure is not cached.
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
    pending = (plain ? Promise.resolve(plain) : createScorer(key, manifest, onnx)).catch(
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

async function createScorer(
  key: ModelKey,
  manifest: ModelManifest,
  onnx: Uint8Array,
): Promise<ModelLoadResult<ModelScorer>> {
  const fail = (code: ModelLoadError["code"], message: string): ModelLoadResult<ModelScorer> => ({
    ok: false,
    error: { code, key, message },
  });
  let ort: Ort;
  try {
    ort = await ortRuntime();
  } catch (e) {
    return fail("runtime_unavailable", `onnxruntime-web did not start: ${errorMessage(e)}`);
  }
  let session: Session;
  try {
    session = await ort.InferenceSession.create(onnx);
  } catch (e) {
    return fail("invalid_model", `onnxruntime-web rejected the model: ${errorMessage(e)}`);
  }
  onnxRuntimeStats.sessionsCreated++;
  if (!session.inputNames.includes(manifest.input) || !session.outputNames.includes(manifest.output.name)) {
    await session.release();
    return fail(
      "invalid_model",
      `model has inputs [${session.inputNames}] and outputs [${session.outputNames}], manifest names ${manifest.input} -> ${manifest.output.name}`,
    );
  }
  const width = manifest.features.length;
  const scorer: ModelScorer = {
    key,
    manifest,
    engine: "onnxruntime-web",
    async score(matrix, rows) {
      if (matrix.length !== rows * width)
        throw new Error(`matrix has ${matrix.length} values, expected ${rows} × ${width}`);
      if (rows === 0) return new Float32Array(0);
      const out = await session.run({ [manifest.input]: new ort.Tensor("float32", matrix, [rows, width]) });
      const data = out[manifest.output.name]?.data;
      if (!(data instanceof Float32Array) || data.length !== rows) {
        throw new Error(`model output ${manifest.output.name} is not float32[${rows}]`);
      }
      return data;
    },
  };
  return { ok: true, value: scorer };
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

/** ModelLoader over a store: bytes from the store, sessions from onnxScorer's cache. */
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
