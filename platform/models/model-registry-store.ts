import { unavailable } from "../../src/errors";
import type { ModelKey } from "../../src/models/manifest";
import { armModel, type ExperimentStore } from "../../src/recommend/experiments";
import {
  currentKey,
  type EvalSetStore,
  emptyRegistry,
  parseStoredRegistry,
  type Registry,
  type RegistryStore,
  type StoredRegistry,
} from "../../src/recommend/model-registry";

// The model registry and the evaluation sets in the MODELS bucket:
//   registry/<source>.json   the promoted versions and events (src/recommend/model-registry.ts)
//   eval-sets/<source>.ndjson the source's evaluation set (src/recommend/eval-set.ts)
// A registry is written only if its etag is still the one read (R2 checks
// the condition atomically; "absent" for the first write), so two concurrent
// promotions cannot both win. Serving reads the registry through the
// experiment store's per-isolate cache (experiment-store.ts `registered`).

export const registryObjectKey = (source: string) => `registry/${source}.json`;
export const evalSetObjectKey = (source: string) => `eval-sets/${source}.ndjson`;

const IF_ABSENT: R2PutOptions["onlyIf"] = new Headers({ "if-none-match": "*" });

const bound = (bucket: R2Bucket | undefined): R2Bucket => {
  if (!bucket) throw new Error("no MODELS bucket bound: the model registry cannot be stored");
  return bucket;
};

/**
 * The stored registry; a stored object that is not one is an error, never
 * silently an empty registry (that would forget every promotion and let the
 * next one start a new history). The admin routes answer it as 503 with
 * what to do; serving keeps the last registry it read (experiment-store.ts).
 */
async function readStored(bucket: R2Bucket, source: string): Promise<StoredRegistry> {
  const object = await bucket.get(registryObjectKey(source));
  if (!object) return { registry: emptyRegistry(source), version: null };
  const parsed = parseStoredRegistry(await object.text());
  if (!parsed.ok) {
    throw unavailable(
      `the model registry object ${registryObjectKey(source)} in the MODELS bucket is unusable (${parsed.message.slice(0, 300)}); ` +
        "nothing was changed. Restore a good copy of it, or delete it to serve the bundled default, then retry",
    );
  }
  return { registry: parsed.registry, version: object.etag };
}

export function r2RegistryStore(bucket: R2Bucket | undefined): RegistryStore {
  return {
    async read(source) {
      if (!bucket) return { registry: emptyRegistry(source), version: null };
      return readStored(bucket, source);
    },
    async write(source: string, registry: Registry, expected: string | null) {
      const written = await bound(bucket).put(registryObjectKey(source), JSON.stringify(registry), {
        onlyIf: expected === null ? IF_ABSENT : { etagMatches: expected },
        httpMetadata: { contentType: "application/json" },
      });
      return written !== null;
    },
  };
}

/** What serving reads: the registry's current version of a source (null: none; throws when unreadable). */
export function registeredModel(bucket: R2Bucket | undefined): (source: string) => Promise<ModelKey | null> {
  return async (source) => (bucket ? currentKey((await readStored(bucket, source)).registry) : null);
}

export function r2EvalSetStore(bucket: R2Bucket | undefined): EvalSetStore {
  return {
    async get(source) {
      if (!bucket) return null;
      const object = await bucket.get(evalSetObjectKey(source));
      return object ? object.text() : null;
    },
    async put(source, ndjson) {
      await bound(bucket).put(evalSetObjectKey(source), ndjson, {
        httpMetadata: { contentType: "application/x-ndjson" },
      });
    },
  };
}

/** The source's bundled default model (its default experiment's arm), or null when that is hand-tuned. */
export function bundledDefaultOf(experiments: Pick<ExperimentStore, "defaultFor">) {
  return (source: string): ModelKey | null => {
    const arm = experiments.defaultFor(source).arms[0];
    const named = arm ? armModel(arm) : null;
    return named ? { source, ...named } : null;
  };
}
