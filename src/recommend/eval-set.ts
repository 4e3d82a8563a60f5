import { z } from "zod";
import { invalidBody } from "../errors";
import type { FeatureRecord } from "../models/manifest";

// A source's evaluation set: the held-out rankings of the training
// pipeline's evaluation cuts (training/export_eval_set.py writes it), on which
// the promotion gate scores a candidate and the models it must beat. NDJSON:
//
//   {"format":"eval-set/1","source":"composer_dm","dataset":"...","features":["f1","f2",...]}
//   {"cut":"2023-08-24","query":"123","positives":3,"items":[17,4,...],"labels":[1,0,...],"x":[[...],[...]]}
//   ...one line per ranking
//
// `x` holds each candidate's feature values in the header's order (null:
// missing, the model's default applies, as when serving); `positives` counts
// every positive of the subject, also those candidate generation missed (the
// IDCG of training/metrics.py). Items break score ties (smaller first) as the
// pipeline's rank_order does.

export const EVAL_SET_FORMAT = "eval-set/1";
/** The largest eval set taken: scored whole in one request by three models. */
export const EVAL_SET_MAX_BYTES = 24 * 1024 * 1024;
export const EVAL_SET_MAX_RANKINGS = 20_000;
export const EVAL_SET_MAX_ROWS = 400_000;

const header = z.strictObject({
  format: z.literal(EVAL_SET_FORMAT),
  source: z.string(),
  dataset: z.string().max(200).optional(),
  features: z
    .array(z.string().min(1).max(100))
    .min(1)
    .max(500)
    .refine((fs) => new Set(fs).size === fs.length, "feature names must be unique"),
});

const cutDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "cut is YYYY-MM-DD");
const item = z.union([z.number().int(), z.string().min(1).max(100)]);
const ranking = z.strictObject({
  cut: cutDate,
  query: z.union([z.string().min(1).max(200), z.number().int()]),
  positives: z.number().int().min(0),
  items: z.array(item).min(1),
  labels: z.array(z.union([z.literal(0), z.literal(1)])),
  x: z.array(z.array(z.number().nullable())),
});

export interface EvalRanking {
  cut: string;
  query: string;
  positives: number;
  items: Array<number | string>;
  labels: Array<0 | 1>;
  /**
   * Each candidate's values in the header's feature order (null: missing).
   * Kept as parsed (packed number arrays), not as records: a 20 MB eval set
   * must fit an isolate's memory next to the models scoring it.
   */
  x: Array<Array<number | null>>;
}

export interface EvalSet {
  source: string;
  dataset?: string;
  features: string[];
  rankings: EvalRanking[];
  /** The cuts, in date order. */
  cuts: string[];
}

/** The non-blank lines with their 1-based numbers, without a second copy of the whole text. */
function* linesOf(text: string): Generator<{ n: number; line: string }> {
  let start = 0;
  let n = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    n++;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.trim() !== "") yield { n, line };
  }
}

/** Parses and validates an eval set for `source`; invalid_body naming the line otherwise. */
export function parseEvalSet(text: string, source: string): EvalSet {
  const lines = linesOf(text);
  const first = lines.next();
  if (first.done) throw invalidBody("empty eval set");
  const head = header.safeParse(parseLine(first.value.line, first.value.n));
  if (!head.success) throw invalidBody(`line ${first.value.n} (the header): ${z.prettifyError(head.error)}`);
  if (head.data.source !== source) {
    throw invalidBody(`the eval set is for ${head.data.source}, the path names ${source}`);
  }
  const { features } = head.data;
  const rankings: EvalRanking[] = [];
  let rows = 0;
  for (const { n, line } of lines) {
    if (rankings.length >= EVAL_SET_MAX_RANKINGS) throw invalidBody(`more than ${EVAL_SET_MAX_RANKINGS} rankings`);
    const r = ranking.safeParse(parseLine(line, n));
    if (!r.success) throw invalidBody(`line ${n}: ${z.prettifyError(r.error)}`);
    const { items, labels, x } = r.data;
    if (labels.length !== items.length || x.length !== items.length) {
      throw invalidBody(`line ${n}: items, labels and x differ in length`);
    }
    if (new Set(items.map(String)).size !== items.length) throw invalidBody(`line ${n}: items repeat`);
    if (new Set(items.map((v) => typeof v)).size > 1) throw invalidBody(`line ${n}: items mix numbers and strings`);
    const labelled = labels.reduce<number>((s, l) => s + l, 0);
    if (r.data.positives < labelled) {
      throw invalidBody(`line ${n}: positives (${r.data.positives}) is fewer than the positive labels (${labelled})`);
    }
    x.forEach((values, j) => {
      if (values.length !== features.length) {
        throw invalidBody(`line ${n}: row ${j} has ${values.length} values for ${features.length} features`);
      }
    });
    rows += x.length;
    if (rows > EVAL_SET_MAX_ROWS) throw invalidBody(`more than ${EVAL_SET_MAX_ROWS} candidate rows`);
    rankings.push({ cut: r.data.cut, query: String(r.data.query), positives: r.data.positives, items, labels, x });
  }
  if (rankings.length === 0) throw invalidBody("the eval set has no rankings");
  const cuts = [...new Set(rankings.map((r) => r.cut))].sort();
  return { source, ...(head.data.dataset ? { dataset: head.data.dataset } : {}), features, rankings, cuts };
}

