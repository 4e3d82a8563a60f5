import { badRequest, DomainError, type ErrorKind, invalidBody } from "../errors";
import { type ModelKey, type ModelManifest, modelKeyString, parseManifest } from "../models/manifest";
import type { OnnxGraph } from "../models/ports";

// Uploading and listing a source's model versions (the operators' API). A
// version is uploaded in two parts, manifest.json first, then model.onnx;
// versions are immutable, a bundled version cannot be uploaded over, and
// model.onnx is only kept once the runtime took it (the store's rules:
// platform/models/model-uploads.ts keeps them in the MODELS bucket). A refused
// upload changes nothing.

/** The largest model.onnx taken (the XGBoost fixture, 200 trees of depth 6, is ~1 MB). */
export const MODEL_ONNX_MAX_BYTES = 16 * 1024 * 1024;

/** What an experiment arm can name (`<name>@<version>`, experiments.ts): nothing else is uploaded. */
export const MODEL_NAME = /^[A-Za-z0-9_.-]{1,80}$/;
export const MODEL_VERSION = /^[A-Za-z0-9_.:-]{1,80}$/;

export type UploadRefusal = {
  ok: false;
  kind: Extract<ErrorKind, "invalid" | "conflict" | "unavailable">;
  code: "conflict" | "invalid_body" | "invalid_model" | "runtime_unavailable";
  message: string;
};
export type UploadResult<T> = { ok: true; value: T } | UploadRefusal;

/** One version of a source's model, as listed. */
export interface ModelListing {
  name: string;
  version: string;
  /** From the manifest; absent for an R2 upload whose manifest predates this metadata. */
  kind?: string;
  origin: "r2" | "bundled";
  /** Both parts are there (always, for bundled models). */
  complete: boolean;
  /** When the last part was written to R2. */
  uploaded?: string;
}

/** Where model versions are kept (stored records, manifest and ONNX graph, plus the bundled defaults). */
export interface ModelVersionStore {
  /** A source's versions: uploads (complete or awaiting model.onnx) and the bundled defaults. */
  list(source: string): Promise<ModelListing[]>;
  /** Stores manifest.json of a new version (parsed, naming `key`). */
  putManifest(key: ModelKey, manifest: ModelManifest): Promise<UploadResult<{ complete: false }>>;
  /** Stores model.onnx of a version whose manifest.json is uploaded, once the runtime accepted it. */
  putGraph(key: ModelKey, onnx: OnnxGraph): Promise<UploadResult<{ manifest: ModelManifest; bytes: number }>>;
}

export interface ModelVersionPorts {
  models: ModelVersionStore;
}

/** A version named by a path, or bad_request when an experiment arm could not name it. */
export function modelKeyNamed(source: string, name: string, version: string): ModelKey {
  if (!MODEL_NAME.test(name) || !MODEL_VERSION.test(version)) {
    throw badRequest(
      "model names are 1-80 of A-Z a-z 0-9 _ . - and versions 1-80 of the same or : (an experiment arm names them as <name>@<version>)",
    );
  }
  return { source, name, version };
}

export function listModelVersions(ports: ModelVersionPorts, source: string): Promise<ModelListing[]> {
  return ports.models.list(source);
}

/** Stores the manifest of a new version; answers what the version is now. */
export async function uploadManifest(ports: ModelVersionPorts, key: ModelKey, body: unknown) {
  const parsed = parseManifest(body);
  if (!parsed.ok) throw invalidBody(parsed.message);
  const { manifest } = parsed;
  if (modelKeyString(manifest) !== modelKeyString(key)) {
    throw invalidBody(`the manifest is for ${modelKeyString(manifest)}, the path names ${modelKeyString(key)}`);
  }
  const result = await ports.models.putManifest(key, manifest);
  if (!result.ok) throw refusal(result);
  return { ...key, kind: manifest.kind, origin: "r2" as const, complete: false };
}

/** Stores the ONNX graph of a version whose manifest is uploaded; answers what the version is now. */
export async function uploadGraph(ports: ModelVersionPorts, key: ModelKey, onnx: OnnxGraph) {
  if (onnx.byteLength === 0) throw invalidBody("empty model.onnx");
  const result = await ports.models.putGraph(key, onnx);
  if (!result.ok) throw refusal(result);
  const { manifest, bytes } = result.value;
  return { ...key, kind: manifest.kind, origin: "r2" as const, complete: true, bytes };
}

const refusal = (r: UploadRefusal) => new DomainError(r.kind, r.code, r.message);
