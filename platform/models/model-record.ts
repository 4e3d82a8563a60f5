import { type ModelKey, modelKeyString, parseManifest } from "../../src/models/manifest";
import type { ModelLoadResult, ModelRecord } from "../../src/models/ports";

// Shared by the R2 and bundled stores: a manifest plus bytes become a
// ModelRecord only when the manifest parses and names the key it was found under.

export function modelRecord(
  key: ModelKey,
  manifestJson: unknown,
  onnx: Uint8Array,
  origin: ModelRecord["origin"],
): ModelLoadResult<ModelRecord> {
  const parsed = parseManifest(manifestJson);
  if (!parsed.ok)
    return { ok: false, error: { code: "invalid_manifest", key, message: `${origin}: ${parsed.message}` } };
  const m = parsed.manifest;
  if (modelKeyString(m) !== modelKeyString(key)) {
    return {
      ok: false,
      error: { code: "invalid_manifest", key, message: `${origin}: manifest is for ${modelKeyString(m)}` },
    };
  }
  if (onnx.byteLength === 0)
    return { ok: false, error: { code: "invalid_model", key, message: `${origin}: empty model.onnx` } };
  return { ok: true, value: { key, manifest: m, onnx, origin } };
}
