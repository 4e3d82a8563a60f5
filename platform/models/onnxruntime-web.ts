import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import { featureMatrix, type ModelKey, type ModelManifest } from "../../src/models/manifest";
import type { ModelLoadError, ModelLoadResult, ModelScorer } from "../../src/models/ports";
import { onnxRuntimeStats } from "./onnx-runtime";
import { type GraphProblem, type GraphRun, type OnnxRuntimeEngine, registerOnnxRuntime } from "./runtime-registry";

// onnxruntime-web (wasm build, one thread) inside workerd: the engine the ONNX
// build registers (workers/index-onnx.ts → registerOnnxRuntimeWeb) for graphs
// the TypeScript readers do not cover. Only that entry and the tests of this
// path import this file: importing it is what puts the ~3.5 MiB (gzip) wasm in
// a bundle, which the default build (workers/index.ts) must not have.
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
// Everything is per isolate: the runtime starts once, on first use; sessions
// are cached by the callers (onnx-runtime.ts per model key, the Slack bot's
// model once).

type Ort = typeof import("onnxruntime-web/wasm");
type Session = Awaited<ReturnType<Ort["InferenceSession"]["create"]>>;

/** A 68-byte ONNX model (Identity, float[1]): creating a session from it starts the runtime. */
const BOOT_MODEL = Uint8Array.from(
  atob("CAg6OgoQCgF4EgF5IghJZGVudGl0eRIEYm9vdFoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEBE="),
  (c) => c.charCodeAt(0),
);

let runtime: Promise<Ort> | undefined;

/** Starts onnxruntime-web once per isolate; a failure is remembered (ORT cannot be restarted in the same isolate). */
export function ortWebRuntime(): Promise<Ort> {
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

/** A recommender's scorer on an onnxruntime-web session (the manifest's input and output names checked). */
async function ortScorer(
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
    ort = await ortWebRuntime();
  } catch (e) {
    return fail("runtime_unavailable", `onnxruntime-web did not start: ${messageOf(e)}`);
  }
  let session: Session;
  try {
    session = await ort.InferenceSession.create(onnx);
  } catch (e) {
    return fail("invalid_model", `onnxruntime-web rejected the model: ${messageOf(e)}`);
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
 * Whether onnxruntime-web takes the model as the manifest describes it: a
 * session from the bytes, the manifest's input and output names, and one
 * float32 score per row for a sample of all-default rows (which catches a
 * feature count the graph does not take). The session is released: serving
 * creates its own on first use, so nothing is cached for bytes not stored.
 */
async function ortCheck(manifest: ModelManifest, onnx: Uint8Array): Promise<GraphProblem | null> {
  let ort: Ort;
  try {
    ort = await ortWebRuntime();
  } catch (e) {
    return { code: "runtime_unavailable", message: `onnxruntime-web did not start: ${messageOf(e)}` };
  }
  let session: Session;
  try {
    session = await ort.InferenceSession.create(onnx);
  } catch (e) {
    return { code: "invalid_model", message: `onnxruntime-web rejected the model: ${messageOf(e)}` };
  }
  try {
    if (!session.inputNames.includes(manifest.input) || !session.outputNames.includes(manifest.output.name)) {
      return {
        code: "invalid_model",
        message: `model has inputs [${session.inputNames}] and outputs [${session.outputNames}], manifest names ${manifest.input} -> ${manifest.output.name}`,
      };
    }
    const rows = 2;
    const sample = new ort.Tensor("float32", featureMatrix(manifest, [{}, {}]), [rows, manifest.features.length]);
    const out = await session.run({ [manifest.input]: sample });
    const data = out[manifest.output.name]?.data;
    if (!(data instanceof Float32Array) || data.length !== rows) {
      return {
        code: "invalid_model",
        message: `output ${manifest.output.name} is not float32[${rows}] for ${rows} rows`,
      };
    }
    return null;
  } catch (e) {
    return {
      code: "invalid_model",
      message: `scoring a sample of ${manifest.features.length} features failed: ${messageOf(e)}`,
    };
  } finally {
    await session.release();
  }
}

/** A session on any float32 → float32 graph, kept by the caller (the Slack bot's model). */
async function ortRunner(onnx: Uint8Array, input: string, output: string): Promise<GraphRun> {
  const ort = await ortWebRuntime();
  const session = await ort.InferenceSession.create(onnx);
  onnxRuntimeStats.sessionsCreated++;
  return async (data, rows, width) => {
    const out = await session.run({ [input]: new ort.Tensor("float32", data, [rows, width]) });
    const values = out[output]?.data;
    if (!(values instanceof Float32Array)) throw new Error(`model output ${output} is not float32`);
    return values;
  };
}

/** onnxruntime-web behind the registry's port. */
export const onnxRuntimeWeb: OnnxRuntimeEngine = {
  name: "onnxruntime-web",
  start: async () => {
    await ortWebRuntime();
  },
  scorer: ortScorer,
  check: ortCheck,
  runner: ortRunner,
};

/** Makes onnxruntime-web the Worker's ONNX runtime (the ONNX build's entry calls it once, at import). */
export function registerOnnxRuntimeWeb(): void {
  registerOnnxRuntime(onnxRuntimeWeb);
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));
