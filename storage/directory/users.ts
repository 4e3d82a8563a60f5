import type { DirectoryRows } from "../../src/directory/service";
import { notFound } from "../../src/errors";
import { versionStatements } from "../change-log";
import type { Statement } from "../sql-driver";
import type { DirectoryLookups } from "./lookups";
import { changedAssignments, changeOf, toDirUser, USER_COLUMNS } from "./rows";
import type { DirectoryUnits } from "./units";

// User entries of the directory: profile edits, and the `user` / `bulk`
// change-log rows for users written through TeamStore (which knows nothing
// of directory versions).

/** More user ids than this in one recordUserChanges log a single reload. */
const USER_EVENTS_INLINE = 1000;

export function userEntries(
  lookups: DirectoryLookups,
  units: DirectoryUnits,
): Pick<DirectoryRows, "updateProfile" | "recordUserChanges" | "recordReload"> {
  const { driver, d } = lookups;
  const { commit, bulkChange } = units;
  return {
    async updateProfile(teamId, userId, patch, now) {
      const rows = await driver.all(`SELECT ${USER_COLUMNS} FROM users u WHERE u.\`team_id\` = ? AND u.\`id\` = ?`, [
        teamId,
        userId,
      ]);
      if (!rows[0]) throw notFound(`user ${userId} not found in team ${teamId}`);
      const current = toDirUser(rows[0]);
      const { sets, params } = changedAssignments(
        {
          name: current.name,
          real_name: current.realName,
          display_name: current.displayName,
          title: current.title,
          avatar_hash: current.avatarHash,
          tz: current.tz,
          is_bot: current.isBot ? 1 : 0,
        },
        {
          name: patch.name,
          real_name: patch.realName,
          display_name: patch.displayName,
          title: patch.title,
          avatar_hash: patch.avatarHash,
          tz: patch.tz,
          is_bot: patch.isBot === undefined ? undefined : patch.isBot ? 1 : 0,
        },
      );
      if (sets.length === 0) return { user: current, events: [] };
      const before = await lookups.versionsBefore([teamId]);
      // Not the `version` column: that is the compare-and-set of email and
      // role edits (classification), which a profile edit does not touch.
      const update: Statement = {
        sql: `UPDATE users SET ${[...sets, "`updated_at` = ?"].join(", ")} WHERE \`team_id\` = ? AND \`id\` = ?`,
        params: [...params, now, teamId, userId],
      };
      const log = versionStatements(d, teamId, [{ kind: "user", entityId: userId, extra: "" }], now);
      const events = await commit(
        [update, ...log],
        before,
        (e) => e.change.kind === "user" && e.change.user.id === userId,
      );
      return { user: changeOf(events, teamId, "user") ?? { ...current, updatedAt: now }, events };
    },

    async recordUserChanges(teamId, userIds, now) {
      const ids = [...new Set(userIds)];
      if (ids.length === 0) return [];
      if (ids.length > USER_EVENTS_INLINE) return bulkChange(teamId, "users", [], now);
      const before = await lookups.versionsBefore([teamId]);
      const log = versionStatements(
        d,
        teamId,
        ids.map((id) => ({ kind: "user", entityId: id, extra: "" })),
        now,
      );
      const wanted = new Set(ids);
      return commit(log, before, (e) => e.change.kind === "user" && wanted.has(e.change.user.id));
    },

    async recordReload(teamId, now) {
      return bulkChange(teamId, "reload", [], now);
    },
  };
}
