import { badRequest } from "../errors";
import type { ExperimentStore } from "./experiments";

// An experiment's readout, computed from the rec logs on demand (GET
// /v1/admin/experiments/:source/readout). The logs are the record of what was
// served and what users did; they arrive at least once (a retried queue batch
// can leave a message in two objects), so counting from them, dropping
// repeated message ids, never counts a request twice, where counters bumped
// by the consumer would. The arithmetic is here, pure: Wilson and Newcombe
// intervals for CTR, a normal interval for the mean DCG of clicks, the
// dedupe and the join of feedback to the answers it is about.

/** Two-sided 95% normal quantile. */
export const Z95 = 1.959963984540054;

export interface Interval {
  low: number;
  high: number;
}

/**
 * Wilson score interval for a binomial proportion: unlike the Wald interval
 * it stays inside [0, 1] and keeps its coverage at small counts and rates
 * near 0, which CTRs are. n = 0 gives [0, 1] (nothing is known).
 */
export function wilson(successes: number, n: number, z = Z95): Interval {
  if (n <= 0) return { low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Newcombe's hybrid score interval (1998, method 10) for p1 − p0 from the two
 * Wilson intervals: better coverage than the Wald difference when a rate is
 * near 0 or a sample is small.
 */
export function proportionDifference(
  x1: number,
  n1: number,
  x0: number,
  n0: number,
  z = Z95,
): { diff: number } & Interval {
  const p1 = n1 > 0 ? x1 / n1 : 0;
  const p0 = n0 > 0 ? x0 / n0 : 0;
  const w1 = wilson(x1, n1, z);
  const w0 = wilson(x0, n0, z);
  const diff = p1 - p0;
  return {
    diff,
    low: diff - Math.sqrt((p1 - w1.low) ** 2 + (w0.high - p0) ** 2),
    high: diff + Math.sqrt((w1.high - p1) ** 2 + (p0 - w0.low) ** 2),
  };
}

/** Running count, sum and sum of squares: enough for a mean and its sample variance. */
export interface Moments {
  n: number;
  sum: number;
  sumSq: number;
}

export const emptyMoments = (): Moments => ({ n: 0, sum: 0, sumSq: 0 });

export function addMoment(m: Moments, x: number): void {
  m.n++;
  m.sum += x;
  m.sumSq += x * x;
}

/** Sample variance (n − 1); 0 below two observations. */
export function sampleVariance(m: Moments): number {
  if (m.n < 2) return 0;
  const mean = m.sum / m.n;
  // Clamped: rounding can leave a tiny negative for constant samples.
  return Math.max(0, (m.sumSq - m.n * mean * mean) / (m.n - 1));
}

/**
 * Mean with a normal-approximation interval, mean ± z·s/√n (s the sample
 * standard deviation): the per-request DCG is bounded, so the mean of a few
 * hundred requests is close to normal; with very few requests it is rough.
 */
export function meanInterval(m: Moments, z = Z95): { mean: number; sd: number } & Interval {
  const mean = m.n > 0 ? m.sum / m.n : 0;
  const sd = Math.sqrt(sampleVariance(m));
  const half = m.n > 0 ? (z * sd) / Math.sqrt(m.n) : 0;
  return { mean, sd, low: mean - half, high: mean + half };
}

/** Difference of two means with the unpooled (Welch) normal interval. */
export function meanDifference(a: Moments, b: Moments, z = Z95): { diff: number } & Interval {
  const ma = a.n > 0 ? a.sum / a.n : 0;
  const mb = b.n > 0 ? b.sum / b.n : 0;
  const se = Math.sqrt((a.n > 0 ? sampleVariance(a) / a.n : 0) + (b.n > 0 ? sampleVariance(b) / b.n : 0));
  const diff = ma - mb;
  return { diff, low: diff - z * se, high: diff + z * se };
}

/**
 * DCG of one answer's clicks: Σ 1/log2(rank + 1) over the clicked items, with
 * rank as logged (1 for the first item: src/recommend/logs.ts servedItems), so
 * the first item counts 1, the second 0.63; the same as 1/log2(i + 2) for a
 * 0-based position i, and as the replayed loop (scripts/replay-loop.ts).
 */
export function dcgOfClicks(clickedRanks: Iterable<number>): number {
  let dcg = 0;
  for (const rank of clickedRanks) dcg += 1 / Math.log2(rank + 1);
  return dcg;
}

// --- reading the log lines ------------------------------------------------------

interface ServedRequest {
  arm: string;
  model: string;
  /** item → rank as logged. */
  ranks: Map<string, number>;
  clicked: Set<string>;
  impressed: Set<string>;
}

/** What a readout counted besides the arms: how much was read and what was left out, and why. */
export interface ReadoutTally {
  lines: number;
  /** Lines whose message id was already read (a retried batch). */
  duplicateMessages: number;
  /** Served lines repeating a request id already read under another message id. */
  duplicateRequests: number;
  malformed: number;
  /** Served lines of other experiments in the range. */
  otherExperiments: number;
  /** Feedback about requests not served in the range (or in another experiment). */
  unmatchedFeedback: number;
  /** Feedback naming an item its request did not serve. */
  unknownItems: number;
}

/**
 * Accumulates log lines (any order, any objects) for one experiment: drops
 * repeated message ids, keeps one served line per request, and joins feedback
 * to the request it is about when the readout is asked for.
 */
export class ReadoutAccumulator {
  private readonly seen = new Set<string>();
  private readonly served = new Map<string, ServedRequest>();
  private readonly feedback: Array<{ request: string; item: string; action: string }> = [];
  private readonly tally: ReadoutTally = {
    lines: 0,
    duplicateMessages: 0,
    duplicateRequests: 0,
    malformed: 0,
    otherExperiments: 0,
    unmatchedFeedback: 0,
    unknownItems: 0,
  };

  constructor(private readonly experiment: string) {}

  /** One NDJSON object's text. */
  addText(ndjson: string): void {
    for (const line of ndjson.split("\n")) {
      if (line.length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        this.tally.lines++;
        this.tally.malformed++;
        continue;
      }
      this.add(value);
    }
  }

  add(value: unknown): void {
    this.tally.lines++;
    if (!isRecord(value)) {
      this.tally.malformed++;
      return;
    }
    const id = value.message_id;
    if (typeof id === "string") {
      if (this.seen.has(id)) {
        this.tally.duplicateMessages++;
        return;
      }
      this.seen.add(id);
    }
    const request = value.request_id;
    if (typeof request !== "string") {
      this.tally.malformed++;
      return;
    }
    if (value.kind === "served") {
      const items = value.items;
      if (typeof value.experiment !== "string" || typeof value.arm !== "string" || !Array.isArray(items)) {
        this.tally.malformed++;
        return;
      }
      if (value.experiment !== this.experiment) {
        this.tally.otherExperiments++;
        return;
      }
      if (this.served.has(request)) {
        this.tally.duplicateRequests++;
        return;
      }
      const ranks = new Map<string, number>();
      for (const it of items) {
        if (isRecord(it) && typeof it.item === "string" && typeof it.rank === "number" && it.rank >= 1) {
          ranks.set(it.item, it.rank);
        }
      }
      const model = typeof value.model === "string" ? `${value.model}@${String(value.version ?? "")}` : "";
      this.served.set(request, { arm: value.arm, model, ranks, clicked: new Set(), impressed: new Set() });
      return;
    }
    if (value.kind === "feedback") {
      if (typeof value.item !== "string" || typeof value.action !== "string") {
        this.tally.malformed++;
        return;
      }
      // Joined at the end: a request's feedback can be read before its answer.
      this.feedback.push({ request, item: value.item, action: value.action });
      return;
    }
    this.tally.malformed++;
  }

  /**
   * Per arm, in `armOrder` first (then any other arm seen, by name), each
   * compared with the baseline: the arm named `control` when there is one,
   * else the first arm.
   */
  readout(armOrder: readonly string[]): {
    arms: ArmReadout[];
    baseline: string | null;
    tally: ReadoutTally;
    impressionBasis: ImpressionBasis;
  } {
    const tally = { ...this.tally };
    for (const f of this.feedback) {
      const r = this.served.get(f.request);
      if (!r) {
        tally.unmatchedFeedback++;
        continue;
      }
      if (!r.ranks.has(f.item)) {
        tally.unknownItems++;
        continue;
      }
      if (f.action === "click") r.clicked.add(f.item);
      else if (f.action === "impression") r.impressed.add(f.item);
    }
    const acc = new Map<string, ArmCounts>();
    for (const r of this.served.values()) {
      let a = acc.get(r.arm);
      if (!a) {
        a = {
          requests: 0,
          servedItems: 0,
          impressionEvents: 0,
          seen: 0,
          clicks: 0,
          dcg: emptyMoments(),
          models: new Set(),
        };
        acc.set(r.arm, a);
      }
      a.requests++;
      a.servedItems += r.ranks.size;
      a.impressionEvents += r.impressed.size;
      // A click is an impression the client did not report separately.
      a.seen += new Set([...r.impressed, ...r.clicked]).size;
      a.clicks += r.clicked.size;
      addMoment(a.dcg, dcgOfClicks([...r.clicked].map((item) => r.ranks.get(item) ?? Number.POSITIVE_INFINITY)));
      if (r.model) a.models.add(r.model);
    }
    // One basis for every arm, so their CTRs compare: feedback impressions when
    // the clients of this experiment send any, else every served item.
    const impressionBasis: ImpressionBasis = [...acc.values()].some((a) => a.impressionEvents > 0)
      ? "feedback"
      : "served";
    const names = [...armOrder, ...[...acc.keys()].filter((a) => !armOrder.includes(a)).sort()];
    const baseline = names.includes("control") ? "control" : (names[0] ?? null);
    const counts = (name: string) =>
      acc.get(name) ?? {
        requests: 0,
        servedItems: 0,
        impressionEvents: 0,
        seen: 0,
        clicks: 0,
        dcg: emptyMoments(),
        models: new Set<string>(),
      };
    const trials = (a: ArmCounts) => (impressionBasis === "feedback" ? a.seen : a.servedItems);
    const base = baseline === null ? null : counts(baseline);
    const arms = names.map((name): ArmReadout => {
      const a = counts(name);
      const n = trials(a);
      const interval = wilson(a.clicks, n);
      const dcg = meanInterval(a.dcg);
      const vs =
        base && name !== baseline
          ? {
              ctr: round6(proportionDifference(a.clicks, n, base.clicks, trials(base))),
              dcg: round6(meanDifference(a.dcg, base.dcg)),
            }
          : null;
      return {
        arm: name,
        models: [...a.models].sort(),
        requests: a.requests,
        served_items: a.servedItems,
        impression_events: a.impressionEvents,
        impressions: n,
        clicks: a.clicks,
        ctr: round6({ value: n > 0 ? a.clicks / n : 0, low: interval.low, high: interval.high }),
        ctr_served: round6({ value: a.servedItems > 0 ? a.clicks / a.servedItems : 0 }),
        // A DCG is never negative: the normal interval's lower end is clipped at 0.
        dcg: round6({ mean: dcg.mean, low: Math.max(0, dcg.low), high: dcg.high, sd: dcg.sd }),
        vs_baseline: vs,
      };
    });
    return { arms, baseline, tally, impressionBasis };
  }
}

export type ImpressionBasis = "feedback" | "served";

interface ArmCounts {
  requests: number;
  servedItems: number;
  impressionEvents: number;
  /** Distinct items reported seen: impression feedback ∪ clicks. */
  seen: number;
  clicks: number;
  dcg: Moments;
  models: Set<string>;
}

export interface ArmReadout {
  arm: string;
  /** The models that answered in this arm (`name@version`; `hand_tuned` ones too, and fallbacks). */
  models: string[];
  /** Answers served (each request once). */
  requests: number;
  /** Items in those answers. */
  served_items: number;
  /** Items reported by `impression` feedback. */
  impression_events: number;
  /** The CTR's denominator: see ImpressionBasis. */
  impressions: number;
  /** Distinct (request, item) clicks on served items. */
  clicks: number;
  ctr: { value: number; low: number; high: number };
  /** Clicks per served item, whatever the basis. */
  ctr_served: { value: number };
  /** DCG of clicks per served request. */
  dcg: { mean: number; low: number; high: number; sd: number };
  vs_baseline: null | { ctr: { diff: number } & Interval; dcg: { diff: number } & Interval };
}

/** Six decimals: enough for a rate or a DCG, and an answer that reads. */
function round6<T extends { [K in keyof T]: number }>(v: T): T {
  return Object.fromEntries(Object.entries<number>(v).map(([k, x]) => [k, Math.round(x * 1e6) / 1e6])) as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// --- the use case --------------------------------------------------------------

/** One log object as listed. */
export interface RecLogObject {
  key: string;
  size: number;
}

/** Reads the rec logs (the Worker's: platform/rec-log-reader.ts, over REC_LOG_STORE). */
export interface RecLogReader {
  /** Every object of one source and day (all pages of the listing). */
  list(source: string, day: string): Promise<RecLogObject[]>;
  /** An object's text; null when it is gone. */
  read(key: string): Promise<string | null>;
}

export interface ReadoutPorts {
  logs: RecLogReader;
  experiments: Pick<ExperimentStore, "current">;
  clock: { now(): number };
  /** Most bytes of logs one readout reads (REC_READOUT_MAX_BYTES). */
  maxBytes: number;
}

export const READOUT_DEFAULT_DAYS = 14;
export const READOUT_MAX_DAYS = 62;
/** Objects one readout may read, whatever their size: each is one R2 read. */
export const READOUT_MAX_OBJECTS = 5_000;
/** R2 reads in flight at once. */
const READ_CONCURRENCY = 6;

export interface ReadoutQuery {
  experiment?: string;
  from?: string;
  to?: string;
}

export interface ExperimentReadout {
  source: string;
  experiment: { name: string; current: boolean };
  from: string;
  to: string;
  confidence: 0.95;
  impression_basis: ImpressionBasis;
  baseline: string | null;
  arms: ArmReadout[];
  read: { objects: number; bytes: number; lines: number };
  dropped: {
    duplicate_messages: number;
    duplicate_requests: number;
    malformed: number;
    other_experiments: number;
    unmatched_feedback: number;
    unknown_items: number;
  };
}

const DAY_MS = 86_400_000;

/** The days of a readout, checked: at most READOUT_MAX_DAYS, `from` not after `to`. */
export function readoutDays(query: ReadoutQuery, now: number): { from: string; to: string; days: string[] } {
  const to = query.to ?? dayString(now);
  const toMs = dayMs(to, "to");
  const from = query.from ?? dayString(toMs - (READOUT_DEFAULT_DAYS - 1) * DAY_MS);
  const fromMs = dayMs(from, "from");
  if (fromMs > toMs) throw badRequest(`from (${from}) is after to (${to})`);
  const count = Math.round((toMs - fromMs) / DAY_MS) + 1;
  if (count > READOUT_MAX_DAYS) {
    throw badRequest(`from ${from} to ${to} is ${count} days; a readout covers at most ${READOUT_MAX_DAYS}`);
  }
  return { from, to, days: Array.from({ length: count }, (_, i) => dayString(fromMs + i * DAY_MS)) };
}

function dayMs(day: string, name: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(day) ? Date.parse(`${day}T00:00:00Z`) : Number.NaN;
  if (!Number.isFinite(ms) || dayString(ms) !== day)
    throw badRequest(`${name} must be a day, YYYY-MM-DD (got "${day}")`);
  return ms;
}

const dayString = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The readout of a source's experiment (the current one, or `query.experiment`)
 * over a day range. Lists the range first and refuses (400) a range whose logs
 * exceed the byte or object cap before reading any of them, so a wide range
 * is a clear answer rather than a timeout.
 */
export async function experimentReadout(
  ports: ReadoutPorts,
  source: string,
  query: ReadoutQuery,
): Promise<ExperimentReadout> {
  const { from, to, days } = readoutDays(query, ports.clock.now());
  const current = (await ports.experiments.current(source, { fresh: true })).experiment;
  const name = query.experiment ?? current.name;
  const isCurrent = name === current.name;
  const objects: RecLogObject[] = [];
  let bytes = 0;
  for (const day of days) {
    for (const o of await ports.logs.list(source, day)) {
      objects.push(o);
      bytes += o.size;
    }
    if (bytes > ports.maxBytes || objects.length > READOUT_MAX_OBJECTS) {
      throw badRequest(
        `the logs of ${source} from ${from} to ${to} exceed what one readout reads (${ports.maxBytes} bytes, ${READOUT_MAX_OBJECTS} objects; over it by ${day}): ask for fewer days`,
        { max_bytes: ports.maxBytes, max_objects: READOUT_MAX_OBJECTS, over_at: day },
      );
    }
  }
  const acc = new ReadoutAccumulator(name);
  let next = 0;
  const worker = async () => {
    while (next < objects.length) {
      const o = objects[next++] as RecLogObject;
      const text = await ports.logs.read(o.key);
      if (text !== null) acc.addText(text);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, objects.length) }, worker));
  const result = acc.readout(isCurrent ? current.arms.map((a) => a.name) : []);
  const t = result.tally;
  return {
    source,
    experiment: { name, current: isCurrent },
    from,
    to,
    confidence: 0.95,
    impression_basis: result.impressionBasis,
    baseline: result.baseline,
    arms: result.arms,
    read: { objects: objects.length, bytes, lines: t.lines },
    dropped: {
      duplicate_messages: t.duplicateMessages,
      duplicate_requests: t.duplicateRequests,
      malformed: t.malformed,
      other_experiments: t.otherExperiments,
      unmatched_feedback: t.unmatchedFeedback,
      unknown_items: t.unknownItems,
    },
  };
}
