import { featureAssembler, type ModelKey, modelKeyString } from "../../src/models/manifest";
import type { ModelLoadErrorCode, ModelLoader, ModelLoadResult, ModelScorer } from "../../src/models/ports";
import { armModel, assignArm } from "../../src/recommend/experiments";
import type { Scorer } from "../../src/recommend/pipeline";
import { metrics } from "../metrics";
import { bundledModelStore } from "./bundled";
import { EXPERIMENT_TTL_MS, type ExperimentStore, r2ExperimentStore } from "./experiment-store";
import { onnxModelLoader } from "./onnx-runtime";
import { r2ModelStore } from "./r2-model-store";

// Which scorer a request uses: the source's experiment (experiment-store.ts)
// assigns the user an arm (a hash of experiment and user: stable across
// requests and isolates), the arm names a model, the loader brings it (R2
// first, then the bundled defaults; sessions cached per isolate), and it is
// wrapped as the pipeline's Scorer. A model that cannot be loaded never fails
// the request: the recommender's hand-tuned scorer answers instead, and the
// answer says so in `fallback` (and rec_model_load_failures_total counts it).
//
// How a loaded model runs is the loader's business (onnx-runtime.ts picks the
// engine per graph); the answer names it, and the parity tests cover each.

export interface ScorerSelectionDeps {
  experiments: ExperimentStore;
  loader: ModelLoader;
}

export interface SelectScorerInput extends ScorerSelectionDeps {
  source: string;
  user: string;
  /** The recommender's plain-rules scorer: the `hand_tuned` arm, and the fallback. */
  handTuned: Scorer;
}

export interface ScorerSelection {
  scorer: Scorer;
  experiment: string;
  arm: string;
  /** The model that actually scores (the hand-tuned one after a fallback). */
  model: { name: string; version: string; kind: string };
  /** Set when the arm's model could not be loaded and the hand-tuned scorer stands in. */
  fallback: null | { code: ModelLoadErrorCode; message: string };
  /**
   * Set when the source's stored experiment is unusable (corrupt object, failed
   * read) and the default (or last good) experiment is used; counted in
   * rec_degraded_total{step="experiment"} here, so callers only report it.
   */
  experimentProblem: string | null;
}

export async function selectScorer(input: SelectScorerInput): Promise<ScorerSelection> {
  const { experiments, loader, source, user, handTuned } = input;
  const current = await experiments.current(source);
  if (current.problem) metrics.inc("rec_degraded_total", { source, step: "experiment" });
  const arm = assignArm(current.experiment, user);
  const base = { experiment: current.experiment.name, arm: arm.name, experimentProblem: current.problem };
  const handTunedModel = { name: handTuned.name, version: handTuned.version, kind: handTuned.kind };
  const named = armModel(arm);
  if (!named) return { ...base, scorer: handTuned, model: handTunedModel, fallback: null };

  const key: ModelKey = { source, ...named };
  let loaded: ModelLoadResult<ModelScorer>;
  try {
    loaded = await loader.scorer(key);
  } catch (e) {
    // Loaders report failures as results; a throw (a bucket stream dying mid-read) must not fail the request either.
    loaded = { ok: false, error: { code: "storage", key, message: e instanceof Error ? e.message : String(e) } };
  }
  if (!loaded.ok) {
    const { code, message } = loaded.error;
    metrics.inc("rec_model_load_failures_total", { source, model: arm.model, code });
    return { ...base, scorer: handTuned, model: handTunedModel, fallback: { code, message } };
  }
  const scorer = pipelineScorer(loaded.value);
  return { ...base, scorer, model: { name: scorer.name, version: scorer.version, kind: scorer.kind }, fallback: null };
}

const wrapped = new WeakMap<ModelScorer, Scorer>();

/**
 * A loaded model as the pipeline's Scorer: feature records become the
 * manifest-ordered matrix (missing and non-finite values take the manifest's
 * defaults), and each call's time goes to rec_model_scoring_ms. Built once
 * per loaded model, since sessions are cached per isolate too.
 */
export function pipelineScorer(model: ModelScorer): Scorer {
  let scorer = wrapped.get(model);
  if (scorer) return scorer;
  const { manifest } = model;
  const assemble = featureAssembler(manifest);
  const labels = { source: model.key.source, model: `${manifest.name}@${manifest.version}` };
  scorer = {
    name: manifest.name,
    version: manifest.version,
    kind: manifest.kind,
    ...(model.engine ? { engine: model.engine } : {}),
    async score(features) {
      // workerd's clock only moves on I/O, so in production this mostly measures awaits, not CPU.
      const start = performance.now();
      try {
        return await model.score(assemble(features), features.length);
      } finally {
        metrics.observe("rec_model_scoring_ms", labels, performance.now() - start);
      }
    },
  };
  wrapped.set(model, scorer);
  return scorer;
}

/** Failed loads by key, shared by the loaders built with the default options. */
const isolateFailures = new Map<string, { at: number; result: ModelLoadResult<ModelScorer> }>();

/**
 * Remembers a failed load for `ttlMs`: a broken model in R2 would otherwise be
 * downloaded (up to 16 MB) and handed to the runtime again on every request
 * of its arm. Successes are cached by the ONNX loader itself.
 */
export function rememberingFailures(
  loader: ModelLoader,
  { ttlMs = EXPERIMENT_TTL_MS, now = Date.now, failures = isolateFailures } = {},
): ModelLoader {
  return {
    async scorer(key) {
      const id = modelKeyString(key);
      const known = failures.get(id);
      if (known && now() - known.at < ttlMs) return known.result;
      const result = await loader.scorer(key);
      if (result.ok) failures.delete(id);
      else failures.set(id, { at: now(), result });
      return result;
    },
  };
}

let bundled: ReturnType<typeof bundledModelStore> | undefined;

/** The bundled defaults, parsed once per isolate. */
export function isolateBundledModels(): ReturnType<typeof bundledModelStore> {
  bundled ??= bundledModelStore();
  return bundled;
}

/** What selectScorer needs, from the Worker's bindings (caches are per isolate). */
export function scorerSelectionDeps(env: Pick<Env, "MODELS">): ScorerSelectionDeps {
  const store = isolateBundledModels();
  return {
    experiments: r2ExperimentStore({ bucket: env.MODELS, bundled: store.keys() }),
    loader: rememberingFailures(onnxModelLoader(r2ModelStore(env.MODELS, store))),
  };
}
