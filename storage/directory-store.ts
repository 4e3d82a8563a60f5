import type { ChangeEvent, DirChannel, DirectoryChange, DirUser, Membership } from "../src/directory/model";
import type { DirectorySource } from "../src/directory/source";
import {
  CHANNEL_TEXT_MAX,
  type ChannelPatch,
  type DirectoryWriter,
  type MemberInput,
  type MembershipInput,
  type NewChannel,
  normalizeChannelName,
  PROFILE_MAX,
  type ProfilePatch,
} from "../src/directory/writer";
import { badRequest, conflict, type DomainError, notFound } from "../src/errors";
import { versionStatements } from "./change-log";
import { idempotencyInsert } from "./idempotency-sql";
import { bulkInsert, chunks, inList, MYSQL_CHUNK, num, roleOf, SQLITE_CHUNK } from "./portable-sql";
import { type Row, type SqlDriver, type Statement, UniqueViolation } from "./sql-driver";

// The directory's source of truth for the edge cache, on both engines (same
// SQL subset and dialect split as sql-store.ts).
//
// Versions. Every write is one atomic unit (D1 batch / MySQL transaction):
// the entity rows, `UPDATE teams SET dir_version = dir_version + k`, and k
// rows of `directory_changes` whose versions are derived from dir_version
// inside the same unit. Versions are therefore dense per team (1, 2, 3, ...),
// never reused, and a failing write (a taken name) bumps nothing. The events a
// write returns are read back after the commit with changesSince, so they
// carry committed state and the versions the database actually assigned.
// The admin user writes (sql-store.ts) append `user` and `bulk` rows to the
// same log in their own units, through the same change-log.ts; the
// recordUserChanges / recordReload below are a separate unit each, for
// callers outside TeamStore.
//
// Change-log encoding, one row per version:
//
// | kind           | entity_id  | extra                                                  |
// | -------------- | ---------- | ------------------------------------------------------ |
// | user           | user id    | ''                                                     |
// | channel        | channel id | the channel's host team (= team_id unless shared in)   |
// | member_added   | channel id | user id, or `userId@userTeamId` for another team's user |
// | member_removed | channel id | same as member_added                                   |
// | bulk           | ''         | what was imported: channels, memberships, users, reload |
//
// changesSince rebuilds events from the log plus the current rows: user and
// channel events carry the entity as it is now; a membership event is
// member_added when the pair is a member now and member_removed when not (so,
// like entity events, replaying any suffix of the log ends in the current
// state); `bulk` becomes { kind: "reload" }. Membership events live in the
// host team's log only (pageMemberships lists the team's own channels); a
// shared channel's channel events go to the host and every team it is shared
// with.
//
// Identity. Channel ids are per team; a team must never see two channels with
// one id, so creating a channel whose id is shared into the team, or sharing a
// channel into a team that already sees that id, is a conflict. Within a channel a
// member is keyed by user id alone (the memberships primary key).
//
// Races. Nothing here deletes users or channels and shares are never
// removed, so existence checks made before a write stay true. Two concurrent
// adds of one member: the loser's unit fails on the primary key and is
// retried against fresh state. Two concurrent removals of one member can both
// log member_removed; the duplicate is harmless (the cache applies state).

/** More user ids than this in one recordUserChanges log a single reload. */
const USER_EVENTS_INLINE = 1000;
/** Page size when reading back a write's events. */
const READ_BACK_PAGE = 1000;
/** Attempts of a membership add that lost a race for the same member. */
const MAX_ADD_ATTEMPTS = 3;

const USER_COLUMNS =
  "u.`team_id` AS u_team, u.`id` AS u_id, u.`name` AS u_name, u.`real_name` AS u_real_name, u.`display_name` AS u_display_name, u.`title` AS u_title, u.`avatar_hash` AS u_avatar_hash, u.`tz` AS u_tz, u.`is_bot` AS u_is_bot, u.`role` AS u_role, u.`deactivated` AS u_deactivated, u.`updated_at` AS u_updated";
const CHANNEL_COLUMNS =
  "ch.`team_id` AS c_team, ch.`id` AS c_id, ch.`name` AS c_name, ch.`topic` AS c_topic, ch.`purpose` AS c_purpose, ch.`is_private` AS c_private, ch.`is_archived` AS c_archived, ch.`created_at` AS c_created, ch.`updated_at` AS c_updated";

