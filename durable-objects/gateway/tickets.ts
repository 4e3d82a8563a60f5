// Single use of socket tickets (src/realtime/tickets.ts). A ticket names its
// user, and all of a user's sockets land on the same gateway shard, so that
// shard alone sees every use of it: the nonce is recorded in the gateway's
// SQLite when a socket is accepted with it, and any later connect with it
// is refused. A record is only needed while the ticket could still verify,
// so it is pruned once the ticket has expired (plus the clock skew the
// Worker and the gateway might have between them).

/** Seconds a record is kept past its ticket's expiry, in case the Worker's clock runs behind ours. */
const PRUNE_MARGIN_SECONDS = 60;
/** Pruning runs on a record at most this often (and on the gateway's alarm). */
const PRUNE_EVERY_MS = 10_000;

export class TicketLedger {
  private lastPrune = 0;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS used_tickets (nonce TEXT PRIMARY KEY, exp INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS used_tickets_by_exp ON used_tickets (exp);
    `);
  }

  /** Whether a socket was already accepted with this nonce. */
  used(nonce: string): boolean {
    return this.sql.exec("SELECT 1 FROM used_tickets WHERE nonce = ?", nonce).toArray().length > 0;
  }

  /** Records the nonce of an accepted socket's ticket (expiring at `exp`, seconds). */
  record(nonce: string, exp: number, now: number): void {
    this.sql.exec("INSERT OR IGNORE INTO used_tickets (nonce, exp) VALUES (?, ?)", nonce, exp);
    if (now - this.lastPrune >= PRUNE_EVERY_MS) this.prune(now);
  }

  /** Drops the records of tickets that can no longer verify. */
  prune(now: number): void {
    this.lastPrune = now;
    this.sql.exec("DELETE FROM used_tickets WHERE exp < ?", Math.floor(now / 1000) - PRUNE_MARGIN_SECONDS);
  }

  size(): number {
    return Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM used_tickets").one().n);
  }
}
