import { type ModelKey, modelKeyString } from "../../src/models/manifest";
import type { ModelLoadResult, ModelRecord, ModelRecordStore } from "../../src/models/ports";
import { modelRecord } from "./model-record";

// Trained models live in the MODELS bucket under
//   models/<source>/<name>/<version>/model.onnx
//   models/<source>/<name>/<version>/manifest.json
// A key the bucket does not have (or a bucket that cannot be read) falls back
// to `fallback`, normally the bundled defaults. A model that is in the bucket
// but broken is reported as such, not silently replaced: the caller decides
// (a recommender falls back to its hand-tuned model).

export const r2ModelPrefix = (k: ModelKey) => `models/${modelKeyString(k)}/`;

export function r2ModelStore(bucket: R2Bucket | undefined, fallback: ModelRecordStore): ModelRecordStore {
  return {
    async load(key) {
      if (!bucket) return fallback.load(key);
      const prefix = r2ModelPrefix(key);
      let manifest: R2ObjectBody | null;
      let onnx: R2ObjectBody | null;
      try {
        [manifest, onnx] = await Promise.all([bucket.get(`${prefix}manifest.json`), bucket.get(`${prefix}model.onnx`)]);
      } catch (e) {
        return orFallback(key, fallback, "storage", `R2 read failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!manifest && !onnx) return fallback.load(key);
      if (!manifest || !onnx) {
        return orFallback(
          key,
          fallback,
          "not_found",
          `R2 has ${manifest ? "manifest.json" : "model.onnx"} only under ${prefix}`,
        );
      }
      let manifestJson: unknown;
      try {
        manifestJson = JSON.parse(await manifest.text());
      } catch {
        return {
          ok: false,
          error: { code: "invalid_manifest", key, message: `r2: ${prefix}manifest.json is not JSON` },
        };
      }
      return modelRecord(key, manifestJson, new Uint8Array(await onnx.arrayBuffer()), "r2");
    },
  };
}

/** The fallback's model if it has one, else the R2 problem. */
async function orFallback(
  key: ModelKey,
  fallback: ModelRecordStore,
  code: "storage" | "not_found",
  message: string,
): Promise<ModelLoadResult<ModelRecord>> {
  const r = await fallback.load(key);
  if (r.ok || r.error.code !== "not_found") return r;
  return { ok: false, error: { code, key, message } };
}
