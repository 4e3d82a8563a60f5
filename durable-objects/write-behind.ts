/**
 * Writes that may trail what they describe, batched: `set(key, value)`
 * records the latest value of a key, the first change after a flush starts
 * a timer of `ms`, and when it fires `write` runs once per changed key with
 * its latest value. `keep` holds the object up until then (ctx.waitUntil).
 *
 * Why: a Durable Object's SQLite write in the turn that sends messages holds
 * every one of those sends until the write is durable (the output gate).
 * Used where the table is only read by a later instance, which only comes
 * after seconds of idleness (hibernation), long after a flush: gateway
 * positions and away list, a topic's gateway acknowledgements.
 */
export class WriteBehind<K, V> {
  private readonly changed = new Map<K, V>();
  private scheduled = false;

  constructor(
    private readonly ms: number,
    private readonly keep: (work: Promise<unknown>) => void,
    private readonly write: (key: K, value: V) => void,
  ) {}

  /** The key's latest value, written within `ms` (later changes meanwhile share the write). */
  set(key: K, value: V): void {
    this.changed.set(key, value);
    if (this.scheduled) return;
    this.scheduled = true;
    this.keep(
      new Promise((resolve) => setTimeout(resolve, this.ms)).then(() => {
        this.scheduled = false;
        this.flush();
      }),
    );
  }

  /** Forgets a pending change (the caller wrote the key itself). */
  forget(key: K): void {
    this.changed.delete(key);
  }

  /** Writes every pending change now. */
  flush(): void {
    for (const [key, value] of this.changed) this.write(key, value);
    this.changed.clear();
  }
}
