import { PLANS, type Plan, type Team } from "../../src/teams/model";
import type { TeamPatch, TeamStore } from "../../src/teams/team-store";
import { partnersRefresh } from "../connect-index-queue-sql";
import { assignments, num, numOrNull } from "../portable-sql";
import { type Row, type SqlDriver, UniqueViolation } from "../sql-driver";

// The teams rows: create, read, patch, and the heal flags the sweep reads.

export const TEAM_COLUMNS =
  "t.`id` AS t_id, t.`name` AS t_name, t.`plan` AS t_plan, t.`claimed_domains` AS t_claimed, t.`created_at` AS t_created, t.`healed_at` AS t_healed";

export function teamRows(
  driver: SqlDriver,
): Pick<TeamStore, "createTeam" | "getTeam" | "updateTeam" | "markHealNeeded" | "teamsNeedingHeal"> {
  const teams: ReturnType<typeof teamRows> = {
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
      if (sets.length > 0) {
        const update = { sql: `UPDATE teams SET ${sets.join(", ")} WHERE \`id\` = ?`, params: [...params, teamId] };
        // A new name or domains changes this team's line in every partner's
        // admin search: their documents are queued in the same unit.
        const searched = patch.name !== undefined || patch.claimedDomains !== undefined;
        await driver.atomic(searched ? [update, partnersRefresh(driver.dialect, teamId, Date.now())] : [update]);
      }
      return teams.getTeam(teamId);
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
  };
  return teams;
}

function planOf(v: unknown): Plan {
  const p = String(v) as Plan;
  if (!PLANS.includes(p)) throw new Error(`corrupt plan in storage: ${String(v)}`);
  return p;
}

export function toTeam(r: Row): Team {
  return {
    id: String(r.t_id),
    name: String(r.t_name),
    plan: planOf(r.t_plan),
    claimedDomains: JSON.parse(String(r.t_claimed)) as string[],
    createdAt: num(r.t_created),
    healedAt: numOrNull(r.t_healed),
  };
}
