// Candidates with their features, in the shape that crosses the RecStore →
// Worker RPC: one id list, one name list and a row-major Float64Array.
// Structured clone copies a typed array as one block, but walks an object
// per feature value: 500 candidates × 30 features as records cost ~1.7 ms to
// clone and rebuild (serialize in the object, deserialize in the Worker),
// as a block ~0.15 ms plus ~0.5 ms to turn back into records.

export interface CandidateBlock {
  ids: string[];
  /** Feature names, the columns of `values`. */
  names: string[];
  /** ids.length × names.length values; NaN marks a feature the candidate does not have. */
  values: Float64Array;
}

export interface FeaturedCandidate {
  id: string;
  features: Record<string, number>;
}

/** Every feature name these records have, in first-seen order. */
export function featureNames(records: ReadonlyArray<Readonly<Record<string, unknown>>>): string[] {
  const seen = new Set<string>();
  for (const r of records) for (const name in r) seen.add(name);
  return [...seen];
}

/** Packs candidates; the columns are every feature name seen, in first-seen order. */
export function toBlock(items: readonly FeaturedCandidate[]): CandidateBlock {
  const names = featureNames(items.map((i) => i.features));
  const column = new Map(names.map((n, i) => [n, i]));
  const width = names.length;
  const values = new Float64Array(items.length * width).fill(Number.NaN);
  for (let r = 0; r < items.length; r++) {
    const features = (items[r] as FeaturedCandidate).features;
    const base = r * width;
    for (const name in features) values[base + (column.get(name) as number)] = features[name] as number;
  }
  return { ids: items.map((i) => i.id), names, values };
}

/** Unpacks a block; a NaN cell is left out of its record (the model's default applies), as before packing. */
export function fromBlock(block: CandidateBlock): FeaturedCandidate[] {
  const { ids, names, values } = block;
  const width = names.length;
  if (values.length !== ids.length * width) {
    throw new Error(`candidate block has ${values.length} values for ${ids.length} × ${width}`);
  }
  const out: FeaturedCandidate[] = new Array(ids.length);
  for (let r = 0; r < ids.length; r++) {
    const features: Record<string, number> = {};
    const base = r * width;
    for (let f = 0; f < width; f++) {
      const v = values[base + f] as number;
      if (!Number.isNaN(v)) features[names[f] as string] = v;
    }
    out[r] = { id: ids[r] as string, features };
  }
  return out;
}
