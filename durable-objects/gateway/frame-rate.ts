import { FRAME_BURST, FRAME_RATE, MAX_DROPPED_FRAMES } from "../../src/realtime/protocol";
import { TokenBucket } from "../../src/realtime/rate-limit";

// Client frames per socket: FRAME_RATE a second with bursts of FRAME_BURST.
// A frame over the rate is dropped (the client is told, and when to retry);
// a socket that keeps sending over it (MAX_DROPPED_FRAMES drops) is closed,
// to come back after RATE_LIMIT_RETRY_MS and some jitter. In memory: a
// woken gateway starts every socket with a full bucket.

/** A socket closed for its frame rate may come back after this (plus jitter). */
export const RATE_LIMIT_RETRY_MS = 5_000;

export type FrameVerdict = { kind: "ok" } | { kind: "drop"; message: string } | { kind: "close"; retryAfterMs: number };

export class FrameRate {
  /** Frames dropped by this instance. */
  dropped = 0;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly drops = new Map<string, number>();

  constructor(private readonly jitter: () => number = Math.random) {}

  /** Takes a token for one of the socket's frames. */
  take(sid: string, now: number): FrameVerdict {
    let bucket = this.buckets.get(sid);
    if (!bucket) {
      bucket = new TokenBucket(FRAME_RATE, FRAME_BURST, now);
      this.buckets.set(sid, bucket);
    }
    if (bucket.take(now)) return { kind: "ok" };
    this.dropped++;
    const drops = (this.drops.get(sid) ?? 0) + 1;
    this.drops.set(sid, drops);
    if (drops >= MAX_DROPPED_FRAMES) return { kind: "close", retryAfterMs: RATE_LIMIT_RETRY_MS * (1 + this.jitter()) };
    return {
      kind: "drop",
      message: `at most ${FRAME_RATE} frames a second; this one was dropped (retry in ${bucket.waitMs(now)} ms)`,
    };
  }

  forget(sid: string): void {
    this.buckets.delete(sid);
    this.drops.delete(sid);
  }
}
