import type { ApplyResult, DomainCountStore, MutationKey } from "../src/domains/count-store";
import { isMutationMessage } from "../src/domains/messages";
import type { DomainCount, DomainDelta } from "../src/domains/model";
import { MUTATIONS_QUEUE, type OutboxKey, type OutboxRow, type UnsentQuery } from "../src/domains/outbox";
import { PLANS, type Plan, type Team, type User } from "../src/teams/model";
import type {
  ActiveUserRow,
  DerivedWrites,
  LoggedVersions,
  TeamPatch,
  TeamStore,
  UserPatch,
} from "../src/teams/team-store";
import { type Guard, type LogRow, readVersionStatement, versionIn, versionStatements } from "./change-log";
import { idempotencyInsert } from "./idempotency-sql";
import { bulkInsert, chunks, inList, MYSQL_CHUNK, num, numOrNull, roleOf, SQLITE_CHUNK } from "./portable-sql";
import { type Dialect, type Row, type SqlDriver, type Statement, UniqueViolation } from "./sql-driver";

// One implementation of the storage ports for both engines. The SQL is the
// common subset of SQLite and MySQL/MariaDB; where they differ (bulk row input,
// upsert syntax, RETURNING) the dialect picks the cheaper form:
// - SQLite/D1 binds at most 100 parameters, so bulk rows travel as one JSON
//   parameter expanded by json_each: one statement however many rows.
// - MySQL gets multi-row VALUES (the PlanetScale driver formats parameters
//   client-side, so there is no parameter limit, only statement size).
//
// A user write and what it derives are one atomic unit (D1 batch / MySQL
// transaction): the users rows, the directory version bump and change-log
// rows (change-log.ts, as directory-store.ts writes them for channels), the
// outbox rows of its queue messages, and a final read of the version the
// bump made, which names the write's log rows without another round trip.

const TEAM_COLUMNS =
  "t.`id` AS t_id, t.`name` AS t_name, t.`plan` AS t_plan, t.`claimed_domains` AS t_claimed, t.`created_at` AS t_created, t.`healed_at` AS t_healed";
const USER_COLUMNS =
  "u.`team_id` AS u_team, u.`id` AS u_id, u.`email` AS u_email, u.`domain` AS u_domain, u.`role` AS u_role, u.`deactivated` AS u_deactivated, u.`version` AS u_version, u.`created_at` AS u_created, u.`updated_at` AS u_updated";

