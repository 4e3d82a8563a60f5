// Reconnect delays: exponential with full jitter (a uniform draw between 0
// and the exponential cap). When a gateway restarts, every one of its
// sockets drops at the same instant; without jitter they would all come back
// on the same schedule, as a storm on each retry. A server that says how
// long to wait (a close reason's retry_after_ms, already jittered by the
// server) is obeyed instead.

export interface BackoffOptions {
  /** The cap of the first retry's draw, in ms. */
  baseMs?: number;
  /** The largest cap, in ms. */
  maxMs?: number;
  /** A uniform draw in [0, 1); Math.random unless a test fixes it. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /**
   * The wait before the next reconnect: a draw under a cap that doubles with
   * each failed try. Even the first reconnect after a long-held connection is
   * drawn, never immediate: that is the one every socket of a restarted
   * gateway makes at the same moment.
   */
  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * cap);
  }

  /** A connection held: the next failure starts again from the first delay. */
  reset(): void {
    this.attempt = 0;
  }

  /** Tries since the last success. */
  get attempts(): number {
    return this.attempt;
  }
}
