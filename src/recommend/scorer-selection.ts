import { featureAssembler, type ModelKey } from "../models/manifest";
import type { ModelLoadErrorCode, ModelLoader, ModelLoadResult, ModelScorer } from "../models/ports";
import { armModel, assignArm, type ExperimentStore } from "./experiments";
import type { Scorer } from "./pipeline";
import type { RecMetrics } from "./ports";

// Which scorer a request uses: the source's experiment assigns the user an
// arm (a hash of experiment and user: stable across requests and isolates),
// the arm names a model, the loader brings it (stored versions first, then
// the bundled defaults), and it is wrapped as the pipeline's Scorer. A model
// that cannot be loaded never fails the request: the recommender's
// hand-tuned scorer answers instead, the selection says so in `fallback`, and
// rec_model_load_failures_total counts it.
//
// How a loaded model runs is the loader's business (the Worker's picks the
// engine per ONNX graph: platform/models/onnx-runtime.ts).

/** The scorer a request uses, and the experiment arm that chose it. */
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

export interface ScorerSelectionPorts {
  experiments: ExperimentStore;
  loader: ModelLoader;
  metrics: RecMetrics;
}

export interface ScorerChoice {
  source: string;
  user: string;
  /** The recommender's plain-rules scorer: the `hand_tuned` arm, and the fallback. */
  handTuned: Scorer;
}

export async function selectScorer(ports: ScorerSelectionPorts, choice: ScorerChoice): Promise<ScorerSelection> {
  const { experiments, loader, metrics } = ports;
  const { source, user, handTuned } = choice;
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
  const scorer = pipelineScorer(loaded.value, metrics);
  return { ...base, scorer, model: { name: scorer.name, version: scorer.version, kind: scorer.kind }, fallback: null };
}

const wrapped = new WeakMap<ModelScorer, Scorer>();

/**
 * A loaded model as the pipeline's Scorer: feature records become the
 * manifest-ordered matrix (missing and non-finite values take the manifest's
 * defaults), and each call's time goes to rec_model_scoring_ms. Built once
 * per loaded model, since sessions are cached per isolate too (the first
 * call's metrics are the ones it reports to: the isolate's one registry).
 */
export function pipelineScorer(model: ModelScorer, metrics: RecMetrics): Scorer {
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
