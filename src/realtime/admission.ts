import { TokenBucket } from "./rate-limit";

// Connection admission for one gateway shard. A reconnect storm (every
// client of a team coming back within a second) must not take the gateway
// down, and the clients it turns away must not come back in lockstep: each
// refusal carries a retry delay drawn at random over the time the gateway
// needs to admit everyone refused recently, so the storm is spread into a
// steady stream the gateway can take.

export interface AdmissionLimits {
  /** Sockets one gateway holds at most. */
  maxSockets: number;
  /** New connections admitted per second (burst: one second's worth). */
  perSecond: number;
  /**
   * Subscribes in flight at most: the real backlog of a reconnect storm
   * (each reconnecting client resubscribes, which costs far more than the
   * accept). Beyond it new connections wait.
   */
  maxBacklog?: number;
}

export const DEFAULT_MAX_BACKLOG = 256;

export type Admission = { ok: true } | { ok: false; reason: "full" | "rate" | "busy"; retryAfterMs: number };

/** A full gateway frees slots only as clients leave: wait longer. */
const FULL_RETRY_MS = { min: 5_000, spread: 10_000 };
const MIN_RETRY_MS = 250;
/** Refusals are counted over this window to size the spread. */
const WINDOW_MS = 1_000;

export class Admitter {
  private readonly bucket: TokenBucket;
  private refused = 0;
  private windowStart: number;

  constructor(
    readonly limits: AdmissionLimits,
    now: number,
    private readonly random: () => number = Math.random,
  ) {
    this.bucket = new TokenBucket(limits.perSecond, limits.perSecond, now);
    this.windowStart = now;
  }

  admit(sockets: number, now: number, backlog = 0): Admission {
    if (sockets >= this.limits.maxSockets) {
      return { ok: false, reason: "full", retryAfterMs: FULL_RETRY_MS.min + this.random() * FULL_RETRY_MS.spread };
    }
    const maxBacklog = this.limits.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    if (backlog >= maxBacklog) {
      // Spread the waiting clients over roughly the time the backlog takes to drain at the admission rate.
      const spreadMs = Math.max(WINDOW_MS, (backlog / this.limits.perSecond) * 1000);
      return { ok: false, reason: "busy", retryAfterMs: MIN_RETRY_MS + this.random() * spreadMs };
    }
    if (this.bucket.take(now)) return { ok: true };
    if (now - this.windowStart > WINDOW_MS) {
      this.windowStart = now;
      this.refused = 0;
    }
    this.refused++;
    // Everyone refused this window, admitted at the configured rate, takes
    // this long; spread over it (plus the wait for the next token).
    const spreadMs = Math.max(WINDOW_MS, (this.refused / this.limits.perSecond) * 1000);
    return {
      ok: false,
      reason: "rate",
      retryAfterMs: Math.max(MIN_RETRY_MS, this.bucket.waitMs(now) + this.random() * spreadMs),
    };
  }
}
