import type { Membership } from "../../src/directory/model";
import type { DirectoryRows } from "../../src/directory/service";
import { conflict, notFound } from "../../src/errors";
import { versionStatements } from "../change-log";
import { bulkInsert, chunks, inList } from "../portable-sql";
import { type Dialect, type Statement, UniqueViolation } from "../sql-driver";
import type { DirectoryLookups } from "./lookups";
import { encodeMember, isMemberEvent, shareKey } from "./rows";
import type { DirectoryUnits } from "./units";

// Membership writes: add and remove members of one channel (a change-log row
// per member), and the bulk import of a team's memberships (one reload).

/** Attempts of a membership add that lost a race for the same member. */
const MAX_ADD_ATTEMPTS = 3;

export function memberWrites(
  lookups: DirectoryLookups,
  units: DirectoryUnits,
): Pick<DirectoryRows, "addMembers" | "removeMembers" | "importMemberships"> {
  const { d, chunkSize, requireChannel, requireUsers, requireUserAnywhere, membersAmong, sharesOf } = lookups;
  const { commit, keyedImport } = units;
  return {
    async addMembers(teamId, channelId, wanted, now) {
      const channel = await requireChannel(teamId, channelId);
      await requireUsers(channel, [...wanted.values()]);
      for (let attempt = 1; ; attempt++) {
        const existing = await membersAmong(teamId, channelId, [...wanted.keys()]);
        const added: Membership[] = [];
        for (const m of wanted.values()) {
          const there = existing.get(m.userId);
          if (!there) added.push(m);
          else if (there.userTeamId !== m.userTeamId) {
            throw conflict(`user ${m.userId} of team ${there.userTeamId} is already a member of ${channelId}`);
          }
        }
        if (added.length === 0) return { added, unchanged: wanted.size, events: [] };
        const before = await lookups.versionsBefore([teamId]);
        const rows = membershipInserts(d, teamId, added, now);
        const log = memberLog(d, teamId, channelId, "member_added", added, now);
        const ids = new Set(added.map((m) => m.userId));
        try {
          const events = await commit([...rows, ...log], before, (e) => isMemberEvent(e, channelId, ids));
          return { added, unchanged: wanted.size - added.length, events };
        } catch (error) {
          // Someone added one of them meanwhile: nothing was written; look again.
          if (!(error instanceof UniqueViolation)) throw error;
          if (attempt >= MAX_ADD_ATTEMPTS)
            throw conflict(`members of ${channelId} are being changed concurrently; retry`);
        }
      }
    },

    async removeMembers(teamId, channelId, userIds, now) {
      const channel = await requireChannel(teamId, channelId);
      const existing = await membersAmong(teamId, channelId, userIds);
      const others = [...new Set(userIds)].filter((id) => !existing.has(id));
      if (others.length > 0) await requireUserAnywhere(channel, others);
      const removed = [...existing.values()];
      if (removed.length === 0) return { removed, unchanged: others.length, events: [] };
      const before = await lookups.versionsBefore([teamId]);
      const statements: Statement[] = chunks(removed, chunkSize).map((chunk) => {
        const { clause, params } = inList(
          d,
          chunk.map((m) => m.userId),
        );
        return {
          sql: `DELETE FROM memberships WHERE \`team_id\` = ? AND \`channel_id\` = ? AND \`user_id\` IN ${clause}`,
          params: [teamId, channelId, ...params],
        };
      });
      const log = memberLog(d, teamId, channelId, "member_removed", removed, now);
      const ids = new Set(removed.map((m) => m.userId));
      const events = await commit([...statements, ...log], before, (e) => isMemberEvent(e, channelId, ids));
      return { removed, unchanged: others.length, events };
    },

    async importMemberships(teamId, rows, now, record) {
      await lookups.versionsBefore([teamId]);
      const channelIds = [...new Set(rows.map((r) => r.channelId))];
      const known = await lookups.existing("channels", teamId, channelIds);
      const shares = await sharesOf(teamId, [...known]);
      const missingChannels = channelIds.filter((id) => !known.has(id));
      const missingUsers: string[] = [];
      const byTeam = new Map<string, string[]>();
      for (const m of rows) {
        if (!known.has(m.channelId)) continue;
        const allowed =
          m.userTeamId === teamId || (shares.get(shareKey(teamId, m.channelId)) ?? []).includes(m.userTeamId);
        if (!allowed) missingUsers.push(`${m.userId}@${m.userTeamId}`);
        else byTeam.set(m.userTeamId, [...(byTeam.get(m.userTeamId) ?? []), m.userId]);
      }
      missingUsers.push(...(await lookups.missingUsers(teamId, byTeam)));
      if (missingChannels.length > 0 || missingUsers.length > 0) {
        throw notFound("unknown channels or users; nothing was imported", {
          channels: missingChannels,
          users: missingUsers,
        });
      }
      const inserts = membershipInserts(d, teamId, rows, now, true);
      // Only the key's record can collide (memberships already there are kept).
      const raced = "a request with this Idempotency-Key committed concurrently; nothing was imported";
      return keyedImport(teamId, "memberships", inserts, rows.length, record, now, raced);
    },
  };
}

/** Membership rows of the team's channels; `keepExisting` leaves rows already there alone. */
function membershipInserts(d: Dialect, teamId: string, rows: Membership[], now: number, keepExisting = false) {
  return bulkInsert(
    d,
    "memberships",
    ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"],
    rows.map((m) => [teamId, m.channelId, m.userId, m.userTeamId, now]),
    keepExisting,
  );
}

/** One change-log row per member added or removed. */
function memberLog(
  d: Dialect,
  teamId: string,
  channelId: string,
  kind: "member_added" | "member_removed",
  members: Membership[],
  now: number,
): Statement[] {
  return versionStatements(
    d,
    teamId,
    members.map((m) => ({ kind, entityId: channelId, extra: encodeMember(teamId, m) })),
    now,
  );
}
