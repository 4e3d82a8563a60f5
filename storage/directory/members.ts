import type { Membership } from "../../src/directory/model";
import type { DirectoryRows } from "../../src/directory/service";
import { conflict, notFound } from "../../src/errors";
import { type Guard, versionStatements } from "../change-log";
import { bulkInsert, chunks, inList, MYSQL_CHUNK, SQLITE_CHUNK } from "../portable-sql";
import { type Dialect, type Statement, UniqueViolation } from "../sql-driver";
import { requirePlainChannel } from "./conversations";
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
  const { driver, d, chunkSize, requireChannel, requireUsers, requireUserAnywhere, membersAmong, sharesOf } = lookups;
  const { commit, readBack, keyedImport } = units;
  return {
    async addMembers(teamId, channelId, wanted, now) {
      for (let attempt = 1; ; attempt++) {
        // Checked again on each attempt: a share the channel had may have ended meanwhile.
        const channel = await requireChannel(teamId, channelId);
        requirePlainChannel(channel, "its members are fixed (open a conversation with other members instead)");
        await requireUsers(channel, [...wanted.values()]);
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
        const relied = sharesRelied(teamId, added);
        const guard = sharesGuard(d, teamId, relied);
        const rows = membershipInserts(d, teamId, added, now, false, guard);
        const log = memberLog(d, teamId, channelId, "member_added", added, now, guard);
        const ids = new Set(added.map((m) => m.userId));
        try {
          const lock = sharesLock(d, teamId, relied);
          const results = await driver.atomic([...lock, ...rows, ...log]);
          const inserted = results.slice(lock.length, lock.length + rows.length).reduce((n, r) => n + r.changes, 0);
          if (inserted > 0) {
            const events = await readBack(before, (e) => isMemberEvent(e, channelId, ids));
            return { added, unchanged: wanted.size - added.length, events };
          }
          // A share these members came through ended before the unit: nothing was written; look again.
        } catch (error) {
          // Someone added one of them meanwhile: nothing was written; look again.
          if (!(error instanceof UniqueViolation)) throw error;
        }
        if (attempt >= MAX_ADD_ATTEMPTS)
          throw conflict(`members of ${channelId} are being changed concurrently; retry`);
      }
    },

    async removeMembers(teamId, channelId, userIds, now) {
      const channel = await requireChannel(teamId, channelId);
      requirePlainChannel(channel, "members leave a group DM themselves (DELETE /v1/conversations/{id}/members/me)");
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
      const relied = sharesRelied(teamId, rows);
      const guard = sharesGuard(d, teamId, relied);
      const inserts = membershipInserts(d, teamId, rows, now, true, guard);
      // Only the key's record can collide (memberships already there are kept).
      const raced = "a request with this Idempotency-Key committed concurrently; nothing was imported";
      const guarded = guard && {
        guard,
        lock: sharesLock(d, teamId, relied),
        lost: () => conflict("a channel these members were shared through stopped being shared; nothing was imported"),
      };
      return keyedImport(teamId, "memberships", inserts, rows.length, record, now, raced, guarded);
    },
  };
}

/**
 * Membership rows of the team's channels; `keepExisting` leaves rows already
 * there alone; with a guard, rows are written only while it holds.
 */