function parseLine(line: string, n: number): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw invalidBody(`line ${n} is not JSON`);
  }
}

/** The features a model reads that the eval set lacks (it must cover them all). */
export function missingFeatures(set: Pick<EvalSet, "features">, needs: readonly string[]): string[] {
  const have = new Set(set.features);
  return needs.filter((f) => !have.has(f));
}

/** Indices of `items`, best first: score descending, then item ascending (training/metrics.py rank_order). */
export function rankOrder(scores: ArrayLike<number>, items: ReadonlyArray<number | string>): number[] {
  const idx = Array.from({ length: items.length }, (_, i) => i);
  return idx.sort((a, b) => {
    const sa = scores[a] as number;
    const sb = scores[b] as number;
    if (sa !== sb) return sb - sa;
    const ia = items[a] as number | string;
    const ib = items[b] as number | string;
    return ia < ib ? -1 : ia > ib ? 1 : 0;
  });
}

/** training/metrics.py ndcg_at_k: DCG of the first k over the ideal DCG of all `positives`. */
export function ndcgAtK(rankedLabels: readonly number[], positives: number, k = 10): number {
  if (positives <= 0) return 0;
  let dcg = 0;
  for (let i = 0; i < Math.min(k, rankedLabels.length); i++) dcg += (rankedLabels[i] as number) / Math.log2(i + 2);
  let idcg = 0;
  for (let i = 0; i < Math.min(k, positives); i++) idcg += 1 / Math.log2(i + 2);
  return dcg / idcg;
}

/** Scores every candidate of a ranking: one score per candidate, in order. */
export type RankingScorer = (ranking: EvalRanking) => Promise<ArrayLike<number>>;

/** A scorer of feature records (the rules: baselines, hand-tuned), records built one ranking at a time. */
export function recordScorer(
  set: Pick<EvalSet, "features">,
  score: (records: readonly FeatureRecord[]) => Promise<ArrayLike<number>>,
): RankingScorer {
  return (ranking) =>
    score(
      ranking.x.map((values) => {
        const rec: Record<string, number> = {};
        for (let f = 0; f < set.features.length; f++) {
          const v = values[f];
          if (typeof v === "number") rec[set.features[f] as string] = v;
        }
        return rec;
      }),
    );
}

/**
 * A scorer of a model's float32 matrix, assembled as serving assembles it
 * (manifest.ts featureAssembler: the manifest's order, a value not finite in
 * float32 takes the feature's default). Every feature must be in the set.
 */
export function matrixScorer(
  set: Pick<EvalSet, "features">,
  features: ReadonlyArray<{ name: string; default: number }>,
  score: (matrix: Float32Array, rows: number) => Promise<ArrayLike<number>>,
): RankingScorer {
  const cols = features.map((f) => set.features.indexOf(f.name));
  const missing = features.filter((_, i) => (cols[i] as number) < 0).map((f) => f.name);
  if (missing.length > 0) throw new Error(`the eval set lacks ${missing.join(", ")}`);
  const defaults = Float32Array.from(features, (f) => f.default);
  const width = features.length;
  return (ranking) => {
    const out = new Float32Array(ranking.x.length * width);
    ranking.x.forEach((values, r) => {
      for (let f = 0; f < width; f++) {
        const v = values[cols[f] as number];
        const x = typeof v === "number" ? Math.fround(v) : Number.NaN;
        out[r * width + f] = Number.isFinite(x) ? x : (defaults[f] as number);
      }
    });
    return score(out, ranking.x.length);
  };
}

/**
 * Mean NDCG@10 per cut (train.py `evaluate`: the mean over the cut's
 * rankings), in `set.cuts` order. Scores are compared as float64 of what the
 * scorer answered (float32 for ONNX models, as when serving).
 */
export async function ndcgPerCut(set: EvalSet, scorer: RankingScorer): Promise<number[]> {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const r of set.rankings) {
    const scores = await scorer(r);
    if (scores.length !== r.x.length) throw new Error(`scorer answered ${scores.length} scores for ${r.x.length} rows`);
    const order = rankOrder(scores, r.items);
    const nd = ndcgAtK(
      order.map((i) => r.labels[i] as number),
      r.positives,
    );
    const acc = sums.get(r.cut) ?? { sum: 0, n: 0 };
    acc.sum += nd;
    acc.n += 1;
    sums.set(r.cut, acc);
  }
  return set.cuts.map((c) => {
    const acc = sums.get(c) as { sum: number; n: number };
    return acc.sum / acc.n;
  });
}
