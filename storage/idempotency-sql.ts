import type { IdempotencyRecord, TeamStore } from "../src/teams/team-store";
import type { Guard } from "./change-log";
import { deleteOldest } from "./portable-sql";
import type { SqlDriver, Statement } from "./sql-driver";

// The Idempotency-Key record (src/teams/idempotency.ts) as statements for a
// write's own atomic unit, shared by the team store and the directory store:
// the change and its record commit together or not at all.

/**
 * The Idempotency-Key record of a write, in its atomic unit; with a guard
 * (a compare-and-set), only if the swap happens. A second write with the
 * same key fails on the primary key and takes its change down with it.
 */
export function idempotencyInsert(teamId: string, record: IdempotencyRecord | undefined, guard?: Guard): Statement[] {
  if (!record) return [];
  const columns = "(`team_id`, `idem_key`, `request_hash`, `result`, `created_at`)";
  const values = [teamId, record.key, record.requestHash, record.result, record.at];
  if (!guard) return [{ sql: `INSERT INTO idempotency_keys ${columns} VALUES (?, ?, ?, ?, ?)`, params: values }];
  return [
    {
      sql: `INSERT INTO idempotency_keys ${columns} SELECT ?, ?, ?, ?, ? FROM teams WHERE \`id\` = ? AND (${guard.sql})`,
      params: [...values, teamId, ...guard.params],
    },
  ];
}

/** The recorded keys: read one back (a retry), prune old ones (the cron sweep). */
export function idempotencyKeys(driver: SqlDriver): Pick<TeamStore, "idempotencyRecord" | "pruneIdempotencyKeys"> {
  return {
    async idempotencyRecord(teamId, key) {
      const rows = await driver.all(
        "SELECT `request_hash` AS h, `result` AS r, `created_at` AS t FROM idempotency_keys WHERE `team_id` = ? AND `idem_key` = ?",
        [teamId, key],
      );
      const row = rows[0];
      return row ? { key, requestHash: String(row.h), result: String(row.r), at: Number(row.t) } : null;
    },

    async pruneIdempotencyKeys(before, limit) {
      return deleteOldest(driver, "idempotency_keys", "created_at", before, limit);
    },
  };
}
