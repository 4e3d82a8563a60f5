import type { DirChannel, Membership } from "../../src/directory/model";
import { conflict, type DomainError, notFound } from "../../src/errors";
import { chunkSizeOf, chunks, inList, num } from "../portable-sql";
import type { Row, SqlDriver } from "../sql-driver";
import { CHANNEL_COLUMNS, shareKey, toDirChannel, toMembership } from "./rows";

// The reads the directory's writes check state with: versions before a
// write, channels with their shares, which users and members exist, and the
// conflicts a taken id or name is answered with.

export type DirectoryLookups = ReturnType<typeof directoryLookups>;

export function directoryLookups(driver: SqlDriver) {
  const d = driver.dialect;
  const chunkSize = chunkSizeOf(d);

  /** Runs `query` over chunks of these ids, collecting its rows. */
  async function inChunks(ids: readonly string[], query: (clause: string, params: unknown[]) => Promise<Row[]>) {
    const out: Row[] = [];
    for (const chunk of chunks([...new Set(ids)], chunkSize)) {
      const { clause, params } = inList(d, chunk);
      out.push(...(await query(clause, params)));
    }
    return out;
  }

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
    const rows = await inChunks(channelIds, (clause, params) =>
      driver.all(
        `SELECT \`channel_id\`, \`team_id\` FROM channel_shares WHERE \`host_team_id\` = ? AND \`channel_id\` IN ${clause} ORDER BY \`team_id\``,
        [hostTeamId, ...params],
      ),
    );
    for (const r of rows) {
      const key = shareKey(hostTeamId, String(r.channel_id));
      out.set(key, [...(out.get(key) ?? []), String(r.team_id)]);
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

  /** Which of these ids have a row in `table` (users, or the team's own channels). */
  async function existing(table: "users" | "channels", teamId: string, ids: string[]): Promise<Set<string>> {
    // A DM or group DM is no channel to import members into: its members derive its id.
    const kind = table === "channels" ? " AND `kind` = 'channel'" : "";
    const rows = await inChunks(ids, (clause, params) =>
      driver.all(`SELECT \`id\` FROM ${table} WHERE \`team_id\` = ?${kind} AND \`id\` IN ${clause}`, [
        teamId,
        ...params,
      ]),
    );
    return new Set(rows.map((r) => String(r.id)));
  }

  /** Which of these user ids exist in the team. */
  function existingUsers(teamId: string, userIds: string[]): Promise<Set<string>> {
    return existing("users", teamId, userIds);
  }

  /** Current memberships of a channel among these users, by user id. */
  async function membersAmong(hostTeamId: string, channelId: string, userIds: string[]) {
    const rows = await inChunks(userIds, (clause, params) =>
      driver.all(
        `SELECT \`channel_id\`, \`user_id\`, \`user_team_id\` FROM memberships WHERE \`team_id\` = ? AND \`channel_id\` = ? AND \`user_id\` IN ${clause}`,
        [hostTeamId, channelId, ...params],
      ),
    );
    return new Map<string, Membership>(rows.map((r) => [String(r.user_id), toMembership(r)]));
  }

  /** Users not found in their teams, named as the answer names them (`id@team` for another team's). */
  async function missingUsers(hostTeamId: string, byTeam: Map<string, string[]>): Promise<string[]> {
    const missing: string[] = [];
    for (const [teamId, ids] of byTeam) {
      const found = await existingUsers(teamId, ids);
      for (const id of new Set(ids)) if (!found.has(id)) missing.push(teamId === hostTeamId ? id : `${id}@${teamId}`);
    }
    return missing;
  }

  /** not_found naming the users that are in none of the channel's teams. */
  async function requireUsers(channel: DirChannel, members: Membership[]) {
    const allowed = new Set([channel.teamId, ...channel.sharedWith]);
    const byTeam = new Map<string, string[]>();
    const missing: string[] = [];
    for (const m of members) {
      if (!allowed.has(m.userTeamId)) missing.push(`${m.userId}@${m.userTeamId}`);
      else byTeam.set(m.userTeamId, [...(byTeam.get(m.userTeamId) ?? []), m.userId]);
    }
    missing.push(...(await missingUsers(channel.teamId, byTeam)));
    if (missing.length > 0) throw notFound(`users not found in the teams of channel ${channel.id}`, { users: missing });
  }

  /** not_found unless each of these users exists in the channel's team or a team it is shared with. */
  async function requireUserAnywhere(channel: DirChannel, userIds: string[]): Promise<void> {
    let left = [...new Set(userIds)];
    for (const teamId of [channel.teamId, ...channel.sharedWith]) {
      if (left.length === 0) return;
      const found = await existingUsers(teamId, left);
      left = left.filter((id) => !found.has(id));
    }
    if (left.length > 0) throw notFound(`users not found in the teams of channel ${channel.id}`, { users: left });
  }

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

  return {
    driver,
    d,
    chunkSize,
    versionsBefore,
    sharesOf,
    withShares,
    getChannel,
    requireChannel,
    existing,
    existingUsers,
    membersAmong,
    missingUsers,
    requireUsers,
    requireUserAnywhere,
    channelTaken,
    requireIdFree,
  };
}
