import { type ChannelCardBase, channelCard, type UserCard, userCard } from "../../src/directory/cards";
import { type ConversationKind, isConversationKind } from "../../src/directory/model";
import { VISIBLE, type VisibleSet } from "../../src/directory/visible-set";
import type { Sql } from "./cache-db";
import { getMeta } from "./cache-db";
import { prefixEnd, prefixOf, queryTokens } from "./normalize";

// The lazy-load queries, answered from the cache's SQLite. Each one is a few
// index range scans bounded by a LIMIT; none walks the whole team.
//
// Visibility, applied in SQL so no row a viewer may not see is ever read out:
// - a private channel, and its member list, only to its members;
// - guests see only channels they belong to and people who share one with them;
// - deactivated users never appear in suggestions but resolve by id.

export interface Viewer {
  id: string;
  isGuest: boolean;
}

export type { UserCard };

/**
 * The shared channel card plus the viewer's view of it. A DM or group DM
 * (`kind` im / mpim) is named by its members as the viewer sees them (the
 * others' names, or the viewer's own in a self-DM) and lists their ids.
 */
export interface ChannelCard extends ChannelCardBase {
  kind: ConversationKind;
  member_count: number;
  is_member: boolean;
  /** DMs and group DMs only: every member's id, sorted. */
  members?: string[];
}

export type Suggestion =
  | ({ type: "channel"; reason: "member" | "match" } & ChannelCard)
  | ({ type: "user"; reason: "contact" | "match" } & UserCard);

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/**
 * Below this many word-index rows for a token longer than PREFIX_LEN,
 * collecting its matches and sorting them is cheaper than walking its
 * prefix's rank-ordered rows; at or above it, the reverse.
 */
export const DENSE_MATCHES = 500;

/** A channel at most this big is a small group: its members count as the viewer's frequent contacts. */
export const CONTACT_CHANNEL_MAX = 8;

const USER_COLS =
  "u.id, u.name, u.real_name, u.display_name, u.title, u.avatar_hash, u.tz, u.is_bot, u.role, u.deleted, u.sort_key";
/**
 * A DM's members as [id, shown name] pairs, by name: read only for DM rows
 * (at most 8 members each), so a channel's card never walks its members.
 */
const DM_PEOPLE = `CASE WHEN c.kind = 'channel' THEN NULL ELSE (SELECT json_group_array(json_array(x.id, x.shown)) FROM (
  SELECT u.id, COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''), u.name) AS shown FROM members dm JOIN users u ON u.id = dm.user_id
  WHERE dm.channel_id = c.id ORDER BY u.sort_key, u.id) x) END AS dm_people`;
const CHANNEL_COLS = `c.id, c.name, c.topic, c.purpose, c.is_private, c.is_archived, c.shared_with, c.member_count, c.kind, c.created_at, ${DM_PEOPLE}, EXISTS (SELECT 1 FROM members mm WHERE mm.channel_id = c.id AND mm.user_id = ?) AS is_member`;

type Row = Record<string, SqlStorageValue>;

// --- visibility -------------------------------------------------------------

export function viewerOf(sql: Sql, userId: string): Viewer | null {
  const row = sql
    .exec<{ role: string; deleted: number }>("SELECT role, deleted FROM users WHERE id = ?", userId)
    .toArray()[0];
  if (!row || row.deleted) return null;
  return { id: userId, isGuest: row.role === "guest" };
}

/** Viewers in one read (the active ones; an id missing from the answer is no active member). */
export function viewersOf(sql: Sql, userIds: readonly string[]): Map<string, Viewer> {
  const out = new Map<string, Viewer>();
  if (userIds.length === 0) return out;
  const rows = sql
    .exec<{ id: string; role: string; deleted: number }>(
      "SELECT id, role, deleted FROM users WHERE id IN (SELECT value FROM json_each(?))",
      JSON.stringify(userIds),
    )
    .toArray();
  for (const r of rows) if (!r.deleted) out.set(r.id, { id: r.id, isGuest: r.role === "guest" });
  return out;
}

/** SQL condition (and its parameters) that channel alias `c` is visible to the viewer. */
function channelVisible(v: Viewer): { where: string; params: string[] } {
  const member = "EXISTS (SELECT 1 FROM members vm WHERE vm.channel_id = c.id AND vm.user_id = ?)";
  if (v.isGuest) return { where: member, params: [v.id] };
  return { where: `(c.is_private = 0 OR ${member})`, params: [v.id] };
}

/** SQL condition that user alias `u` is visible to the viewer. */
function userVisible(v: Viewer): { where: string; params: string[] } {
  if (!v.isGuest) return { where: "1", params: [] };
  return {
    where:
      "(u.id = ? OR EXISTS (SELECT 1 FROM members g1 JOIN members g2 ON g2.channel_id = g1.channel_id AND g2.user_id = u.id WHERE g1.user_id = ?))",
    params: [v.id, v.id],
  };
}