// --- small pure pieces ------------------------------------------------------

/** extra of a membership row: the user id, plus their team when it is not the channel's. */
export function encodeMember(hostTeamId: string, m: Membership): string {
  return m.userTeamId === hostTeamId ? m.userId : `${m.userId}@${m.userTeamId}`;
}

export function decodeMember(hostTeamId: string, channelId: string, extra: string): Membership {
  const at = extra.indexOf("@");
  return at < 0
    ? { channelId, userId: extra, userTeamId: hostTeamId }
    : { channelId, userId: extra.slice(0, at), userTeamId: extra.slice(at + 1) };
}

/** `col = ?` pairs for the fields that differ from the current row. */
function changedAssignments(
  current: Record<string, unknown>,
  wanted: Record<string, unknown>,
): { sets: string[]; params: unknown[] } {
  const changed = Object.entries(wanted).filter(([k, v]) => v !== undefined && v !== current[k]);
  return { sets: changed.map(([k]) => `\`${k}\` = ?`), params: changed.map(([, v]) => v) };
}

function checkLength(field: string, value: string | undefined, max: number): void {
  if (value !== undefined && value.length > max) throw badRequest(`${field} is longer than ${max} characters`);
}

function checkChannelInput(c: { name?: string; topic?: string; purpose?: string }): void {
  if (c.name !== undefined && normalizeChannelName(c.name) !== c.name) {
    throw badRequest(`invalid channel name "${c.name}": 1-80 of a-z 0-9 _ -`);
  }
  checkLength("topic", c.topic, CHANNEL_TEXT_MAX);
  checkLength("purpose", c.purpose, CHANNEL_TEXT_MAX);
}

function toDirUser(r: Row): DirUser {
  return {
    teamId: String(r.u_team),
    id: String(r.u_id),
    name: String(r.u_name),
    realName: String(r.u_real_name),
    displayName: String(r.u_display_name),
    title: String(r.u_title),
    avatarHash: String(r.u_avatar_hash),
    tz: String(r.u_tz),
    isBot: num(r.u_is_bot) === 1,
    role: roleOf(r.u_role),
    deleted: num(r.u_deactivated) === 1,
    updatedAt: num(r.u_updated),
  };
}

function toMembership(r: Row): Membership {
  return { channelId: String(r.channel_id), userId: String(r.user_id), userTeamId: String(r.user_team_id) };
}

function toDirChannel(r: Row, sharedWith: string[]): DirChannel {
  return {
    teamId: String(r.c_team),
    id: String(r.c_id),
    name: String(r.c_name),
    topic: String(r.c_topic),
    purpose: String(r.c_purpose),
    isPrivate: num(r.c_private) === 1,
    isArchived: num(r.c_archived) === 1,
    createdAt: num(r.c_created),
    updatedAt: num(r.c_updated),
    sharedWith,
  };
}

const shareKey = (hostTeamId: string, channelId: string) => `${hostTeamId}/${channelId}`;

function isChannelEvent(e: ChangeEvent, hostTeamId: string, channelId: string): boolean {
  return e.change.kind === "channel" && e.change.channel.teamId === hostTeamId && e.change.channel.id === channelId;
}

function isMemberEvent(e: ChangeEvent, channelId: string, userIds: Set<string>): boolean {
  const c = e.change;
  return (
    (c.kind === "member_added" || c.kind === "member_removed") &&
    c.membership.channelId === channelId &&
    userIds.has(c.membership.userId)
  );
}

function changeOf(events: ChangeEvent[], teamId: string, kind: "channel"): DirChannel | undefined;
function changeOf(events: ChangeEvent[], teamId: string, kind: "user"): DirUser | undefined;
function changeOf(events: ChangeEvent[], teamId: string, kind: "channel" | "user"): DirChannel | DirUser | undefined {
  for (const e of events) {
    if (e.teamId !== teamId) continue;
    if (kind === "channel" && e.change.kind === "channel") return e.change.channel;
    if (kind === "user" && e.change.kind === "user") return e.change.user;
  }
  return undefined;
}

// --- the adapter --------------------------------------------------------------

