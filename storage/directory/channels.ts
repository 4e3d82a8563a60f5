import type { ChangeEvent, DirChannel } from "../../src/directory/model";
import type { DirectoryRows } from "../../src/directory/service";
import type { ChannelPatch, NewChannel } from "../../src/directory/writer";
import { conflict } from "../../src/errors";
import { type Guard, readVersionStatement, versionIn, versionStatements } from "../change-log";
import { bulkInsert, chunks, inList } from "../portable-sql";
import { type Dialect, type Statement, UniqueViolation } from "../sql-driver";
import { requirePlainChannel } from "./conversations";
import type { DirectoryLookups } from "./lookups";
import { changedAssignments, changeOf, isChannelEvent, shareKey } from "./rows";
import type { DirectoryUnits } from "./units";

// Channel writes: create, change (fanned out to every team it is shared
// with), share into another team and end that share, bulk import.

export function channelWrites(
  lookups: DirectoryLookups,
  units: DirectoryUnits,
): Pick<DirectoryRows, "createChannel" | "updateChannel" | "shareChannel" | "unshareChannel" | "importChannels"> {
  const { driver, d, chunkSize, requireChannel, sharesOf, channelTaken, requireIdFree } = lookups;
  const { commit, readBack, channelFanOut, keyedImport } = units;
  return {
    async createChannel(teamId, input: NewChannel, now) {
      const before = await lookups.versionsBefore([teamId]);
      const sharedIn = await driver.all(
        "SELECT `host_team_id` FROM channel_shares WHERE `team_id` = ? AND `channel_id` = ?",
        [teamId, input.id],
      );
      if (sharedIn.length > 0) throw conflict(`channel id ${input.id} is already shared into team ${teamId}`);
      const insert: Statement = {
        sql: "INSERT INTO channels (`team_id`, `id`, `name`, `topic`, `purpose`, `is_private`, `is_archived`, `created_at`, `updated_at`) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        params: [teamId, input.id, input.name, input.topic, input.purpose, input.isPrivate ? 1 : 0, now, now],
      };
      const log = versionStatements(d, teamId, [{ kind: "channel", entityId: input.id, extra: teamId }], now);
      let events: ChangeEvent[];
      try {
        events = await commit([insert, ...log], before, (e) => isChannelEvent(e, teamId, input.id));
      } catch (error) {
        if (error instanceof UniqueViolation) throw await channelTaken(teamId, input.id, input.name);
        throw error;
      }
      return { channel: changeOf(events, teamId, "channel") ?? (await requireChannel(teamId, input.id)), events };
    },

    async updateChannel(teamId, channelId, patch: ChannelPatch, now) {
      const current = await requireChannel(teamId, channelId);
      requirePlainChannel(current, "its name, topic and privacy are fixed");
      const { sets, params } = changedAssignments(
        {
          name: current.name,
          topic: current.topic,
          purpose: current.purpose,
          is_private: current.isPrivate ? 1 : 0,
          is_archived: current.isArchived ? 1 : 0,
        },
        {
          name: patch.name,
          topic: patch.topic,
          purpose: patch.purpose,
          is_private: patch.isPrivate === undefined ? undefined : patch.isPrivate ? 1 : 0,
          is_archived: patch.isArchived === undefined ? undefined : patch.isArchived ? 1 : 0,
        },
      );
      if (sets.length === 0) return { channel: current, events: [] };
      const teams = [teamId, ...current.sharedWith];
      const before = await lookups.versionsBefore(teams);
      const update: Statement = {
        sql: `UPDATE channels SET ${[...sets, "`updated_at` = ?"].join(", ")} WHERE \`team_id\` = ? AND \`id\` = ?`,
        params: [...params, now, teamId, channelId],
      };
      let events: ChangeEvent[];
      try {
        events = await commit([update, ...channelFanOut(current, teams, now)], before, (e) =>
          isChannelEvent(e, teamId, channelId),
        );
      } catch (error) {
        if (error instanceof UniqueViolation) throw conflict(`channel name #${patch.name} is taken in team ${teamId}`);
        throw error;
      }
      // A share committed between our read of sharedWith and our commit may
      // have read the channel before this change: give those teams the event too.
      const late = (await sharesOf(teamId, [channelId])).get(shareKey(teamId, channelId)) ?? [];
      const missed = late.filter((t) => !teams.includes(t));
      if (missed.length > 0) {
        const beforeMissed = await lookups.versionsBefore(missed);
        events.push(
          ...(await commit(channelFanOut(current, missed, now), beforeMissed, (e) =>
            isChannelEvent(e, teamId, channelId),
          )),
        );
      }
      return { channel: changeOf(events, teamId, "channel") ?? (await requireChannel(teamId, channelId)), events };
    },

    async shareChannel(teamId, channelId, withTeamId, now) {
      const channel = await requireChannel(teamId, channelId);
      requirePlainChannel(channel, "DMs with external users need an accepted Slack Connect connection");
      if (channel.sharedWith.includes(withTeamId)) return { channel, events: [] };
      const before = await lookups.versionsBefore([teamId, withTeamId]);
      await requireIdFree(withTeamId, channelId, teamId);
      const statements: Statement[] = [
        {
          sql: "INSERT INTO channel_shares (`team_id`, `channel_id`, `host_team_id`) VALUES (?, ?, ?)",
          params: [withTeamId, channelId, teamId],
        },
        {
          sql: "UPDATE channels SET `updated_at` = ? WHERE `team_id` = ? AND `id` = ?",
          params: [now, teamId, channelId],
        },
        ...channelFanOut(channel, [teamId, withTeamId], now),
      ];
      let events: ChangeEvent[];
      try {
        events = await commit(statements, before, (e) => isChannelEvent(e, teamId, channelId));
      } catch (error) {
        if (!(error instanceof UniqueViolation)) throw error;
        // Shared concurrently by this host (a no-op), or the id was taken meanwhile.
        const fresh = await requireChannel(teamId, channelId);
        if (fresh.sharedWith.includes(withTeamId)) return { channel: fresh, events: [] };
        throw conflict(`team ${withTeamId} already sees a channel with id ${channelId}`);
      }
      return { channel: changeOf(events, teamId, "channel") ?? (await requireChannel(teamId, channelId)), events };
    },

    async unshareChannel(teamId, channelId, withTeamId, now) {
      const channel = await requireChannel(teamId, channelId);
      if (!channel.sharedWith.includes(withTeamId)) return { channel, removed: [], events: [] };
      // Run as a unit of its own rather than through commit: its results say
      // whether it won, how many members it removed and which versions it took.
      const unit = unshareUnit(d, channel, withTeamId, now);
      const results = await driver.atomic(unit.statements);
      const at = (i: number) => results[results.length + i];
      if ((at(unit.shareDeleted)?.changes ?? 0) === 0) {
        // A concurrent unshare ended it first: the guard kept this unit from writing anything.
        return { channel: await requireChannel(teamId, channelId), removed: [], events: [] };
      }
      // Exactly this unit's versions, whatever committed around it: the
      // removals and the channel event in the host's log, the channel event
      // in the other team's.
      const hostVersion = versionIn(at(unit.hostVersion));
      const otherVersion = versionIn(at(unit.otherVersion));
      const removedCount = at(unit.membersDeleted)?.changes ?? 0;
      const from = new Map([
        [teamId, hostVersion - removedCount - 1],
        [withTeamId, otherVersion - 1],
      ]);
      const events = await readBack(from, (e) => e.version <= (e.teamId === teamId ? hostVersion : otherVersion));
      // The pairs the unit logged (a replay says member_added for one re-added since).
      const removed = events.flatMap((e) =>
        e.change.kind === "member_added" || e.change.kind === "member_removed" ? [e.change.membership] : [],
      );
      return {
        channel: changeOf(events, teamId, "channel") ?? (await requireChannel(teamId, channelId)),
        removed,
        events,
      };
    },

    async importChannels(teamId, channels: NewChannel[], now, record) {
      await lookups.versionsBefore([teamId]);
      const taken = { ids: [] as string[], names: [] as string[] };
      for (const chunk of chunks(channels, chunkSize)) {
        const ids = inList(
          d,
          chunk.map((c) => c.id),
        );
        const names = inList(
          d,
          chunk.map((c) => c.name),
        );
        const rows = await driver.all(
          `SELECT \`id\` AS v, 'id' AS what FROM channels WHERE \`team_id\` = ? AND \`id\` IN ${ids.clause}
           UNION ALL SELECT \`channel_id\`, 'id' FROM channel_shares WHERE \`team_id\` = ? AND \`channel_id\` IN ${ids.clause}
           UNION ALL SELECT \`name\`, 'name' FROM channels WHERE \`team_id\` = ? AND \`name\` IN ${names.clause}`,
          [teamId, ...ids.params, teamId, ...ids.params, teamId, ...names.params],
        );
        for (const r of rows) (r.what === "id" ? taken.ids : taken.names).push(String(r.v));
      }
      if (taken.ids.length > 0 || taken.names.length > 0) {
        throw conflict("some channels already exist in this team; nothing was imported", taken);
      }
      const rows = bulkInsert(
        d,
        "channels",
        ["team_id", "id", "name", "topic", "purpose", "is_private", "is_archived", "created_at", "updated_at"],
        channels.map((c) => [teamId, c.id, c.name, c.topic, c.purpose, c.isPrivate ? 1 : 0, 0, now, now]),
      );
      const raced = "a channel with one of these ids or names was created concurrently; nothing was imported";
      return keyedImport(teamId, "channels", rows, channels.length, record, now, raced);
    },
  };
}

