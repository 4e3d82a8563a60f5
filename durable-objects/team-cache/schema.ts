// The cache's own SQLite. Data lives here, not in JS memory: a 200,000-user
// team with 2,000,000 memberships must fit in a Durable Object (128 MB).

export const SCHEMA_VERSION = 1;

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
  shared_with TEXT NOT NULL, member_count INTEGER NOT NULL DEFAULT 0, search_text TEXT NOT NULL, words TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS channel_words (word TEXT NOT NULL, channel_id TEXT NOT NULL, PRIMARY KEY (word, channel_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (channel_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (channel_id, user_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, channel_id);
CREATE TABLE IF NOT EXISTS changes (version INTEGER PRIMARY KEY, kind TEXT NOT NULL, entity_id TEXT NOT NULL, user_id TEXT);
`;

export const TABLES = ["users", "user_words", "channels", "channel_words", "members", "changes"] as const;