export function directoryStore(driver: SqlDriver): DirectorySource & DirectoryWriter {
  const d = driver.dialect;
  const chunkSize = d === "mysql" ? MYSQL_CHUNK : SQLITE_CHUNK;

  /** Versions of these teams now (before a write); not_found for a team that does not exist. */
  async function versionsBefore(teamIds: string[]): Promise<Map<string, number>> {
    const unique = [...new Set(teamIds)];
    const { clause, params } = inList(d, unique);
    const rows = await driver.all(`SELECT \`id\`, \`dir_version\` FROM teams WHERE \`id\` IN ${clause}`, params);
    const out = new Map(rows.map((r) => [String(r.id), num(r.dir_version)]));
    for (const id of unique) if (!out.has(id)) throw notFound(`team ${id} not found`);
    return out;
  }

  /** Teams each of these hosted channels is shared with, sorted. */
  async function sharesOf(hostTeamId: string, channelIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const chunk of chunks([...new Set(channelIds)], chunkSize)) {
      const { clause, params } = inList(d, chunk);
      const rows = await driver.all(
        `SELECT \`channel_id\`, \`team_id\` FROM channel_shares WHERE \`host_team_id\` = ? AND \`channel_id\` IN ${clause} ORDER BY \`team_id\``,
        [hostTeamId, ...params],
      );
      for (const r of rows) {
        const key = shareKey(hostTeamId, String(r.channel_id));
        out.set(key, [...(out.get(key) ?? []), String(r.team_id)]);
      }
    }
    return out;
  }

  /** Adds sharedWith to channel rows, one query per host team among them. */
  async function withShares(rows: Row[]): Promise<Map<string, string[]>> {
    const byHost = new Map<string, string[]>();
    for (const r of rows) byHost.set(String(r.c_team), [...(byHost.get(String(r.c_team)) ?? []), String(r.c_id)]);
    const out = new Map<string, string[]>();
    for (const [host, ids] of byHost) for (const [k, v] of await sharesOf(host, ids)) out.set(k, v);
    return out;
  }

  async function getChannel(hostTeamId: string, channelId: string): Promise<DirChannel | null> {
    const rows = await driver.all(
      `SELECT ${CHANNEL_COLUMNS} FROM channels ch WHERE ch.\`team_id\` = ? AND ch.\`id\` = ?`,
      [hostTeamId, channelId],
    );
    const row = rows[0];
    if (!row) return null;
    const shares = await sharesOf(hostTeamId, [channelId]);
    return toDirChannel(row, shares.get(shareKey(hostTeamId, channelId)) ?? []);
  }

  async function requireChannel(hostTeamId: string, channelId: string): Promise<DirChannel> {
    const channel = await getChannel(hostTeamId, channelId);
    if (!channel) throw notFound(`channel ${channelId} not found in team ${hostTeamId}`);
    return channel;
  }

  /** Which of these user ids exist in the team. */
  async function existingUsers(teamId: string, userIds: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const chunk of chunks([...new Set(userIds)], chunkSize)) {
      const { clause, params } = inList(d, chunk);
      const rows = await driver.all(`SELECT \`id\` FROM users WHERE \`team_id\` = ? AND \`id\` IN ${clause}`, [
        teamId,
        ...params,
      ]);
      for (const r of rows) found.add(String(r.id));
    }
    return found;
  }

  /** Current memberships of a channel among these users, by user id. */
  async function membersAmong(hostTeamId: string, channelId: string, userIds: string[]) {
    const found = new Map<string, Membership>();
    for (const chunk of chunks([...new Set(userIds)], chunkSize)) {
      const { clause, params } = inList(d, chunk);
      const rows = await driver.all(
        `SELECT \`user_id\`, \`user_team_id\` FROM memberships WHERE \`team_id\` = ? AND \`channel_id\` = ? AND \`user_id\` IN ${clause}`,
        [hostTeamId, channelId, ...params],
      );
      for (const r of rows) {
        found.set(String(r.user_id), { channelId, userId: String(r.user_id), userTeamId: String(r.user_team_id) });
      }
    }
    return found;
  }

  /** not_found naming the users that are in none of the channel's teams. */
  async function requireUsers(channel: DirChannel, members: Array<{ userId: string; userTeamId: string }>) {
    const allowed = new Set([channel.teamId, ...channel.sharedWith]);
    const byTeam = new Map<string, string[]>();
    const missing: string[] = [];
    for (const m of members) {
      if (!allowed.has(m.userTeamId)) missing.push(`${m.userId}@${m.userTeamId}`);
      else byTeam.set(m.userTeamId, [...(byTeam.get(m.userTeamId) ?? []), m.userId]);
    }
    for (const [teamId, ids] of byTeam) {
      const found = await existingUsers(teamId, ids);
      for (const id of ids) if (!found.has(id)) missing.push(teamId === channel.teamId ? id : `${id}@${teamId}`);
    }
    if (missing.length > 0) {
      throw notFound(`users not found in the teams of channel ${channel.id}`, {
        users: missing,
      });
    }
  }

  /**
   * Runs the unit, then reads back the events it produced in every team it
   * bumped: those after the version each team had before, that `mine` claims
   * (a concurrent write's events are its own to publish).
   */
  async function commit(
    statements: Statement[],
    before: Map<string, number>,
    mine: (e: ChangeEvent) => boolean,
  ): Promise<ChangeEvent[]> {
    await driver.atomic(statements);
    const events: ChangeEvent[] = [];
    for (const [teamId, since] of before) {
      let after = since;
      for (;;) {
        const page = await source.changesSince(teamId, after, READ_BACK_PAGE);
        events.push(...page.filter(mine));
        if (page.length < READ_BACK_PAGE) break;
        after = page.at(-1)?.version ?? after;
      }
    }
    return events;
  }

  /** Channel events for the host and every team the channel is shared with (sorted: a stable lock order). */
  function channelFanOut(channel: DirChannel, teams: string[], now: number): Statement[] {
    return [...new Set(teams)]
      .sort()
      .flatMap((t) => versionStatements(d, t, [{ kind: "channel", entityId: channel.id, extra: channel.teamId }], now));
  }

  async function bulkChange(teamId: string, what: string, rows: Statement[], now: number) {
    const before = await versionsBefore([teamId]);
    const log = versionStatements(d, teamId, [{ kind: "bulk", entityId: "", extra: what }], now);
    return commit([...rows, ...log], before, (e) => e.change.kind === "reload");
  }

  const source: DirectorySource = {
    async version(teamId) {
      const rows = await driver.all("SELECT `dir_version` FROM teams WHERE `id` = ?", [teamId]);
      return rows[0] ? num(rows[0].dir_version) : 0;
    },

    async pageUsers(teamId, afterId, limit) {
      const rows = await driver.all(
        `SELECT ${USER_COLUMNS} FROM users u WHERE u.\`team_id\` = ? AND u.\`id\` > ? ORDER BY u.\`id\` LIMIT ?`,
        [teamId, afterId ?? "", limit],
      );
      return rows.map(toDirUser);
    },

    async users(teamId, ids) {
      const out: DirUser[] = [];
      for (const chunk of chunks([...new Set(ids)], chunkSize)) {
        const { clause, params } = inList(d, chunk);
        const rows = await driver.all(
          `SELECT ${USER_COLUMNS} FROM users u WHERE u.\`team_id\` = ? AND u.\`id\` IN ${clause}`,
          [teamId, ...params],
        );
        out.push(...rows.map(toDirUser));
      }
      return out;
    },

    async pageChannels(teamId, afterId, limit) {
      // Own channels and channels shared in, each side limited before the
      // merge so neither scans past the page.
      const after = afterId ?? "";
      const rows = await driver.all(
        `SELECT * FROM (
           SELECT * FROM (SELECT ${CHANNEL_COLUMNS} FROM channels ch WHERE ch.\`team_id\` = ? AND ch.\`id\` > ? ORDER BY ch.\`id\` LIMIT ?) own
           UNION ALL
           SELECT * FROM (SELECT ${CHANNEL_COLUMNS} FROM channel_shares s JOIN channels ch ON ch.\`team_id\` = s.\`host_team_id\` AND ch.\`id\` = s.\`channel_id\` WHERE s.\`team_id\` = ? AND s.\`channel_id\` > ? ORDER BY s.\`channel_id\` LIMIT ?) shared_in
         ) x ORDER BY x.c_id LIMIT ?`,
        [teamId, after, limit, teamId, after, limit, limit],
      );
      const shares = await withShares(rows);
      return rows.map((r) => toDirChannel(r, shares.get(shareKey(String(r.c_team), String(r.c_id))) ?? []));
    },

    async pageMemberships(teamId, after, limit) {
      const rows = await driver.all(
        "SELECT `channel_id`, `user_id`, `user_team_id` FROM memberships WHERE `team_id` = ? AND (`channel_id` > ? OR (`channel_id` = ? AND `user_id` > ?)) ORDER BY `channel_id`, `user_id` LIMIT ?",
        [teamId, after?.channelId ?? "", after?.channelId ?? "", after?.userId ?? "", limit],
      );
      return rows.map(toMembership);
    },

    async pageChannelMembers(hostTeamId, channelId, afterUserId, limit) {
      const rows = await driver.all(
        "SELECT `channel_id`, `user_id`, `user_team_id` FROM memberships WHERE `team_id` = ? AND `channel_id` = ? AND `user_id` > ? ORDER BY `user_id` LIMIT ?",
        [hostTeamId, channelId, afterUserId ?? "", limit],
      );
      return rows.map(toMembership);
    },

    async pageForeignMemberships(teamId, after, limit) {
      // Found through the (user_team_id, user_id) index: only the team's own
      // users' rows are read, however big the shared channels are.
      const rows = await driver.all(
        "SELECT `channel_id`, `user_id`, `user_team_id` FROM memberships WHERE `user_team_id` = ? AND `team_id` <> ? AND (`channel_id` > ? OR (`channel_id` = ? AND `user_id` > ?)) ORDER BY `channel_id`, `user_id` LIMIT ?",
        [teamId, teamId, after?.channelId ?? "", after?.channelId ?? "", after?.userId ?? "", limit],
      );
      return rows.map(toMembership);
    },

    async changesSince(teamId, since, limit) {
      const rows = await driver.all(
        `SELECT l.\`version\` AS l_version, l.\`kind\` AS l_kind, l.\`entity_id\` AS l_entity, l.\`extra\` AS l_extra, ${USER_COLUMNS}, ${CHANNEL_COLUMNS}
         FROM directory_changes l
         LEFT JOIN users u ON l.\`kind\` = 'user' AND u.\`team_id\` = l.\`team_id\` AND u.\`id\` = l.\`entity_id\`
         LEFT JOIN channels ch ON l.\`kind\` = 'channel' AND ch.\`team_id\` = l.\`extra\` AND ch.\`id\` = l.\`entity_id\`
         WHERE l.\`team_id\` = ? AND l.\`version\` > ? ORDER BY l.\`version\` LIMIT ?`,
        [teamId, since, limit],
      );
      const shares = await withShares(rows.filter((r) => r.c_id !== null && r.c_id !== undefined));
      const pairs = rows
        .filter((r) => r.l_kind === "member_added" || r.l_kind === "member_removed")
        .map((r) => decodeMember(teamId, String(r.l_entity), String(r.l_extra)));
      const current = await currentMemberships(teamId, pairs);
      return rows.map((r): ChangeEvent => {
        const version = num(r.l_version);
        const entityId = String(r.l_entity);
        let change: DirectoryChange = { kind: "reload" };
        switch (r.l_kind) {
          case "user":
            // Users and channels are never deleted; a missing row would be
            // corruption, and reloading is the safe answer to it.
            if (r.u_id !== null && r.u_id !== undefined) change = { kind: "user", user: toDirUser(r) };
            break;
          case "channel":
            if (r.c_id !== null && r.c_id !== undefined) {
              const sharedWith = shares.get(shareKey(String(r.c_team), entityId)) ?? [];
              change = { kind: "channel", channel: toDirChannel(r, sharedWith) };
            }
            break;
          case "member_added":
          case "member_removed": {
            const logged = decodeMember(teamId, entityId, String(r.l_extra));
            const now = current.get(`${logged.channelId}/${logged.userId}`);
            change = now ? { kind: "member_added", membership: now } : { kind: "member_removed", membership: logged };
            break;
          }
        }
        return { teamId, version, change };
      });
    },
  };

  /** The memberships among these (channel, user) pairs that exist now, keyed channel/user. */
  async function currentMemberships(hostTeamId: string, pairs: Membership[]): Promise<Map<string, Membership>> {
    const out = new Map<string, Membership>();
    if (pairs.length === 0) return out;
    const channelIds = [...new Set(pairs.map((p) => p.channelId))];
    const userIds = [...new Set(pairs.map((p) => p.userId))];
    const wanted = new Set(pairs.map((p) => `${p.channelId}/${p.userId}`));
    for (const users of chunks(userIds, chunkSize)) {
      const c = inList(d, channelIds);
      const u = inList(d, users);
      const rows = await driver.all(
        `SELECT \`channel_id\`, \`user_id\`, \`user_team_id\` FROM memberships WHERE \`team_id\` = ? AND \`channel_id\` IN ${c.clause} AND \`user_id\` IN ${u.clause}`,
        [hostTeamId, ...c.params, ...u.params],
      );
      for (const r of rows) {
        const key = `${String(r.channel_id)}/${String(r.user_id)}`;
        if (wanted.has(key)) {
          out.set(key, {
            channelId: String(r.channel_id),
            userId: String(r.user_id),
            userTeamId: String(r.user_team_id),
          });
        }
      }
    }
    return out;
  }

  const writer: DirectoryWriter = {
    async createChannel(teamId, input: NewChannel, now) {
      checkChannelInput(input);
      const before = await versionsBefore([teamId]);
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
      checkChannelInput(patch);
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
      const before = await versionsBefore(teams);
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
        const beforeMissed = await versionsBefore(missed);
        events.push(
          ...(await commit(channelFanOut(current, missed, now), beforeMissed, (e) =>
            isChannelEvent(e, teamId, channelId),
          )),
        );
      }
      return { channel: changeOf(events, teamId, "channel") ?? (await requireChannel(teamId, channelId)), events };
    },

    async addMembers(teamId, channelId, members: MemberInput[], now) {
      const wanted = new Map<string, Membership>();
      for (const m of members) {
        const userTeamId = m.userTeamId ?? teamId;
        const seen = wanted.get(m.userId);
        if (seen && seen.userTeamId !== userTeamId) {
          throw badRequest(`user ${m.userId} is given with two different teams`);
        }
        wanted.set(m.userId, { channelId, userId: m.userId, userTeamId });
      }
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
        const before = await versionsBefore([teamId]);
        const rows = bulkInsert(
          d,
          "memberships",
          ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"],
          added.map((m) => [teamId, channelId, m.userId, m.userTeamId, now]),
        );
        const log = versionStatements(
          d,
          teamId,
          added.map((m) => ({ kind: "member_added", entityId: channelId, extra: encodeMember(teamId, m) })),
          now,
        );
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
      const before = await versionsBefore([teamId]);
      const statements: Statement[] = [];
      for (const chunk of chunks(removed, chunkSize)) {
        const { clause, params } = inList(
          d,
          chunk.map((m) => m.userId),
        );
        statements.push({
          sql: `DELETE FROM memberships WHERE \`team_id\` = ? AND \`channel_id\` = ? AND \`user_id\` IN ${clause}`,
          params: [teamId, channelId, ...params],
        });
      }
      const log = versionStatements(
        d,
        teamId,
        removed.map((m) => ({ kind: "member_removed", entityId: channelId, extra: encodeMember(teamId, m) })),
        now,
      );
      const ids = new Set(removed.map((m) => m.userId));
      const events = await commit([...statements, ...log], before, (e) => isMemberEvent(e, channelId, ids));
      return { removed, unchanged: others.length, events };
    },

    async updateProfile(teamId, userId, patch: ProfilePatch, now) {
      for (const [field, max] of Object.entries(PROFILE_MAX)) {
        checkLength(field, patch[field as keyof typeof PROFILE_MAX], max);
      }
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
      const before = await versionsBefore([teamId]);
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

    async shareChannel(teamId, channelId, withTeamId, now) {
      if (withTeamId === teamId) throw badRequest("a channel cannot be shared with its own team");
      const channel = await requireChannel(teamId, channelId);
      if (channel.sharedWith.includes(withTeamId)) return { channel, events: [] };
      const before = await versionsBefore([teamId, withTeamId]);
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
      for (const c of channels) checkChannelInput(c);
      rejectRepeats(
        channels.map((c) => c.id),
        "ids",
      );
      rejectRepeats(
        channels.map((c) => c.name),
        "names",
      );
      await versionsBefore([teamId]);
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
      try {
        const keyed = idempotencyInsert(teamId, record?.({ imported: channels.length }));
        const events = await bulkChange(teamId, "channels", [...rows, ...keyed], now);
        return { imported: channels.length, events };
      } catch (error) {
        if (error instanceof UniqueViolation) {
          throw conflict("a channel with one of these ids or names was created concurrently; nothing was imported");
        }
        throw error;
      }
    },

    async importMemberships(teamId, input: MembershipInput[], now, record) {
      await versionsBefore([teamId]);
      const unique = new Map<string, Membership>();
      for (const m of input) {
        const membership = { channelId: m.channelId, userId: m.userId, userTeamId: m.userTeamId ?? teamId };
        const key = `${m.channelId}/${m.userId}`;
        const seen = unique.get(key);
        if (seen && seen.userTeamId !== membership.userTeamId) {
          throw badRequest(`user ${m.userId} is given with two different teams in channel ${m.channelId}`);
        }
        unique.set(key, membership);
      }
      const rows = [...unique.values()];
      const channelIds = [...new Set(rows.map((r) => r.channelId))];
      const known = new Set<string>();
      for (const chunk of chunks(channelIds, chunkSize)) {
        const { clause, params } = inList(d, chunk);
        const found = await driver.all(`SELECT \`id\` FROM channels WHERE \`team_id\` = ? AND \`id\` IN ${clause}`, [
          teamId,
          ...params,
        ]);
        for (const r of found) known.add(String(r.id));
      }
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
      for (const [userTeamId, ids] of byTeam) {
        const found = await existingUsers(userTeamId, ids);
        for (const id of new Set(ids)) {
          if (!found.has(id)) missingUsers.push(userTeamId === teamId ? id : `${id}@${userTeamId}`);
        }
      }
      if (missingChannels.length > 0 || missingUsers.length > 0) {
        throw notFound("unknown channels or users; nothing was imported", {
          channels: missingChannels,
          users: missingUsers,
        });
      }
      const inserts = bulkInsert(
        d,
        "memberships",
        ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"],
        rows.map((m) => [teamId, m.channelId, m.userId, m.userTeamId, now]),
        true,
      );
      try {
        const keyed = idempotencyInsert(teamId, record?.({ imported: rows.length }));
        const events = await bulkChange(teamId, "memberships", [...inserts, ...keyed], now);
        return { imported: rows.length, events };
      } catch (error) {
        // Only the key's record can collide (memberships already there are kept).
        if (error instanceof UniqueViolation) {
          throw conflict("a request with this Idempotency-Key committed concurrently; nothing was imported");
        }
        throw error;
      }
    },

    async recordUserChanges(teamId, userIds, now) {
      const ids = [...new Set(userIds)];
      if (ids.length === 0) return [];
      if (ids.length > USER_EVENTS_INLINE) return bulkChange(teamId, "users", [], now);
      const before = await versionsBefore([teamId]);
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

  /** A conflict with what is taken: the id, the name, or both. */
  async function channelTaken(teamId: string, id: string, name: string): Promise<DomainError> {
    const rows = await driver.all(
      "SELECT `id`, `name` FROM channels WHERE `team_id` = ? AND (`id` = ? OR `name` = ?)",
      [teamId, id, name],
    );
    const taken = {
      ids: rows.filter((r) => String(r.id) === id).map(() => id),
      names: rows.filter((r) => String(r.name) === name).map(() => name),
    };
    const what = taken.ids.length > 0 ? `id ${id}` : `name #${name}`;
    return conflict(`channel ${what} is taken in team ${teamId}`, taken);
  }

  /** A conflict when the team already sees a channel with this id (its own, or shared in from another host). */
  async function requireIdFree(teamId: string, channelId: string, hostTeamId: string): Promise<void> {
    const rows = await driver.all(
      "SELECT `id` FROM channels WHERE `team_id` = ? AND `id` = ? UNION ALL SELECT `channel_id` FROM channel_shares WHERE `team_id` = ? AND `channel_id` = ? AND `host_team_id` <> ?",
      [teamId, channelId, teamId, channelId, hostTeamId],
    );
    if (rows.length > 0) throw conflict(`team ${teamId} already sees a channel with id ${channelId}`);
  }

  /** not_found unless each of these users exists in the channel's team or a team it is shared with. */
  async function requireUserAnywhere(channel: DirChannel, userIds: string[]): Promise<void> {
    let left = [...new Set(userIds)];
    for (const teamId of [channel.teamId, ...channel.sharedWith]) {
      if (left.length === 0) return;
      const found = await existingUsers(teamId, left);
      left = left.filter((id) => !found.has(id));
    }
    if (left.length > 0) {
      throw notFound(`users not found in the teams of channel ${channel.id}`, { users: left });
    }
  }

  return { ...source, ...writer };
}

function rejectRepeats(values: string[], what: string): void {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) repeated.add(v);
    seen.add(v);
  }
  if (repeated.size > 0) throw badRequest(`the request repeats channel ${what}`, { [what]: [...repeated] });
}