function membershipInserts(
  d: Dialect,
  teamId: string,
  rows: Membership[],
  now: number,
  keepExisting = false,
  guard?: Guard,
): Statement[] {
  const columns = ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"];
  const values = rows.map((m) => [teamId, m.channelId, m.userId, m.userTeamId, now]);
  if (!guard) return bulkInsert(d, "memberships", columns, values, keepExisting);
  const cols = columns.map((c) => `\`${c}\``).join(", ");
  if (d === "sqlite") {
    const tail = keepExisting ? " ON CONFLICT DO NOTHING" : "";
    return chunks(values, SQLITE_CHUNK).map((chunk) => ({
      sql: `INSERT INTO memberships (${cols}) SELECT ${columns.map((_, i) => `j.value->>${i}`).join(", ")} FROM json_each(?) AS j WHERE ${guard.sql}${tail}`,
      params: [JSON.stringify(chunk), ...guard.params],
    }));
  }
  // MySQL has no portable row constructor to select from: a UNION ALL of
  // one-row selects (columns named apart from the table's, for the update clause).
  const first = `SELECT ${columns.map((_, i) => `? AS v${i}`).join(", ")}`;
  const next = `SELECT ${columns.map(() => "?").join(", ")}`;
  const tail = keepExisting ? " ON DUPLICATE KEY UPDATE memberships.`team_id` = memberships.`team_id`" : "";
  return chunks(values, MYSQL_CHUNK).map((chunk) => ({
    sql: `INSERT INTO memberships (${cols}) SELECT * FROM (${[first, ...chunk.slice(1).map(() => next)].join(" UNION ALL ")}) v WHERE ${guard.sql}${tail}`,
    params: [...chunk.flat(), ...guard.params],
  }));
}

/** The shares (channel, team) that let these memberships in: those of users from other teams than the host. */
function sharesRelied(hostTeamId: string, members: Membership[]): Array<[string, string]> {
  const pairs = new Map<string, [string, string]>();
  for (const m of members) {
    if (m.userTeamId !== hostTeamId) pairs.set(`${m.channelId}/${m.userTeamId}`, [m.channelId, m.userTeamId]);
  }
  return [...pairs.values()].sort();
}

/** `(channel_id, team_id) IN ...` of channel_shares (alias g) for these pairs. */
function pairsIn(d: Dialect, pairs: Array<[string, string]>): { clause: string; params: unknown[] } {
  if (d === "sqlite") {
    return {
      clause: "(g.`channel_id`, g.`team_id`) IN (SELECT value->>0, value->>1 FROM json_each(?))",
      params: [JSON.stringify(pairs)],
    };
  }
  return {
    clause: `(g.\`channel_id\`, g.\`team_id\`) IN (${pairs.map(() => "(?, ?)").join(", ")})`,
    params: pairs.flat(),
  };
}

/**
 * When some members come from teams a channel is shared with: the condition
 * that every one of those shares is still there. A write checks the shares
 * before its unit; an unshare committing in between must not leave a
 * membership of a team the channel no longer has (the unshare deletes the
 * memberships it finds, and this one would come after).
 */
function sharesGuard(d: Dialect, hostTeamId: string, pairs: Array<[string, string]>): Guard | undefined {
  if (pairs.length === 0) return undefined;
  const { clause, params } = pairsIn(d, pairs);
  return {
    sql: `(SELECT COUNT(*) FROM channel_shares g WHERE g.\`host_team_id\` = ? AND ${clause}) = ?`,
    params: [hostTeamId, ...params, pairs.length],
  };
}

/** On MySQL, the share rows sharesGuard reads, locked first (an unshare locks its row before anything else). */
function sharesLock(d: Dialect, hostTeamId: string, pairs: Array<[string, string]>): Statement[] {
  if (d !== "mysql" || pairs.length === 0) return [];
  const { clause, params } = pairsIn(d, pairs);
  return [
    {
      sql: `SELECT g.\`team_id\` FROM channel_shares g WHERE g.\`host_team_id\` = ? AND ${clause} FOR UPDATE`,
      params: [hostTeamId, ...params],
    },
  ];
}

/** One change-log row per member added or removed (with a guard: only while it holds). */
function memberLog(
  d: Dialect,
  teamId: string,
  channelId: string,
  kind: "member_added" | "member_removed",
  members: Membership[],
  now: number,
  guard?: Guard,
): Statement[] {
  return versionStatements(
    d,
    teamId,
    members.map((m) => ({ kind, entityId: channelId, extra: encodeMember(teamId, m) })),
    now,
    guard,
  );
}
