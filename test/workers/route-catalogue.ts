import { SELF } from "cloudflare:test";
import { featureNames } from "../../src/recommend/features/spec";
import { createApp } from "../../workers/app";
import { FEATURES_CUT, SEEDED_ORG_PREFS, SEEDED_PARTNER_PREFS, type Slot, type Target } from "./tenant-world";

// Every HTTP route the Worker serves, with a valid request for it and the
// team-scoped things it names. The isolation suite (isolation.test.ts) aims
// each one at another team's data and at data that exists nowhere; the fuzz
// suite (fuzz.test.ts) breaks each one's input. isolation.test.ts compares
// this list with the live app's routes, so a new route cannot skip either.

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * Who a route is for, which says what another team's token must get:
 * - team: the path names a team (`:team`); only that team's admins (or an operator) get in;
 * - caller: the team is the caller's own (from the token); ids in the path, query or body
 *   are looked up in that team only;
 * - operator: platform operators only, whatever the path names;
 * - public: no token at all, and no team data;
 * - socket: the real-time WebSocket (the HTTP side is checked here, frames in isolation.test.ts);
 * - signed: authenticated by Slack's request signature or an OAuth state (the Slack app's /slack
 *   routes), not by a token: any token, or none, without a valid signature is a 401 that names nothing
 *   (the signed paths themselves: test/workers/slack-bot.test.ts).
 */
export type Access = "team" | "caller" | "operator" | "public" | "socket" | "signed";

export type Body =
  | { kind: "json"; value: unknown }
  | { kind: "ndjson"; text: string }
  | { kind: "bytes"; bytes: Uint8Array; contentType: string };

export interface RouteEntry {
  method: Method;
  /** Hono's path template, exactly as app.routes lists it. */
  path: string;
  access: Access;
  /** The Target slots a request names (what the isolation suite swaps for another team's or a ghost's). */
  names: readonly Slot[];
  params?: (t: Target) => Record<string, string>;
  query?: (t: Target) => Record<string, string>;
  body?: (t: Target) => Body;
  /**
   * The body's schema takes unknown keys and drops them (a model manifest):
   * the fuzz suite's extra-key mutations would be valid there, so it skips them.
   */
  lenientKeys?: boolean;
  /**
   * A null for a member of the body's top-level object is a valid value (a
   * prefs patch: it clears that pref): the fuzz suite puts null only deeper.
   */
  nullClears?: boolean;
  /**
   * The body is a file stored as given, under any printable name: the fuzz
   * suite's body and query cases may be valid uploads (never a 5xx still);
   * its path cases must be refused.
   */
  anyFile?: boolean;
}

const SOURCE = "channel_browser";
const json = (value: unknown): Body => ({ kind: "json", value });

/** A well-formed message id (16 digits) that no conversation has given out. */
const CATALOGUE_MESSAGE = "1000000000000000";

