import type { User } from "../../src/teams/model";
import type { ActiveUserRow, DerivedWrites, LoggedVersions, TeamStore, UserPatch } from "../../src/teams/team-store";
import { type Guard, type LogRow, readVersionStatement, versionIn, versionStatements } from "../change-log";
import { idempotencyInsert } from "../idempotency-sql";
import { assignments, bulkInsert, chunkSizeOf, chunks, inList, num, numOrNull, roleOf } from "../portable-sql";
import type { Row, SqlDriver, Statement } from "../sql-driver";
import { outboxInserts } from "./outbox";
import { TEAM_COLUMNS, toTeam } from "./teams";

// The users rows of TeamStore: reads, and the user writes, each one atomic
// unit with what it derives (sql-store.ts says which).

const USER_COLUMNS =
  "u.`team_id` AS u_team, u.`id` AS u_id, u.`email` AS u_email, u.`domain` AS u_domain, u.`role` AS u_role, u.`deactivated` AS u_deactivated, u.`version` AS u_version, u.`created_at` AS u_created, u.`updated_at` AS u_updated";

export function userRows(
  driver: SqlDriver,
): Pick<
  TeamStore,
  "getUser" | "getTeamAndUser" | "findExisting" | "insertUsers" | "updateUser" | "listActiveUsers" | "lastUserWriteAt"
> {
  const d = driver.dialect;
  return {
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
        for (const chunk of chunks(values, chunkSizeOf(d))) {
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
      const log = userLogRows(
        derived,
        users.map((u) => u.id),
      );
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
  };
}

/**
 * A new user's handle until their profile sets one: the address's local
 * part, in handle characters, so a fresh user is findable in the directory.
 */
export function defaultHandle(email: string): string {
  const local = email.slice(0, email.indexOf("@")).toLowerCase();
  return local.replace(/[^a-z0-9._-]+/g, ".").slice(0, 80) || "user";
}

/** The one team of a user write (a unit logs and bumps one team's version). */
function onlyTeam(users: User[]): string {
  const teams = new Set(users.map((u) => u.teamId));
  const [teamId] = teams;
  if (teams.size !== 1 || teamId === undefined) throw new Error("a user write covers exactly one team");
  return teamId;
}

/** The change-log rows of a user write: one per user, or one `bulk` row for a reload. */
export function userLogRows(derived: DerivedWrites, userIds: readonly string[]): LogRow[] {
  return derived.log === "reload"
    ? [{ kind: "bulk", entityId: "", extra: "users" }]
    : userIds.map((id) => ({ kind: "user", entityId: id, extra: "" }));
}

export function loggedRange(teamId: string, rows: number, upTo: number): LoggedVersions {
  return { teamId, after: upTo - rows, upTo };
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
