import { PREFIX_LEN } from "./normalize";

// The cache's own SQLite. Data lives here, not in JS memory: a 200,000-user
// team with 2,000,000 memberships must fit in a Durable Object (128 MB).

export const SCHEMA_VERSION = 3;

/**
 * Columns added after a cache may have been created: [table, column, definition].
 * migrate() adds each one a cache's table lacks, before SCHEMA runs (which may
 * index it), so an existing cache migrates in place: no reload. Schema 3:
 * channels.kind (channel | im | mpim); every row a cache held before it was a
 * channel, which is the default.
 */
export const ADDED_COLUMNS: ReadonlyArray<readonly [string, string, string]> = [
  ["channels", "kind", "TEXT NOT NULL DEFAULT 'channel'"],
];

/** 1..PREFIX_LEN as a one-column table, for deriving a word's prefixes in SQL. */
const LENGTHS = `(${Array.from({ length: PREFIX_LEN }, (_, i) => `SELECT ${i + 1} AS n`).join(" UNION ALL ")})`;

/**
 * Which (word w, length l) pairs give a prefix row: the word is that long,
 * and is not a whole multi-word name ("ada lovelace"), whose prefixes are its
 * first word's (a query token never holds a space).
 */
const INDEXED = "length(w.value) >= l.n AND instr(w.value, ' ') = 0";

/** The (prefix, key, id) rows of one user or channel row `r`: every word's first 1..PREFIX_LEN characters, each once. */
const prefixRows = (r: string, key: string) =>
  `SELECT DISTINCT substr(w.value, 1, l.n), ${r}.${key}, ${r}.id FROM json_each(${r}.words) w CROSS JOIN ${LENGTHS} l WHERE ${INDEXED}`;

/**
 * The same for every row of a table (a load's end, or a cache loaded before
 * these indexes existed), in key order so the insert appends. DISTINCT rather
 * than INSERT OR IGNORE: a trigger fired by an upsert's DO UPDATE (setMeta)
 * runs its statements under the upsert's ABORT, whatever they say.
 */
const allPrefixRows = (table: string, key: string, guard = "") =>
  `SELECT DISTINCT substr(w.value, 1, l.n), r.${key}, r.id FROM ${guard} ${table} r CROSS JOIN json_each(r.words) w CROSS JOIN ${LENGTHS} l
   WHERE ${INDEXED} ORDER BY 1, 2, 3`;

const LOADED = "(SELECT value FROM meta WHERE key = 'loaded') = '1'";

/** One row when this cache was loaded under a schema without the prefix indexes (migrate() records the version after running SCHEMA). */
const BEFORE_2 = `(SELECT 1 FROM meta WHERE key = 'loaded' AND value = '1'
  AND CAST(COALESCE((SELECT value FROM meta WHERE key = 'schema'), '0') AS INTEGER) < 2) g CROSS JOIN`;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT NOT NULL, real_name TEXT NOT NULL,
  display_name TEXT NOT NULL, title TEXT NOT NULL, avatar_hash TEXT NOT NULL, tz TEXT NOT NULL,
  is_bot INTEGER NOT NULL, role TEXT NOT NULL, deleted INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  sort_key TEXT NOT NULL, search_text TEXT NOT NULL, words TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_by_sort ON users (sort_key, id);