export const CATALOGUE: readonly RouteEntry[] = [
  { method: "GET", path: "/healthz", access: "public", names: [] },

  // --- the Slack app (workers/routes/slack-events.ts, slack-admin.ts)
  {
    method: "POST",
    path: "/slack/events",
    access: "signed",
    names: [],
    body: () => json({ type: "url_verification", challenge: "catalogue-challenge" }),
  },
  { method: "GET", path: "/slack/install", access: "public", names: [] },
  {
    method: "GET",
    path: "/slack/oauth/callback",
    access: "signed",
    names: [],
    query: () => ({ code: "good-code", state: "1.nonce.mac" }),
  },
  {
    method: "PUT",
    path: "/v1/admin/slack/installations",
    access: "operator",
    names: [],
    body: () =>
      json({ team_id: "TSLACKCAT1", bot_token: "xoxb-catalogue-0001", bot_user_id: "UBOTCAT1", app_id: "ACAT1" }),
  },
  { method: "GET", path: "/v1/admin/slack/installations", access: "operator", names: [] },
  { method: "GET", path: "/metrics", access: "operator", names: [] },
  { method: "GET", path: "/v1/rtm", access: "socket", names: [] },
  { method: "POST", path: "/v1/rtm.connect", access: "caller", names: [] },

  // --- teams and users (workers/routes/admin.ts)
  {
    method: "POST",
    path: "/v1/admin/teams",
    access: "operator",
    names: [],
    body: () => json({ name: "new team", plan: "free", claimed_domains: [] }),
  },
  {
    method: "GET",
    path: "/v1/admin/teams/:team",
    access: "team",
    names: ["team"],
    params: (t) => ({ team: t.team }),
  },
  {
    method: "PATCH",
    path: "/v1/admin/teams/:team",
    access: "team",
    names: ["team", "tag"],
    params: (t) => ({ team: t.team }),
    body: (t) => json({ name: `renamed ${t.tag}` }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/users",
    access: "team",
    names: ["team", "tag"],
    params: (t) => ({ team: t.team }),
    body: (t) => json({ email: `new@${t.tag}.test`, role: "member" }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/users/import",
    access: "team",
    names: ["team", "tag"],
    params: (t) => ({ team: t.team }),
    body: (t) => json({ users: [{ email: `imported@${t.tag}.test` }] }),
  },
  {
    method: "GET",
    path: "/v1/admin/teams/:team/users/:user",
    access: "team",
    names: ["team", "user"],
    params: (t) => ({ team: t.team, user: t.user }),
  },
  {
    method: "PATCH",
    path: "/v1/admin/teams/:team/users/:user",
    access: "team",
    names: ["team", "user"],
    params: (t) => ({ team: t.team, user: t.user }),
    // The role the user already has: a write that leaves the state as it was.
    body: () => json({ role: "member" }),
  },
  {
    method: "DELETE",
    path: "/v1/admin/teams/:team/users/:user",
    access: "team",
    names: ["team", "user"],
    params: (t) => ({ team: t.team, user: t.user }),
  },
  {
    method: "GET",
    path: "/v1/admin/teams/:team/domains",
    access: "team",
    names: ["team"],
    params: (t) => ({ team: t.team }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/heal",
    access: "team",
    names: ["team"],
    params: (t) => ({ team: t.team }),
  },

  // --- directory writes (workers/routes/directory-admin.ts)
  {
    method: "POST",
    path: "/v1/admin/teams/:team/channels/import",
    access: "team",
    names: ["team", "tag"],
    params: (t) => ({ team: t.team }),
    body: (t) => json({ channels: [{ name: `imported-${t.tag}` }] }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/memberships/import",
    access: "team",
    names: ["team", "channel", "user", "userTeam"],
    params: (t) => ({ team: t.team }),
    body: (t) => json({ memberships: [{ channel_id: t.channel, user_id: t.user, user_team_id: t.userTeam }] }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/channels",
    access: "team",
    names: ["team", "tag"],
    params: (t) => ({ team: t.team }),
    body: (t) => json({ name: `new-${t.tag}`, private: false }),
  },
  {
    method: "PATCH",
    path: "/v1/admin/teams/:team/channels/:channel",
    access: "team",
    names: ["team", "channel", "tag"],
    params: (t) => ({ team: t.team, channel: t.channel }),
    // The topic the seeded channels have: a write that leaves the state as it was.
    body: (t) => json({ topic: `topic ${t.tag}` }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/channels/:channel/members",
    access: "team",
    names: ["team", "channel", "user", "userTeam"],
    params: (t) => ({ team: t.team, channel: t.channel }),
    body: (t) => json({ user_ids: [t.user], team_id: t.userTeam }),
  },
  {
    method: "DELETE",
    path: "/v1/admin/teams/:team/channels/:channel/members/:user",
    access: "team",
    names: ["team", "channel", "user"],
    params: (t) => ({ team: t.team, channel: t.channel, user: t.user }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/channels/:channel/share",
    // mayShareAcrossTeams: operators only until two-sided connections exist.
    access: "operator",
    names: ["team", "channel"],
    params: (t) => ({ team: t.team, channel: t.channel }),
    body: () => json({ team_id: "TNOSUCHPARTNER" }),
  },
  {
    method: "PATCH",
    path: "/v1/admin/teams/:team/users/:user/profile",
    access: "team",
    names: ["team", "user", "tag"],
    params: (t) => ({ team: t.team, user: t.user }),
    // The seeded title: a write that leaves the state as it was.
    body: (t) => json({ title: t.tag }),
  },

  // --- recommendation models and experiments (workers/routes/recommend-admin.ts)
  {
    method: "GET",
    path: "/v1/admin/recommend/experiments/:source",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
  },
  {
    method: "PUT",
    path: "/v1/admin/recommend/experiments/:source",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
    body: () => json({ name: "isolation", arms: [{ name: "a", weight: 1, model: "hand_tuned" }] }),
  },
  {
    method: "DELETE",
    path: "/v1/admin/recommend/experiments/:source",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
  },
  {
    method: "GET",
    path: "/v1/admin/models/:source",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
  },
  {
    method: "PUT",
    path: "/v1/admin/models/:source/:name/:version/manifest.json",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE, name: "isolation", version: "v1" }),
    body: () =>
      json({
        name: "isolation",
        source: SOURCE,
        kind: "lr",
        version: "v1",
        features: [{ name: "f1", default: 0 }],
        input: "x",
        output: { name: "y", meaning: "score" },
        metrics: {},
        created: "2024-01-01",
      }),
    lenientKeys: true,
  },
  {
    method: "PUT",
    path: "/v1/admin/models/:source/:name/:version/model.onnx",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE, name: "isolation", version: "v1" }),
    body: () => ({ kind: "bytes", bytes: new Uint8Array([8, 1, 18, 0]), contentType: "application/octet-stream" }),
  },
  {
    method: "GET",
    path: "/v1/admin/experiments/:source/readout",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
    query: () => ({ from: "2024-01-01", to: "2024-01-07" }),
  },
  // --- the model registry (workers/routes/model-registry.ts)
  {
    method: "GET",
    path: "/v1/admin/models/:source/registry",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
  },
  {
    method: "PUT",
    path: "/v1/admin/models/:source/eval-set",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
    body: () => ({
      kind: "ndjson",
      text: `${[
        // Every feature of the source: the baselines' and the serving model's are required.
        { format: "eval-set/1", source: SOURCE, features: featureNames(SOURCE) },
        {
          cut: "2024-01-01",
          query: "q1",
          positives: 1,
          items: [1, 2],
          labels: [1, 0],
          x: [featureNames(SOURCE).map(() => 1), featureNames(SOURCE).map(() => 0)],
        },
      ]
        .map((l) => JSON.stringify(l))
        .join("\n")}\n`,
    }),
  },
  {
    method: "POST",
    path: "/v1/admin/models/:source/promote",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
    body: () => json({ model: "isolation@v1" }),
  },
  {
    method: "POST",
    path: "/v1/admin/models/:source/rollback",
    access: "operator",
    names: [],
    params: () => ({ source: SOURCE }),
  },
  // --- the retraining exports (workers/routes/rec-exports.ts)
  { method: "GET", path: "/v1/admin/exports", access: "operator", names: [] },
  {
    method: "GET",
    path: "/v1/admin/exports/:window",
    access: "operator",
    names: [],
    params: () => ({ window: "2024-01-01" }),
  },
  {
    method: "POST",
    path: "/v1/admin/exports/:window",
    access: "operator",
    names: [],
    params: () => ({ window: "2024-01-01" }),
  },
  {
    method: "GET",
    path: "/v1/admin/exports/:window/:team/:file",
    access: "operator",
    names: ["team"],
    params: (t) => ({ window: "2024-01-01", team: t.team, file: "activity.csv.gz" }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/features/import",
    access: "team",
    // Feature rows name ids, but the import looks none of them up: a team's
    // snapshot is its own, whatever it names.
    names: ["team"],
    params: (t) => ({ team: t.team }),
    query: () => ({ as_of: FEATURES_CUT, dataset: "isolation" }),
    body: () => ({
      kind: "ndjson",
      text: `${[
        { kind: "meta", key: "snapshot", data: { format: 1, dataset: "isolation", cut: 19723, dims: 0 } },
        { kind: "user", key: "UFEATURE1", data: { r: 1 } },
        { kind: "channel", key: "CFEATURE1", data: { r: 1 } },
      ]
        .map((r) => JSON.stringify(r))
        .join("\n")}\n`,
    }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/features/rebuild",
    access: "team",
    // Builds the team's own ledger in its own RecStore (named by the team); names nothing else.
    names: ["team"],
    params: (t) => ({ team: t.team }),
  },
  {
    method: "POST",
    path: "/v1/admin/teams/:team/features/history",
    access: "team",
    // Rows name ids, but the import looks none of them up: a team's history is its own.
    names: ["team"],
    params: (t) => ({ team: t.team }),
    body: () => ({
      kind: "ndjson",
      text: `${[
        { table: "activity", day: "2024-01-02", user_id: "UFEATURE1", channel_id: "CFEATURE1", commits: 2 },
        {
          table: "interactions",
          day: "2024-01-02",
          user_id: "UFEATURE1",
          other_user_id: "UFEATURE2",
          kind: "mention",
          count: 1,
        },
        { table: "hours", day: "2024-01-02", user_id: "UFEATURE1", local_hour: 9, commits: 2 },
      ]
        .map((r) => JSON.stringify(r))
        .join("\n")}\n`,
    }),
  },

  // --- the caller's own team (workers/routes/invites.ts, directory.ts, messages.ts, recommend.ts)
  {
    method: "POST",
    path: "/v1/invites/classify",
    access: "caller",
    names: ["email", "tag"],
    body: (t) => json({ emails: [t.email] }),
  },
  {
    method: "GET",
    path: "/v1/directory/switcher",
    access: "caller",
    names: ["tag"],
    query: (t) => ({ q: t.tag, limit: "20" }),
  },
  {
    method: "GET",
    path: "/v1/directory/mentions",
    access: "caller",
    names: ["channel", "tag"],
    query: (t) => ({ channel: t.channel, q: t.tag, limit: "20" }),
  },
  {
    method: "GET",
    path: "/v1/directory/channels/:channel",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ channel: t.channel }),
  },
  {
    method: "GET",
    path: "/v1/directory/channels/:channel/members",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ channel: t.channel }),
    query: () => ({ limit: "100" }),
  },
  {
    method: "GET",
    path: "/v1/directory/people",
    access: "caller",
    names: ["tag"],
    query: (t) => ({ q: t.tag, deactivated: "include", limit: "100" }),
  },
  {
    method: "POST",
    path: "/v1/directory/lookup",
    access: "caller",
    names: ["user", "channel", "privateChannel"],
    body: (t) => json({ users: [t.user], channels: [t.channel, t.privateChannel] }),
  },
  // Focused on a channel (the boot's one query naming a team's thing); plain and `since` boots name nothing.
  {
    method: "GET",
    path: "/v1/directory/boot",
    access: "caller",
    names: ["channel"],
    query: (t) => ({ focus: t.channel, focus_limit: "5" }),
  },
  // --- DMs and group DMs (workers/routes/conversations.ts)
  {
    method: "POST",
    path: "/v1/conversations",
    access: "caller",
    names: ["user"],
    body: (t) => json({ users: [t.user] }),
  },
  {
    method: "GET",
    path: "/v1/conversations",
    access: "caller",
    names: [],
    query: () => ({ types: "im,mpim,channel", limit: "100" }),
  },
  {
    method: "DELETE",
    path: "/v1/conversations/:conversation/members/me",
    access: "caller",
    names: ["groupDm"],
    params: (t) => ({ conversation: t.groupDm }),
  },
  {
    method: "POST",
    path: "/v1/channels/:channel/messages",
    access: "caller",
    names: ["channel", "user"],
    params: (t) => ({ channel: t.channel }),
    body: (t) => json({ text: "hello", mentions: [t.user] }),
  },
  {
    method: "POST",
    path: "/v1/channels/:channel/files",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ channel: t.channel }),
    query: () => ({ name: "notes.txt" }),
    body: () => ({ kind: "bytes", bytes: new TextEncoder().encode("hello, file"), contentType: "text/plain" }),
    anyFile: true,
  },
  // --- messages kept per conversation (workers/routes/conversation-messages.ts); the
  // message is one that exists nowhere: in another team's conversation, or a ghost's,
  // every request is a 404 whatever it names.
  {
    method: "POST",
    path: "/v1/conversations/:conversation/messages",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ conversation: t.channel }),
    body: () => json({ text: "hello", mentions: [] }),
  },
  {
    method: "PATCH",
    path: "/v1/conversations/:conversation/messages/:message",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ conversation: t.channel, message: CATALOGUE_MESSAGE }),
    body: () => json({ text: "edited" }),
  },
  {
    method: "DELETE",
    path: "/v1/conversations/:conversation/messages/:message",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ conversation: t.channel, message: CATALOGUE_MESSAGE }),
  },
  {
    method: "POST",
    path: "/v1/conversations/:conversation/messages/:message/reactions/:name",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ conversation: t.channel, message: CATALOGUE_MESSAGE, name: "eyes" }),
  },
  {
    method: "DELETE",
    path: "/v1/conversations/:conversation/messages/:message/reactions/:name",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ conversation: t.channel, message: CATALOGUE_MESSAGE, name: "eyes" }),
  },
  {
    method: "GET",
    path: "/v1/conversations/:conversation/history",
    access: "caller",
    names: ["channel"],
    params: (t) => ({ conversation: t.channel }),
    query: () => ({ limit: "20" }),
  },
  {
    method: "GET",
    path: "/v1/admin/teams/:team/history",
    access: "team",
    names: ["team"],
    params: (t) => ({ team: t.team }),
  },
  {
    method: "PUT",
    path: "/v1/admin/teams/:team/history",
    access: "team",
    names: ["team"],
    params: (t) => ({ team: t.team }),
    body: () => json({ max_messages: 1000, max_age_days: 90 }),
  },
  {
    method: "GET",
    path: "/v1/channels/:channel/files/:file",
    access: "caller",
    names: ["channel", "file"],
    params: (t) => ({ channel: t.channel, file: t.file }),
  },
  {
    method: "POST",
    path: "/v1/recommend",
    access: "caller",
    names: ["user", "channel"],
    body: (t) => json({ source: "invite", limit: 5, context: { user: t.user, channels: [t.channel] } }),
  },
  {
    method: "POST",
    path: "/v1/recommend/feedback",
    access: "caller",
    names: ["requestId", "channel"],
    body: (t) => json({ request_id: t.requestId, events: [{ item: t.channel, action: "click" }] }),
  },

  // --- Slack Connect (workers/routes/connect.ts): the caller's own team, its admins only
  {
    method: "POST",
    path: "/v1/connect/invitations",
    access: "caller",
    names: [],
    body: () => json({}),
  },
  { method: "GET", path: "/v1/connect/invitations", access: "caller", names: [], query: () => ({ limit: "50" }) },
  {
    method: "DELETE",
    path: "/v1/connect/invitations/:invitation",
    access: "caller",
    names: ["invitation"],
    params: (t) => ({ invitation: t.invitation }),
  },
  {
    method: "POST",
    path: "/v1/connect/invitations/answer",
    access: "caller",
    // A code that was redeemed already: whoever holds it, it connects nothing (a live code is
    // the other team's consent to be found, not data to isolate).
    names: ["code"],
    body: (t) => json({ code: t.code, decision: "accept" }),
  },
  { method: "GET", path: "/v1/connect/connections", access: "caller", names: [], query: () => ({ limit: "50" }) },
  {
    method: "DELETE",
    path: "/v1/connect/connections/:connection",
    access: "caller",
    names: ["connection"],
    params: (t) => ({ connection: t.connection }),
  },

  // --- Slack Connect prefs (workers/routes/connect-prefs.ts): the caller's own team, its admins only
  { method: "GET", path: "/v1/connect/prefs/org", access: "caller", names: [] },
  {
    method: "PATCH",
    path: "/v1/connect/prefs/org",
    access: "caller",
    names: [],
    // What every seeded team set already: a write that leaves the state as it was.
    body: () => json(SEEDED_ORG_PREFS),
    nullClears: true,
  },
  {
    method: "GET",
    path: "/v1/connect/prefs/partners/:partner",
    access: "caller",
    names: ["partner"],
    params: (t) => ({ partner: t.partner }),
  },
  {
    method: "PATCH",
    path: "/v1/connect/prefs/partners/:partner",
    access: "caller",
    names: ["partner"],
    params: (t) => ({ partner: t.partner }),
    // What every seeded team set already for its partner: a write that leaves the state as it was.
    body: () => json(SEEDED_PARTNER_PREFS),
    nullClears: true,
  },
  { method: "GET", path: "/v1/connect/prefs/audit", access: "caller", names: [], query: () => ({ limit: "50" }) },

  // --- Admin search over the team's connections (workers/routes/connect-search.ts): its admins only
  {
    method: "GET",
    path: "/v1/admin/connections",
    access: "caller",
    names: [],
    query: () => ({ q: "partner", sort: "name", limit: "50" }),
  },
  { method: "POST", path: "/v1/admin/connections/rebuild", access: "caller", names: [] },

  // --- Shared channels over connections (workers/routes/connect-channels.ts): the caller's own team
  {
    method: "POST",
    path: "/v1/connect/shared-channels",
    access: "caller",
    // The seeded team's general channel already has an open invitation to its partner:
    // the valid request answers 409 naming it, and changes nothing.
    names: ["connection", "channel"],
    body: (t) => json({ connection: t.connection, channel: t.channel }),
  },
  { method: "GET", path: "/v1/connect/shared-channels", access: "caller", names: [], query: () => ({ limit: "50" }) },
  {
    method: "POST",
    path: "/v1/connect/shared-channels/:id/answer",
    access: "caller",
    // The team hosts its invitation: only the partner may answer it (404 for the host, as for any other id).
    names: ["sharedChannel"],
    params: (t) => ({ id: t.sharedChannel }),
    body: () => json({ decision: "decline" }),
  },
  {
    method: "DELETE",
    path: "/v1/connect/shared-channels/:id",
    access: "caller",
    names: ["sharedChannel"],
    params: (t) => ({ id: t.sharedChannel }),
  },
  {
    method: "POST",
    path: "/v1/connect/shared-channels/:id/members",
    access: "caller",
    // The partner's people join; the host naming its own invitation gets 404, as for any other id.
    names: ["sharedChannel", "user"],
    params: (t) => ({ id: t.sharedChannel }),
    body: (t) => json({ user_ids: [t.user] }),
  },
  {
    method: "DELETE",
    path: "/v1/connect/shared-channels/:id/members/:user",
    access: "caller",
    names: ["sharedChannel", "user"],
    params: (t) => ({ id: t.sharedChannel, user: t.user }),
  },

  // --- the API's own description (workers/app.ts): public, names routes and never data
  { method: "GET", path: "/openapi.json", access: "public", names: [] },
  { method: "GET", path: "/docs", access: "public", names: [] },
];

