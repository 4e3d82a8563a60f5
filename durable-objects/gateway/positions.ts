import type { SubTopic } from "../../src/realtime/topics";
import { WriteBehind } from "../write-behind";

// The seq every in-sync socket of a topic has been sent (the gateway's
// "shared position", see gateway.ts), in memory and in the gateway's SQLite
// (`delivered`), so a gateway woken from hibernation knows where its in-sync
// sockets are.
//
// The table is written behind the sends, not with them. A SQLite write in the
// turn that sends a delivery would hold every one of those sends until the
// write is durable (the Durable Object output gate): a few milliseconds on
// every event's way to every socket. Instead the position is changed in
// memory, the sends go out, and the table follows within FLUSH_MS, one write
// for every delivery meanwhile. This is safe because the table is only read
// by a new instance, and a new instance with the sockets still attached only
// comes from hibernation, which happens after the instance has been idle for
// seconds, long after this flush (a waitUntil, besides). An instance that
// dies without hibernating (a crash) loses its sockets with it; they resume
// with `since` and get exactly what they missed from the topic's log.

/** How long a changed position may wait to be written (ms): deliveries meanwhile share the write. */
export const FLUSH_MS = 25;

export class SharedPositions {
  private map: Map<SubTopic, number> | null = null;
  /** Changed positions (null: dropped), written within FLUSH_MS. */
  private readonly behind: WriteBehind<SubTopic, number | null>;

  constructor(
    private readonly sql: SqlStorage,
    /** Keeps the instance alive until the flush ran (ctx.waitUntil). */
    keep: (work: Promise<unknown>) => void,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS delivered (topic TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID");
    this.behind = new WriteBehind(FLUSH_MS, keep, (topic, seq) => {
      if (seq === null) sql.exec("DELETE FROM delivered WHERE topic = ?", topic);
      else sql.exec("INSERT OR REPLACE INTO delivered (topic, seq) VALUES (?, ?)", topic, seq);
    });
  }

  get(topic: SubTopic): number | undefined {
    return this.positions().get(topic);
  }

  /** Sets (or with null drops) a topic's shared position; written within FLUSH_MS. */
  set(topic: SubTopic, seq: number | null): void {
    const map = this.positions();
    if (seq === null) {
      if (!map.has(topic)) return;
      map.delete(topic);
    } else {
      if (map.get(topic) === seq) return;
      map.set(topic, seq);
    }
    this.behind.set(topic, seq);
  }

  /** Writes every changed position now. */
  flush(): void {
    this.behind.flush();
  }

  private positions(): Map<SubTopic, number> {
    if (this.map) return this.map;
    this.map = new Map();
    for (const row of this.sql.exec<{ topic: string; seq: number }>("SELECT topic, seq FROM delivered").toArray()) {
      this.map.set(row.topic as SubTopic, Number(row.seq));
    }
    return this.map;
  }
}
