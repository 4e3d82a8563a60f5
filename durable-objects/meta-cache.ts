// An object's `meta (key TEXT PRIMARY KEY, value TEXT)` table read through
// memory: a Topic or a Conversation needs a few of these values (its name,
// seq, counters) on every call, and only its own writes change them, so a
// value read once stays right until the object writes it. A transaction that
// failed may have written values it then rolled back: `clear()` drops them.

export class MetaCache {
  private readonly values = new Map<string, string | null>();

  constructor(private readonly sql: SqlStorage) {}

  get(key: string): string | null {
    if (this.values.has(key)) return this.values.get(key) ?? null;
    const value =
      this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
    this.values.set(key, value);
    return value;
  }

  set(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
    this.values.set(key, value);
  }

  /** Forgets a value (re-read from SQLite next time). */
  forget(key: string): void {
    this.values.delete(key);
  }

  clear(): void {
    this.values.clear();
  }
}