export const routeKey = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

/** The routes the live app answers (method and path); `app.use` middleware (method ALL) left out. */
export function servedRoutes(): Set<string> {
  return new Set(
    createApp()
      .routes.filter((r) => r.method !== "ALL")
      .map(routeKey),
  );
}

/** The concrete request of a route: its template filled (each value URI-encoded), its query, its body. */
export interface Req {
  method: Method;
  path: string;
  body?: Body;
  headers?: Record<string, string>;
}

export function fillPath(template: string, params: Record<string, string>): string {
  return template.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`no value for :${name} in ${template}`);
    return encodeURIComponent(value);
  });
}

export function queryString(query: Record<string, string> | Array<[string, string]>): string {
  const text = new URLSearchParams(query).toString();
  return text ? `?${text}` : "";
}

export function requestOf(route: RouteEntry, t: Target): Req {
  const path = fillPath(route.path, route.params?.(t) ?? {}) + queryString(route.query?.(t) ?? {});
  const body = route.body?.(t);
  return body ? { method: route.method, path, body } : { method: route.method, path };
}

export interface Answer {
  status: number;
  contentType: string;
  text: string;
  /** The parsed body when it is JSON. */
  json: unknown;
}

/** Sends a request to the Worker as `tokenText` (none for public routes); any answer, JSON or not. */
export async function send(req: Req, tokenText?: string): Promise<Answer> {
  const headers: Record<string, string> = { ...req.headers };
  if (tokenText) headers.authorization = `Bearer ${tokenText}`;
  let body: BodyInit | undefined;
  if (req.body?.kind === "json") {
    body = JSON.stringify(req.body.value);
    headers["content-type"] ??= "application/json";
  } else if (req.body?.kind === "ndjson") {
    body = req.body.text;
    headers["content-type"] ??= "application/x-ndjson";
  } else if (req.body?.kind === "bytes") {
    body = req.body.bytes;
    headers["content-type"] ??= req.body.contentType;
  }
  // A redirect (GET /slack/install, to Slack) is the answer itself, not followed.
  const res = await SELF.fetch(`https://edge.test${req.path}`, {
    method: req.method,
    headers,
    body,
    redirect: "manual",
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", text, json: parsed };
}
