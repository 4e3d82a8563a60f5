import type { User } from "../../src/teams/model";
import type { DerivedWrites, TeamStore } from "../../src/teams/team-store";
import { readVersionStatement, versionIn, versionStatements } from "../change-log";
import { idempotencyInsert } from "../idempotency-sql";
import { bulkInsert, deleteOldest, num } from "../portable-sql";
import type { SqlDriver } from "../sql-driver";
import { outboxInserts } from "./outbox";
import { defaultHandle, loggedRange, userLogRows } from "./users";

// A keyed bulk import's staging: pages of users staged under the key, then
// landed in one unit (src/teams/lifecycle.ts, importUsersOnce).

export function stagedUsers(
  driver: SqlDriver,
): Pick<TeamStore, "stagedImport" | "stageUsers" | "landStagedUsers" | "dropStagedUsers" | "pruneStagedUsers"> {
  const d = driver.dialect;
  return {
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
      const log = userLogRows(derived, userIds);
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
  };
}
