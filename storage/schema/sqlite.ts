import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// D1 (SQLite) schema. Keep column names and meaning identical to ./mysql.ts:
// storage/sql-store.ts runs the same SQL on both.

export const teams = sqliteTable("teams", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  plan: text("plan").notNull(),
  claimedDomains: text("claimed_domains").notNull(),
  createdAt: integer("created_at").notNull(),
  healedAt: integer("healed_at"),
  healNeededAt: integer("heal_needed_at"),
  healLeaseOwner: text("heal_lease_owner"),
  healLeaseUntil: integer("heal_lease_until"),
  /** Last directory change (storage/directory-store.ts): bumped in the same unit as the change and its log row. */
  dirVersion: integer("dir_version").notNull().default(0),
});

export const users = sqliteTable(
  "users",
  {
    teamId: text("team_id").notNull(),
    id: text("id").notNull(),
    email: text("email").notNull(),
    domain: text("domain").notNull(),
    role: text("role").notNull(),
    deactivated: integer("deactivated").notNull().default(0),
    version: integer("version").notNull().default(1),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    // Directory profile (the edge cache's DirUser); classification never reads these.
    name: text("name").notNull().default(""),
    realName: text("real_name").notNull().default(""),
    displayName: text("display_name").notNull().default(""),
    title: text("title").notNull().default(""),
    avatarHash: text("avatar_hash").notNull().default(""),
    tz: text("tz").notNull().default("UTC"),
    isBot: integer("is_bot").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), uniqueIndex("users_team_email").on(t.teamId, t.email)],
);

export const domains = sqliteTable(
  "domains",
  {
    teamId: text("team_id").notNull(),
    domain: text("domain").notNull(),
    role: text("role").notNull(),
    count: integer("count").notNull().default(sql`0`),
    dateUpdate: integer("date_update").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.domain, t.role] })],
);

export const channels = sqliteTable(
  "channels",
  {
    teamId: text("team_id").notNull(),
    id: text("id").notNull(),
    name: text("name").notNull(),
    topic: text("topic").notNull().default(""),
    purpose: text("purpose").notNull().default(""),
    isPrivate: integer("is_private").notNull().default(0),
    isArchived: integer("is_archived").notNull().default(0),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    /** channel | im | mpim (a DM or group DM: private, named by its id; src/conversations/directory-conversations.ts). */
    kind: text("kind").notNull().default("channel"),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), uniqueIndex("channels_team_name").on(t.teamId, t.name)],
);