export function channelIfVisible(sql: Sql, v: Viewer, channelId: string): ChannelCard | null {
  const vis = channelVisible(v);
  const row = sql
    .exec<Row>(`SELECT ${CHANNEL_COLS} FROM channels c WHERE c.id = ? AND ${vis.where}`, v.id, channelId, ...vis.params)
    .toArray()[0];
  return row ? toChannel(row, v.id) : null;
}

// --- ranking ----------------------------------------------------------------
//
// Every suggestion list is ranked over ALL its matches and only then cut to
// the page: people by (sort_key, id), channels by (name, id), byte order.
// The word index finds matches in word order, which is no rank at all, so
// its first rows are not the first matches. Two exact plans:
// - walk the token's rank-ordered prefix index (user_prefixes,
//   channel_prefixes: schema.ts) and stop when the page is full: one range
//   read for a token of up to PREFIX_LEN characters, and for a longer one a
//   walk of its first PREFIX_LEN characters' range, most of which matches;
// - for a longer token with few matches (fewer than DENSE_MATCHES word rows),
//   collect them all from the word index and sort: the walk could pass many
//   rows that share only the shorter prefix.

/** Conditions, each starting with AND, and their parameters in order. */
export interface Cond<P = SqlStorageValue> {
  where: string;
  params: P[];
}

export const NONE: Cond<never> = { where: "", params: [] };

/** Joins conditions (each starting with AND) and their parameters, in order. */
export function and<P>(...cs: Cond<P>[]): Cond<P> {
  return {
    where: cs
      .map((c) => c.where)
      .filter(Boolean)
      .join(" "),
    params: cs.flatMap((c) => c.params),
  };
}

/** Rows whose (key, id) comes after a cursor's, written so the key's index bounds the range. */
function keyAfter(key: string, id: string, after: readonly [string, string]): Cond {
  const [k, i] = after;
  return { where: `AND ${key} >= ? AND (${key} > ? OR ${id} > ?)`, params: [k, k, i] };
}

/**
 * People (alias u) matching every token and `where`, in rank order, after
 * `after`, at most `limit`. `where` is given the expression naming a
 * candidate's id: in the walk that is the prefix row's, so a test on the id
 * alone (membership) runs before the user's row is read.
 */
function rankedUsers(
  sql: Sql,
  tokens: string[],
  limit: number,
  where: (id: string) => Cond,
  after: readonly [string, string] | null = null,
): Row[] {
  const [first] = tokens;
  if (!first) return [];
  const prefix = prefixOf(first);
  if (prefix !== first && matchesUpTo(sql, "user_words", first, DENSE_MATCHES) < DENSE_MATCHES) {
    const cond = where("u.id");
    const rest = tokenFilter("u", tokens.slice(1));
    const from = after ? keyAfter("u.sort_key", "u.id", after) : NONE;
    return sql
      .exec<Row>(
        `SELECT ${USER_COLS} FROM (SELECT DISTINCT user_id FROM user_words WHERE word >= ? AND word < ?) w
         CROSS JOIN users u ON u.id = w.user_id
         WHERE 1 ${cond.where} ${rest.where} ${from.where} ORDER BY u.sort_key, u.id LIMIT ?`,
        first,
        prefixEnd(first),
        ...cond.params,
        ...rest.params,
        ...from.params,
        limit,
      )
      .toArray();
  }
  const cond = where("p.user_id");
  const checked = tokenFilter("u", prefix === first ? tokens.slice(1) : tokens);
  const from = after ? keyAfter("p.sort_key", "p.user_id", after) : NONE;
  return sql
    .exec<Row>(
      `SELECT ${USER_COLS} FROM user_prefixes p CROSS JOIN users u ON u.id = p.user_id
       WHERE p.prefix = ? ${from.where} ${cond.where} ${checked.where} ORDER BY p.sort_key, p.user_id LIMIT ?`,
      prefix,
      ...from.params,
      ...cond.params,
      ...checked.params,
      limit,
    )
    .toArray();
}

/** Channels (alias c) matching every token and `cond`, in rank order, at most `limit`. */
function rankedChannels(sql: Sql, v: Viewer, tokens: string[], limit: number, cond: Cond): Row[] {
  const [first] = tokens;
  if (!first) return [];
  const prefix = prefixOf(first);
  if (prefix !== first && matchesUpTo(sql, "channel_words", first, DENSE_MATCHES) < DENSE_MATCHES) {
    const rest = tokenFilter("c", tokens.slice(1));
    return sql
      .exec<Row>(
        `SELECT ${CHANNEL_COLS} FROM (SELECT DISTINCT channel_id FROM channel_words WHERE word >= ? AND word < ?) w
         CROSS JOIN channels c ON c.id = w.channel_id
         WHERE 1 ${cond.where} ${rest.where} ORDER BY c.name, c.id LIMIT ?`,
        v.id,
        first,
        prefixEnd(first),
        ...cond.params,
        ...rest.params,
        limit,
      )
      .toArray();
  }
  const checked = tokenFilter("c", prefix === first ? tokens.slice(1) : tokens);
  return sql
    .exec<Row>(
      `SELECT ${CHANNEL_COLS} FROM channel_prefixes p CROSS JOIN channels c ON c.id = p.channel_id
       WHERE p.prefix = ? ${cond.where} ${checked.where} ORDER BY p.name, p.channel_id LIMIT ?`,
      v.id,
      prefix,
      ...cond.params,
      ...checked.params,
      limit,
    )
    .toArray();
}

