import type { IndexQueue, QueuedRefresh } from "../src/connect/index-feed";
import type { Dialect, SqlDriver, Statement } from "./sql-driver";

// The admin-search queue (storage/schema: connect_index_queue) on either
// engine. Writers put `queueRefresh` statements in their own atomic unit;
// the team's index (durable-objects/connect-index/) takes its rows, computes
// the documents again from the source of truth, and removes each row only
// if no change re-queued it meanwhile (its seq is still the one read).

/** The statements that queue (team, partner) refreshes: a new row, or one more change counted on the row there. */
export function queueRefresh(
  d: Dialect,
  entries: ReadonlyArray<{ team: string; partner: string }>,
  now: number,
): Statement[] {
  const seen = new Set<string>();
  const out: Statement[] = [];
  for (const { team, partner } of entries) {
    const key = `${team}\u0000${partner}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      sql:
        d === "sqlite"
          ? `INSERT INTO connect_index_queue (team_id, partner_id, seq, queued_at) VALUES (?, ?, 1, ?)
             ON CONFLICT (team_id, partner_id) DO UPDATE SET seq = seq + 1, queued_at = excluded.queued_at`
          : `INSERT INTO connect_index_queue (team_id, partner_id, seq, queued_at) VALUES (?, ?, 1, ?)
             ON DUPLICATE KEY UPDATE seq = seq + 1, queued_at = VALUES(queued_at)`,
      params: [team, partner, now],
    });
  }
  return out;
}

/** Both sides of a pair: each team's document of their connection changes. */
export function pairRefresh(d: Dialect, a: string, b: string, now: number): Statement[] {
  return queueRefresh(
    d,
    [
      { team: a, partner: b },
      { team: b, partner: a },
    ],
    now,
  );
}

export function indexQueue(db: SqlDriver): IndexQueue {
  return {
    async queued(team, limit) {
      const rows = await db.all(
        "SELECT partner_id, seq FROM connect_index_queue WHERE team_id = ? ORDER BY queued_at, partner_id LIMIT ?",
        [team, limit],
      );
      return rows.map((r): QueuedRefresh => ({ partner: String(r.partner_id), seq: Number(r.seq) }));
    },

    async taken(team, refreshes) {
      if (refreshes.length === 0) return;
      await db.atomic(
        refreshes.map((r) => ({
          sql: "DELETE FROM connect_index_queue WHERE team_id = ? AND partner_id = ? AND seq = ?",
          params: [team, r.partner, r.seq],
        })),
      );
    },

    async teamsQueued(from, to, limit) {
      const rows = await db.all(
        "SELECT DISTINCT team_id FROM connect_index_queue WHERE queued_at >= ? AND queued_at <= ? LIMIT ?",
        [from, to, limit],
      );
      return rows.map((r) => String(r.team_id));
    },
  };
}

/** Every partner of `team` (connections live or ended) queues its document of `team` (a new name or domains). */
export function partnersRefresh(d: Dialect, team: string, now: number): Statement {
  const tail =
    d === "sqlite"
      ? " ON CONFLICT (team_id, partner_id) DO UPDATE SET seq = seq + 1, queued_at = excluded.queued_at"
      : " ON DUPLICATE KEY UPDATE seq = seq + 1, queued_at = VALUES(queued_at)";
  return {
    sql: `INSERT INTO connect_index_queue (team_id, partner_id, seq, queued_at)
      SELECT CASE WHEN inviter = ? THEN invitee ELSE inviter END, ?, 1, ?
      FROM connections WHERE inviter = ? OR invitee = ?${tail}`,
    params: [team, team, now, team, team],
  };
}
