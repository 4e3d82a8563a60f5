import { chunks, MYSQL_CHUNK, num, SQLITE_CHUNK } from "./portable-sql";
import type { Dialect, Statement, StatementResult } from "./sql-driver";

// The directory change log's write side, shared by the stores that change
// directory entities: directory-store.ts (channels, memberships, profiles) and
// sql-store.ts (the admin user writes). Both append the log inside the same
// atomic unit as the entity rows; see directory-store.ts for the encoding.

export type LogKind = "user" | "channel" | "member_added" | "member_removed" | "bulk";

export interface LogRow {
  kind: LogKind;
  entityId: string;
  extra: string;
}

/**
 * A condition on the database as the unit finds it (SQL that is true or
 * false, with its parameters). A guarded log append happens only when it
 * holds, so the version bump and the log rows follow a compare-and-set made
 * later in the same unit: both or neither.
 */
export interface Guard {
  sql: string;
  params: readonly unknown[];
}

/**
 * Bumps a team's dir_version by rows.length and logs the rows with the
 * versions that bump made room for, inside the caller's atomic unit. Row n
 * (0-based) gets version dir_version_after - (k - 1 - n).
 *
 * With a guard, every statement is conditional on it. On MySQL the guarded
 * form inserts row by row (INSERT ... SELECT, which can carry a WHERE): it is
 * meant for single-entity writes.
 */
export function versionStatements(d: Dialect, teamId: string, rows: LogRow[], at: number, guard?: Guard): Statement[] {
  const k = rows.length;
  if (k === 0) return [];
  const when = guard ? ` AND (${guard.sql})` : "";
  const whenParams = guard ? guard.params : [];
  const out: Statement[] = [
    {
      sql: `UPDATE teams SET \`dir_version\` = \`dir_version\` + ? WHERE \`id\` = ?${when}`,
      params: [k, teamId, ...whenParams],
    },
  ];
  const insert = "INSERT INTO directory_changes (`team_id`, `version`, `kind`, `entity_id`, `extra`, `at`)";
  if (d === "sqlite") {
    for (const [c, chunk] of chunks(rows, SQLITE_CHUNK).entries()) {
      out.push({
        sql: `${insert} SELECT t.\`id\`, t.\`dir_version\` - ? + j.key, j.value->>0, j.value->>1, j.value->>2, ? FROM teams t, json_each(?) AS j WHERE t.\`id\` = ?${when}`,
        params: [
          k - 1 - c * SQLITE_CHUNK,
          at,
          JSON.stringify(chunk.map((r) => [r.kind, r.entityId, r.extra])),
          teamId,
          ...whenParams,
        ],
      });
    }
    return out;
  }
  if (guard) {
    for (const [i, r] of rows.entries()) {
      out.push({
        sql: `${insert} SELECT t.\`id\`, t.\`dir_version\` - ?, ?, ?, ?, ? FROM teams t WHERE t.\`id\` = ?${when}`,
        params: [k - 1 - i, r.kind, r.entityId, r.extra, at, teamId, ...whenParams],
      });
    }
    return out;
  }
  for (const [c, chunk] of chunks(rows, MYSQL_CHUNK).entries()) {
    // Our own UPDATE holds the team row's lock until commit, so the subquery
    // reads the value we just wrote and no one else's.
    out.push({
      sql: `${insert} VALUES ${chunk.map(() => "(?, (SELECT `dir_version` FROM teams WHERE `id` = ?) - ?, ?, ?, ?, ?)").join(", ")}`,
      params: chunk.flatMap((r, i) => [teamId, teamId, k - 1 - (c * MYSQL_CHUNK + i), r.kind, r.entityId, r.extra, at]),
    });
  }
  return out;
}

/**
 * The team's dir_version, read as the last statement of a unit that logged
 * something: inside the unit it is the version the unit's own bump made, so
 * the unit's rows are the versions (read - k, read], whatever commits
 * around it. No extra round trip, and no read-back of other writers' events.
 */
export function readVersionStatement(teamId: string): Statement {
  return { sql: "SELECT `dir_version` AS v FROM teams WHERE `id` = ?", params: [teamId] };
}

export function versionIn(result: StatementResult | undefined): number {
  const v = result?.rows[0]?.v;
  if (v === undefined) throw new Error("the unit's version read returned no row");
  return num(v);
}