// --- quick switcher ---------------------------------------------------------

/**
 * Channels and people whose name has a word starting with the query (every
 * query token must prefix some word), ranked in five tiers, each over all of
 * its matches: the viewer's own channels (by name), its DMs and group DMs
 * matched by their members' names (by shown name), its frequent contacts
 * (by name), then other channels (by name), then other people (by name);
 * the first `limit` of that order.
 */
export function quickSwitcher(sql: Sql, v: Viewer, q: string, limit: number): Suggestion[] {
  const tokens = queryTokens(q);
  if (tokens.length === 0) return [];
  const all = tokenFilter("c", tokens);

  // The viewer's memberships drive (members_by_user): a few rows, all sorted.
  const mine = sql
    .exec<Row>(
      `SELECT ${CHANNEL_COLS} FROM members m CROSS JOIN channels c ON c.id = m.channel_id
       WHERE m.user_id = ? AND c.is_archived = 0 ${all.where} ORDER BY c.name, c.id LIMIT ?`,
      v.id,
      v.id,
      ...all.params,
      limit,
    )
    .toArray()
    .map((r) => ({ type: "channel" as const, reason: "member" as const, ...toChannel(r, v.id) }));

  const conversations = conversationMatches(sql, v, tokens, limit);
  const contacts = contactMatches(sql, v, tokens, limit);

  // Each tier's first `limit` overall: any of them that belong to an earlier
  // tier drop out below, and what remains is still that tier's top.
  const vis = channelVisible(v);
  const otherChannels = rankedChannels(sql, v, tokens, limit, {
    where: `AND c.is_archived = 0 AND ${vis.where}`,
    params: vis.params,
  }).map((r) => ({ type: "channel" as const, reason: "match" as const, ...toChannel(r, v.id) }));

  const uvis = userVisible(v);
  const people = rankedUsers(sql, tokens, limit, () => ({
    where: `AND u.deleted = 0 AND ${uvis.where}`,
    params: uvis.params,
  })).map((r) => ({ type: "user" as const, reason: "match" as const, ...toUser(r) }));

  const seen = new Set<string>();
  const out: Suggestion[] = [];
  for (const s of [...mine, ...conversations, ...contacts, ...otherChannels, ...people]) {
    if (seen.has(s.id) || out.length >= limit) continue;
    seen.add(s.id);
    out.push(s);
  }
  return out;
}

/**
 * The viewer's DMs and group DMs in which every token starts a word of some
 * other member's name (of the viewer's own in a self-DM): "ada" finds the
 * DM with Ada and the group DMs she is in. Driven by the viewer's
 * memberships (members_by_user), each candidate checked against its at most
 * 8 members; all matches are ranked by shown name, then cut.
 */
