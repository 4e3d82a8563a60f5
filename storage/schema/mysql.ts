import {
  bigint,
  index,
  int,
  mysqlTable,
  primaryKey,
  text,
  tinyint,
  uniqueIndex,
  varchar,
} from "drizzle-orm/mysql-core";

// MySQL / PlanetScale (Vitess) schema. Team-scoped tables lead their primary
// key with team_id: it is the sharding key, so one request touches one shard.

export const teams = mysqlTable("teams", {
  id: varchar("id", { length: 40 }).primaryKey(),
  name: varchar("name", { length: 200 }).notNull(),
  plan: varchar("plan", { length: 16 }).notNull(),
  claimedDomains: text("claimed_domains").notNull(),
  createdAt: bigint("created_at", { mode: "number" }).notNull(),
  healedAt: bigint("healed_at", { mode: "number" }),
  healNeededAt: bigint("heal_needed_at", { mode: "number" }),
  healLeaseOwner: varchar("heal_lease_owner", { length: 64 }),
  healLeaseUntil: bigint("heal_lease_until", { mode: "number" }),
  /** Last directory change (storage/directory-store.ts): bumped in the same unit as the change and its log row. */
  dirVersion: bigint("dir_version", { mode: "number" }).notNull().default(0),
});

export const users = mysqlTable(
  "users",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    id: varchar("id", { length: 40 }).notNull(),
    email: varchar("email", { length: 254 }).notNull(),
    domain: varchar("domain", { length: 253 }).notNull(),
    role: varchar("role", { length: 8 }).notNull(),
    deactivated: tinyint("deactivated").notNull().default(0),
    version: int("version").notNull().default(1),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
    // Directory profile (the edge cache's DirUser); classification never reads these.
    name: varchar("name", { length: 80 }).notNull().default(""),
    realName: varchar("real_name", { length: 200 }).notNull().default(""),
    displayName: varchar("display_name", { length: 80 }).notNull().default(""),
    title: varchar("title", { length: 200 }).notNull().default(""),
    avatarHash: varchar("avatar_hash", { length: 64 }).notNull().default(""),
    tz: varchar("tz", { length: 64 }).notNull().default("UTC"),
    isBot: tinyint("is_bot").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), uniqueIndex("users_team_email").on(t.teamId, t.email)],
);

export const domains = mysqlTable(
  "domains",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    domain: varchar("domain", { length: 253 }).notNull(),
    role: varchar("role", { length: 8 }).notNull(),
    count: int("count").notNull().default(0),
    dateUpdate: bigint("date_update", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.domain, t.role] })],
);

export const channels = mysqlTable(
  "channels",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    id: varchar("id", { length: 40 }).notNull(),
    name: varchar("name", { length: 80 }).notNull(),
    topic: varchar("topic", { length: 250 }).notNull().default(""),
    purpose: varchar("purpose", { length: 250 }).notNull().default(""),
    isPrivate: tinyint("is_private").notNull().default(0),
    isArchived: tinyint("is_archived").notNull().default(0),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), uniqueIndex("channels_team_name").on(t.teamId, t.name)],
);

/** Channel `channel_id` hosted by `host_team_id` is shared into `team_id`. */
export const channelShares = mysqlTable(
  "channel_shares",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    channelId: varchar("channel_id", { length: 40 }).notNull(),
    hostTeamId: varchar("host_team_id", { length: 40 }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.channelId] }), index("channel_shares_host").on(t.hostTeamId, t.channelId)],
);

/** team_id is the channel's host team; user_team_id differs for members from teams it is shared with. */
export const memberships = mysqlTable(
  "memberships",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    channelId: varchar("channel_id", { length: 40 }).notNull(),
    userId: varchar("user_id", { length: 40 }).notNull(),
    userTeamId: varchar("user_team_id", { length: 40 }).notNull(),
    joinedAt: bigint("joined_at", { mode: "number" }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.teamId, t.channelId, t.userId] }),
    index("memberships_team_user").on(t.teamId, t.userId),
    index("memberships_user_team_user").on(t.userTeamId, t.userId),
  ],
);

/** One row per directory version of a team; see storage/directory-store.ts for the encoding. */
export const directoryChanges = mysqlTable(
  "directory_changes",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    version: bigint("version", { mode: "number" }).notNull(),
    kind: varchar("kind", { length: 16 }).notNull(),
    entityId: varchar("entity_id", { length: 40 }).notNull(),
    extra: varchar("extra", { length: 100 }).notNull().default(""),
    at: bigint("at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.version] })],
);

/** The recommenders' feature store; see ./sqlite.ts. */
export const recSnapshots = mysqlTable(
  "rec_snapshots",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    snapshotId: varchar("snapshot_id", { length: 40 }).notNull(),
    asOf: int("as_of").notNull(),
    dataset: varchar("dataset", { length: 100 }).notNull(),
    rows: int("rows").notNull().default(0),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.snapshotId] })],
);

export const recCurrent = mysqlTable("rec_current", {
  teamId: varchar("team_id", { length: 40 }).primaryKey(),
  snapshotId: varchar("snapshot_id", { length: 40 }).notNull(),
  updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
});

export const recFeatureRows = mysqlTable(
  "rec_feature_rows",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    snapshotId: varchar("snapshot_id", { length: 40 }).notNull(),
    kind: varchar("kind", { length: 8 }).notNull(),
    key: varchar("key", { length: 96 }).notNull(),
    data: text("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.snapshotId, t.kind, t.key] })],
);
