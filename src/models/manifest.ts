import { z } from "zod";

// A model is an ONNX file plus this manifest (written by training/onnx_export.py):
// which features it reads, in which order, with which defaults, and what its
// single output means. The scorer never sees feature names: callers assemble a
// float32 matrix in the manifest's order with `featureMatrix`.

export const modelKindSchema = z.enum(["lr", "xgboost"]);
export type ModelKind = z.infer<typeof modelKindSchema>;

export const modelManifestSchema = z.object({
  name: z.string().min(1),
  source: z.string().min(1),
  kind: modelKindSchema,
  version: z.string().min(1),
  features: z
    .array(z.object({ name: z.string().min(1), default: z.number().refine(Number.isFinite, "default must be finite") }))
    .min(1)
    .refine((fs) => new Set(fs.map((f) => f.name)).size === fs.length, "feature names must be unique"),
  input: z.string().min(1),
  output: z.object({ name: z.string().min(1), meaning: z.string() }),
  metrics: z.record(z.string(), z.unknown()),
  created: z.string(),
});
export type ModelManifest = z.infer<typeof modelManifestSchema>;

/** Which model: R2 keys and session caches are built from it. */
export interface ModelKey {
  source: string;
  name: string;
  version: string;
}

export const modelKeyString = (k: ModelKey) => `${k.source}/${k.name}/${k.version}`;

/** One candidate's features by name. Absent, null and non-finite values take the manifest's default. */
export type FeatureRecord = Readonly<Record<string, number | null | undefined>>;

/** Parses a manifest (JSON text or a parsed value); a message instead of a throw when it is not one. */
export function parseManifest(input: unknown): { ok: true; manifest: ModelManifest } | { ok: false; message: string } {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (e) {
      return { ok: false, message: `manifest is not JSON: ${(e as Error).message}` };
    }
  }
  const parsed = modelManifestSchema.safeParse(value);
  if (!parsed.success) return { ok: false, message: `invalid manifest: ${z.prettifyError(parsed.error)}` };
  return { ok: true, manifest: parsed.data };
}

/**
 * Builds the N×F row-major float32 matrix a model takes. Values that are not
 * finite in float32 (missing, null, NaN, ±Infinity, or beyond float32's range)
 * take the feature's default, so the model never sees a value it was not
 * trained on by accident.
 */
export function featureMatrix(
  manifest: Pick<ModelManifest, "features">,
  records: readonly FeatureRecord[],
): Float32Array {
  return featureAssembler(manifest)(records);
}

/** `featureMatrix` with the manifest's names and defaults unpacked once, for hot paths. */
export function featureAssembler(
  manifest: Pick<ModelManifest, "features">,
): (records: readonly FeatureRecord[]) => Float32Array {
  const names = manifest.features.map((f) => f.name);
  const defaults = Float32Array.from(manifest.features, (f) => f.default);
  const width = names.length;
  return (records) => {
    const out = new Float32Array(records.length * width);
    for (let r = 0; r < records.length; r++) {
      const record = records[r] as FeatureRecord;
      const base = r * width;
      for (let f = 0; f < width; f++) {
        const v = record[names[f] as string];
        const x = typeof v === "number" ? Math.fround(v) : Number.NaN;
        out[base + f] = Number.isFinite(x) ? x : (defaults[f] as number);
      }
    }
    return out;
  };
}
