import {
  bigint,
  customType,
  index,
  int,
  mediumtext,
  mysqlTable,
  primaryKey,
  text,
  tinyint,
  uniqueIndex,
  varchar,
} from "drizzle-orm/mysql-core";

// MySQL / PlanetScale (Vitess) schema. Team-scoped tables lead their primary
// key with team_id: it is the sharding key, so one request touches one shard.
//
// Every column that holds an identifier or a key compared in SQL (ids, emails,
// domains, channel names, the heal lease owner, feature row keys, the change
// log's entity/extra) is varcharBin: compared byte for byte, as D1/SQLite
// compares TEXT. The server's default collation (utf8mb4_general_ci on
// MariaDB, utf8mb4_0900_ai_ci on MySQL 8) would make `UPAGEa` and `UPAGEA` one
// key. Free text and closed vocabularies (role, plan, kind) keep the default.
// See docs/storage.md.

/**
 * varchar with utf8mb4_bin. drizzle-orm's mysql varchar cannot carry a
 * collation, so the type is spelled out here; drizzle-kit stores and diffs it
 * as the column's type like any other. utf8mb4_bin rather than varbinary
 * because the PlanetScale driver returns binary-charset columns as bytes, and
 * rather than utf8mb4_0900_bin / utf8mb4_nopad_bin because those exist on only
 * one of MySQL 8 and MariaDB. Like all PAD SPACE collations it ignores
 * trailing spaces, which no id, email or key may contain.
 */
const varcharBin = customType<{ data: string; config: { length: number }; configRequired: true }>({
  dataType: (config) => `varchar(${config.length}) COLLATE utf8mb4_bin`,
});

export const teams = mysqlTable("teams", {
  id: varcharBin("id", { length: 40 }).primaryKey(),
  name: varchar("name", { length: 200 }).notNull(),
  plan: varchar("plan", { length: 16 }).notNull(),
  claimedDomains: text("claimed_domains").notNull(),
  createdAt: bigint("created_at", { mode: "number" }).notNull(),
  healedAt: bigint("healed_at", { mode: "number" }),
  healNeededAt: bigint("heal_needed_at", { mode: "number" }),
  healLeaseOwner: varcharBin("heal_lease_owner", { length: 64 }),
  healLeaseUntil: bigint("heal_lease_until", { mode: "number" }),
  /** Last directory change (storage/directory-store.ts): bumped in the same unit as the change and its log row. */
  dirVersion: bigint("dir_version", { mode: "number" }).notNull().default(0),
});

export const users = mysqlTable(
  "users",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    id: varcharBin("id", { length: 40 }).notNull(),
    email: varcharBin("email", { length: 254 }).notNull(),
    domain: varcharBin("domain", { length: 253 }).notNull(),
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
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    domain: varcharBin("domain", { length: 253 }).notNull(),
    role: varchar("role", { length: 8 }).notNull(),
    count: int("count").notNull().default(0),
    dateUpdate: bigint("date_update", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.domain, t.role] })],
);

export const channels = mysqlTable(
  "channels",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    id: varcharBin("id", { length: 40 }).notNull(),
    name: varcharBin("name", { length: 80 }).notNull(),
    topic: varchar("topic", { length: 250 }).notNull().default(""),
    purpose: varchar("purpose", { length: 250 }).notNull().default(""),
    isPrivate: tinyint("is_private").notNull().default(0),
    isArchived: tinyint("is_archived").notNull().default(0),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
    /** channel | im | mpim (a DM or group DM: private, named by its id; src/conversations/directory-conversations.ts). */
    kind: varchar("kind", { length: 8 }).notNull().default("channel"),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), uniqueIndex("channels_team_name").on(t.teamId, t.name)],
);

/** Channel `channel_id` hosted by `host_team_id` is shared into `team_id`. */
export const channelShares = mysqlTable(
  "channel_shares",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    channelId: varcharBin("channel_id", { length: 40 }).notNull(),
    hostTeamId: varcharBin("host_team_id", { length: 40 }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.channelId] }), index("channel_shares_host").on(t.hostTeamId, t.channelId)],
);

/** team_id is the channel's host team; user_team_id differs for members from teams it is shared with. */
export const memberships = mysqlTable(
  "memberships",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    channelId: varcharBin("channel_id", { length: 40 }).notNull(),
    userId: varcharBin("user_id", { length: 40 }).notNull(),
    userTeamId: varcharBin("user_team_id", { length: 40 }).notNull(),
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
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    version: bigint("version", { mode: "number" }).notNull(),
    kind: varchar("kind", { length: 16 }).notNull(),
    entityId: varcharBin("entity_id", { length: 40 }).notNull(),
    extra: varcharBin("extra", { length: 100 }).notNull().default(""),
    at: bigint("at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.version] })],
);

/** The recommenders' feature store; see ./sqlite.ts. */
export const recSnapshots = mysqlTable(
  "rec_snapshots",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    snapshotId: varcharBin("snapshot_id", { length: 40 }).notNull(),
    asOf: int("as_of").notNull(),
    dataset: varchar("dataset", { length: 100 }).notNull(),
    rows: int("rows").notNull().default(0),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.snapshotId] })],
);

