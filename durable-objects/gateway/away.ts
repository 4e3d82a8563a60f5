import { WriteBehind } from "../write-behind";

// Users whose last socket on this gateway closed, and when they turn away
// (after the presence grace period), in memory and in the gateway's SQLite
// (`away_pending`), so the alarm of a gateway woken from hibernation still
// publishes their `away`.
//
// The table is written behind the closes, not with them: a write in a close
// handler's turn would hold every message the gateway sends until it is
// durable, and a reconnect storm closes thousands of sockets in a second
// (each close one commit, each commit delaying everyone's answers). Changes
// are applied in memory at once and written within FLUSH_MS, one transaction
// for every close meanwhile. What that risks is what a crash already costs:
// a gateway that dies without hibernating loses its sockets without close
// events, and their users stay active until they connect again (docs/realtime.md,
// known limits). Hibernation waits for an idle instance, long after a flush.

/** How long a change may wait to be written (ms). */
export const FLUSH_MS = 50;

export class AwayLedger {
  private map: Map<string, { team: string; due: number }> | null = null;
  /** Changed entries (null: removed), written within FLUSH_MS. */
  private readonly behind: WriteBehind<string, { team: string; due: number } | null>;

  constructor(
    private readonly sql: SqlStorage,
    /** Keeps the instance alive until the flush ran (ctx.waitUntil). */
    keep: (work: Promise<unknown>) => void,
  ) {
    sql.exec(
      "CREATE TABLE IF NOT EXISTS away_pending (user TEXT PRIMARY KEY, team TEXT NOT NULL, due INTEGER NOT NULL)",
    );
    this.behind = new WriteBehind(FLUSH_MS, keep, (user, entry) => {
      if (entry === null) sql.exec("DELETE FROM away_pending WHERE user = ?", user);
      else
        sql.exec("INSERT OR REPLACE INTO away_pending (user, team, due) VALUES (?, ?, ?)", user, entry.team, entry.due);
    });
  }

  /** Whether the user's away is pending (they left within the grace period). */
  has(user: string): boolean {
    return this.pending().has(user);
  }

  /** The user's last socket closed: away at `due` unless they come back. */
  leave(user: string, team: string, due: number): void {
    const entry = { team, due };
    this.pending().set(user, entry);
    this.behind.set(user, entry);
  }

  /** The entries due by `now`, removed. */
  takeDue(now: number): Array<{ user: string; team: string }> {
    const out: Array<{ user: string; team: string }> = [];
    for (const [user, { team, due }] of this.pending()) {
      if (due > now) continue;
      this.pending().delete(user);
      this.behind.set(user, null);
      out.push({ user, team });
    }
    return out;
  }

  earliest(): number | null {
    let next: number | null = null;
    for (const { due } of this.pending().values()) if (next === null || due < next) next = due;
    return next;
  }

  get size(): number {
    return this.pending().size;
  }

  /** Writes every change now. */
  flush(): void {
    this.behind.flush();
  }

  private pending(): Map<string, { team: string; due: number }> {
    if (this.map) return this.map;
    this.map = new Map();
    for (const r of this.sql
      .exec<{ user: string; team: string; due: number }>("SELECT user, team, due FROM away_pending")
      .toArray()) {
      this.map.set(r.user, { team: r.team, due: Number(r.due) });
    }
    return this.map;
  }
}