function conversationMatches(sql: Sql, v: Viewer, tokens: string[], limit: number): Suggestion[] {
  const someMember = tokens
    .map(
      () => `AND EXISTS (SELECT 1 FROM members t JOIN users tu ON tu.id = t.user_id
         WHERE t.channel_id = c.id AND (tu.id <> ? OR c.member_count = 1) AND instr(tu.search_text, ' ' || ?) > 0)`,
    )
    .join(" ");
  return sql
    .exec<Row>(
      `SELECT ${CHANNEL_COLS} FROM members m CROSS JOIN channels c ON c.id = m.channel_id
       WHERE m.user_id = ? AND c.kind <> 'channel' AND c.is_archived = 0 ${someMember}`,
      v.id,
      v.id,
      ...tokens.flatMap((t) => [v.id, t]),
    )
    .toArray()
    .map((r) => ({ type: "channel" as const, reason: "member" as const, ...toChannel(r, v.id) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1))
    .slice(0, limit);
}

function contactMatches(sql: Sql, v: Viewer, tokens: string[], limit: number): Suggestion[] {
  const all = tokenFilter("u", tokens);
  // The viewer's small channels drive (members_by_user, then their members):
  // a few rows. Left to itself the planner may walk users_by_sort for the
  // ORDER BY instead, testing the whole team against the list.
  return sql
    .exec<Row>(
      `SELECT ${USER_COLS} FROM (
         SELECT DISTINCT m2.user_id FROM members m1
         JOIN channels c ON c.id = m1.channel_id AND c.member_count <= ${CONTACT_CHANNEL_MAX} AND c.shared_with = '[]'
         JOIN members m2 ON m2.channel_id = m1.channel_id
         WHERE m1.user_id = ? AND m2.user_id != ?) x
       CROSS JOIN users u ON u.id = x.user_id
       WHERE u.deleted = 0 ${all.where} ORDER BY u.sort_key, u.id LIMIT ?`,
      v.id,
      v.id,
      ...all.params,
      limit,
    )
    .toArray()
    .map((r) => ({ type: "user" as const, reason: "contact" as const, ...toUser(r) }));
}

// --- mentions ---------------------------------------------------------------

export interface MentionSuggestion extends UserCard {
  in_channel: boolean;
}

/**
 * People to @-mention in a channel: its active members matching the query
 * (by name), then other visible active people matching it (by name). With
 * no query: members by id.
 */
export function mentions(sql: Sql, v: Viewer, channelId: string, q: string, limit: number): MentionSuggestion[] {
  const tokens = queryTokens(q);
  if (tokens.length === 0) {
    const rows = sql
      .exec<Row>(
        `SELECT ${USER_COLS} FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.channel_id = ? AND u.deleted = 0 ORDER BY m.user_id LIMIT ?`,
        channelId,
        limit,
      )
      .toArray();
    return rows.map((r) => ({ ...toUser(r), in_channel: true }));
  }
  const size = Number(
    sql.exec<{ n: number }>("SELECT member_count AS n FROM channels WHERE id = ?", channelId).toArray()[0]?.n ?? 0,
  );
  const plan = memberPlan(size, limit, Number(getMeta(sql, "active_users") ?? 0));
  // Membership of a walked candidate: against the channel's ids gathered
  // once, or, for a channel of most of the team, probed row by row.
  const inChannel = (id: string, yes: boolean): Cond =>
    plan === "probe"
      ? {
          where: `AND ${yes ? "" : "NOT "}EXISTS (SELECT 1 FROM members cm WHERE cm.channel_id = ? AND cm.user_id = ${id})`,
          params: [channelId],
        }
      : {
          where: `AND ${id} ${yes ? "" : "NOT "}IN (SELECT user_id FROM members WHERE channel_id = ?)`,
          params: [channelId],
        };
  const members =
    plan === "sort"
      ? membersMatching(sql, channelId, tokens, limit)
      : rankedUsers(sql, tokens, limit, (id) =>
          and({ where: "AND u.deleted = 0", params: [] }, inChannel(id, true)),
        ).map(toUser);
  const vis = userVisible(v);
  const others =
    members.length < limit
      ? rankedUsers(sql, tokens, limit - members.length, (id) =>
          and({ where: `AND u.deleted = 0 AND ${vis.where}`, params: vis.params }, inChannel(id, false)),
        ).map(toUser)
      : [];
  return [...members.map((u) => ({ ...u, in_channel: true })), ...others.map((u) => ({ ...u, in_channel: false }))];
}

/**
 * Mentions' plan for a channel's members, from a cost model (microseconds
 * per row, measured on a 200,000-user cache): sorting the channel's
 * matching members reads every member's user row (about 2 per member);
 * walking the token's ranked prefix reads about limit × team / size rows
 * before the page fills (membership being unrelated to names), testing each
 * against the channel's ids gathered once (0.2 per member, then 0.3 per row:
 * "list") or with a membership probe (3 per row: "probe", no gathering).
 * At 10 a page in a team of 190,000: sort up to ~560 members, list up to
 * ~5,000, probe beyond.
 */
export function memberPlan(size: number, limit: number, teamSize: number): "sort" | "list" | "probe" {
  const reach = limit * teamSize; // size × rows walked
  if (6 * size * size <= reach) return "sort";
  if (2 * size * size <= 27 * reach) return "list";
  return "probe";
}

/** Members of one channel matching every token, by name: cost follows the channel's size, not the team's. */
function membersMatching(sql: Sql, channelId: string, tokens: string[], limit: number): UserCard[] {
  const all = tokenFilter("u", tokens);
  return sql
    .exec<Row>(
      `SELECT ${USER_COLS} FROM members m JOIN users u ON u.id = m.user_id
       WHERE m.channel_id = ? AND u.deleted = 0 ${all.where} ORDER BY u.sort_key, u.id LIMIT ?`,
      channelId,
      ...all.params,
      limit,
    )
    .toArray()
    .map(toUser);
}

/** How many word-index rows start with `prefix`, counting no further than `cap`. */
function matchesUpTo(sql: Sql, table: "user_words" | "channel_words", prefix: string, cap: number): number {
  return Number(
    sql
      .exec<{ n: number }>(
        `SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${table} WHERE word >= ? AND word < ? LIMIT ?)`,
        prefix,
        prefixEnd(prefix),
        cap,
      )
      .one().n,
  );
}

// --- channel members --------------------------------------------------------

/** Active members, by user id (the membership index order, so paging never sorts a big channel). */
export function channelMembers(sql: Sql, channelId: string, cursor: string | null, limit: number): Page<UserCard> {
  const after = cursor ? (decodeCursor(cursor)[0] ?? "") : "";
  const rows = sql
    .exec<Row>(
      `SELECT ${USER_COLS} FROM members m JOIN users u ON u.id = m.user_id
       WHERE m.channel_id = ? AND m.user_id > ? AND u.deleted = 0 ORDER BY m.user_id LIMIT ?`,
      channelId,
      after,
      limit + 1,
    )
    .toArray()
    .map(toUser);
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next_cursor: more && last ? encodeCursor([last.id]) : null };
}

