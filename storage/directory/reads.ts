import type { ChangeEvent, DirectoryChange, DirUser, Membership } from "../../src/directory/model";
import type { DirectorySource } from "../../src/directory/source";
import { chunks, inList, num } from "../portable-sql";
import type { Row } from "../sql-driver";
import type { DirectoryLookups } from "./lookups";
import { CHANNEL_COLUMNS, decodeMember, shareKey, toDirChannel, toDirUser, toMembership, USER_COLUMNS } from "./rows";

// What a team cache loads from (DirectorySource): keyset pages of users,
// channels and memberships, and the change log rebuilt as events with each
// entity's current state (directory-store.ts describes the encoding).

export function directoryReads(lookups: DirectoryLookups): DirectorySource {
  const { driver, d, chunkSize, withShares } = lookups;

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

    async counts(teamId) {
      const [users, channels] = await Promise.all([
        driver.all("SELECT COUNT(*) AS n FROM users WHERE `team_id` = ? AND `deactivated` = 0", [teamId]),
        driver.all(
          `SELECT (SELECT COUNT(*) FROM channels WHERE \`team_id\` = ? AND \`kind\` = 'channel')
                + (SELECT COUNT(*) FROM channel_shares s JOIN channels ch ON ch.\`team_id\` = s.\`host_team_id\` AND ch.\`id\` = s.\`channel_id\`
                   WHERE s.\`team_id\` = ? AND ch.\`kind\` = 'channel') AS n`,
          [teamId, teamId],
        ),
      ]);
      return { activeUsers: num(users[0]?.n ?? 0), channels: num(channels[0]?.n ?? 0) };
    },

    async membershipsOfUser(teamId, userId) {
      // The (user_team_id, user_id) index: what pageMemberships and
      // pageForeignMemberships give a load, for this user only.
      const rows = await driver.all(
        "SELECT `channel_id`, `user_id`, `user_team_id` FROM memberships WHERE `user_team_id` = ? AND `user_id` = ? ORDER BY `channel_id`",
        [teamId, userId],
      );
      return rows.map(toMembership);
    },

    async memberCounts(teamId, channelIds) {
      const out: Record<string, number> = {};
      for (const chunk of chunks([...new Set(channelIds)], chunkSize)) {
        const { clause, params } = inList(d, chunk);
        // The primary key (team_id, channel_id, user_id): one range per channel.
        const rows = await driver.all(
          `SELECT \`channel_id\`, COUNT(*) AS n FROM memberships WHERE \`team_id\` = ? AND \`channel_id\` IN ${clause} AND \`user_team_id\` = ? GROUP BY \`channel_id\``,
          [teamId, ...params, teamId],
        );
        for (const r of rows) out[String(r.channel_id)] = num(r.n);
      }
      return out;
    },

    async membersOf(teamId, channelIds) {
      const out: Membership[] = [];
      for (const chunk of chunks([...new Set(channelIds)], chunkSize)) {
        const { clause, params } = inList(d, chunk);
        const rows = await driver.all(
          `SELECT \`channel_id\`, \`user_id\`, \`user_team_id\` FROM memberships WHERE \`team_id\` = ? AND \`channel_id\` IN ${clause} ORDER BY \`channel_id\`, \`user_id\``,
          [teamId, ...params],
        );
        out.push(...rows.map(toMembership));
      }
      return out;
    },

    async channels(teamId, ids) {
      const out: Row[] = [];
      for (const chunk of chunks([...new Set(ids)], chunkSize)) {
        const own = inList(d, chunk);
        const sharedIn = inList(d, chunk);
        const rows = await driver.all(
          `SELECT ${CHANNEL_COLUMNS} FROM channels ch WHERE ch.\`team_id\` = ? AND ch.\`id\` IN ${own.clause}
           UNION ALL
           SELECT ${CHANNEL_COLUMNS} FROM channel_shares s JOIN channels ch ON ch.\`team_id\` = s.\`host_team_id\` AND ch.\`id\` = s.\`channel_id\`
           WHERE s.\`team_id\` = ? AND s.\`channel_id\` IN ${sharedIn.clause}`,
          [teamId, ...own.params, teamId, ...sharedIn.params],
        );
        out.push(...rows);
      }
      out.sort((a, b) => (String(a.c_id) < String(b.c_id) ? -1 : String(a.c_id) > String(b.c_id) ? 1 : 0));
      const shares = await withShares(out);
      return out.map((r) => toDirChannel(r, shares.get(shareKey(String(r.c_team), String(r.c_id))) ?? []));
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
        if (wanted.has(key)) out.set(key, toMembership(r));
      }
    }
    return out;
  }

  return source;
}
