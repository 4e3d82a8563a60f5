import { WriteBehind } from "../write-behind";

// A topic's gateway shards with subscribers, each with the last seq it
// acknowledged and a version (bumped by every registration, so a "no
// subscribers left" answer from before a registration cannot drop it), in
// memory and in the topic's SQLite (`gateways`).
//
// Registrations and drops are written at once. Acknowledgements are written
// behind the rounds (within FLUSH_MS, one write for every round meanwhile):
// a write in the round's turn would hold the topic's next messages (the
// publish answers, the next round's deliveries) until it is durable, on
// every event. An acknowledgement only saves resending: a topic that
// restarts with an older one sends a gateway events it already has, which
// the gateway skips (it continues each socket by seq), so nothing a client
// sees depends on it being written.

/** How long an acknowledgement may wait to be written (ms). */
export const FLUSH_MS = 50;

export interface Registered {
  name: string;
  acked: number;
  version: number;
}

export class GatewayRegistry {
  private rows: Map<string, { acked: number; version: number }> | null = null;
  /** Acknowledgements not yet written (gateway name → seq), written within FLUSH_MS. */
  private readonly pending: WriteBehind<string, number>;

  constructor(
    private readonly sql: SqlStorage,
    /** Keeps the instance alive until the flush ran (ctx.waitUntil). */
    keep: (work: Promise<unknown>) => void,
  ) {
    this.pending = new WriteBehind(FLUSH_MS, keep, (name, acked) =>
      sql.exec("UPDATE gateways SET acked = MAX(acked, ?) WHERE name = ?", acked, name),
    );
  }

  /** A gateway with a socket subscribing: a new one starts at `seq`, a known one keeps its position. */
  register(name: string, seq: number): void {
    this.sql.exec(
      `INSERT INTO gateways (name, acked, version) VALUES (?, ?, 1)
       ON CONFLICT (name) DO UPDATE SET version = version + 1`,
      name,
      seq,
    );
    const rows = this.all();
    const row = rows.get(name);
    if (row) row.version++;
    else rows.set(name, { acked: seq, version: 1 });
  }

  /** Gateways that have not acknowledged `seq`. */
  behind(seq: number): Registered[] {
    const out: Registered[] = [];
    for (const [name, r] of this.all()) if (r.acked < seq) out.push({ name, acked: r.acked, version: r.version });
    return out;
  }

  /** The gateway has every event up to `seq` (written within FLUSH_MS). */
  ack(name: string, seq: number): void {
    const row = this.all().get(name);
    if (!row || row.acked >= seq) return;
    row.acked = seq;
    this.pending.set(name, seq);
  }

  /** The gateway said it has no subscribers left: dropped, unless it registered again since (another version). */
  drop(name: string, version: number): void {
    const rows = this.all();
    if (rows.get(name)?.version !== version) return;
    rows.delete(name);
    this.pending.forget(name);
    this.sql.exec("DELETE FROM gateways WHERE name = ? AND version = ?", name, version);
  }

  list(): Registered[] {
    return [...this.all()]
      .map(([name, r]) => ({ name, acked: r.acked, version: r.version }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  flush(): void {
    this.pending.flush();
  }

  private all(): Map<string, { acked: number; version: number }> {
    if (this.rows) return this.rows;
    this.rows = new Map();
    for (const r of this.sql
      .exec<{ name: string; acked: number; version: number }>("SELECT name, acked, version FROM gateways")
      .toArray()) {
      this.rows.set(r.name, { acked: Number(r.acked), version: Number(r.version) });
    }
    return this.rows;
  }
}
