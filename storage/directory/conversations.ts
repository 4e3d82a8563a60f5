import { type ChangeEvent, type ConversationSpec, type DirChannel, kindOf } from "../../src/directory/model";
import type { DirectoryRows } from "../../src/directory/service";
import { badRequest, conflict, notFound } from "../../src/errors";
import { versionStatements } from "../change-log";
import { bulkInsert } from "../portable-sql";
import { type Statement, UniqueViolation } from "../sql-driver";
import type { DirectoryLookups } from "./lookups";
import { changeOf, isChannelEvent, isMemberEvent } from "./rows";
import type { DirectoryUnits } from "./units";

// DMs and group DMs: rows of `channels` with kind im / mpim, private, named
// by their id (upper case, so no channel name can take it: channel names
// are lower case), with one membership per member. Opening one is the
// channel's row, its memberships, a channel event and a member_added per
// member as one unit: the cache, the change log and the visibility of
// private channels then treat it as they treat any private channel.
//
// Identity: the id derives from the team and the members, so two racing
// opens of the same members insert the same primary key; the loser's unit
// fails whole on it (D1 and MySQL alike: UniqueViolation) and reads the
// winner's row.

/** Attempts of an open that lost a race (the next attempt finds the row). */
const MAX_OPEN_ATTEMPTS = 3;

export function conversationWrites(
  lookups: DirectoryLookups,
  units: DirectoryUnits,
): Pick<DirectoryRows, "openConversation" | "leaveConversation"> {
  const { driver, d, getChannel, requireChannel } = lookups;
  const { commit } = units;

  async function membersOf(teamId: string, id: string): Promise<string[]> {
    const rows = await driver.all(
      "SELECT `user_id` FROM memberships WHERE `team_id` = ? AND `channel_id` = ? ORDER BY `user_id`",
      [teamId, id],
    );
    return rows.map((r) => String(r.user_id));
  }

  /** A member_added unit for one user of the team (a member coming back). */
  async function addMember(teamId: string, channel: DirChannel, userId: string, now: number): Promise<ChangeEvent[]> {
    const before = await lookups.versionsBefore([teamId]);
    const rows = bulkInsert(
      d,
      "memberships",
      ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"],
      [[teamId, channel.id, userId, teamId, now]],
    );
    const log = versionStatements(d, teamId, [{ kind: "member_added", entityId: channel.id, extra: userId }], now);
    return commit([...rows, ...log], before, (e) => isMemberEvent(e, channel.id, new Set([userId])));
  }

  return {
    async openConversation(teamId, spec: ConversationSpec, rejoin, now) {
      for (let attempt = 1; ; attempt++) {
        const found = await getChannel(teamId, spec.id);
        if (found) {
          if (kindOf(found) !== spec.kind)
            throw conflict(`id ${spec.id} is taken by a ${kindOf(found)} in team ${teamId}`);
          let members = await membersOf(teamId, spec.id);
          const events: ChangeEvent[] = [];
          if (spec.members.includes(rejoin) && !members.includes(rejoin)) {
            try {
              events.push(...(await addMember(teamId, found, rejoin, now)));
            } catch (error) {
              // Back in already (a concurrent open of theirs): nothing was written.
              if (!(error instanceof UniqueViolation)) throw error;
            }
            members = await membersOf(teamId, spec.id);
          }
          return { conversation: found, members, created: false, events };
        }
        const before = await lookups.versionsBefore([teamId]);
        const insert: Statement = {
          sql: "INSERT INTO channels (`team_id`, `id`, `name`, `topic`, `purpose`, `is_private`, `is_archived`, `created_at`, `updated_at`, `kind`) VALUES (?, ?, ?, '', '', 1, 0, ?, ?, ?)",
          params: [teamId, spec.id, spec.id, now, now, spec.kind],
        };
        const rows = bulkInsert(
          d,
          "memberships",
          ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"],
          spec.members.map((u) => [teamId, spec.id, u, teamId, now]),
        );
        const log = versionStatements(
          d,
          teamId,
          [
            { kind: "channel", entityId: spec.id, extra: teamId },
            ...spec.members.map((u) => ({ kind: "member_added" as const, entityId: spec.id, extra: u })),
          ],
          now,
        );
        const ids = new Set(spec.members);
        try {
          const events = await commit(
            [insert, ...rows, ...log],
            before,
            (e) => isChannelEvent(e, teamId, spec.id) || isMemberEvent(e, spec.id, ids),
          );
          const conversation = changeOf(events, teamId, "channel") ?? (await requireChannel(teamId, spec.id));
          return { conversation, members: [...spec.members], created: true, events };
        } catch (error) {
          // Opened concurrently (or the id taken meanwhile): the next attempt reads what is there.
          if (!(error instanceof UniqueViolation) || attempt >= MAX_OPEN_ATTEMPTS) throw error;
        }
      }
    },

    async leaveConversation(teamId, conversationId, userId, now) {
      const found = await getChannel(teamId, conversationId);
      if (!found) throw notFound(`conversation ${conversationId} not found`);
      if (kindOf(found) === "im") throw badRequest("a direct message cannot be left: only a group DM can");
      if (kindOf(found) !== "mpim") throw badRequest(`${conversationId} is a channel, not a group DM`);
      const before = await lookups.versionsBefore([teamId]);
      const unit: Statement[] = [
        {
          sql: "DELETE FROM memberships WHERE `team_id` = ? AND `channel_id` = ? AND `user_id` = ?",
          params: [teamId, conversationId, userId],
        },
      ];
      // The log only when the row was there: checked inside the unit, so two
      // racing leaves log one member_removed (the version bump comes first, guarded).
      const guard = {
        sql: "EXISTS (SELECT 1 FROM memberships gm WHERE gm.`team_id` = ? AND gm.`channel_id` = ? AND gm.`user_id` = ?)",
        params: [teamId, conversationId, userId],
      };
      const lock: Statement[] =
        d === "mysql"
          ? [
              {
                sql: "SELECT `user_id` FROM memberships WHERE `team_id` = ? AND `channel_id` = ? AND `user_id` = ? FOR UPDATE",
                params: [teamId, conversationId, userId],
              },
            ]
          : [];
      const log = versionStatements(
        d,
        teamId,
        [{ kind: "member_removed", entityId: conversationId, extra: userId }],
        now,
        guard,
      );
      const results = await driver.atomic([...lock, ...log, ...unit]);
      const left = (results.at(-1)?.changes ?? 0) > 0;
      if (!left) return { left, events: [] };
      const events = await units.readBack(before, (e) => isMemberEvent(e, conversationId, new Set([userId])));
      return { left, events };
    },
  };
}

/** Refuses the channel writes that would break a DM's identity (its members derive its id; its name is its id). */
export function requirePlainChannel(channel: DirChannel, what: string): void {
  if (kindOf(channel) !== "channel") {
    throw badRequest(`${channel.id} is a ${channel.kind === "im" ? "direct message" : "group DM"}: ${what}`);
  }
}
