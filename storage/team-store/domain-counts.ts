import type { ApplyResult, DomainCountStore, MutationKey } from "../../src/domains/count-store";
import type { DomainCount, DomainDelta } from "../../src/domains/model";
import {
  bulkInsert,
  chunkSizeOf,
  chunks,
  deleteOldest,
  inList,
  MYSQL_CHUNK,
  num,
  roleOf,
  SQLITE_CHUNK,
} from "../portable-sql";
import type { Dialect, Row, SqlDriver, Statement } from "../sql-driver";

// The domain counts (DomainCountStore): relative upserts applied with the
// ids of the mutations they apply, read back for the classifier and the healer.

export function domainCountRows(
  driver: SqlDriver,
): Pick<
  DomainCountStore,
  "applyDeltas" | "appliedMutations" | "pruneAppliedMutations" | "readCounts" | "readAllCounts" | "deleteZeroRows"
> {
  const d = driver.dialect;
  return {
    async applyDeltas(deltas: DomainDelta[], now, applied: readonly MutationKey[] = []): Promise<ApplyResult> {
      if (deltas.length === 0 && applied.length === 0) return { statements: 0, upserts: 0, negative: [] };
      const marks =
        applied.length === 0
          ? []
          : bulkInsert(
              d,
              "applied_mutations",
              ["team_id", "id", "applied_at"],
              applied.map((k) => [k.teamId, k.id, now]),
            );
      return d === "sqlite" ? applySqlite(driver, deltas, now, marks) : applyMysql(driver, deltas, now, marks);
    },

    async appliedMutations(keys: readonly MutationKey[]) {
      const out: MutationKey[] = [];
      for (const chunk of chunks(keys, chunkSizeOf(d))) {
        const rows =
          d === "sqlite"
            ? await driver.all(
                "SELECT a.`team_id`, a.`id` FROM json_each(?) AS j JOIN applied_mutations a ON a.`team_id` = j.value->>0 AND a.`id` = j.value->>1",
                [JSON.stringify(chunk.map((k) => [k.teamId, k.id]))],
              )
            : await driver.all(
                `SELECT \`team_id\`, \`id\` FROM applied_mutations WHERE (\`team_id\`, \`id\`) IN (${chunk.map(() => "(?, ?)").join(", ")})`,
                chunk.flatMap((k) => [k.teamId, k.id]),
              );
        for (const r of rows) out.push({ teamId: String(r.team_id), id: String(r.id) });
      }
      return out;
    },

    async pruneAppliedMutations(appliedBefore, limit) {
      return deleteOldest(driver, "applied_mutations", "applied_at", appliedBefore, limit);
    },

    async readCounts(teamId, domainList) {
      const unique = [...new Set(domainList)];
      const { clause, params } = inList(d, [...unique, "*"]);
      const rows = await driver.all(
        `SELECT \`team_id\`, \`domain\`, \`role\`, \`count\` FROM domains WHERE \`team_id\` = ? AND \`domain\` IN ${clause}`,
        [teamId, ...params],
      );
      return rows.map(toCount);
    },

    async readAllCounts(teamId) {
      const rows = await driver.all(
        "SELECT `team_id`, `domain`, `role`, `count` FROM domains WHERE `team_id` = ? ORDER BY `domain`, `role`",
        [teamId],
      );
      return rows.map(toCount);
    },

    async deleteZeroRows(teamId) {
      await driver.run("DELETE FROM domains WHERE `team_id` = ? AND `count` = 0", [teamId]);
    },
  };
}

async function applySqlite(
  driver: SqlDriver,
  deltas: DomainDelta[],
  now: number,
  marks: Statement[],
): Promise<ApplyResult> {
  // One statement per chunk, all in one atomic batch with the applied-id
  // marks; RETURNING hands back every touched row, so negative counts are
  // spotted without another read.
  const upserts = chunks(deltas, SQLITE_CHUNK).map((chunk) => ({
    sql:
      "INSERT INTO domains (`team_id`, `domain`, `role`, `count`, `date_update`) " +
      "SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, ? FROM json_each(?) AS j WHERE true " +
      "ON CONFLICT (`team_id`, `domain`, `role`) DO UPDATE SET `count` = `count` + excluded.`count`, `date_update` = excluded.`date_update` " +
      "RETURNING `team_id`, `domain`, `role`, `count`",
    params: [now, JSON.stringify(chunk.map((x) => [x.teamId, x.domain, x.role, x.delta]))],
  }));
  const results = await driver.atomic([...marks, ...upserts, ...flagNegative("sqlite", deltas, now)]);
  const negative = results
    .slice(marks.length, marks.length + upserts.length)
    .flatMap((r) => r.rows.map(toCount))
    .filter((c) => c.count < 0);
  return { statements: results.length, upserts: upserts.length, negative };
}