export const recCurrent = mysqlTable("rec_current", {
  teamId: varcharBin("team_id", { length: 40 }).primaryKey(),
  snapshotId: varcharBin("snapshot_id", { length: 40 }).notNull(),
  updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
});

export const recFeatureRows = mysqlTable(
  "rec_feature_rows",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    snapshotId: varcharBin("snapshot_id", { length: 40 }).notNull(),
    kind: varchar("kind", { length: 8 }).notNull(),
    key: varcharBin("key", { length: 96 }).notNull(),
    data: text("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.snapshotId, t.kind, t.key] })],
);

/**
 * The transactional outbox; see ./sqlite.ts. mediumtext: a message of 500
 * deltas with long domains can pass text's 64 KB.
 */
export const outbox = mysqlTable(
  "outbox",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    id: varcharBin("id", { length: 64 }).notNull(),
    queue: varchar("queue", { length: 32 }).notNull(),
    body: mediumtext("body").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    sentAt: bigint("sent_at", { mode: "number" }),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), index("outbox_unsent").on(t.sentAt, t.createdAt)],
);

/** Domain mutations already applied; see ./sqlite.ts. */
export const appliedMutations = mysqlTable(
  "applied_mutations",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    id: varcharBin("id", { length: 64 }).notNull(),
    appliedAt: bigint("applied_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), index("applied_mutations_at").on(t.appliedAt)],
);

/** Idempotency-Key records; see ./sqlite.ts. */
export const idempotencyKeys = mysqlTable(
  "idempotency_keys",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    key: varcharBin("idem_key", { length: 255 }).notNull(),
    requestHash: varchar("request_hash", { length: 64 }).notNull(),
    result: mediumtext("result").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.key] }), index("idempotency_keys_at").on(t.createdAt)],
);

/** Users of an import not landed yet; see ./sqlite.ts. */
export const stagedUsers = mysqlTable(
  "staged_users",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    importKey: varcharBin("import_key", { length: 255 }).notNull(),
    requestHash: varchar("request_hash", { length: 64 }).notNull(),
    id: varcharBin("id", { length: 40 }).notNull(),
    email: varcharBin("email", { length: 254 }).notNull(),
    domain: varcharBin("domain", { length: 253 }).notNull(),
    role: varchar("role", { length: 8 }).notNull(),
    name: varchar("name", { length: 80 }).notNull(),
    stagedAt: bigint("staged_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.importKey, t.id] }), index("staged_users_at").on(t.stagedAt)],
);

/** The protobuf payload of a pref row: bytes, up to 16 MiB (a row is a few hundred bytes). */
const mediumblob = customType<{ data: Uint8Array }>({ dataType: () => "mediumblob" });

/** Slack Connect prefs; see ./sqlite.ts. */
export const connectPrefs = mysqlTable(
  "connect_prefs",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    targetTeamId: varcharBin("target_team_id", { length: 40 }).notNull(),
    prefs: mediumblob("prefs").notNull(),
    dateCreate: bigint("date_create", { mode: "number" }).notNull(),
    dateUpdate: bigint("date_update", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.targetTeamId] }), index("connect_prefs_target").on(t.targetTeamId)],
);

/** Connect pref changes; see ./sqlite.ts. */
export const connectPrefsAudit = mysqlTable(
  "connect_prefs_audit",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    id: varcharBin("id", { length: 40 }).notNull(),
    targetTeamId: varcharBin("target_team_id", { length: 40 }).notNull(),
    prefKey: varchar("pref_key", { length: 64 }).notNull(),
    actor: varcharBin("actor", { length: 40 }).notNull(),
    at: bigint("at", { mode: "number" }).notNull(),
    before: mediumtext("before"),
    after: mediumtext("after"),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), index("connect_prefs_audit_at").on(t.teamId, t.at)],
);

/** Slack Connect invitations; see ./sqlite.ts. */
export const connectInvitations = mysqlTable(
  "connect_invitations",
  {
    fromTeam: varcharBin("from_team", { length: 40 }).notNull(),
    id: varcharBin("id", { length: 40 }).notNull(),
    fromUser: varcharBin("from_user", { length: 40 }).notNull(),
    codeHash: varcharBin("code_hash", { length: 64 }).notNull(),
    status: varchar("status", { length: 16 }).notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    expiresAt: bigint("expires_at", { mode: "number" }).notNull(),
    answeredTeam: varcharBin("answered_team", { length: 40 }),
    answeredUser: varcharBin("answered_user", { length: 40 }),
    answeredAt: bigint("answered_at", { mode: "number" }),
    connectionId: varcharBin("connection_id", { length: 40 }),
  },
  (t) => [
    primaryKey({ columns: [t.fromTeam, t.id] }),
    uniqueIndex("connect_invitations_code").on(t.codeHash),
    index("connect_invitations_team_at").on(t.fromTeam, t.createdAt),
  ],
);

