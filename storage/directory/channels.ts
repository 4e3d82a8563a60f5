import type { ChangeEvent } from "../../src/directory/model";
import type { DirectoryRows } from "../../src/directory/service";
import type { ChannelPatch, NewChannel } from "../../src/directory/writer";
import { conflict } from "../../src/errors";
import { versionStatements } from "../change-log";
import { bulkInsert, chunks, inList } from "../portable-sql";
import { type Statement, UniqueViolation } from "../sql-driver";
import type { DirectoryLookups } from "./lookups";
import { changedAssignments, changeOf, isChannelEvent, shareKey } from "./rows";
import type { DirectoryUnits } from "./units";

// Channel writes: create, change (fanned out to every team it is shared
// with), share into another team, bulk import.

export function channelWrites(
  lookups: DirectoryLookups,
  units: DirectoryUnits,
): Pick<DirectoryRows, "createChannel" | "updateChannel" | "shareChannel" | "importChannels"> {
  const { driver, d, chunkSize, requireChannel, sharesOf, channelTaken, requireIdFree } = lookups;
  const { commit, channelFanOut, keyedImport } = units;
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
