import { ORG_PREFS } from "../src/connect/index-feed";
import type { ConnectPrefsStore, PrefAuditEntry, PrefLevelRow } from "../src/connect/prefs-store";
import { ORG_LEVEL } from "../src/connect/prefs-store";
import { queueRefresh } from "./connect-index-queue-sql";
import { chunks, inListSize } from "./portable-sql";
import { type SqlDriver, type Statement, UniqueViolation } from "./sql-driver";

// ConnectPrefsStore on either engine. The payload is a BLOB (D1) or a
// MEDIUMBLOB (MySQL; the PlanetScale driver sends bytes as a hex literal and
// reads them back as bytes). A write is one atomic unit: the payload, guarded
// by the payload it replaces (compare-and-set: two admins editing at once
// never lose each other's change), and its audit lines.

/** Bytes as each engine's driver returns them: Uint8Array (PlanetScale), ArrayBuffer or an array of numbers (D1). */
function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (Array.isArray(value)) return Uint8Array.from(value as number[]);
  throw new Error("connect_prefs.prefs: not bytes");
}

function rowOf(r: Record<string, unknown>): PrefLevelRow {
  return {
    targetTeamId: String(r.target_team_id),
    prefs: bytesOf(r.prefs),
    dateCreate: Number(r.date_create),
    dateUpdate: Number(r.date_update),
  };
}

export function connectPrefsStore(db: SqlDriver): ConnectPrefsStore {
  const columns = "target_team_id, prefs, date_create, date_update";
  return {
    async levels(teamId, targetTeamIds) {
      // The admin search asks for a page of partners at once: more than one
      // D1 statement may bind, so the list is read in parts.
      const out: PrefLevelRow[] = [];
      for (const part of chunks(targetTeamIds, inListSize(db.dialect, 1))) {
        const marks = part.map(() => "?").join(", ");
        const rows = await db.all(
          `SELECT ${columns} FROM connect_prefs WHERE team_id = ? AND target_team_id IN (${marks})`,
          [teamId, ...part],
        );
        out.push(...rows.map(rowOf));
      }
      return out;
    },

    async list(teamId) {
      const rows = await db.all(`SELECT ${columns} FROM connect_prefs WHERE team_id = ? ORDER BY target_team_id`, [
        teamId,
      ]);
      return rows.map(rowOf);
    },

    async writeLevel(teamId, targetTeamId, prefs, previous, audit, now) {
      const write: Statement =
        previous === null
          ? {
              sql: "INSERT INTO connect_prefs (team_id, target_team_id, prefs, date_create, date_update) VALUES (?, ?, ?, ?, ?)",
              params: [teamId, targetTeamId, prefs, now, now],
            }
          : {
              sql: "UPDATE connect_prefs SET prefs = ?, date_update = ? WHERE team_id = ? AND target_team_id = ? AND prefs = ?",
              params: [prefs, now, teamId, targetTeamId, previous],
            };
      // The audit lines only land with the payload: each is inserted from the
      // row the write just produced (none when the guard did not hold).
      const lines: Statement[] = audit.map((a) => ({
        sql: `INSERT INTO connect_prefs_audit (team_id, id, target_team_id, pref_key, actor, at, \`before\`, \`after\`)
              SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM connect_prefs WHERE team_id = ? AND target_team_id = ? AND prefs = ?`,
        params: [teamId, a.id, targetTeamId, a.prefKey, a.actor, a.at, a.before, a.after, teamId, targetTeamId, prefs],
      }));
      try {
        // The admin search's documents of that partner (for the org level: the
        // index's org values) are computed again: queued in the same unit.
        const partner = targetTeamId === ORG_LEVEL ? ORG_PREFS : targetTeamId;
        const refresh = queueRefresh(db.dialect, [{ team: teamId, partner }], now);
        const results = await db.atomic([write, ...lines, ...refresh]);
        return (results[0]?.changes ?? 0) === 1;
      } catch (error) {
        // Another admin created the level first (the drivers raise UniqueViolation).
        if (error instanceof UniqueViolation) return false;
        throw error;
      }
    },

    async audit(teamId, limit) {
      const rows = await db.all(
        `SELECT id, target_team_id, pref_key, actor, at, \`before\`, \`after\` FROM connect_prefs_audit
         WHERE team_id = ? ORDER BY at DESC, id DESC LIMIT ?`,
        [teamId, limit],
      );
      return rows.map(
        (r): PrefAuditEntry => ({
          id: String(r.id),
          targetTeamId: String(r.target_team_id),
          prefKey: String(r.pref_key),
          actor: String(r.actor),
          at: Number(r.at),
          before: r.before === null ? null : String(r.before),
          after: r.after === null ? null : String(r.after),
        }),
      );
    },
  };
}
