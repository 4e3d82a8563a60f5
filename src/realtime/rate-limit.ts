import { positiveVar } from "../vars";

// A token bucket: `rate` tokens a second, at most `burst` saved up. Used for
// connection admission per gateway, client frames per socket, and publishes
// per poster per topic and per topic. Time is passed in (milliseconds), so
// the rules test without a clock.

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new Error("a token bucket needs rate > 0 and burst >= 1");
    this.tokens = burst;
    this.at = now;
  }

  /** Takes n tokens if there are n; false leaves the bucket as it was. */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until n tokens are there (0 when they are). */
  waitMs(now: number, n = 1): number {
    this.refill(now);
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) / this.rate) * 1000);
  }

  /** Whether the bucket is back at its burst: forgetting it then loses nothing (a new one starts full). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  private refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
      this.at = now;
    }
  }
}

/**
 * One bucket per key (a poster), created full on first use. Memory stays
 * bounded: past `maxKeys`, buckets that have refilled are forgotten (a
 * forgotten key starts full again, which is what it would be anyway); keys
 * still draining are kept, so nobody escapes a limit by crowding the map.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly maxKeys = 10_000,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new Error("a token bucket needs rate > 0 and burst >= 1");
  }

  /** Milliseconds until `key` may take one token (0: now). */
  waitMs(key: string, now: number): number {
    return this.buckets.get(key)?.waitMs(now) ?? 0;
  }

  /** Takes a token for `key` if it has one. */
  take(key: string, now: number): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.forgetFull(now);
      bucket = new TokenBucket(this.rate, this.burst, now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }

  private forgetFull(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(key);
  }
}

/**
 * The publish rates from the deployment's vars (TOPIC_PUBLISH_PER_SECOND,
 * TOPIC_PUBLISH_PER_USER_PER_SECOND); a bad value is logged and its default
 * used: a typo in a tuning knob should not refuse every publish.
 */
export function publishRatesOf(
  vars: { TOPIC_PUBLISH_PER_SECOND?: string; TOPIC_PUBLISH_PER_USER_PER_SECOND?: string },
  defaults: { perSecond: number; perPosterPerSecond: number },
): { perSecond: number; perPosterPerSecond: number } {
  const read = (name: string, value: string | undefined, fallback: number) => {
    try {
      return positiveVar(name, value, fallback);
    } catch (error) {
      console.error(error);
      return fallback;
    }
  };
  return {
    perSecond: read("TOPIC_PUBLISH_PER_SECOND", vars.TOPIC_PUBLISH_PER_SECOND, defaults.perSecond),
    perPosterPerSecond: read(
      "TOPIC_PUBLISH_PER_USER_PER_SECOND",
      vars.TOPIC_PUBLISH_PER_USER_PER_SECOND,
      defaults.perPosterPerSecond,
    ),
  };
}

/** A publish refused: how long to wait, and which limit said so. */
export interface PublishRefusal {
  retryAfterMs: number;
  limit: "poster" | "topic";
}

/**
 * A stream's two publish limits together (a Topic's publishes, a
 * Conversation's writes): per poster and overall. A publish takes one token
 * of each, or none when either is out (so a refused poster does not drain
 * the stream's budget). The rates are read on first use (`rates`), and an
 * operator may replace either at run time (Topic.configure).
 */
export class PublishLimits {
  private stream: TokenBucket | null = null;
  private posters: KeyedBuckets | null = null;

  constructor(private readonly rates: () => { perSecond: number; perPosterPerSecond: number }) {}

  /** null: admitted (one token taken from each bucket). */
  admit(poster: string, now: number): PublishRefusal | null {
    if (!this.stream || !this.posters) {
      const { perSecond, perPosterPerSecond } = this.rates();
      this.stream ??= new TokenBucket(perSecond, Math.max(1, perSecond * 2), now);
      this.posters ??= new KeyedBuckets(perPosterPerSecond, Math.max(1, perPosterPerSecond * 2));
    }
    const posterWait = this.posters.waitMs(poster, now);
    if (posterWait > 0) return { retryAfterMs: posterWait, limit: "poster" };
    const streamWait = this.stream.waitMs(now);
    if (streamWait > 0) return { retryAfterMs: streamWait, limit: "topic" };
    this.posters.take(poster, now);
    this.stream.take(now);
    return null;
  }

  setStreamRate(perSecond: number, now: number): void {
    this.stream = new TokenBucket(perSecond, Math.max(1, perSecond * 2), now);
  }

  setPosterRate(perSecond: number): void {
    this.posters = new KeyedBuckets(perSecond, Math.max(1, perSecond * 2));
  }
}
