// Reads of live state, coalesced in rounds (a Nagle for lookups): a read
// with nothing in flight goes out at once, alone; reads that arrive while a
// round is in flight wait and then go out together, as the next round, in
// one call. At low load nothing waits; under a storm (thousands of sockets
// connecting after a deploy) one call answers a few hundred callers.
//
// Why rounds are never joined mid-flight: a read that arrives while a round
// is out was not part of what that round asked, so it waits for the next
// round, which starts after it arrived. Every answer is therefore live state
// read after its caller asked, never an older answer shared with it: a user
// deactivated a moment ago is not let in on the strength of a read that
// started before.
//
// Why no caller's promise is ever resolved by another caller: in workerd an
// I/O call belongs to the request that made it, and ends with it, and a
// continuation resumed from another request's turn may run in that other
// request (under a reconnect storm of 5,000 sockets that happened thousands
// of times, each a 500 "Cannot perform I/O on behalf of a different
// request", with handle_cross_request_promise_resolution on). So a round
// only writes each waiter's answer into the waiter's own record, and every
// waiter wakes on its own timer, in its own request, and looks: first after
// about as long as a round takes, then every half round, so a waiter looks a
// handful of times however long the queue (under a storm, thousands of
// waiters looking every millisecond cost more than the calls they saved).
// When a round's worth of callers is waiting, the next one starts at once,
// beside the one in flight: a queue never holds more than one round. The
// round itself runs
// in one of its own callers' turns: the caller who starts it, or, after a
// round, the first caller waiting, told to lead the next one. A caller whose
// request went away while leading leaves the others waiting: each gives up
// after `deadlineMs` and reads alone, and a round older than that no longer
// holds the queue.

/** Bounds of a waiter's pause between looks (ms). */
const MIN_POLL_MS = 1;
const MAX_POLL_MS = 50;

export interface ReadRoundsOptions {
  /** The most keys in one call. */
  maxBatch: number;
  /** How long a waiter waits for its round before reading alone. */
  deadlineMs: number;
  now?: () => number;
}

type Outcome<V> = { kind: "value"; value: V | undefined } | { kind: "lead" } | { kind: "alone" };

interface Waiter<K, V> {
  key: K;
  /** Written by the round that answers it; read only by the waiter. */
  outcome: Outcome<V> | null;
}

export class ReadRounds<K, V> {
  private running: { id: number; startedAt: number } | null = null;
  /** How long a round takes, smoothed: what a waiter expects to wait. */
  private roundMs = MIN_POLL_MS;
  private waiting: Array<Waiter<K, V>> = [];
  private nextId = 1;
  private readonly now: () => number;
  /** Calls made (rounds, and reads alone after a failed or abandoned round): for tests and metrics. */
  calls = 0;

  constructor(
    /** Reads many keys in one call; a key it leaves out has no value. */
    private readonly readMany: (keys: K[]) => Promise<Map<K, V>>,
    private readonly options: ReadRoundsOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Nothing in flight and nobody waiting. */
  get idle(): boolean {
    return this.running === null && this.waiting.length === 0;
  }

  /** The value of `key` as read after this call began (undefined: none). */
  async get(key: K): Promise<V | undefined> {
    if (this.running !== null && this.now() - this.running.startedAt > this.options.deadlineMs) {
      this.running = null; // its leader went away: it no longer holds the queue
    }
    // Nothing in flight, or a full round waiting: this caller starts one now.
    if (this.running === null || this.waiting.length >= this.options.maxBatch - 1) return this.lead(key);
    const outcome = await this.wait(key);
    if (outcome.kind === "value") return outcome.value;
    if (outcome.kind === "lead") return this.lead(key);
    return this.alone([key]).then((m) => m.get(key));
  }

  private async wait(key: K): Promise<Outcome<V>> {
    const waiter: Waiter<K, V> = { key, outcome: null };
    this.waiting.push(waiter);
    const since = this.now();
    const clamp = (ms: number) => Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, Math.round(ms)));
    for (let pause = clamp(this.roundMs); ; pause = clamp(this.roundMs / 2)) {
      await new Promise((resolve) => setTimeout(resolve, pause));
      if (waiter.outcome !== null) return waiter.outcome;
      if (this.now() - since > this.options.deadlineMs) {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        return { kind: "alone" };
      }
    }
  }

  /** Runs one round in this caller's turn: its own key and the waiters that fit. */
  private async lead(own: K): Promise<V | undefined> {
    const id = this.nextId++;
    this.running = { id, startedAt: this.now() };
    const riders = this.waiting.splice(0, this.options.maxBatch - 1);
    const keys = [...new Set([own, ...riders.map((r) => r.key)])];
    try {
      const started = this.now();
      const found = await this.alone(keys);
      this.roundMs = 0.8 * this.roundMs + 0.2 * (this.now() - started);
      for (const r of riders) r.outcome = { kind: "value", value: found.get(r.key) };
      return found.get(own);
    } catch (error) {
      // Each rider tries alone in its own turn; the leader's caller sees the
      // error, as it would have without the round.
      for (const r of riders) r.outcome = { kind: "alone" };
      throw error;
    } finally {
      if (this.running?.id === id) {
        this.running = null;
        const next = this.waiting.shift();
        if (next) {
          // Held for the promoted waiter until its turn starts the round.
          this.running = { id: this.nextId++, startedAt: this.now() };
          next.outcome = { kind: "lead" };
        }
      }
    }
  }

  private alone(keys: K[]): Promise<Map<K, V>> {
    this.calls++;
    return this.readMany(keys);
  }
}
