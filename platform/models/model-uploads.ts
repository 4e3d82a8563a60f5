import { type ModelKey, type ModelManifest, modelKeyString } from "../../src/models/manifest";
import type { ModelListing, ModelVersionStore, UploadRefusal, UploadResult } from "../../src/recommend/model-versions";
import type { BundledModelStore } from "./bundled";
import { modelRecord } from "./model-record";
import { plainGraphCheck } from "./onnx-runtime";
import { r2ModelPrefix } from "./r2-model-store";
import { onnxRuntimeEngine } from "./runtime-registry";

// Uploading trained models to the MODELS bucket (the layout r2-model-store.ts
// reads), for the admin API. A version is uploaded in two parts, manifest.json
// first, then model.onnx; it is then either
//   absent, awaiting model.onnx (manifest only: not servable), or complete,
// and a complete version always loads: model.onnx is only stored after the
// Worker scored a sample row with it under the manifest's input and output
// names (checkOnnx: a TypeScript reader, or onnxruntime-web in the ONNX
// build). Versions are immutable: each part is written with an if-absent
// condition (R2 checks it atomically), so a second upload of a part is
// refused, concurrent ones included. A model.onnx that is refused as invalid
// also removes the manifest it was checked against, so nothing of the version
// stays and it can be uploaded again from the start (the manifest may be what
// was wrong). A valid graph that only onnxruntime-web runs is refused by the
// default build with 400 runtime_unavailable naming the ONNX build, and its
// manifest is kept.

export { MODEL_ONNX_MAX_BYTES } from "../../src/recommend/model-versions";

/** The ModelVersionStore over the MODELS bucket and the bundled defaults. */
export function r2ModelVersions(bucket: R2Bucket | undefined, bundled: BundledModelStore): ModelVersionStore {
  const bound = (): R2Bucket => {
    if (!bucket) throw new Error("no MODELS bucket bound");
    return bucket;
  };
  return {
    list: (source) => listModels(bucket, bundled, source),
    putManifest: (key, manifest) => putManifest(bound(), bundled, key, manifest),
    putGraph: (key, onnx) => putModelOnnx(bound(), bundled, key, onnx),
  };
}

const refuse = (kind: UploadRefusal["kind"], code: UploadRefusal["code"], message: string): UploadRefusal => ({
  ok: false,
  kind,
  code,
  message,
});

/** R2's "only if the key is absent": put answers null when the object exists. */
const IF_ABSENT: R2PutOptions["onlyIf"] = new Headers({ "if-none-match": "*" });

const isBundled = (bundled: BundledModelStore, key: ModelKey) =>
  bundled.keys().some((k) => modelKeyString(k) === modelKeyString(key));

/** Stores manifest.json of a new version. The manifest must already be parsed and name `key`. */
export async function putManifest(
  bucket: R2Bucket,
  bundled: BundledModelStore,
  key: ModelKey,
  manifest: ModelManifest,
): Promise<UploadResult<{ complete: false }>> {
  const id = modelKeyString(key);
  if (isBundled(bundled, key)) {
    return refuse("conflict", "conflict", `${id} ships with the Worker; upload a new version`);
  }
  const prefix = r2ModelPrefix(key);
  const written = await bucket.put(`${prefix}manifest.json`, JSON.stringify(manifest), {
    onlyIf: IF_ABSENT,
    httpMetadata: { contentType: "application/json" },
    customMetadata: { kind: manifest.kind },
  });
  if (!written) {
    const complete = (await bucket.head(`${prefix}model.onnx`)) !== null;
    return refuse(
      "conflict",
      "conflict",
      complete
        ? `${id} exists; versions are immutable: upload a new version`
        : `${id} already has a manifest.json; upload its model.onnx, or a new version`,
    );
  }
  return { ok: true, value: { complete: false } };
}