// --- team directory ---------------------------------------------------------

export interface DirectoryFilter {
  q?: string;
  roles?: string[];
  /** exclude (default) | include | only */
  deactivated?: "exclude" | "include" | "only";
  /** include (default) | exclude | only */
  bots?: "exclude" | "include" | "only";
  cursor?: string | null;
  limit: number;
}

/**
 * People sorted by name. The cursor is the last row's (sort key, id), not an
 * offset, so paging stays stable while people join, leave or rename: nobody
 * is skipped or shown twice because rows moved above the cursor.
 */
export function directory(sql: Sql, v: Viewer, f: DirectoryFilter): Page<UserCard> {
  const where: string[] = [];
  const params: SqlStorageValue[] = [];
  const vis = userVisible(v);
  where.push(vis.where);
  params.push(...vis.params);
  const deactivated = f.deactivated ?? "exclude";
  if (deactivated !== "include") where.push(deactivated === "only" ? "u.deleted = 1" : "u.deleted = 0");
  const bots = f.bots ?? "include";
  if (bots !== "include") where.push(bots === "only" ? "u.is_bot = 1" : "u.is_bot = 0");
  const roles = f.roles ?? [];
  if (roles.length > 0) {
    where.push(`u.role IN (${roles.map(() => "?").join(", ")})`);
    params.push(...roles);
  }
  let after: [string, string] | null = null;
  if (f.cursor) {
    const [sortKey, id] = decodeCursor(f.cursor);
    after = [sortKey ?? "", id ?? ""];
  }
  const tokens = queryTokens(f.q ?? "");
  // A filter that keeps few people (deactivated, bots, a role other than
  // member) pages from its own name index, checking the tokens; a search
  // among most people walks the token's ranked prefix, checking the filters.
  const narrow = deactivated === "only" || bots === "only" || (roles.length > 0 && !roles.includes("member"));
  const cond: Cond = { where: where.map((w) => `AND ${w}`).join(" "), params };
  let rows: Row[];
  if (tokens.length > 0 && !narrow) {
    rows = rankedUsers(sql, tokens, f.limit + 1, () => cond, after);
  } else {
    const checked = tokenFilter("u", tokens);
    const from = after ? keyAfter("u.sort_key", "u.id", after) : NONE;
    rows = sql
      .exec<Row>(
        `SELECT ${USER_COLS} FROM users u WHERE 1 ${cond.where} ${checked.where} ${from.where} ORDER BY u.sort_key, u.id LIMIT ?`,
        ...cond.params,
        ...checked.params,
        ...from.params,
        f.limit + 1,
      )
      .toArray();
  }
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  const last = page.at(-1);
  return {
    items: page.map(toUser),
    next_cursor: more && last ? encodeCursor([String(last.sort_key), String(last.id)]) : null,
  };
}

// --- batch lookup -----------------------------------------------------------

/**
 * Which of these users and channels the viewer may see, with only what a
 * filter needs (flags, channel names), as parallel arrays: a recommender asks
 * about hundreds of candidates per request, and full cards would be built,
 * cloned across the RPC and thrown away.
 */

export function visibleSet(sql: Sql, v: Viewer, userIds: string[], channelIds: string[]): VisibleSet {
  const out: VisibleSet = { users: { ids: [], flags: [] }, channels: { ids: [], names: [], flags: [] } };
  if (userIds.length > 0) {
    const uvis = userVisible(v);
    for (const [id, deleted, bot] of sql
      .exec(
        `SELECT u.id, u.deleted, u.is_bot FROM users u WHERE u.id IN (SELECT value FROM json_each(?)) AND ${uvis.where}`,
        JSON.stringify(userIds),
        ...uvis.params,
      )
      .raw()) {
      out.users.ids.push(String(id));
      out.users.flags.push((Number(deleted) === 1 ? VISIBLE.deleted : 0) | (Number(bot) === 1 ? VISIBLE.bot : 0));
    }
  }
  if (channelIds.length > 0) {
    // The viewer's channels once (members_by_user), rather than two membership
    // probes per candidate row: a recommender asks about hundreds of channels.
    const mine = new Set<string>();
    for (const [id] of sql.exec("SELECT channel_id FROM members WHERE user_id = ?", v.id).raw()) mine.add(String(id));
    for (const [id, name, archived, priv] of sql
      .exec(
        "SELECT c.id, c.name, c.is_archived, c.is_private FROM channels c WHERE c.id IN (SELECT value FROM json_each(?))",
        JSON.stringify(channelIds),
      )
      .raw()) {
      const channel = String(id);
      const member = mine.has(channel);
      const isPrivate = Number(priv) === 1;
      // channelVisible's rule: a guest sees its channels only; others also every public one.
      if (!member && (v.isGuest || isPrivate)) continue;
      out.channels.ids.push(channel);
      out.channels.names.push(String(name));
      out.channels.flags.push(
        (Number(archived) === 1 ? VISIBLE.archived : 0) |
          (member ? VISIBLE.member : 0) |
          (isPrivate ? VISIBLE.private : 0),
      );
    }
  }
  return out;
}