-- Directory filters that keep few rows (a role, bots, deactivated) page in
-- name order from their own index instead of walking everyone's.
CREATE INDEX IF NOT EXISTS users_by_role_sort ON users (role, sort_key, id);
CREATE INDEX IF NOT EXISTS users_bots_by_sort ON users (sort_key, id) WHERE is_bot = 1;
CREATE INDEX IF NOT EXISTS users_deleted_by_sort ON users (sort_key, id) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS user_words (word TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (word, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (
  id TEXT PRIMARY KEY, host_team TEXT NOT NULL, name TEXT NOT NULL, topic TEXT NOT NULL, purpose TEXT NOT NULL,
  is_private INTEGER NOT NULL, is_archived INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  shared_with TEXT NOT NULL, member_count INTEGER NOT NULL DEFAULT 0, search_text TEXT NOT NULL, words TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'channel'
);
CREATE TABLE IF NOT EXISTS channel_words (word TEXT NOT NULL, channel_id TEXT NOT NULL, PRIMARY KEY (word, channel_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (channel_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (channel_id, user_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, channel_id);
CREATE TABLE IF NOT EXISTS changes (version INTEGER PRIMARY KEY, kind TEXT NOT NULL, entity_id TEXT NOT NULL, user_id TEXT);
-- Users and channels a cache still loading took straight from the database
-- for a caller (team-cache.ts, primeViewer): a page may later overwrite such
-- a row with an older read whose words differ, so their words are rebuilt
-- when the load finishes.
CREATE TABLE IF NOT EXISTS load_primed (kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;

-- Rank-ordered prefix indexes. Suggestions rank by name (people by sort_key,
-- channels by name, then id): the word index finds every match but in word
-- order, so taking its first rows and sorting them ranks wrongly, and sorting
-- all of a short prefix's matches costs tens of milliseconds in a big team.
-- Keyed by (prefix, rank key, id), a token of up to ${PREFIX_LEN} characters is one range
-- read already in output order that stops at the page size.
CREATE TABLE IF NOT EXISTS user_prefixes (prefix TEXT NOT NULL, sort_key TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (prefix, sort_key, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_prefixes (prefix TEXT NOT NULL, name TEXT NOT NULL, channel_id TEXT NOT NULL, PRIMARY KEY (prefix, name, channel_id)) WITHOUT ROWID;

-- They are derived from the rows' words, so SQLite keeps them: row by row once
-- the cache is loaded (a change event), and in one sorted insert when a load
-- finishes (meta 'loaded' becoming '1'), which costs a fraction of
-- maintaining them row by row through a load's pages. Rows leave users only
-- through clearData, which empties these tables too; a channel also leaves
-- when it is no longer shared with the team (deleteChannel), its prefixes
-- with it.
CREATE TRIGGER IF NOT EXISTS user_prefixes_replace BEFORE INSERT ON users WHEN ${LOADED} BEGIN
  DELETE FROM user_prefixes WHERE (prefix, sort_key, user_id) IN (
    SELECT substr(w.value, 1, l.n), o.sort_key, o.id FROM users o CROSS JOIN json_each(o.words) w CROSS JOIN ${LENGTHS} l
    WHERE o.id = NEW.id AND ${INDEXED});
END;
CREATE TRIGGER IF NOT EXISTS user_prefixes_insert AFTER INSERT ON users WHEN ${LOADED} BEGIN
  INSERT INTO user_prefixes (prefix, sort_key, user_id) ${prefixRows("NEW", "sort_key")};
END;
CREATE TRIGGER IF NOT EXISTS user_prefixes_update AFTER UPDATE OF sort_key, words ON users WHEN ${LOADED} BEGIN
  DELETE FROM user_prefixes WHERE (prefix, sort_key, user_id) IN (${prefixRows("OLD", "sort_key")});
  INSERT INTO user_prefixes (prefix, sort_key, user_id) ${prefixRows("NEW", "sort_key")};
END;
CREATE TRIGGER IF NOT EXISTS channel_prefixes_insert AFTER INSERT ON channels WHEN ${LOADED} BEGIN
  INSERT INTO channel_prefixes (prefix, name, channel_id) ${prefixRows("NEW", "name")};
END;
CREATE TRIGGER IF NOT EXISTS channel_prefixes_update AFTER UPDATE OF name, words ON channels WHEN ${LOADED} BEGIN
  DELETE FROM channel_prefixes WHERE (prefix, name, channel_id) IN (${prefixRows("OLD", "name")});
  INSERT INTO channel_prefixes (prefix, name, channel_id) ${prefixRows("NEW", "name")};
END;
CREATE TRIGGER IF NOT EXISTS channel_prefixes_delete AFTER DELETE ON channels WHEN ${LOADED} BEGIN
  DELETE FROM channel_prefixes WHERE (prefix, name, channel_id) IN (${prefixRows("OLD", "name")});
END;
CREATE TRIGGER IF NOT EXISTS prefixes_after_load AFTER UPDATE OF value ON meta
WHEN NEW.key = 'loaded' AND NEW.value = '1' AND OLD.value IS NOT '1' BEGIN
  DELETE FROM user_prefixes;
  INSERT INTO user_prefixes (prefix, sort_key, user_id) ${allPrefixRows("users", "sort_key")};
  DELETE FROM channel_prefixes;
  INSERT INTO channel_prefixes (prefix, name, channel_id) ${allPrefixRows("channels", "name")};
END;

-- A cache loaded under schema 1 has no prefix rows: build them once. The
-- guard is a one-row table joined first, so on every later start SQLite
-- stops before reading a single user.
INSERT OR IGNORE INTO user_prefixes (prefix, sort_key, user_id) ${allPrefixRows("users", "sort_key", BEFORE_2)};
INSERT OR IGNORE INTO channel_prefixes (prefix, name, channel_id) ${allPrefixRows("channels", "name", BEFORE_2)};
`;

export const TABLES = [
  "users",
  "user_words",
  "user_prefixes",
  "channels",
  "channel_words",
  "channel_prefixes",
  "members",
  "changes",
  "load_primed",
] as const;
