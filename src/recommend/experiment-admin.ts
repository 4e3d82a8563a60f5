import { conflict } from "../errors";
import type { ModelLoader } from "../models/ports";
import { armModel, type CurrentExperiment, type Experiment, type ExperimentStore } from "./experiments";

// The operators' use cases over a source's experiment: read it, store one,
// go back to the default. An experiment may only name models that load now
// (as serving would load them), so a typo cannot silently send an arm to the
// hand-tuned fallback; a refused experiment changes nothing. Serving picks a
// stored experiment up within the store's cache time.

export interface ExperimentAdminPorts {
  experiments: ExperimentStore;
  /** Loads the models arms name, as serving does (stored versions first, then the bundle). */
  loader: ModelLoader;
}

/** An experiment as the admin API answers it. */
export interface ExperimentAnswer {
  source: string;
  experiment: Experiment;
  /** True when no experiment is stored (or the stored one is unusable: see problem). */
  default: boolean;
  problem?: string;
}

/** The source's experiment as stored now (not the serving cache's copy). */
export async function currentExperiment(ports: ExperimentAdminPorts, source: string): Promise<ExperimentAnswer> {
  return experimentAnswer(source, await ports.experiments.current(source, { fresh: true }));
}

/** Stores an experiment once every model its arms name loads; conflict (naming the arms) otherwise. */
export async function storeExperiment(
  ports: ExperimentAdminPorts,
  source: string,
  experiment: Experiment,
): Promise<ExperimentAnswer> {
  const unloadable: Array<{ arm: string; model: string; code: string; message: string }> = [];
  for (const arm of experiment.arms) {
    const named = armModel(arm);
    if (!named) continue;
    const loaded = await ports.loader.scorer({ source, ...named });
    if (!loaded.ok) {
      unloadable.push({ arm: arm.name, model: arm.model, code: loaded.error.code, message: loaded.error.message });
    }
  }
  if (unloadable.length > 0) {
    throw conflict(
      unloadable.map((u) => `arm ${u.arm}: ${u.model} cannot be loaded (${u.code}: ${u.message})`).join("; "),
      { arms: unloadable },
    );
  }
  await ports.experiments.put(source, experiment);
  return experimentAnswer(source, { experiment, origin: "stored", problem: null });
}

/**
 * Deletes the stored experiment: the source is back to its default, which
 * is the registry's current version when one is registered (read fresh, so
 * the answer says what serving now uses), else the bundled model.
 */
export async function resetExperiment(ports: ExperimentAdminPorts, source: string): Promise<ExperimentAnswer> {
  await ports.experiments.remove(source);
  return experimentAnswer(source, await ports.experiments.current(source, { fresh: true }));
}

function experimentAnswer(source: string, current: CurrentExperiment): ExperimentAnswer {
  return {
    source,
    experiment: current.experiment,
    default: current.origin === "default",
    ...(current.problem ? { problem: current.problem } : {}),
  };
}
