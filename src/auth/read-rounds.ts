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
// Why each round runs in one of its own callers' turns: in workerd an I/O
// call belongs to the request that made it, and ends with it. The caller who
// starts a round waits on it too; when it ends, the next round is started by
// the first caller waiting (its promise is resolved with "lead", and its own
// continuation makes the call). A caller whose request went away while
// leading leaves the others waiting: each waiter gives up after `deadlineMs`
// and reads alone, and a round older than that no longer holds the queue.

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
  settle: (outcome: Outcome<V>) => void;
}

export class ReadRounds<K, V> {
  private running: { id: number; startedAt: number } | null = null;
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
    if (this.running === null) return this.lead(key);
    const outcome = await this.wait(key);
    if (outcome.kind === "value") return outcome.value;
    if (outcome.kind === "lead") return this.lead(key);
    return this.alone([key]).then((m) => m.get(key));
  }

  private wait(key: K): Promise<Outcome<V>> {
    return new Promise<Outcome<V>>((resolve) => {
      let done = false;
      const waiter: Waiter<K, V> = {
        key,
        settle: (outcome) => {
          done = true;
          resolve(outcome);
        },
      };
      // Not cleared when the waiter is settled: the timer belongs to the
      // waiter's request, and the settling round runs in another one, which
      // may not touch it (workerd: I/O of one request from another). Left to
      // fire, it finds the waiter done.
      setTimeout(() => {
        if (done) return;
        done = true;
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        resolve({ kind: "alone" });
      }, this.options.deadlineMs);
      this.waiting.push(waiter);
    });
  }

  /** Runs one round in this caller's turn: its own key and the waiters that fit. */
  private async lead(own: K): Promise<V | undefined> {
    const id = this.nextId++;
    this.running = { id, startedAt: this.now() };
    const riders = this.waiting.splice(0, this.options.maxBatch - 1);
    const keys = [...new Set([own, ...riders.map((r) => r.key)])];
    try {
      const found = await this.alone(keys);
      for (const r of riders) r.settle({ kind: "value", value: found.get(r.key) });
      return found.get(own);
    } catch (error) {
      // Each rider tries alone in its own turn; the leader's caller sees the
      // error, as it would have without the round.
      for (const r of riders) r.settle({ kind: "alone" });
      throw error;
    } finally {
      if (this.running?.id === id) {
        this.running = null;
        const next = this.waiting.shift();
        if (next) {
          // Held for the promoted waiter until its turn starts the round.
          this.running = { id: this.nextId++, startedAt: this.now() };
          next.settle({ kind: "lead" });
        }
      }
    }
  }

  private alone(keys: K[]): Promise<Map<K, V>> {
    this.calls++;
    return this.readMany(keys);
  }
}
