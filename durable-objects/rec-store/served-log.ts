import type { FeedbackCheck, ServedRequest } from "../../src/recommend/ports";

// What a team's recommend answers were, kept for a while so feedback can be
// checked: it must name a request of this very user and an item that request
// served. SQLite in the team's RecStore object; rows older than
// SERVED_TTL_MS are swept.

export const SERVED_TTL_MS = 30 * 24 * 3600 * 1000;

type Sql = SqlStorage;

export function migrateServed(sql: Sql): void {
  sql.exec(`
    CREATE TABLE IF NOT EXISTS served (
      request_id TEXT PRIMARY KEY, user TEXT NOT NULL, source TEXT NOT NULL, experiment TEXT NOT NULL,
      arm TEXT NOT NULL, items TEXT NOT NULL, ts INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS served_ts ON served (ts);
  `);
}

export function recordServed(sql: Sql, r: ServedRequest): void {
  sql.exec(
    "INSERT OR REPLACE INTO served (request_id, user, source, experiment, arm, items, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
    r.requestId,
    r.user,
    r.source,
    r.experiment,
    r.arm,
    JSON.stringify(r.items),
    r.ts,
  );
}

/**
 * Feedback may only name the user's own request (another user's, or an
 * unknown or expired one, is "not found": ids are not confirmed to strangers)
 * and only items it served.
 */
export function checkFeedback(sql: Sql, requestId: string, user: string, items: readonly string[]): FeedbackCheck {
  const row = sql
    .exec<{ user: string; source: string; experiment: string; arm: string; items: string; ts: number }>(
      "SELECT user, source, experiment, arm, items, ts FROM served WHERE request_id = ?",
      requestId,
    )
    .toArray()[0];
  if (!row || row.user !== user) return { ok: false, code: "not_found", message: `request ${requestId} not found` };
  const served = JSON.parse(row.items) as string[];
  const known = new Set(served);
  const unknown = items.filter((i) => !known.has(i));
  if (unknown.length > 0) {
    return {
      ok: false,
      code: "unknown_item",
      message: `request ${requestId} did not serve ${unknown.slice(0, 5).join(", ")}`,
    };
  }
  return {
    ok: true,
    request: {
      requestId,
      user: row.user,
      source: row.source,
      experiment: row.experiment,
      arm: row.arm,
      items: served,
      ts: Number(row.ts),
    },
  };
}

export function sweepServed(sql: Sql, now: number): number {
  return sql.exec("DELETE FROM served WHERE ts < ?", now - SERVED_TTL_MS).rowsWritten;
}
