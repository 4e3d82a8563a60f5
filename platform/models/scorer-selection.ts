import { modelKeyString } from "../../src/models/manifest";
import type { ModelLoader, ModelLoadResult, ModelScorer } from "../../src/models/ports";
import {
  type ScorerChoice,
  type ScorerSelection,
  type ScorerSelectionPorts,
  selectScorer as selectScorerFor,
} from "../../src/recommend/scorer-selection";
import { metrics } from "../metrics";
import { type BundledModelStore, isolateBundledModels } from "./bundled";
import { EXPERIMENT_TTL_MS, r2ExperimentStore } from "./experiment-store";
import { registeredModel } from "./model-registry-store";
import { onnxModelLoader } from "./onnx-runtime";
import { r2ModelStore } from "./r2-model-store";

// Scorer selection over the Worker's adapters: the rule is
// src/recommend/scorer-selection.ts; here are its adapters, per isolate: the
// experiments in the MODELS bucket (experiment-store.ts), the loader (R2
// first, then the bundled defaults; sessions cached per isolate,
// onnx-runtime.ts; failures remembered, rememberingFailures) and the
// isolate's metrics.

/** The selection's ports but the metrics, which are the isolate's. */
export type ScorerSelectionDeps = Omit<ScorerSelectionPorts, "metrics">;

/** selectScorer with the isolate's metrics. */
export function selectScorer(input: ScorerSelectionDeps & ScorerChoice): Promise<ScorerSelection> {
  const { experiments, loader, ...choice } = input;
  return selectScorerFor({ experiments, loader, metrics }, choice);
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

/**
 * What selectScorer needs, from the Worker's bindings (caches are per
 * isolate). With no stored experiment a source serves the model registry's
 * current version (model-registry-store.ts), else its bundled default.
 */
export function scorerSelectionDeps(
  env: Pick<Env, "MODELS">,
  store: BundledModelStore = isolateBundledModels(),
): ScorerSelectionDeps {
  return {
    experiments: r2ExperimentStore({
      bucket: env.MODELS,
      bundled: store.keys(),
      registered: registeredModel(env.MODELS),
    }),
    loader: rememberingFailures(onnxModelLoader(r2ModelStore(env.MODELS, store))),
  };
}
