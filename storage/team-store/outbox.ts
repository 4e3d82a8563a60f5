import { isMutationMessage } from "../../src/domains/messages";
import { MUTATIONS_QUEUE, type OutboxKey, type OutboxRow, type UnsentQuery } from "../../src/domains/outbox";
import type { TeamStore } from "../../src/teams/team-store";
import type { Guard } from "../change-log";
import { bulkInsert, chunkSizeOf, chunks, inList, num } from "../portable-sql";
import type { Dialect, Row, SqlDriver, Statement } from "../sql-driver";

// The outbox: rows written in a user write's unit (outboxInserts), relayed
// to the queue, stamped sent, sent again when never applied, pruned.

const OUTBOX_COLUMNS = ["team_id", "id", "queue", "body", "created_at"];

export function outboxRows(
  driver: SqlDriver,
): Pick<TeamStore, "unsentOutbox" | "markOutboxSent" | "unappliedOutbox" | "markOutboxResent" | "pruneSentOutbox"> {
  const d = driver.dialect;
  return {
    async unsentOutbox({ createdUpTo, limit, teamId, after }: UnsentQuery) {
      const where = ["`sent_at` IS NULL", "`created_at` <= ?"];
      const params: unknown[] = [createdUpTo];
      if (teamId !== undefined) {
        where.push("`team_id` = ?");
        params.push(teamId);
      }
      if (after) {
        where.push("(`created_at`, `team_id`, `id`) > (?, ?, ?)");
        params.push(after.createdAt, after.teamId, after.id);
      }
      const rows = await driver.all(
        `SELECT \`team_id\`, \`id\`, \`queue\`, \`body\`, \`created_at\` FROM outbox WHERE ${where.join(" AND ")} ORDER BY \`created_at\`, \`team_id\`, \`id\` LIMIT ?`,
        [...params, limit],
      );
      return rows.map(toOutboxRow);
    },

    async markOutboxSent(keys: readonly OutboxKey[], now) {
      await driver.atomic(stampSent(d, keys, now, "unsent only"));
    },

    async unappliedOutbox({ sentBefore, limit, teamId }) {
      const where = [
        "o.`sent_at` IS NOT NULL",
        "o.`sent_at` < ?",
        "NOT EXISTS (SELECT 1 FROM applied_mutations a WHERE a.`team_id` = o.`team_id` AND a.`id` = o.`id`)",
      ];
      const params: unknown[] = [sentBefore];
      if (teamId !== undefined) {
        where.push("o.`team_id` = ?");
        params.push(teamId);
      }
      const rows = await driver.all(
        `SELECT o.\`team_id\`, o.\`id\`, o.\`queue\`, o.\`body\`, o.\`created_at\` FROM outbox o WHERE ${where.join(" AND ")} ORDER BY o.\`sent_at\`, o.\`team_id\`, o.\`id\` LIMIT ?`,
        [...params, limit],
      );
      return rows.map(toOutboxRow);
    },

    async markOutboxResent(keys: readonly OutboxKey[], now) {
      await driver.atomic(stampSent(d, keys, now, "all"));
    },

    async pruneSentOutbox(sentBefore, limit) {
      // Only rows whose id the consumer applied: a sent row that was never
      // applied is a message the queue may have lost, still owed (redeliverUnapplied).
      const applied =
        "EXISTS (SELECT 1 FROM applied_mutations a WHERE a.`team_id` = outbox.`team_id` AND a.`id` = outbox.`id`)";
      const sql =
        d === "sqlite"
          ? `DELETE FROM outbox WHERE rowid IN (SELECT rowid FROM outbox WHERE \`sent_at\` < ? AND ${applied} ORDER BY \`sent_at\` LIMIT ?)`
          : `DELETE FROM outbox WHERE \`sent_at\` < ? AND ${applied} ORDER BY \`sent_at\` LIMIT ?`;
      const { changes } = await driver.run(sql, [sentBefore, limit]);
      return changes;
    },
  };
}

/** Outbox rows (unsent) for the write's unit; with a guard, each row only if it holds. */
export function outboxInserts(d: Dialect, rows: readonly OutboxRow[], guard?: Guard): Statement[] {
  const tuple = (r: OutboxRow) => [r.teamId, r.id, r.queue, JSON.stringify(r.body), r.createdAt];
  if (!guard) return rows.length === 0 ? [] : bulkInsert(d, "outbox", OUTBOX_COLUMNS, rows.map(tuple));
  // Selected from the team's row, which exists: a FROM both dialects accept with a WHERE.
  return rows.map((r) => ({
    sql: `INSERT INTO outbox (${OUTBOX_COLUMNS.map((c) => `\`${c}\``).join(", ")}) SELECT ?, ?, ?, ?, ? FROM teams WHERE \`id\` = ? AND (${guard.sql})`,
    params: [...tuple(r), r.teamId, ...guard.params],
  }));
}

/** Sets sent_at on outbox rows, team by team in IN-list chunks; "unsent only" keeps a row's first time. */
function stampSent(d: Dialect, keys: readonly OutboxKey[], now: number, which: "unsent only" | "all"): Statement[] {
  const statements: Statement[] = [];
  const unsent = which === "unsent only" ? " AND `sent_at` IS NULL" : "";
  for (const [teamId, ids] of byTeam(keys)) {
    for (const chunk of chunks(ids, chunkSizeOf(d))) {
      const { clause, params } = inList(d, chunk);
      statements.push({
        sql: `UPDATE outbox SET \`sent_at\` = ? WHERE \`team_id\` = ? AND \`id\` IN ${clause}${unsent}`,
        params: [now, teamId, ...params],
      });
    }
  }
  return statements;
}

function byTeam(keys: readonly OutboxKey[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of keys) out.set(k.teamId, [...(out.get(k.teamId) ?? []), k.id]);
  return out;
}

function toOutboxRow(r: Row): OutboxRow {
  const queue = String(r.queue);
  const body: unknown = JSON.parse(String(r.body));
  // Written by this code from typed values; a row that fails the check is
  // corruption, and relaying it would only move the problem to the consumer.
  if (queue !== MUTATIONS_QUEUE || !isMutationMessage(body)) {
    throw new Error(`corrupt outbox row ${String(r.team_id)}/${String(r.id)}`);
  }
  return { teamId: String(r.team_id), id: String(r.id), queue, body, createdAt: num(r.created_at) };
}