/**
 * Profiles for just-in-time annotation: the cards of `userIds` that exist,
 * and per viewer the ids it may not see (a guest sees only people it shares
 * a channel with; someone no longer an active member sees no one).
 */
export function profilesFor(
  sql: Sql,
  viewerIds: string[],
  userIds: string[],
): { profiles: UserCard[]; hidden: Record<string, string[]> } {
  const profiles = lookup(sql, { id: "", isGuest: false }, userIds, []).users;
  const hidden: Record<string, string[]> = {};
  const all = profiles.map((p) => p.id);
  // One read for every viewer (a woken gateway asks for a whole channel's
  // subscribers at once); only guests need a look of their own.
  const viewers = viewersOf(sql, viewerIds);
  for (const viewerId of viewerIds) {
    const v = viewers.get(viewerId);
    if (!v) hidden[viewerId] = all;
    else if (v.isGuest) {
      const seen = new Set(lookup(sql, v, all, []).users.map((u) => u.id));
      const unseen = all.filter((id) => !seen.has(id));
      if (unseen.length > 0) hidden[viewerId] = unseen;
    }
  }
  return { profiles, hidden };
}

export function lookup(
  sql: Sql,
  v: Viewer,
  userIds: string[],
  channelIds: string[],
): { users: UserCard[]; channels: ChannelCard[] } {
  const uvis = userVisible(v);
  const users =
    userIds.length === 0
      ? []
      : sql
          .exec<Row>(
            `SELECT ${USER_COLS} FROM users u WHERE u.id IN (SELECT value FROM json_each(?)) AND ${uvis.where} ORDER BY u.id`,
            JSON.stringify(userIds),
            ...uvis.params,
          )
          .toArray()
          .map(toUser);
  const cvis = channelVisible(v);
  const channels =
    channelIds.length === 0
      ? []
      : sql
          .exec<Row>(
            `SELECT ${CHANNEL_COLS} FROM channels c WHERE c.id IN (SELECT value FROM json_each(?)) AND ${cvis.where} ORDER BY c.id`,
            v.id,
            JSON.stringify(channelIds),
            ...cvis.params,
          )
          .toArray()
          .map((r) => toChannel(r, v.id));
  return { users, channels };
}

// --- boot -------------------------------------------------------------------

/** The cache's change-log kind for a channel that left the team (no longer shared with it). */
export const CHANNEL_REMOVED = "channel_removed";

export interface BootChannel {
  id: string;
  name: string;
  is_private: boolean;
  is_archived: boolean;
  is_shared: boolean;
}

/** A DM or group DM in the boot payload: shown by its members (see dmView). */
export interface BootConversation {
  id: string;
  kind: Exclude<ConversationKind, "channel">;
  name: string;
  members: string[];
  created: number;
}

export interface Boot {
  version: number;
  full: boolean;
  self?: UserCard;
  team: { id: string; users: number; channels: number };
  /** Full boot: all of the viewer's channels. Incremental: those that changed or were joined. */
  channels: BootChannel[];
  /**
   * The viewer's DMs and group DMs, with their member ids. Incremental: those
   * opened, rejoined or whose members changed; one the viewer left is in
   * `channels_left`.
   */
  conversations: BootConversation[];
  /**
   * Incremental only: channels the viewer left since `since`, and channels
   * that left the team (a share that ended: gone for everyone).
   */
  channels_left?: string[];
}

/**
 * What a client needs to start: itself, the team's counts, its own channels
 * (ids and names, no member lists). With `since`, only what changed for this
 * viewer; a `since` older than the cache's change log gets a full boot.
 */
