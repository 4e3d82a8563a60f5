import { isRole, type Role } from "../src/teams/model";
import type { Dialect, SqlDriver, Statement } from "./sql-driver";

// The pieces of SQL where SQLite/D1 and MySQL differ, and the value coercions
// both stores need. D1 binds at most 100 parameters per statement, so bulk
// rows travel there as one JSON parameter expanded by json_each; MySQL gets
// multi-row VALUES (the PlanetScale driver formats parameters client-side, so
// there is no parameter limit, only statement size).

/** Rows per statement on MySQL; keeps statements well under max_allowed_packet. */
export const MYSQL_CHUNK = 1000;
/** Bound parameters one D1 statement takes at most (D1 refuses more: "too many SQL variables"). */
export const D1_MAX_PARAMS = 100;

/** Values per `IN (...)` list, leaving `spare` parameters for the rest of the statement: D1's cap, or MySQL's chunk. */
export function inListSize(d: Dialect, spare: number, perValue = 1): number {
  return d === "mysql" ? MYSQL_CHUNK : Math.floor((D1_MAX_PARAMS - spare) / perValue);
}

/** Rows per JSON parameter on D1 (a bound value may be up to 1 MB or so). */
export const SQLITE_CHUNK = 2000;

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `IN (...)` for a list: one JSON parameter on SQLite, placeholders on MySQL. */
export function inList(d: Dialect, values: readonly unknown[]): { clause: string; params: unknown[] } {
  if (d === "sqlite") return { clause: "(SELECT value FROM json_each(?))", params: [JSON.stringify(values)] };
  return { clause: `(${values.map(() => "?").join(", ")})`, params: [...values] };
}

/** Multi-row insert (json_each on SQLite, VALUES on MySQL); `ignoreDuplicates` keeps existing rows. */
export function bulkInsert(
  d: Dialect,
  table: string,
  columns: string[],
  rows: unknown[][],
  ignoreDuplicates = false,
): Statement[] {
  const cols = columns.map((c) => `\`${c}\``).join(", ");
  if (d === "sqlite") {
    const picks = columns.map((_, i) => `j.value->>${i}`).join(", ");
    // "WHERE true" keeps SQLite from reading ON CONFLICT as part of the join.
    const tail = ignoreDuplicates ? " WHERE true ON CONFLICT DO NOTHING" : "";
    return chunks(rows, SQLITE_CHUNK).map((chunk) => ({
      sql: `INSERT INTO ${table} (${cols}) SELECT ${picks} FROM json_each(?) AS j${tail}`,
      params: [JSON.stringify(chunk)],
    }));
  }
  const one = `(${columns.map(() => "?").join(", ")})`;
  // A self-assignment rather than INSERT IGNORE, which would also swallow other errors.
  const tail = ignoreDuplicates ? ` ON DUPLICATE KEY UPDATE \`${columns[0]}\` = \`${columns[0]}\`` : "";
  return chunks(rows, MYSQL_CHUNK).map((chunk) => ({
    sql: `INSERT INTO ${table} (${cols}) VALUES ${chunk.map(() => one).join(", ")}${tail}`,
    params: chunk.flat(),
  }));
}

/** MySQL BIGINT arrives as a string through the HTTP driver. */
export function num(v: unknown): number {
  return typeof v === "number" ? v : Number(v);
}

export function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

export function roleOf(v: unknown): Role {
  if (!isRole(v)) throw new Error(`corrupt role in storage: ${String(v)}`);
  return v;
}

/** Rows per IN-list or bulk statement on this dialect. */
export function chunkSizeOf(d: Dialect): number {
  return d === "mysql" ? MYSQL_CHUNK : SQLITE_CHUNK;
}

/** `col = ?` pairs for the fields a patch sets (undefined means "leave it"). */
export function assignments(fields: Record<string, unknown>): { sets: string[]; params: unknown[] } {
  const present = Object.entries(fields).filter(([, v]) => v !== undefined);
  return { sets: present.map(([k]) => `\`${k}\` = ?`), params: present.map(([, v]) => v) };
}

/**
 * Deletes up to `limit` rows whose `column` is below `before`, oldest first.
 * SQLite (as D1 builds it) has no DELETE ... LIMIT, so it picks rowids.
 */
export async function deleteOldest(
  driver: SqlDriver,
  table: "applied_mutations" | "idempotency_keys" | "staged_users",
  column: "applied_at" | "created_at" | "staged_at",
  before: number,
  limit: number,
): Promise<number> {
  const sql =
    driver.dialect === "sqlite"
      ? `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE \`${column}\` < ? ORDER BY \`${column}\` LIMIT ?)`
      : `DELETE FROM ${table} WHERE \`${column}\` < ? ORDER BY \`${column}\` LIMIT ?`;
  const { changes } = await driver.run(sql, [before, limit]);
  return changes;
}