export function sqlStore(driver: SqlDriver): TeamStore & DomainCountStore {
  const d = driver.dialect;
  return {
    async createTeam(team) {
      try {
        await driver.run(
          "INSERT INTO teams (`id`, `name`, `plan`, `claimed_domains`, `created_at`) VALUES (?, ?, ?, ?, ?)",
          [team.id, team.name, team.plan, JSON.stringify(team.claimedDomains), team.createdAt],
        );
        return true;
      } catch (error) {
        if (error instanceof UniqueViolation) return false;
        throw error;
      }
    },

    async getTeam(teamId) {
      const rows = await driver.all(`SELECT ${TEAM_COLUMNS} FROM teams t WHERE t.\`id\` = ?`, [teamId]);
      return rows[0] ? toTeam(rows[0]) : null;
    },

    async updateTeam(teamId, patch: TeamPatch) {
      const { sets, params } = assignments({
        name: patch.name,
        plan: patch.plan,
        claimed_domains: patch.claimedDomains && JSON.stringify(patch.claimedDomains),
      });
      if (patch.healNeededAt !== undefined) {
        sets.push("`heal_needed_at` = COALESCE(`heal_needed_at`, ?)");
        params.push(patch.healNeededAt);
      }
      if (sets.length > 0)
        await driver.run(`UPDATE teams SET ${sets.join(", ")} WHERE \`id\` = ?`, [...params, teamId]);
      return this.getTeam(teamId);
    },

    async getUser(teamId, userId) {
      const rows = await driver.all(`SELECT ${USER_COLUMNS} FROM users u WHERE u.\`team_id\` = ? AND u.\`id\` = ?`, [
        teamId,
        userId,
      ]);
      return rows[0] ? toUser(rows[0]) : null;
    },

    async getTeamAndUser(teamId, userId) {
      const rows = await driver.all(
        `SELECT ${TEAM_COLUMNS}, ${USER_COLUMNS} FROM teams t JOIN users u ON u.\`team_id\` = t.\`id\` WHERE t.\`id\` = ? AND u.\`id\` = ?`,
        [teamId, userId],
      );
      const row = rows[0];
      return row ? { team: toTeam(row), user: toUser(row) } : null;
    },

    async findExisting(teamId, emails, ids) {
      const found = { emails: [] as string[], ids: [] as string[] };
      for (const [column, values, into] of [
        ["email", emails, found.emails],
        ["id", ids, found.ids],
      ] as const) {
        for (const chunk of chunks(values, d === "mysql" ? MYSQL_CHUNK : SQLITE_CHUNK)) {
          const { clause, params } = inList(d, chunk);
          const rows = await driver.all<{ v: string }>(
            `SELECT \`${column}\` AS v FROM users WHERE \`team_id\` = ? AND \`${column}\` IN ${clause}`,
            [teamId, ...params],
          );
          for (const r of rows) into.push(String(r.v));
        }
      }
      return found;
    },

    async insertUsers(users: User[], derived?: DerivedWrites) {
      const columns = [
        "team_id",
        "id",
        "email",
        "domain",
        "role",
        "deactivated",
        "version",
        "created_at",
        "updated_at",
        "name",
      ];
      const tuple = (u: User) => [
        u.teamId,
        u.id,
        u.email,
        u.domain,
        u.role,
        u.deactivated ? 1 : 0,
        1,
        u.createdAt,
        u.updatedAt,
        defaultHandle(u.email),
      ];
      const rows = bulkInsert(d, "users", columns, users.map(tuple));
      if (!derived) {
        await driver.atomic(rows);
        return { logged: null };
      }
      const teamId = onlyTeam(users);
      const log: LogRow[] =
        derived.log === "reload"
          ? [{ kind: "bulk", entityId: "", extra: "users" }]
          : users.map((u) => ({ kind: "user", entityId: u.id, extra: "" }));
      const results = await driver.atomic([
        ...rows,
        ...versionStatements(d, teamId, log, derived.at),
        ...outboxInserts(d, derived.outbox),
        ...idempotencyInsert(teamId, derived.idempotency),
        readVersionStatement(teamId),
      ]);
      return { logged: loggedRange(teamId, log.length, versionIn(results.at(-1))) };
    },

    async updateUser(teamId, userId, version, patch: UserPatch, now, derived?: DerivedWrites) {
      const { sets, params } = assignments({
        email: patch.email,
        domain: patch.domain,
        role: patch.role,
        deactivated: patch.deactivated === undefined ? undefined : patch.deactivated ? 1 : 0,
      });
      const swap: Statement = {
        sql: `UPDATE users SET ${[...sets, "`version` = `version` + 1", "`updated_at` = ?"].join(", ")} WHERE \`team_id\` = ? AND \`id\` = ? AND \`version\` = ?`,
        params: [...params, now, teamId, userId, version],
      };
      if (!derived) {
        const { changes } = await driver.run(swap.sql, swap.params);
        return changes === 1 ? { logged: null } : null;
      }
      // The derived rows go first, each guarded by the swap's own condition
      // read before the swap: true exactly when the swap will happen. (After
      // the swap the row alone cannot tell our swap from a concurrent one
      // that reached the same version.) D1 runs a batch with no other writer
      // in between; on MySQL the unit first locks the user row, so no other
      // transaction can change it between the guards and the swap.
      const guard: Guard = {
        sql: "EXISTS (SELECT 1 FROM users g WHERE g.`team_id` = ? AND g.`id` = ? AND g.`version` = ?)",
        params: [teamId, userId, version],
      };
      const lock: Statement[] =
        d === "mysql"
          ? [
              {
                sql: "SELECT `version` FROM users WHERE `team_id` = ? AND `id` = ? FOR UPDATE",
                params: [teamId, userId],
              },
            ]
          : [];
      const log: LogRow[] = [{ kind: "user", entityId: userId, extra: "" }];
      const statements = [
        ...lock,
        ...versionStatements(d, teamId, log, derived.at, guard),
        ...outboxInserts(d, derived.outbox, guard),
        ...idempotencyInsert(teamId, derived.idempotency, guard),
        swap,
        readVersionStatement(teamId),
      ];
      const results = await driver.atomic(statements);
      if (results[statements.indexOf(swap)]?.changes !== 1) return null;
      return { logged: loggedRange(teamId, log.length, versionIn(results.at(-1))) };
    },

    async listActiveUsers(teamId, afterId, limit) {
      const rows = await driver.all(
        `SELECT \`id\`, \`domain\`, \`role\` FROM users WHERE \`team_id\` = ? AND \`deactivated\` = 0 AND \`id\` > ? ORDER BY \`id\` LIMIT ?`,
        [teamId, afterId ?? "", limit],
      );
      return rows.map((r): ActiveUserRow => ({ id: String(r.id), domain: String(r.domain), role: roleOf(r.role) }));
    },

    async lastUserWriteAt(teamId) {
      const rows = await driver.all("SELECT MAX(`updated_at`) AS t FROM users WHERE `team_id` = ?", [teamId]);
      return numOrNull(rows[0]?.t);
    },

    async acquireHealLease(teamId, owner, now, ttlMs) {
      const { changes } = await driver.run(
        "UPDATE teams SET `heal_lease_owner` = ?, `heal_lease_until` = ? WHERE `id` = ? AND (`heal_lease_until` IS NULL OR `heal_lease_until` < ?)",
        [owner, now + ttlMs, teamId, now],
      );
      return changes === 1;
    },

    async renewHealLease(teamId, owner, now, ttlMs) {
      const { changes } = await driver.run(
        "UPDATE teams SET `heal_lease_until` = ? WHERE `id` = ? AND `heal_lease_owner` = ? AND `heal_lease_until` >= ?",
        [now + ttlMs, teamId, owner, now],
      );
      if (changes === 1) return true;
      // MySQL counts a row whose value did not change as unaffected (a renewal
      // in the same millisecond): ask whether the lease is still ours.
      const rows = await driver.all(
        "SELECT `heal_lease_owner` AS o, `heal_lease_until` AS t FROM teams WHERE `id` = ?",
        [teamId],
      );
      const until = numOrNull(rows[0]?.t);
      return rows[0]?.o === owner && until !== null && until >= now;
    },

    async healLeaseUntil(teamId) {
      const rows = await driver.all("SELECT `heal_lease_until` AS t FROM teams WHERE `id` = ?", [teamId]);
      return numOrNull(rows[0]?.t);
    },

    async releaseHealLease(teamId, owner, healedAt) {
      // A failed heal releases the lease but leaves healed_at alone, so the
      // staleness sweep still sees the team as due.
      const healed = healedAt === null ? "" : ", `healed_at` = ?, `heal_needed_at` = NULL";
      await driver.run(
        `UPDATE teams SET \`heal_lease_owner\` = NULL, \`heal_lease_until\` = NULL${healed} WHERE \`id\` = ? AND \`heal_lease_owner\` = ?`,
        healedAt === null ? [teamId, owner] : [healedAt, teamId, owner],
      );
    },

    async stagedImport(teamId, importKey) {
      const rows = await driver.all(
        "SELECT COUNT(*) AS n, MIN(`request_hash`) AS h FROM staged_users WHERE `team_id` = ? AND `import_key` = ?",
        [teamId, importKey],
      );
      const n = num(rows[0]?.n ?? 0);
      return n === 0 ? null : { users: n, requestHash: String(rows[0]?.h) };
    },

    async stageUsers(importKey, requestHash, users: User[], at) {
      if (users.length === 0) return;
      const columns = ["team_id", "import_key", "request_hash", "id", "email", "domain", "role", "name", "staged_at"];
      const rows = users.map((u) => [
        u.teamId,
        importKey,
        requestHash,
        u.id,
        u.email,
        u.domain,
        u.role,
        defaultHandle(u.email),
        at,
      ]);
      // Two runs of one keyed import may stage the same page (one outlived its
      // time bound): the same users under the same ids, so a repeat is skipped.
      await driver.atomic(bulkInsert(d, "staged_users", columns, rows, true));
    },

    async landStagedUsers(teamId, importKey, derived: DerivedWrites, userIds) {
      const log: LogRow[] =
        derived.log === "reload"
          ? [{ kind: "bulk", entityId: "", extra: "users" }]
          : userIds.map((id) => ({ kind: "user", entityId: id, extra: "" }));
      const results = await driver.atomic([
        ...idempotencyInsert(teamId, derived.idempotency),
        {
          sql:
            "INSERT INTO users (`team_id`, `id`, `email`, `domain`, `role`, `deactivated`, `version`, `created_at`, `updated_at`, `name`) " +
            "SELECT `team_id`, `id`, `email`, `domain`, `role`, 0, 1, ?, ?, `name` FROM staged_users WHERE `team_id` = ? AND `import_key` = ?",
          params: [derived.at, derived.at, teamId, importKey],
        },
        { sql: "DELETE FROM staged_users WHERE `team_id` = ? AND `import_key` = ?", params: [teamId, importKey] },
        ...versionStatements(d, teamId, log, derived.at),
        ...outboxInserts(d, derived.outbox),
        readVersionStatement(teamId),
      ]);
      return { logged: loggedRange(teamId, log.length, versionIn(results.at(-1))) };
    },

    async dropStagedUsers(teamId, importKey) {
      await driver.run("DELETE FROM staged_users WHERE `team_id` = ? AND `import_key` = ?", [teamId, importKey]);
    },

    async pruneStagedUsers(before, limit) {
      return deleteOldest(driver, "staged_users", "staged_at", before, limit);
    },

    async markHealNeeded(teamId, now) {
      await driver.run("UPDATE teams SET `heal_needed_at` = ? WHERE `id` = ? AND `heal_needed_at` IS NULL", [
        now,
        teamId,
      ]);
    },

    async teamsNeedingHeal(staleBefore, limit) {
      const rows = await driver.all<{ id: string }>(
        "SELECT `id` FROM teams WHERE `heal_needed_at` IS NOT NULL OR (`healed_at` IS NOT NULL AND `healed_at` < ?) ORDER BY `id` LIMIT ?",
        [staleBefore, limit],
      );
      return rows.map((r) => String(r.id));
    },

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
      for (const chunk of chunks(keys, d === "mysql" ? MYSQL_CHUNK : SQLITE_CHUNK)) {
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

// --- dialect pieces -------------------------------------------------------

/**
 * A new user's handle until their profile sets one: the address's local
 * part, in handle characters, so a fresh user is findable in the directory.
 */
export function defaultHandle(email: string): string {
  const local = email.slice(0, email.indexOf("@")).toLowerCase();
  return local.replace(/[^a-z0-9._-]+/g, ".").slice(0, 80) || "user";
}

/** `col = ?` pairs for the fields a patch sets (undefined means "leave it"). */
function assignments(fields: Record<string, unknown>): { sets: string[]; params: unknown[] } {
  const present = Object.entries(fields).filter(([, v]) => v !== undefined);
  return { sets: present.map(([k]) => `\`${k}\` = ?`), params: present.map(([, v]) => v) };
}

/** The one team of a user write (a unit logs and bumps one team's version). */
function onlyTeam(users: User[]): string {
  const teams = new Set(users.map((u) => u.teamId));
  const [teamId] = teams;
  if (teams.size !== 1 || teamId === undefined) throw new Error("a user write covers exactly one team");
  return teamId;
}

function loggedRange(teamId: string, rows: number, upTo: number): LoggedVersions {
  return { teamId, after: upTo - rows, upTo };
}

const OUTBOX_COLUMNS = ["team_id", "id", "queue", "body", "created_at"];

/** Outbox rows (unsent) for the write's unit; with a guard, each row only if it holds. */
function outboxInserts(d: Dialect, rows: readonly OutboxRow[], guard?: Guard): Statement[] {
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
    for (const chunk of chunks(ids, d === "mysql" ? MYSQL_CHUNK : SQLITE_CHUNK)) {
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

/**
 * Deletes up to `limit` rows whose `column` is below `before`, oldest first.
 * SQLite (as D1 builds it) has no DELETE ... LIMIT, so it picks rowids.
 */
async function deleteOldest(
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

// --- row mapping ----------------------------------------------------------

function planOf(v: unknown): Plan {
  const p = String(v) as Plan;
  if (!PLANS.includes(p)) throw new Error(`corrupt plan in storage: ${String(v)}`);
  return p;
}

function toTeam(r: Row): Team {
  return {
    id: String(r.t_id),
    name: String(r.t_name),
    plan: planOf(r.t_plan),
    claimedDomains: JSON.parse(String(r.t_claimed)) as string[],
    createdAt: num(r.t_created),
    healedAt: numOrNull(r.t_healed),
  };
}

function toUser(r: Row): User & { version: number } {
  return {
    teamId: String(r.u_team),
    id: String(r.u_id),
    email: String(r.u_email),
    domain: String(r.u_domain),
    role: roleOf(r.u_role),
    deactivated: num(r.u_deactivated) === 1,
    version: num(r.u_version),
    createdAt: num(r.u_created),
    updatedAt: num(r.u_updated),
  };
}

function toCount(r: Row): DomainCount {
  return { teamId: String(r.team_id), domain: String(r.domain), role: roleOf(r.role), count: num(r.count) };
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
