// A token bucket: `rate` tokens a second, at most `burst` saved up. Used for
// connection admission per gateway, client frames per socket and publishes
// per topic. Time is passed in (milliseconds), so the rules test without a clock.

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

  private refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
      this.at = now;
    }
  }
}
