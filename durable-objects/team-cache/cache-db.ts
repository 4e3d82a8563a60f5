import { type DirChannel, type DirUser, kindOf, type Membership } from "../../src/directory/model";
import { fold, searchText, searchWords } from "./normalize";
import { ADDED_COLUMNS, SCHEMA, SCHEMA_VERSION, TABLES } from "./schema";

// Writes to the cache's SQLite. Rows go in as one JSON parameter expanded by
// json_each: one statement per page instead of one per row, which is what
// makes loading millions of memberships affordable in CPU time.

export type Sql = SqlStorage;

export function migrate(sql: Sql): void {
  for (const [table, column, definition] of ADDED_COLUMNS) {
    const columns = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info(?)", table).toArray();
    // No table yet: SCHEMA creates it with the column.
    if (columns.length > 0 && !columns.some((c) => c.name === column)) {
      sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
  }
  sql.exec(SCHEMA);
  const current = Number(getMeta(sql, "schema") ?? 0);
  if (current !== SCHEMA_VERSION) setMeta(sql, "schema", String(SCHEMA_VERSION));
}

export function getMeta(sql: Sql, key: string): string | null {
  const rows = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray();
  return rows[0]?.value ?? null;
}

export function setMeta(sql: Sql, key: string, value: string): void {
  sql.exec(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    key,
    value,
  );
}

export function clearData(sql: Sql): void {
  for (const t of TABLES) sql.exec(`DELETE FROM ${t}`);
}

function userSortKey(u: DirUser): string {
  return fold(u.displayName || u.realName || u.name);
}

function userWords(u: DirUser): string[] {
  return searchWords(u.name, u.realName, u.displayName);
}

/** Fresh rows (a load): no previous words to remove. */
export function insertUsers(sql: Sql, users: DirUser[]): void {
  if (users.length === 0) return;
  const rows = users.map((u) => {
    const words = userWords(u);
    return [
      u.id,
      u.teamId,
      u.name,
      u.realName,
      u.displayName,
      u.title,
      u.avatarHash,
      u.tz,
      u.isBot ? 1 : 0,
      u.role,
      u.deleted ? 1 : 0,
      u.updatedAt,
      userSortKey(u),
      searchText(words),
      JSON.stringify(words),
    ];
  });
  sql.exec(
    `INSERT OR REPLACE INTO users (id, team_id, name, real_name, display_name, title, avatar_hash, tz, is_bot, role, deleted, updated_at, sort_key, search_text, words)
     SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, value->>9, value->>10, value->>11, value->>12, value->>13, value->>14
     FROM json_each(?)`,
    JSON.stringify(rows),
  );
  const words = users.flatMap((u) => userWords(u).map((w) => [w, u.id]));
  sql.exec(
    "INSERT OR IGNORE INTO user_words (word, user_id) SELECT value->>0, value->>1 FROM json_each(?)",
    JSON.stringify(words),
  );
}

/** A changed user: old words come out (found from the stored search text), new ones go in. */
export function upsertUser(sql: Sql, user: DirUser): void {
  const old = sql.exec<{ words: string }>("SELECT words FROM users WHERE id = ?", user.id).toArray()[0];
  if (old) {
    for (const w of JSON.parse(old.words) as string[]) {
      sql.exec("DELETE FROM user_words WHERE word = ? AND user_id = ?", w, user.id);
    }
  }
  insertUsers(sql, [user]);
}

export function insertChannels(sql: Sql, channels: DirChannel[]): void {
  if (channels.length === 0) return;
  const rows = channels.map((c) => {
    const words = channelWords(c);
    return [
      c.id,
      c.teamId,
      c.name,
      c.topic,
      c.purpose,
      c.isPrivate ? 1 : 0,
      c.isArchived ? 1 : 0,
      c.createdAt,
      c.updatedAt,
      JSON.stringify(c.sharedWith),
      searchText(words),
      JSON.stringify(words),
      kindOf(c),
    ];
  });
  // member_count survives a channel update: it is kept by membership changes.
  sql.exec(
    `INSERT INTO channels (id, host_team, name, topic, purpose, is_private, is_archived, created_at, updated_at, shared_with, search_text, words, kind)
     SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, value->>9, value->>10, value->>11, value->>12 FROM json_each(?) WHERE true
     ON CONFLICT (id) DO UPDATE SET host_team = excluded.host_team, name = excluded.name, topic = excluded.topic, purpose = excluded.purpose,
       is_private = excluded.is_private, is_archived = excluded.is_archived, created_at = excluded.created_at,
       updated_at = excluded.updated_at, shared_with = excluded.shared_with, search_text = excluded.search_text, words = excluded.words,
       kind = excluded.kind`,
    JSON.stringify(rows),
  );
  const words = channels.flatMap((c) => channelWords(c).map((w) => [w, c.id]));
  sql.exec(
    "INSERT OR IGNORE INTO channel_words (word, channel_id) SELECT value->>0, value->>1 FROM json_each(?)",
    JSON.stringify(words),
  );
}

/**
 * A channel's search words: its name's. A DM or group DM has none (its name
 * is its id): the switcher finds it by its members' names instead
 * (queries.ts, conversationMatches), so a rename is never stale in it.
 */
function channelWords(c: DirChannel): string[] {
  return kindOf(c) === "channel" ? searchWords(c.name) : [];
}

export function upsertChannel(sql: Sql, channel: DirChannel): void {
  const old = sql.exec<{ words: string }>("SELECT words FROM channels WHERE id = ?", channel.id).toArray()[0];
  if (old) {
    for (const w of JSON.parse(old.words) as string[]) {
      sql.exec("DELETE FROM channel_words WHERE word = ? AND channel_id = ?", w, channel.id);
    }
  }
  insertChannels(sql, [channel]);
}

/**
 * Removes a channel hosted by `hostTeamId` and this team's memberships in it
 * (a channel no longer shared with the team); its prefix rows go by trigger.
 * Whether there was such a channel: another host's channel with the same id
 * (the team's own, created after the share ended) is left alone.
 */
export function deleteChannel(sql: Sql, hostTeamId: string, channelId: string): boolean {
  const old = sql
    .exec<{ words: string }>("SELECT words FROM channels WHERE id = ? AND host_team = ?", channelId, hostTeamId)
    .toArray()[0];
  if (!old) return false;
  for (const w of JSON.parse(old.words) as string[]) {
    sql.exec("DELETE FROM channel_words WHERE word = ? AND channel_id = ?", w, channelId);
  }
  sql.exec("DELETE FROM members WHERE channel_id = ?", channelId);
  sql.exec("DELETE FROM channels WHERE id = ?", channelId);
  return true;
}

/** Bulk memberships during a load; counts are recomputed once at the end. */
export function insertMemberships(sql: Sql, memberships: Membership[]): void {
  if (memberships.length === 0) return;
  sql.exec(
    "INSERT OR IGNORE INTO members (channel_id, user_id) SELECT value->>0, value->>1 FROM json_each(?)",
    JSON.stringify(memberships.map((m) => [m.channelId, m.userId])),
  );
}

export function recountMembers(sql: Sql): void {
  sql.exec("UPDATE channels SET member_count = (SELECT COUNT(*) FROM members WHERE members.channel_id = channels.id)");
}

export function addMember(sql: Sql, m: Membership): void {
  const cursor = sql.exec("INSERT OR IGNORE INTO members (channel_id, user_id) VALUES (?, ?)", m.channelId, m.userId);
  if (cursor.rowsWritten > 0) sql.exec("UPDATE channels SET member_count = member_count + 1 WHERE id = ?", m.channelId);
}

export function removeMember(sql: Sql, m: Membership): void {
  const cursor = sql.exec("DELETE FROM members WHERE channel_id = ? AND user_id = ?", m.channelId, m.userId);
  if (cursor.rowsWritten > 0) sql.exec("UPDATE channels SET member_count = member_count - 1 WHERE id = ?", m.channelId);
}

/**
 * Rebuilds the words of the users and channels a loading cache primed
 * (load_primed): a page that overwrote one of them with another read left
 * the primed row's words behind. Called once, when a load finishes.
 */
export function rebuildPrimedWords(sql: Sql): void {
  sql.exec("DELETE FROM user_words WHERE user_id IN (SELECT id FROM load_primed WHERE kind = 'user')");
  sql.exec(
    `INSERT OR IGNORE INTO user_words (word, user_id)
     SELECT w.value, u.id FROM load_primed p JOIN users u ON u.id = p.id CROSS JOIN json_each(u.words) w WHERE p.kind = 'user'`,
  );
  sql.exec("DELETE FROM channel_words WHERE channel_id IN (SELECT id FROM load_primed WHERE kind = 'channel')");
  sql.exec(
    `INSERT OR IGNORE INTO channel_words (word, channel_id)
     SELECT w.value, c.id FROM load_primed p JOIN channels c ON c.id = p.id CROSS JOIN json_each(c.words) w WHERE p.kind = 'channel'`,
  );
  sql.exec("DELETE FROM load_primed");
}

/** Marks rows a loading cache took from the database for one caller (see rebuildPrimedWords). */
export function markPrimed(sql: Sql, kind: "user" | "channel", ids: string[]): void {
  if (ids.length === 0) return;
  sql.exec("INSERT OR IGNORE INTO load_primed (kind, id) SELECT ?, value FROM json_each(?)", kind, JSON.stringify(ids));
}
