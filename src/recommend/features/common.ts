import { DAYS_CAP, MISSING_DAYS_LOG, NW, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// Small shared pieces of the per-source modules: features.py's `ld`,
// `ld_since`, `_log`, `cosine_rows` and `_top_k`, and row reads of the tables
// (features.py `member_channels`, `partners`).

/** A candidate id and the generators that proposed it (in generator order). */
export interface GeneratedCandidate {
  id: string;
  from: string[];
}

/** One candidate's features by manifest name. */
export type FeatureValues = Record<string, number>;

/** A subject prepared for one request: per-subject vectors computed once, then read per item. */
export interface PreparedSubject {
  /** The candidate set of features.py `Cut.candidates`, ascending id order (the snapshot's rank order). */
  /** `perGenerator`: how many each generator proposes (features.py `Cut(k=…)`, default CANDIDATES_PER_GENERATOR). */
  candidates(perGenerator?: number): GeneratedCandidate[];
  /** features.py `Cut.features` for these items, one record per item in the same order. */
  features(items: readonly string[]): FeatureValues[];
}

/** log1p(min(days, 3650)). */
export const ld = (days: number): number => Math.log1p(Math.min(days, DAYS_CAP));

/** ld(T - last), or ld(3650) when it never happened (NaN). */
export const ldSince = (T: number, last: number): number => (Number.isNaN(last) ? MISSING_DAYS_LOG : ld(T - last));

/** ld(T - first), or 0 when there is no first day (features.py: ages and tenures default to 0). */
export const ldAge = (T: number, first: number): number => (Number.isNaN(first) ? 0 : ld(T - first));

export const log = Math.log1p;

/**
 * cos(A_i, b) for the rows i of A (n × dims) in `rows` (default: all):
 * dot / (|A_i| |b|), 0 when either norm is 0. Other rows of `out` are left as they are.
 */
export function cosineRows(
  A: Float64Array,
  normA: Float64Array,
  dims: number,
  b: Float64Array,
  bOffset: number,
  normB: number,
  out: Float64Array = new Float64Array(normA.length),
  rows?: Int32Array,
): Float64Array {
  if (normB > 0) {
    const n = rows ? rows.length : normA.length;
    for (let r = 0; r < n; r++) {
      const i = rows ? (rows[r] as number) : r;
      const na = normA[i] as number;
      if (na === 0) continue;
      let dot = 0;
      const base = i * dims;
      for (let d = 0; d < dims; d++) dot += (A[base + d] as number) * (b[bOffset + d] as number);
      out[i] = dot / (na * normB);
    }
  }
  return out;
}

/** cos of one pair of rows (0 when either has no vector). */
export function cosinePair(
  A: Float64Array,
  normA: Float64Array,
  i: number,
  B: Float64Array,
  normB: Float64Array,
  j: number,
  dims: number,
): number {
  if (i < 0 || j < 0) return 0;
  const na = normA[i] as number;
  const nb = normB[j] as number;
  if (na === 0 || nb === 0) return 0;
  let dot = 0;
  for (let d = 0; d < dims; d++) dot += (A[i * dims + d] as number) * (B[j * dims + d] as number);
  return dot / (na * nb);
}

/**
 * Up to k indices with universe[i] set and score[i] > 0, best first, ties by
 * the smaller index (features.py `_top_k`). A bounded heap: O(n log k).
 */
export function topK(score: Float64Array, universe: Uint8Array, k: number): number[] {
  const heap: number[] = []; // worst at heap[0]
  const worse = (a: number, b: number) => {
    const sa = score[a] as number;
    const sb = score[b] as number;
    return sa < sb || (sa === sb && a > b);
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l] as number, heap[m] as number)) m = l;
      if (r < heap.length && worse(heap[r] as number, heap[m] as number)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m] as number, heap[i] as number];
      i = m;
    }
  };
  for (let i = 0; i < score.length; i++) {
    if (!universe[i] || !((score[i] as number) > 0)) continue;
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0; ) {
        const p = (j - 1) >> 1;
        if (!worse(heap[j] as number, heap[p] as number)) break;
        [heap[j], heap[p]] = [heap[p] as number, heap[j] as number];
        j = p;
      }
    } else if (k > 0 && worse(heap[0] as number, i)) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
}

/** The first k indices of a precomputed best-first order that are in the universe. */
export function topKOrdered(order: Int32Array, universe: Uint8Array, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < order.length && out.length < k; i++) {
    const x = order[i] as number;
    if (universe[x]) out.push(x);
  }
  return out;
}

/** The union of generator outputs as candidates, ascending index, each with the generators that proposed it. */
export function unionCandidates(
  ids: readonly string[],
  parts: ReadonlyArray<[string, number[]]>,
): GeneratedCandidate[] {
  const from = new Map<number, string[]>();
  for (const [name, idx] of parts) {
    for (const i of idx) {
      const list = from.get(i);
      if (list) list.push(name);
      else from.set(i, [name]);
    }
  }
  return [...from.keys()].sort((a, b) => a - b).map((i) => ({ id: ids[i] as string, from: from.get(i) as string[] }));
}

/** The channels of row u of the membership table with a count in window w (features.py `member_channels`). */
export function memberChannels(t: FeatureTables, u: number, w: number): number[] {
  const out: number[] = [];
  if (u < 0) return out;
  for (let e = t.mm.ptr[u] as number; e < (t.mm.ptr[u + 1] as number); e++) {
    if ((t.mDays[e * NW + w] as number) > 0) out.push(t.mm.col[e] as number);
  }
  return out;
}

/** The people with an interaction count in window w (features.py `partners` for w = all). */
export function partnersOf(t: FeatureTables, u: number, w: number = WALL): number[] {
  const out: number[] = [];
  if (u < 0) return out;
  for (let e = t.pp.ptr[u] as number; e < (t.pp.ptr[u + 1] as number); e++) {
    if ((t.pCount[e * NW + w] as number) > 0) out.push(t.pp.col[e] as number);
  }
  return out;
}

/** Σ over people p of B_w[p, ·]: how many of them are members of each channel in window w. */
export function membersAmong(t: FeatureTables, people: readonly number[], w: number): Float64Array {
  const out = new Float64Array(t.C);
  for (const p of people) {
    for (let e = t.mm.ptr[p] as number; e < (t.mm.ptr[p + 1] as number); e++) {
      if ((t.mDays[e * NW + w] as number) > 0) out[t.mm.col[e] as number] = (out[t.mm.col[e] as number] as number) + 1;
    }
  }
  return out;
}