/**
 * The unit that ends a share, and where its results are (negative indexes,
 * from the end). Everything it writes is guarded by the share still being
 * there as the unit finds it, and the share's row goes last: a unit that
 * lost a race with another unshare deletes no share and writes nothing else.
 * The other team's members are not taken from a read made before the unit:
 * they are counted, logged and deleted inside it, from the rows themselves,
 * so a member added meanwhile is deleted and logged like the others (and
 * addMembers only adds another team's users while the share is there: no
 * membership of that team can outlive the share). D1 runs the batch with
 * no writer in between; on MySQL the unit first locks the share row and the
 * channel's memberships of that team, so the counts cannot move under it.
 * Teams are bumped in sorted order, as channelFanOut does (a stable lock
 * order).
 */
function unshareUnit(d: Dialect, channel: DirChannel, withTeamId: string, now: number) {
  const host = channel.teamId;
  const id = channel.id;
  const guard: Guard = {
    sql: "EXISTS (SELECT 1 FROM channel_shares g WHERE g.`team_id` = ? AND g.`channel_id` = ? AND g.`host_team_id` = ?)",
    params: [withTeamId, id, host],
  };
  const when = `AND (${guard.sql})`;
  // The channel's memberships of the other team's users.
  const theirs = "memberships WHERE `team_id` = ? AND `channel_id` = ? AND `user_team_id` = ?";
  const theirsParams = [host, id, withTeamId];
  const lock: Statement[] =
    d === "mysql"
      ? [
          {
            sql: "SELECT `team_id` FROM channel_shares WHERE `team_id` = ? AND `channel_id` = ? AND `host_team_id` = ? FOR UPDATE",
            params: [withTeamId, id, host],
          },
          { sql: `SELECT \`user_id\` FROM ${theirs} FOR UPDATE`, params: theirsParams },
        ]
      : [];
  const insert = "INSERT INTO directory_changes (`team_id`, `version`, `kind`, `entity_id`, `extra`, `at`)";
  // The member's extra as encodeMember writes it (a user of the other team, so `user@team`).
  const extra = d === "sqlite" ? "r.`user_id` || '@' || ?" : "CONCAT(r.`user_id`, '@', ?)";
  const hostLog: Statement[] = [
    {
      sql: `UPDATE teams SET \`dir_version\` = \`dir_version\` + 1 + (SELECT COUNT(*) FROM ${theirs}) WHERE \`id\` = ? ${when}`,
      params: [...theirsParams, host, ...guard.params],
    },
    // The removals first, then the channel: the host's cache forwards them
    // to the shared channel's object while it still sees the channel shared.
    {
      sql: `${insert} SELECT t.\`id\`, t.\`dir_version\` - r.n - 1 + r.i, 'member_removed', ?, ${extra}, ?
            FROM (SELECT \`user_id\`, ROW_NUMBER() OVER (ORDER BY \`user_id\`) AS i, COUNT(*) OVER () AS n FROM ${theirs}) r, teams t
            WHERE t.\`id\` = ? ${when}`,
      params: [id, withTeamId, now, ...theirsParams, host, ...guard.params],
    },
    {
      sql: `${insert} SELECT t.\`id\`, t.\`dir_version\`, 'channel', ?, ?, ? FROM teams t WHERE t.\`id\` = ? ${when}`,
      params: [id, host, now, host, ...guard.params],
    },
  ];
  const otherLog = versionStatements(d, withTeamId, [{ kind: "channel", entityId: id, extra: host }], now, guard);
  const statements: Statement[] = [
    ...lock,
    {
      sql: `UPDATE channels SET \`updated_at\` = ? WHERE \`team_id\` = ? AND \`id\` = ? ${when}`,
      params: [now, host, id, ...guard.params],
    },
    ...(host < withTeamId ? [...hostLog, ...otherLog] : [...otherLog, ...hostLog]),
    { sql: `DELETE FROM ${theirs} ${when}`, params: [...theirsParams, ...guard.params] },
    {
      sql: "DELETE FROM channel_shares WHERE `team_id` = ? AND `channel_id` = ? AND `host_team_id` = ?",
      params: [withTeamId, id, host],
    },
    readVersionStatement(host),
    readVersionStatement(withTeamId),
  ];
  return { statements, membersDeleted: -4, shareDeleted: -3, hostVersion: -2, otherVersion: -1 };
}