/** Stores model.onnx of a version whose manifest.json is uploaded, once the runtime accepted it. */
export async function putModelOnnx(
  bucket: R2Bucket,
  bundled: BundledModelStore,
  key: ModelKey,
  onnx: Uint8Array,
): Promise<UploadResult<{ manifest: ModelManifest; bytes: number }>> {
  const id = modelKeyString(key);
  if (isBundled(bundled, key)) {
    return refuse("conflict", "conflict", `${id} ships with the Worker; upload a new version`);
  }
  const prefix = r2ModelPrefix(key);
  const [manifestObject, existing] = await Promise.all([
    bucket.get(`${prefix}manifest.json`),
    bucket.head(`${prefix}model.onnx`),
  ]);
  if (existing) return refuse("conflict", "conflict", `${id} exists; versions are immutable: upload a new version`);
  if (!manifestObject) return refuse("conflict", "conflict", `upload ${prefix}manifest.json first`);
  let manifestJson: unknown;
  try {
    manifestJson = JSON.parse(await manifestObject.text());
  } catch {
    manifestJson = undefined; // modelRecord reports it
  }
  const stored = modelRecord(key, manifestJson, onnx, "r2");
  if (!stored.ok) {
    // Only an object written around the API gets here (or an empty body).
    return refuse(
      "invalid",
      stored.error.code === "invalid_model" ? "invalid_model" : "invalid_body",
      stored.error.message,
    );
  }
  const { manifest } = stored.value;
  const problem = await checkOnnx(manifest, onnx);
  if (problem) {
    if (problem.code === "invalid_model") {
      await bucket.delete(`${prefix}manifest.json`);
      return refuse(
        "invalid",
        "invalid_model",
        `${problem.message}; nothing of ${id} is stored, upload both parts again`,
      );
    }
    // The default build without a runtime: not a fault to retry (no 503) but this build's refusal (400),
    // named as the runtime being unavailable; the manifest stays, for model.onnx on the ONNX build.
    if (problem.code === "runtime_missing") {
      return refuse("invalid", "runtime_unavailable", `${problem.message}; ${id}'s manifest.json is kept`);
    }
    return refuse("unavailable", "runtime_unavailable", problem.message);
  }
  const written = await bucket.put(`${prefix}model.onnx`, onnx, {
    onlyIf: IF_ABSENT,
    httpMetadata: { contentType: "application/octet-stream" },
  });
  if (!written) return refuse("conflict", "conflict", `${id} exists; versions are immutable: upload a new version`);
  return { ok: true, value: { manifest, bytes: onnx.byteLength } };
}

/**
 * Whether the Worker can serve the model as the manifest describes it. With
 * an ONNX runtime registered (the ONNX build), the runtime decides: a session
 * from the bytes, the manifest's input and output names, one float32 score
 * per row for a sample of all-default rows (which catches a feature count the
 * graph does not take), as before the default build left the runtime out.
 * Without one (the default build), a TypeScript reader must cover the graph
 * and score the same sample (onnx-runtime.ts, plainGraphCheck); a valid graph
 * no reader covers is `runtime_missing`: only the ONNX build can take it.
 */
export async function checkOnnx(
  manifest: ModelManifest,
  onnx: Uint8Array,
): Promise<{ code: "invalid_model" | "runtime_unavailable" | "runtime_missing"; message: string } | null> {
  const runtime = onnxRuntimeEngine();
  if (runtime) return runtime.check(manifest, onnx);
  const problem = await plainGraphCheck(manifest, onnx);
  return problem?.code === "runtime_unavailable" ? { code: "runtime_missing", message: problem.message } : problem;
}

/** A source's models: R2 uploads (complete or awaiting model.onnx) and the bundled defaults. */
export async function listModels(
  bucket: R2Bucket | undefined,
  bundled: BundledModelStore,
  source: string,
): Promise<ModelListing[]> {
  const out: ModelListing[] = [];
  for (const key of bundled.keys().filter((k) => k.source === source)) {
    const loaded = await bundled.load(key);
    out.push({
      name: key.name,
      version: key.version,
      ...(loaded.ok ? { kind: loaded.value.manifest.kind } : {}),
      origin: "bundled",
      complete: true,
    });
  }
  if (!bucket) return out;
  const prefix = `models/${source}/`;
  const versions = new Map<string, { name: string; version: string; kind?: string; files: Set<string>; at: Date }>();
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, include: ["customMetadata"] });
    for (const object of page.objects) {
      // models/<source>/<name>/<version>/<file>; names and versions hold no "/".
      const [name, version, file, ...rest] = object.key.slice(prefix.length).split("/");
      if (!name || !version || !file || rest.length > 0) continue;
      const id = `${name}/${version}`;
      let entry = versions.get(id);
      if (!entry) {
        entry = { name, version, files: new Set(), at: object.uploaded };
        versions.set(id, entry);
      }
      entry.files.add(file);
      if (object.uploaded > entry.at) entry.at = object.uploaded;
      const kind = object.customMetadata?.kind;
      if (file === "manifest.json" && kind) entry.kind = kind;
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  for (const v of versions.values()) {
    out.push({
      name: v.name,
      version: v.version,
      ...(v.kind ? { kind: v.kind } : {}),
      origin: "r2",
      complete: v.files.has("manifest.json") && v.files.has("model.onnx"),
      uploaded: v.at.toISOString(),
    });
  }
  return out.sort((a, b) => cmp(a.name, b.name) || cmp(a.version, b.version) || cmp(a.origin, b.origin));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