export function boot(sql: Sql, v: Viewer, teamId: string, since: number | null): Boot {
  const version = Number(getMeta(sql, "version") ?? 0);
  const team = {
    id: teamId,
    users: Number(getMeta(sql, "active_users") ?? 0),
    channels: Number(getMeta(sql, "channels") ?? 0),
  };
  const oldest = Number(
    sql.exec<{ v: number | null }>("SELECT MIN(version) AS v FROM changes").toArray()[0]?.v ?? version + 1,
  );
  const incremental = since !== null && since <= version && since >= oldest - 1;
  if (!incremental) {
    const self = lookup(sql, v, [v.id], []).users[0];
    const channels = sql
      .exec<Row>(
        `SELECT c.id, c.name, c.is_private, c.is_archived, c.shared_with FROM members m JOIN channels c ON c.id = m.channel_id
         WHERE m.user_id = ? AND c.kind = 'channel' ORDER BY c.name, c.id`,
        v.id,
      )
      .toArray()
      .map(toBootChannel);
    return { version, full: true, self, team, channels, conversations: bootConversations(sql, v, null) };
  }
  const changed = sql
    .exec<{ kind: string; entity_id: string; user_id: string | null }>(
      "SELECT kind, entity_id, user_id FROM changes WHERE version > ? ORDER BY version",
      since,
    )
    .toArray();
  const selfChanged = changed.some((c) => c.kind === "user" && c.entity_id === v.id);
  const touched = new Set<string>();
  const left = new Set<string>();
  /** Conversations someone else joined or left (only a DM's member list is in the boot). */
  const regrouped = new Set<string>();
  for (const c of changed) {
    if (c.kind === "channel") touched.add(c.entity_id);
    // Someone else left a group DM (or came back): its member list changed.
    // Only those the viewer is in are answered (the query below): a
    // channel's membership changes are none of the boot's business.
    if (c.user_id !== v.id && (c.kind === "member_added" || c.kind === "member_removed")) regrouped.add(c.entity_id);
    if (c.user_id === v.id && c.kind === "member_added") {
      touched.add(c.entity_id);
      left.delete(c.entity_id);
    }
    if (c.user_id === v.id && c.kind === "member_removed") left.add(c.entity_id);
    if (c.kind === CHANNEL_REMOVED) {
      touched.delete(c.entity_id);
      left.add(c.entity_id);
    }
  }
  const channels =
    touched.size === 0
      ? []
      : sql
          .exec<Row>(
            `SELECT c.id, c.name, c.is_private, c.is_archived, c.shared_with FROM members m JOIN channels c ON c.id = m.channel_id
             WHERE m.user_id = ? AND c.kind = 'channel' AND c.id IN (SELECT value FROM json_each(?)) ORDER BY c.name, c.id`,
            v.id,
            JSON.stringify([...touched]),
          )
          .toArray()
          .map(toBootChannel);
  const conversationIds = new Set([...touched, ...regrouped]);
  const conversations = conversationIds.size === 0 ? [] : bootConversations(sql, v, [...conversationIds]);
  const isMember = new Set([...channels.map((c) => c.id), ...conversations.map((c) => c.id)]);
  return {
    version,
    full: false,
    self: selfChanged ? lookup(sql, v, [v.id], []).users[0] : undefined,
    team,
    channels,
    conversations,
    channels_left: [...left].filter((id) => !isMember.has(id)),
  };
}

/** The viewer's DMs and group DMs (among `only`, when given), by shown name. */
function bootConversations(sql: Sql, v: Viewer, only: string[] | null): BootConversation[] {
  const among = only ? "AND c.id IN (SELECT value FROM json_each(?))" : "";
  return sql
    .exec<Row>(
      `SELECT ${CHANNEL_COLS} FROM members m CROSS JOIN channels c ON c.id = m.channel_id
       WHERE m.user_id = ? AND c.kind <> 'channel' ${among}`,
      v.id,
      v.id,
      ...(only ? [JSON.stringify(only)] : []),
    )
    .toArray()
    .map((r) => conversationOf(r, v.id))
    .filter((c): c is BootConversation => c.kind !== "channel")
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1));
}

/**
 * The team cache's part of a boot focused on one conversation
 * (GET /v1/directory/boot?focus=): the boot's header and the conversation's
 * card as the viewer sees it, in one read of the object.
 */
export interface BootFocus {
  version: number;
  self?: UserCard;
  team: { id: string; users: number; channels: number };
  /** The card GET /v1/directory/channels/:id answers (a DM's or group DM's with `kind` and `members`). */
  conversation: ChannelCard;
}

/**
 * The focus's header, or null when the viewer does not see the conversation
 * (unknown, private and not a member, a guest outside it): the caller answers
 * that null exactly as an id that exists nowhere. None of the viewer's other
 * channels or conversations is read: that is the rest of the boot.
 */
export function bootFocus(sql: Sql, v: Viewer, teamId: string, conversationId: string): BootFocus | null {
  const conversation = channelIfVisible(sql, v, conversationId);
  if (!conversation) return null;
  // The same header as boot()'s (kept counts, the cache's version), so the
  // client's later full boot or `since` boot continues from it.
  return {
    version: Number(getMeta(sql, "version") ?? 0),
    self: lookup(sql, v, [v.id], []).users[0],
    team: {
      id: teamId,
      users: Number(getMeta(sql, "active_users") ?? 0),
      channels: Number(getMeta(sql, "channels") ?? 0),
    },
    conversation,
  };
}

// --- conversations ----------------------------------------------------------

/** One of the viewer's conversations as GET /v1/conversations lists it. */
export interface ConversationItem {
  id: string;
  kind: ConversationKind;
  /** A channel's name; a DM's shown name (its members'). */
  name: string;
  /** DMs and group DMs only: every member's id, sorted. */
  members?: string[];
  created: number;
}

function conversationOf(r: Row, viewerId: string): ConversationItem {
  const card = toChannel(r, viewerId);
  return {
    id: card.id,
    kind: card.kind,
    name: card.name,
    ...(card.members ? { members: card.members } : {}),
    created: Number(r.created_at),
  };
}

/**
 * The viewer's conversations of these kinds (its channels, DMs and group
 * DMs), by id: the viewer's memberships drive (members_by_user), so paging
 * never reads another member's rows; the cursor is the last id.
 */
