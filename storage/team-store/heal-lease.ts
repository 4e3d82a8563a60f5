import type { TeamStore } from "../../src/teams/team-store";
import { numOrNull } from "../portable-sql";
import type { SqlDriver } from "../sql-driver";

// The per-team heal lease (src/domains/healer.ts): columns of the teams row.

export function healLeases(
  driver: SqlDriver,
): Pick<TeamStore, "acquireHealLease" | "renewHealLease" | "healLeaseUntil" | "releaseHealLease"> {
  return {
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
  };
}