/** Channel `channel_id` hosted by `host_team_id` is shared into `team_id`. */
export const channelShares = sqliteTable(
  "channel_shares",
  {
    teamId: text("team_id").notNull(),
    channelId: text("channel_id").notNull(),
    hostTeamId: text("host_team_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.channelId] }), index("channel_shares_host").on(t.hostTeamId, t.channelId)],
);

/** team_id is the channel's host team; user_team_id differs for members from teams it is shared with. */
export const memberships = sqliteTable(
  "memberships",
  {
    teamId: text("team_id").notNull(),
    channelId: text("channel_id").notNull(),
    userId: text("user_id").notNull(),
    userTeamId: text("user_team_id").notNull(),
    joinedAt: integer("joined_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.teamId, t.channelId, t.userId] }),
    index("memberships_team_user").on(t.teamId, t.userId),
    index("memberships_user_team_user").on(t.userTeamId, t.userId),
  ],
);

/** One row per directory version of a team; see storage/directory-store.ts for the encoding. */
export const directoryChanges = sqliteTable(
  "directory_changes",
  {
    teamId: text("team_id").notNull(),
    version: integer("version").notNull(),
    kind: text("kind").notNull(),
    entityId: text("entity_id").notNull(),
    extra: text("extra").notNull().default(""),
    at: integer("at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.version] })],
);

/**
 * The recommenders' feature store: a team's count tables as of a cut day, as
 * rows of (kind, key, JSON counts), written as a whole snapshot and made
 * current in one step (rec_current), so readers never see half of one.
 */
export const recSnapshots = sqliteTable(
  "rec_snapshots",
  {
    teamId: text("team_id").notNull(),
    snapshotId: text("snapshot_id").notNull(),
    asOf: integer("as_of").notNull(),
    dataset: text("dataset").notNull(),
    rows: integer("rows").notNull().default(0),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.snapshotId] })],
);

export const recCurrent = sqliteTable("rec_current", {
  teamId: text("team_id").primaryKey(),
  snapshotId: text("snapshot_id").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const recFeatureRows = sqliteTable(
  "rec_feature_rows",
  {
    teamId: text("team_id").notNull(),
    snapshotId: text("snapshot_id").notNull(),
    kind: text("kind").notNull(),
    key: text("key").notNull(),
    data: text("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.snapshotId, t.kind, t.key] })],
);

/**
 * Queue messages a write derived, committed in the same atomic unit as the
 * write (the transactional outbox): the relay (src/domains/outbox.ts)
 * publishes each row and then sets sent_at. `id` is the message's id, which
 * the consumer dedupes on (applied_mutations). See docs/storage.md.
 */
export const outbox = sqliteTable(
  "outbox",
  {
    teamId: text("team_id").notNull(),
    id: text("id").notNull(),
    queue: text("queue").notNull(),
    body: text("body").notNull(),
    createdAt: integer("created_at").notNull(),
    sentAt: integer("sent_at"),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), index("outbox_unsent").on(t.sentAt, t.createdAt)],
);

/**
 * Ids of the domain mutations the consumer applied, written in the same unit
 * as their count upserts: a message delivered again (a relay that published
 * twice, a queue redelivery) is recognised and skipped, in any later batch.
 */
export const appliedMutations = sqliteTable(
  "applied_mutations",
  {
    teamId: text("team_id").notNull(),
    id: text("id").notNull(),
    appliedAt: integer("applied_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), index("applied_mutations_at").on(t.appliedAt)],
);

/**
 * Idempotency-Key records of admin writes: what the request was (a hash of
 * method, path and body) and what it returned, written in the same atomic
 * unit as the change it made, so a retry after any crash replays the first
 * answer instead of writing twice. Pruned after a day (workers/scheduled.ts).
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    teamId: text("team_id").notNull(),
    key: text("idem_key").notNull(),
    requestHash: text("request_hash").notNull(),
    result: text("result").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.key] }), index("idempotency_keys_at").on(t.createdAt)],
);

/**
 * Users of an import not landed yet (src/teams/lifecycle.ts, importUsersOnce):
 * each page is staged here in its own unit, invisible to every reader, and
 * the landing moves them all to users in one unit with everything derived
 * from them. A crash part-way leaves nothing visible; the same request
 * retried with its key stages the rest and lands. Abandoned stagings are
 * pruned after a day (workers/scheduled.ts).
 */
export const stagedUsers = sqliteTable(
  "staged_users",
  {
    teamId: text("team_id").notNull(),
    importKey: text("import_key").notNull(),
    requestHash: text("request_hash").notNull(),
    id: text("id").notNull(),
    email: text("email").notNull(),
    domain: text("domain").notNull(),
    role: text("role").notNull(),
    name: text("name").notNull(),
    stagedAt: integer("staged_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.importKey, t.id] }), index("staged_users_at").on(t.stagedAt)],
);

/**
 * Slack Connect prefs (src/connect/prefs/): one row per team and level,
 * target_team_id "0" for the org level, any other the partner's team id;
 * `prefs` is the protobuf ConnectPrefs message (proto/connect/v1/prefs.proto).
 */
export const connectPrefs = sqliteTable(
  "connect_prefs",
  {
    teamId: text("team_id").notNull(),
    targetTeamId: text("target_team_id").notNull(),
    prefs: blob("prefs").notNull(),
    dateCreate: integer("date_create").notNull(),
    dateUpdate: integer("date_update").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.targetTeamId] }), index("connect_prefs_target").on(t.targetTeamId)],
);

/** Every change of a connect pref: who, when, the level, and the value before and after (JSON; null: not set). */
export const connectPrefsAudit = sqliteTable(
  "connect_prefs_audit",
  {
    teamId: text("team_id").notNull(),
    id: text("id").notNull(),
    targetTeamId: text("target_team_id").notNull(),
    prefKey: text("pref_key").notNull(),
    actor: text("actor").notNull(),
    at: integer("at").notNull(),
    before: text("before"),
    after: text("after"),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), index("connect_prefs_audit_at").on(t.teamId, t.at)],
);

/**
 * Slack Connect invitations (src/connect/connections.ts): an admin of
 * `from_team` asked for a connection; only the SHA-256 of its code is kept,
 * unique so a code finds one invitation whoever redeems it. `connection_id`
 * is written by the accept that redeemed it, in the same atomic unit as that
 * connection's row: the connection is inserted from it, so an accept that did
 * not win the invitation inserts nothing.
 */
export const connectInvitations = sqliteTable(
  "connect_invitations",
  {
    fromTeam: text("from_team").notNull(),
    id: text("id").notNull(),
    fromUser: text("from_user").notNull(),
    codeHash: text("code_hash").notNull(),
    status: text("status").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    answeredTeam: text("answered_team"),
    answeredUser: text("answered_user"),
    answeredAt: integer("answered_at"),
    connectionId: text("connection_id"),
  },
  (t) => [
    primaryKey({ columns: [t.fromTeam, t.id] }),
    uniqueIndex("connect_invitations_code").on(t.codeHash),
    index("connect_invitations_team_at").on(t.fromTeam, t.createdAt),
  ],
);

/**
 * Connections between two teams. `team_low`/`team_high` are the pair in
 * order and `live` is 1 while the connection stands, NULL once it ended:
 * the unique key over the three admits one live connection per unordered
 * pair (NULLs never collide) and any number of ended ones, so two accepts
 * at once cannot both connect a pair.
 */
export const connections = sqliteTable(
  "connections",
  {
    id: text("id").primaryKey(),
    inviter: text("inviter").notNull(),
    invitee: text("invitee").notNull(),
    teamLow: text("team_low").notNull(),
    teamHigh: text("team_high").notNull(),
    live: integer("live"),
    status: text("status").notNull(),
    invitationId: text("invitation_id").notNull(),
    requestedUser: text("requested_user").notNull(),
    requestedAt: integer("requested_at").notNull(),
    acceptedUser: text("accepted_user").notNull(),
    acceptedAt: integer("accepted_at").notNull(),
    disconnectedTeam: text("disconnected_team"),
    disconnectedUser: text("disconnected_user"),
    disconnectedAt: integer("disconnected_at"),
  },
  (t) => [
    uniqueIndex("connections_live_pair").on(t.teamLow, t.teamHigh, t.live),
    index("connections_inviter").on(t.inviter, t.acceptedAt, t.id),
    index("connections_invitee").on(t.invitee, t.acceptedAt, t.id),
    // A team's connections in id order (its admin search's pages from the source of truth).
    index("connections_inviter_id").on(t.inviter, t.id),
    index("connections_invitee_id").on(t.invitee, t.id),
  ],
);

/**
 * Shared-channel invitations (src/connect/shared-channels.ts): host team
 * `host_team` asks partner `guest_team`, over connection `connection_id`, to
 * join its channel `channel_id`. `live` is 1 while pending or accepted and
 * NULL after: the unique key over (host_team, channel_id, guest_team, live)
 * admits one open invitation per channel and partner. `applied` is 0 while
 * the directory does not yet reflect the status (an accepted one not yet
 * shared, an ended one not yet unshared): written in the status change's own
 * unit, so a crash between the change and the share leaves a row the cron
 * sweep finds and finishes.
 */
export const sharedChannelInvites = sqliteTable(
  "shared_channel_invites",
  {
    id: text("id").primaryKey(),
    connectionId: text("connection_id").notNull(),
    hostTeam: text("host_team").notNull(),
    guestTeam: text("guest_team").notNull(),
    channelId: text("channel_id").notNull(),
    channelName: text("channel_name").notNull(),
    status: text("status").notNull(),
    live: integer("live"),
    createdUser: text("created_user").notNull(),
    createdAt: integer("created_at").notNull(),
    answeredUser: text("answered_user"),
    answeredAt: integer("answered_at"),
    autoApproved: integer("auto_approved").notNull().default(0),
    endedTeam: text("ended_team"),
    endedUser: text("ended_user"),
    endedAt: integer("ended_at"),
    applied: integer("applied").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("shared_channel_invites_live").on(t.hostTeam, t.channelId, t.guestTeam, t.live),
    index("shared_channel_invites_host").on(t.hostTeam, t.createdAt, t.id),
    index("shared_channel_invites_guest").on(t.guestTeam, t.createdAt, t.id),
    index("shared_channel_invites_connection").on(t.connectionId, t.live),
    index("shared_channel_invites_unapplied").on(t.applied, t.updatedAt),
  ],
);

/**
 * Connections whose admin-search documents (durable-objects/connect-index/)
 * must be computed again, per team and partner (`*`: every partner, after an
 * org-level pref change). A row is written in the same atomic unit as the
 * change it stands for (a connection, a shared-channel invitation, a prefs
 * level), so a crash cannot leave a change the index never hears of; `seq`
 * counts the changes since the row was last taken, so a change that lands
 * while the index refreshes keeps the row (the drain deletes only the seq it
 * read).
 */
export const connectIndexQueue = sqliteTable(
  "connect_index_queue",
  {
    teamId: text("team_id").notNull(),
    partnerId: text("partner_id").notNull(),
    seq: integer("seq").notNull().default(1),
    queuedAt: integer("queued_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.partnerId] }), index("connect_index_queue_at").on(t.queuedAt)],
);

/** Workspaces the Slack bot is installed in (src/slackbot/store.ts). bot_token is sealed when SLACK_TOKEN_KEY is set. */
export const slackInstallations = sqliteTable("slack_installations", {
  teamId: text("team_id").primaryKey(),
  botToken: text("bot_token").notNull(),
  botUserId: text("bot_user_id").notNull(),
  appId: text("app_id").notNull(),
  installedAt: integer("installed_at").notNull(),
});

/**
 * Events the Slack bot took, by Slack's event_id: claimed (being answered),
 * replied, failed (a retry takes it again) or dead (dead-lettered). A claim
 * older than the claim lease is a crashed delivery's, taken again.
 */
export const slackEvents = sqliteTable(
  "slack_events",
  {
    eventId: text("event_id").primaryKey(),
    teamId: text("team_id").notNull(),
    state: text("state").notNull(),
    attempts: integer("attempts").notNull().default(1),
    claimedAt: integer("claimed_at").notNull(),
    finishedAt: integer("finished_at"),
    detail: text("detail"),
  },
  (t) => [index("slack_events_claimed_at").on(t.claimedAt)],
);