export function conversations(
  sql: Sql,
  v: Viewer,
  kinds: ConversationKind[],
  cursor: string | null,
  limit: number,
): Page<ConversationItem> {
  const after = cursor ? (decodeCursor(cursor)[0] ?? "") : "";
  const rows = sql
    .exec<Row>(
      `SELECT ${CHANNEL_COLS} FROM members m CROSS JOIN channels c ON c.id = m.channel_id
       WHERE m.user_id = ? AND m.channel_id > ? AND c.kind IN (SELECT value FROM json_each(?))
       ORDER BY m.channel_id LIMIT ?`,
      v.id,
      v.id,
      after,
      JSON.stringify(kinds),
      limit + 1,
    )
    .toArray();
  const more = rows.length > limit;
  const items = rows.slice(0, limit).map((r) => conversationOf(r, v.id));
  const last = items.at(-1);
  return { items, next_cursor: more && last ? encodeCursor([last.id]) : null };
}

// --- helpers ----------------------------------------------------------------

/** Every token must start a word: instr against " word word ..." text. */
function tokenFilter(alias: string, tokens: string[]): { where: string; params: string[] } {
  return {
    where: tokens.map(() => `AND instr(${alias}.search_text, ' ' || ?) > 0`).join(" "),
    params: tokens,
  };
}

export function encodeCursor(parts: string[]): string {
  return btoa(JSON.stringify(parts)).replace(/=+$/, "");
}

export function decodeCursor(cursor: string): string[] {
  try {
    const parts: unknown = JSON.parse(atob(cursor));
    if (Array.isArray(parts) && parts.every((p) => typeof p === "string")) return parts;
  } catch {
    // fall through
  }
  throw new CursorError();
}

export class CursorError extends Error {
  constructor() {
    super("invalid cursor");
    this.name = "CursorError";
  }
}

/** A user row (users table columns, `deleted` as 0/1) as clients see it. */
export function toUser(r: Record<string, unknown>): UserCard {
  return userCard({
    id: String(r.id),
    name: String(r.name),
    realName: String(r.real_name),
    displayName: String(r.display_name),
    title: String(r.title),
    avatarHash: String(r.avatar_hash),
    tz: String(r.tz),
    isBot: Number(r.is_bot) === 1,
    role: String(r.role),
    deleted: Number(r.deleted) === 1,
  });
}

/** A channel row (CHANNEL_COLS) as `viewerId` sees it. */
function toChannel(r: Row, viewerId: string): ChannelCard {
  const kind = isConversationKind(r.kind) ? r.kind : "channel";
  const dm = kind === "channel" ? null : dmView(r.dm_people, viewerId);
  return {
    ...channelCard({
      id: String(r.id),
      name: dm ? dm.name : String(r.name),
      topic: String(r.topic),
      purpose: String(r.purpose),
      isPrivate: Number(r.is_private) === 1,
      isArchived: Number(r.is_archived) === 1,
      isShared: String(r.shared_with) !== "[]",
    }),
    kind,
    member_count: Number(r.member_count),
    is_member: Number(r.is_member) === 1,
    ...(dm ? { members: dm.members } : {}),
  };
}

/**
 * A DM's members (ids, sorted) and the name it is shown by: the other
 * members' names, or the viewer's own in a self-DM (or once alone in it).
 */
function dmView(people: unknown, viewerId: string): { name: string; members: string[] } {
  const pairs = (typeof people === "string" ? (JSON.parse(people) as Array<[string, string]>) : []).filter(
    (p) => Array.isArray(p) && p.length === 2,
  );
  const others = pairs.filter(([id]) => id !== viewerId);
  const shown = others.length > 0 ? others : pairs;
  return { name: shown.map(([, n]) => n).join(", "), members: pairs.map(([id]) => id).sort() };
}

function toBootChannel(r: Row): BootChannel {
  return {
    id: String(r.id),
    name: String(r.name),
    is_private: Number(r.is_private) === 1,
    is_archived: Number(r.is_archived) === 1,
    is_shared: String(r.shared_with) !== "[]",
  };
}

// --- conversation audience ----------------------------------------------------

/**
 * Of these active users, the members of each of these channels: who a
 * gateway passes a DM's or group DM's team-topic announcement to
 * (durable-objects/gateway/audience.ts). No viewer: the gateway asks about
 * its own sockets' users, and a private conversation is visible to exactly
 * its members, so this is the visibility rule read for many viewers at once.
 */
export function membersAmong(sql: Sql, channelIds: string[], userIds: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (channelIds.length === 0 || userIds.length === 0) return out;
  for (const [channel, user] of sql
    .exec(
      `SELECT m.channel_id, m.user_id FROM members m JOIN users u ON u.id = m.user_id AND u.deleted = 0
       WHERE m.channel_id IN (SELECT value FROM json_each(?)) AND m.user_id IN (SELECT value FROM json_each(?))`,
      JSON.stringify(channelIds),
      JSON.stringify(userIds),
    )
    .raw()) {
    const list = out[String(channel)] ?? [];
    list.push(String(user));
    out[String(channel)] = list;
  }
  return out;
}