/** Connections between two teams, one live per pair; see ./sqlite.ts. */
export const connections = mysqlTable(
  "connections",
  {
    id: varcharBin("id", { length: 40 }).primaryKey(),
    inviter: varcharBin("inviter", { length: 40 }).notNull(),
    invitee: varcharBin("invitee", { length: 40 }).notNull(),
    teamLow: varcharBin("team_low", { length: 40 }).notNull(),
    teamHigh: varcharBin("team_high", { length: 40 }).notNull(),
    live: tinyint("live"),
    status: varchar("status", { length: 16 }).notNull(),
    invitationId: varcharBin("invitation_id", { length: 40 }).notNull(),
    requestedUser: varcharBin("requested_user", { length: 40 }).notNull(),
    requestedAt: bigint("requested_at", { mode: "number" }).notNull(),
    acceptedUser: varcharBin("accepted_user", { length: 40 }).notNull(),
    acceptedAt: bigint("accepted_at", { mode: "number" }).notNull(),
    disconnectedTeam: varcharBin("disconnected_team", { length: 40 }),
    disconnectedUser: varcharBin("disconnected_user", { length: 40 }),
    disconnectedAt: bigint("disconnected_at", { mode: "number" }),
  },
  (t) => [
    uniqueIndex("connections_live_pair").on(t.teamLow, t.teamHigh, t.live),
    index("connections_inviter").on(t.inviter, t.acceptedAt, t.id),
    index("connections_invitee").on(t.invitee, t.acceptedAt, t.id),
    index("connections_inviter_id").on(t.inviter, t.id),
    index("connections_invitee_id").on(t.invitee, t.id),
  ],
);

/** Shared-channel invitations over a connection; see ./sqlite.ts. */
export const sharedChannelInvites = mysqlTable(
  "shared_channel_invites",
  {
    id: varcharBin("id", { length: 40 }).primaryKey(),
    connectionId: varcharBin("connection_id", { length: 40 }).notNull(),
    hostTeam: varcharBin("host_team", { length: 40 }).notNull(),
    guestTeam: varcharBin("guest_team", { length: 40 }).notNull(),
    channelId: varcharBin("channel_id", { length: 40 }).notNull(),
    channelName: varcharBin("channel_name", { length: 80 }).notNull(),
    status: varchar("status", { length: 16 }).notNull(),
    live: tinyint("live"),
    createdUser: varcharBin("created_user", { length: 40 }).notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    answeredUser: varcharBin("answered_user", { length: 40 }),
    answeredAt: bigint("answered_at", { mode: "number" }),
    autoApproved: tinyint("auto_approved").notNull().default(0),
    endedTeam: varcharBin("ended_team", { length: 40 }),
    endedUser: varcharBin("ended_user", { length: 40 }),
    endedAt: bigint("ended_at", { mode: "number" }),
    applied: tinyint("applied").notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("shared_channel_invites_live").on(t.hostTeam, t.channelId, t.guestTeam, t.live),
    index("shared_channel_invites_host").on(t.hostTeam, t.createdAt, t.id),
    index("shared_channel_invites_guest").on(t.guestTeam, t.createdAt, t.id),
    index("shared_channel_invites_connection").on(t.connectionId, t.live),
    index("shared_channel_invites_unapplied").on(t.applied, t.updatedAt),
  ],
);

/** Admin-search documents to compute again; see ./sqlite.ts. */
export const connectIndexQueue = mysqlTable(
  "connect_index_queue",
  {
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    partnerId: varcharBin("partner_id", { length: 40 }).notNull(),
    seq: bigint("seq", { mode: "number" }).notNull().default(1),
    queuedAt: bigint("queued_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.partnerId] }), index("connect_index_queue_at").on(t.queuedAt)],
);

/** Workspaces the Slack bot is installed in (src/slackbot/store.ts). bot_token is sealed when SLACK_TOKEN_KEY is set. */
export const slackInstallations = mysqlTable("slack_installations", {
  teamId: varcharBin("team_id", { length: 40 }).primaryKey(),
  botToken: text("bot_token").notNull(),
  botUserId: varcharBin("bot_user_id", { length: 40 }).notNull(),
  appId: varcharBin("app_id", { length: 40 }).notNull(),
  installedAt: bigint("installed_at", { mode: "number" }).notNull(),
});

/** Events the Slack bot took, by Slack's event_id (see ./sqlite.ts). */
export const slackEvents = mysqlTable(
  "slack_events",
  {
    eventId: varcharBin("event_id", { length: 64 }).primaryKey(),
    teamId: varcharBin("team_id", { length: 40 }).notNull(),
    state: varchar("state", { length: 8 }).notNull(),
    attempts: int("attempts").notNull().default(1),
    claimedAt: bigint("claimed_at", { mode: "number" }).notNull(),
    finishedAt: bigint("finished_at", { mode: "number" }),
    detail: varchar("detail", { length: 400 }),
  },
  (t) => [index("slack_events_claimed_at").on(t.claimedAt)],
);
