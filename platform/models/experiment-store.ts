import type { ModelKey } from "../../src/models/manifest";
import {
  type CurrentExperiment,
  type Experiment,
  type ExperimentStore,
  experimentSchema,
  HAND_TUNED,
} from "../../src/recommend/experiments";

// Experiments live in the MODELS bucket as experiments/<source>.json, written
// by the admin API (workers/routes/recommend-admin.ts), so an arm changes
// without a deploy.
//
// Serving reads them through a per-isolate cache: an entry is reused for
// EXPERIMENT_TTL_MS (10 s), then read again. An admin change therefore
// reaches every isolate within about 10 s (the isolate that made the change
// sees it at once), and a busy isolate reads R2 once per source every 10 s,
// not once per request. Concurrent misses share one read.
//
// Reading never breaks serving:
// - nothing stored: the source's default experiment (defaultExperiment);
// - an object that is not JSON or fails experimentSchema (written by hand,
//   truncated): logged, and the default is served with `problem` set, so the
//   caller can count it;
// - a failed read: the last experiment this isolate read for the source (or
//   the default), again with `problem` set.
// Bad stored experiments are cached like good ones: a broken object costs one
// read and one log line per isolate per TTL, not one per request.
//
// With no experiment stored, the default is the source's registered model
// (the model registry, src/recommend/model-registry.ts: `registry` reads the
// registry's current version) when there is one, else the bundled default.
// It is read in the same cached read, so a promotion or rollback reaches
// every isolate within the same TTL, without a redeploy. A failed registry
// read keeps what this isolate last served, like a failed experiment read.

export const EXPERIMENT_TTL_MS = 10_000;

export const experimentObjectKey = (source: string) => `experiments/${source}.json`;

/** One cache entry per source: when it was read, and the (shared) read. */
export type ExperimentCache = Map<string, { at: number; value: Promise<CurrentExperiment> }>;

/** The isolate's cache, shared by every store built with the default options. */
const isolateCache: ExperimentCache = new Map();

/**
 * One arm, `default`, with the source's bundled model when the Worker ships
 * one (training/train.py --register puts one per source under models/; with
 * several, the greatest version wins), else the hand-tuned model.
 */
export function defaultExperiment(source: string, bundled: readonly ModelKey[]): Experiment {
  const handTuned: Experiment = {
    name: `${source}-default`,
    arms: [{ name: "default", weight: 1, model: HAND_TUNED }],
  };
  const mine = bundled
    .filter((k) => k.source === source)
    .sort((a, b) => compare(a.version, b.version) || compare(a.name, b.name));
  const newest = mine.at(-1);
  if (!newest) return handTuned;
  const withModel = experimentSchema.safeParse({
    ...handTuned,
    arms: [{ name: "default", weight: 1, model: `${newest.name}@${newest.version}` }],
  });
  // A bundled name or version an arm cannot spell (the manifest allows any string) is not servable by an arm.
  return withModel.success ? withModel.data : handTuned;
}

export interface ExperimentStoreOptions {
  /** The MODELS bucket; without one every source has its default experiment. */
  bucket: R2Bucket | undefined;
  /** The bundled models' keys (BundledModelStore.keys), for the defaults. */
  bundled: readonly ModelKey[];
  ttlMs?: number;
  now?: () => number;
  /** Defaults to the isolate's cache; tests pass their own. */
  cache?: ExperimentCache;
  /** The source's registered model (the registry's current version), null when none; throws when it cannot be read. */
  registered?: (source: string) => Promise<ModelKey | null>;
}

export function r2ExperimentStore(options: ExperimentStoreOptions): ExperimentStore {
  const { bucket, bundled, ttlMs = EXPERIMENT_TTL_MS, now = Date.now, cache = isolateCache, registered } = options;
  const defaults = new Map<string, Experiment>();
  const defaultFor = (source: string) => {
    let d = defaults.get(source);
    if (!d) {
      d = defaultExperiment(source, bundled);
      defaults.set(source, d);
    }
    return d;
  };
  const asDefault = (source: string, problem: string | null): CurrentExperiment => ({
    experiment: defaultFor(source),
    origin: "default",
    problem,
  });

  /** The default now: the registered model when there is one, else the bundled default. */
  async function defaultNow(
    source: string,
    problem: string | null,
    previous: Promise<CurrentExperiment> | undefined,
  ): Promise<CurrentExperiment> {
    if (!registered) return asDefault(source, problem);
    let key: ModelKey | null;
    try {
      key = await registered(source);
    } catch (e) {
      const why = `reading the model registry of ${source} failed: ${messageOf(e)}`;
      console.error(`experiments: ${why}; serving the last one read`);
      const last = previous ? await previous : asDefault(source, null);
      return { ...last, problem: problem ?? why };
    }
    if (!key) return asDefault(source, problem);
    const experiment = experimentSchema.safeParse({
      name: `${source}-default`,
      arms: [{ name: "default", weight: 1, model: `${key.name}@${key.version}` }],
    });
    // The registry only takes names an arm can spell (model-registry.ts parseModelRef).
    if (!experiment.success) return asDefault(source, problem);
    return { experiment: experiment.data, origin: "default", problem, registered: `${key.name}@${key.version}` };
  }

  async function read(source: string, previous: Promise<CurrentExperiment> | undefined): Promise<CurrentExperiment> {
    if (!bucket) return asDefault(source, null);
    const key = experimentObjectKey(source);
    let text: string | null;
    try {
      const object = await bucket.get(key);
      text = object ? await object.text() : null;
    } catch (e) {
      const problem = `reading ${key} failed: ${messageOf(e)}`;
      console.error(`experiments: ${problem}; serving the last one read`);
      // Keep serving what this isolate last knew rather than flapping to the default.
      const last = previous ? await previous : asDefault(source, null);
      return { ...last, problem };
    }
    if (text === null) return defaultNow(source, null, previous);
    const parsed = parseStoredExperiment(text);
    if (!parsed.ok) {
      const problem = `${key} is unusable (${parsed.message}); serving the default experiment`;
      console.error(`experiments: ${problem}`);
      return defaultNow(source, problem, previous);
    }
    return { experiment: parsed.experiment, origin: "stored", problem: null };
  }

  const remember = (source: string, value: Promise<CurrentExperiment>) => {
    cache.set(source, { at: now(), value });
    return value;
  };

  return {
    defaultFor,
    current(source, opts) {
      const entry = cache.get(source);
      if (!opts?.fresh && entry && now() - entry.at < ttlMs) return entry.value;
      return remember(source, read(source, entry?.value));
    },
    async put(source, experiment) {
      if (!bucket) throw new Error("no MODELS bucket bound: experiments cannot be stored");
      await bucket.put(experimentObjectKey(source), JSON.stringify(experiment), {
        httpMetadata: { contentType: "application/json" },
      });
      remember(source, Promise.resolve({ experiment, origin: "stored", problem: null }));
    },
    async remove(source) {
      if (!bucket) throw new Error("no MODELS bucket bound: experiments cannot be stored");
      await bucket.delete(experimentObjectKey(source));
      // Read again: the default may be a registered model, not the bundled one.
      await remember(source, read(source, cache.get(source)?.value));
    },
  };
}

/** A stored object's text as an experiment, or why it is not one. */
export function parseStoredExperiment(
  text: string,
): { ok: true; experiment: Experiment } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: "not JSON" };
  }
  const parsed = experimentSchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      message: parsed.error.issues.map((i) => `${i.path.join(".") || "experiment"}: ${i.message}`).join("; "),
    };
  }
  return { ok: true, experiment: parsed.data };
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));