async function applyMysql(
  driver: SqlDriver,
  deltas: DomainDelta[],
  now: number,
  marks: Statement[],
): Promise<ApplyResult> {
  // VALUES(count) rather than the MySQL-8.0.19 row alias: it works on MariaDB,
  // MySQL 8 and Vitess alike.
  const upserts = chunks(deltas, MYSQL_CHUNK).map((chunk) => ({
    sql:
      "INSERT INTO domains (`team_id`, `domain`, `role`, `count`, `date_update`) VALUES " +
      chunk.map(() => "(?, ?, ?, ?, ?)").join(", ") +
      " ON DUPLICATE KEY UPDATE `count` = `count` + VALUES(`count`), `date_update` = VALUES(`date_update`)",
    params: chunk.flatMap((x) => [x.teamId, x.domain, x.role, x.delta, now]),
  }));
  const flags = flagNegative("mysql", deltas, now);
  await driver.atomic([...marks, ...upserts, ...flags]);
  const negative = await readNegatives(driver, deltas);
  return { statements: marks.length + upserts.length + flags.length + 1, upserts: upserts.length, negative };
}

/**
 * Flags for a heal (heal_needed_at), in the apply's own unit, the teams whose
 * counts these deltas drove below zero (only keys that went down can have).
 * The consumer also asks for the heal at once; the flag is what survives a
 * crash between the apply and that request (the batch is then skipped as
 * applied), so the cron sweep still heals the team.
 */
function flagNegative(d: Dialect, deltas: DomainDelta[], now: number): Statement[] {
  const down = deltas.filter((x) => x.delta < 0);
  if (d === "sqlite") {
    return chunks(down, SQLITE_CHUNK).map((chunk) => ({
      sql:
        "UPDATE teams SET `heal_needed_at` = COALESCE(`heal_needed_at`, ?) WHERE `id` IN (" +
        "SELECT x.`team_id` FROM json_each(?) AS j JOIN domains x ON x.`team_id` = j.value->>0 AND x.`domain` = j.value->>1 AND x.`role` = j.value->>2 WHERE x.`count` < 0)",
      params: [now, JSON.stringify(chunk.map((x) => [x.teamId, x.domain, x.role]))],
    }));
  }
  // A join on a derived table, not `id IN (subquery)`: MySQL runs the latter
  // as a dependent subquery per teams row in an UPDATE.
  return chunks(down, MYSQL_CHUNK).map((chunk) => ({
    sql:
      "UPDATE teams t JOIN (SELECT DISTINCT x.`team_id` FROM domains x WHERE x.`count` < 0 AND (x.`team_id`, x.`domain`, x.`role`) IN (" +
      chunk.map(() => "(?, ?, ?)").join(", ") +
      ")) n ON n.`team_id` = t.`id` SET t.`heal_needed_at` = COALESCE(t.`heal_needed_at`, ?)",
    params: [...chunk.flatMap((x) => [x.teamId, x.domain, x.role]), now],
  }));
}

async function readNegatives(driver: SqlDriver, deltas: DomainDelta[]): Promise<DomainCount[]> {
  // Only keys that went down can have crossed zero.
  const down = deltas.filter((x) => x.delta < 0);
  const out: DomainCount[] = [];
  for (const chunk of chunks(down, MYSQL_CHUNK)) {
    const rows = await driver.all(
      `SELECT \`team_id\`, \`domain\`, \`role\`, \`count\` FROM domains WHERE \`count\` < 0 AND (\`team_id\`, \`domain\`, \`role\`) IN (${chunk.map(() => "(?, ?, ?)").join(", ")})`,
      chunk.flatMap((x) => [x.teamId, x.domain, x.role]),
    );
    out.push(...rows.map(toCount));
  }
  return out;
}

function toCount(r: Row): DomainCount {
  return { teamId: String(r.team_id), domain: String(r.domain), role: roleOf(r.role), count: num(r.count) };
}
