import { env, SELF } from "cloudflare:test";
import { expect } from "vitest";
import { driverFor } from "../../platform/deps";
import { type CollabDataset, dayOf } from "../../src/datasets/collab";
import { buildSnapshot, snapshotToRows } from "../../src/recommend/features/index";
import { featureStore } from "../../storage/feature-store";
import { uniqueTeamId } from "../contract/fixtures";
import { api, eventually, ok, platformToken, token } from "./client";

// Teams seeded with the same shapes for the tenant-isolation and fuzz suites
// (isolation.test.ts, fuzz.test.ts): users of every role, public and private
// channels, a channel and a user whose ids the other team uses too, a channel
// shared with a partner team, a feature snapshot, a served recommendation, a
// Slack Connect connection to the partner (plus a pending invitation), and
// connect prefs set at the org level and at the partner's.
// Every name, address and domain of a team carries its `tag`, so any of its
// data in another team's answer is found by searching for the tag and ids.

/** Random [a-z0-9] of length n: ids and tags that no other run or file uses. */
function randomWord(n: number): string {
  let out = "";
  while (out.length < n) out += Math.random().toString(36).slice(2);
  return out.slice(0, n);
}

/** The things a request can name: one team's, or ids that exist nowhere (ghostTarget). */
export interface Target {
  team: string;
  /** A public channel every member is in. */
  channel: string;
  /** A private channel (owner, admin and one member in it). */
  privateChannel: string;
  /** A member (not the caller). */
  user: string;
  /** The team of `user`, as bodies name it (`team_id`, `user_team_id`): the team's own, unless a test says otherwise. */
  userTeam: string;
  /** That member's address. */
  email: string;
  /** A word in every name of the team: a search term that finds its people and channels. */
  tag: string;
  /** A recommendation served to the team's member. */
  requestId: string;
  /** A pending Slack Connect invitation of the team. */
  invitation: string;
  /** The team's live connection (to its partner team). */
  connection: string;
  /** The code of the team's invitation its partner redeemed: it redeems nothing any more, for anyone. */
  code: string;
  /** The team's connected partner (a team id): the one partner its prefs routes may name. */
  partner: string;
  /** A pending shared-channel invitation of the team's general channel to its partner. */
  sharedChannel: string;
  /** A file a member posted to the general channel. */
  file: string;
  /** A group DM of the member, the admin and the owner (POST /v1/conversations). */
  groupDm: string;
}

export type Slot = keyof Target;
export const SLOTS: readonly Slot[] = [
  "team",
  "channel",
  "privateChannel",
  "user",
  "userTeam",
  "email",
  "tag",
  "requestId",
  "invitation",
  "connection",
  "code",
  "partner",
  "sharedChannel",
  "file",
  "groupDm",
];

export type Role = "owner" | "admin" | "member" | "guest";

export interface Team {
  id: string;
  tag: string;
  domain: string;
  /** Users by role, plus `other` (a second member, in the private channel) and `same` (an id both teams use). */
  users: Record<Role | "other" | "same", string>;
  channels: { general: string; private: string; same: string; samePrivate: string };
  /** The team `channels.same` is shared with, and its user in that channel. */
  partner: string;
  partnerUser: string;
  /** The partner's admin, who accepted the team's invitation: the team and its partner are connected. */
  partnerAdmin: string;
  emails: Record<string, string>;
  tokens: Record<Role, string>;
  requestId: string;
  /** The team's feature snapshot, NDJSON as the features import takes it. */
  features: string;
  target: Target;
}

/** Ids used by both teams of a world (and nowhere else). */
export interface Shared {
  user: string;
  channel: string;
  privateChannel: string;
}

export const FEATURES_CUT = "2024-01-01";

/**
 * The connect prefs every seeded team sets, at the org level and at its
 * partner's level. The catalogue's PATCH bodies are these: writes that leave
 * the state as it was.
 */
export const SEEDED_ORG_PREFS = {
  channel_creation: { who: "members" },
  file_uploads: { allowed: true, max_bytes: 1_048_576, blocked_types: ["application/x-msdownload", ".exe"] },
};
export const SEEDED_PARTNER_PREFS = {
  channel_creation: { who: "nobody" },
  auto_approval: { mode: "listed", users: ["UPARTNERLEAD"] },
};

export function newShared(): Shared {
  const word = randomWord(6).toUpperCase();
  return { user: `USAME${word}`, channel: `CSAME${word}`, privateChannel: `CSAMEP${word}` };
}

/**
 * A team whose every name carries `label` + a random word. Setup goes through
 * the operator (no user of its own in the team), as a real platform would.
 */
export async function seedTeam(label: string, shared: Shared): Promise<Team> {
  const operator = await platformToken();
  const id = uniqueTeamId("T");
  const sfx = randomWord(6).toUpperCase();
  const tag = `${label}${randomWord(6)}`;
  const domain = `${tag}.test`;
  await ok(
    api("POST", "/v1/admin/teams", {
      token: operator,
      json: { id, name: `Team ${tag}`, plan: "pro", claimed_domains: [domain] },
    }),
    201,
  );
  const users = {
    owner: `UOWN${sfx}`,
    admin: `UADM${sfx}`,
    member: `UMEM${sfx}`,
    guest: `UGST${sfx}`,
    other: `UOTH${sfx}`,
    same: shared.user,
  };
  const roleOf = { owner: "owner", admin: "admin", member: "member", guest: "guest", other: "member", same: "member" };
  const base = `/v1/admin/teams/${id}`;
  const emails: Record<string, string> = {};
  for (const [key, userId] of Object.entries(users) as Array<[keyof typeof users, string]>) {
    // The guest comes from outside the claimed domain, as guests do; still tagged.
    const email = key === "guest" ? `guest@outside-${tag}.test` : `${key}@${domain}`;
    emails[userId] = email;
    await ok(api("POST", `${base}/users`, { token: operator, json: { id: userId, email, role: roleOf[key] } }), 201);
    await ok(
      api("PATCH", `${base}/users/${userId}/profile`, {
        token: operator,
        json: { name: `${key}-${tag}`, real_name: `${key} ${tag}`, display_name: `${key}.${tag}`, title: tag },
      }),
    );
  }
  const channels = {
    general: `CGEN${sfx}`,
    private: `CPRV${sfx}`,
    same: shared.channel,
    samePrivate: shared.privateChannel,
  };
  const spec: Array<[keyof typeof channels, boolean, Array<keyof typeof users>]> = [
    ["general", false, ["owner", "admin", "member", "guest", "other", "same"]],
    ["private", true, ["owner", "admin", "other"]],
    ["same", false, ["owner", "admin", "member", "same"]],
    ["samePrivate", true, ["owner", "admin", "same"]],
  ];
  for (const [key, isPrivate] of spec) {
    await ok(
      api("POST", `${base}/channels`, {
        token: operator,
        json: { id: channels[key], name: `${key.toLowerCase()}-${tag}`, topic: `topic ${tag}`, private: isPrivate },
      }),
      201,
    );
  }
  const memberships = spec.flatMap(([key, , members]) =>
    members.map((m) => ({ channel_id: channels[key], user_id: users[m] })),
  );
  await ok(api("POST", `${base}/memberships/import`, { token: operator, json: { memberships } }), 201);

  // The shared channel: shared with a partner team of its own (a team sees one
  // channel per id, so the two teams' same-id channels cannot share one
  // partner), with one partner user in it.
  const partner = uniqueTeamId("TPART");
  await ok(api("POST", "/v1/admin/teams", { token: operator, json: { id: partner, name: `Partner ${tag}` } }), 201);
  const partnerUser = `UPRT${sfx}`;
  await ok(
    api("POST", `/v1/admin/teams/${partner}/users`, {
      token: operator,
      json: { id: partnerUser, email: `partner@partner-${tag}.test`, role: "member" },
    }),
    201,
  );
  await ok(
    api("PATCH", `/v1/admin/teams/${partner}/users/${partnerUser}/profile`, {
      token: operator,
      json: { name: `partner-${tag}`, real_name: `partner ${tag}` },
    }),
  );
  await ok(api("POST", `${base}/channels/${channels.same}/share`, { token: operator, json: { team_id: partner } }));
  await ok(
    api("POST", `${base}/channels/${channels.same}/members`, {
      token: operator,
      json: { user_ids: [partnerUser], team_id: partner },
    }),
  );

  const features = featureRows(users, channels);
  await importFeatures(id, operator, features);

  const tokens = {
    owner: await token(id, users.owner),
    admin: await token(id, users.admin),
    member: await token(id, users.member),
    guest: await token(id, users.guest),
  };
  const served = await ok<{ request_id: string }>(
    api("POST", "/v1/recommend", { token: tokens.member, json: { source: "channel_browser", limit: 5 } }),
  );

  // Slack Connect: the team invited its partner, whose admin accepted (a live
  // connection, and a code that redeems nothing any more), and has a second
  // invitation pending.
  const partnerAdmin = `UPAD${sfx}`;
  await ok(
    api("POST", `/v1/admin/teams/${partner}/users`, {
      token: operator,
      json: { id: partnerAdmin, email: `padmin@partner-${tag}.test`, role: "admin" },
    }),
    201,
  );
  const invite = () =>
    ok<{ invitation: { id: string; code: string } }>(
      api("POST", "/v1/connect/invitations", { token: tokens.admin, json: {} }),
      201,
    );
  const redeemed = await invite();
  const connected = await ok<{ connection: { id: string } }>(
    api("POST", "/v1/connect/invitations/answer", {
      token: await token(partner, partnerAdmin),
      json: { code: redeemed.invitation.code, decision: "accept" },
    }),
    201,
  );
  const pending = await invite();
  // Before the prefs below, which let nobody share channels with the partner.
  const invitedChannel = await ok<{ shared_channel: { id: string } }>(
    api("POST", "/v1/connect/shared-channels", {
      token: tokens.admin,
      json: { connection: connected.connection.id, channel: channels.general },
    }),
    201,
  );
  const posted = await ok<{ file: { id: string } }>(
    api("POST", `/v1/channels/${channels.general}/files?name=${encodeURIComponent(`notes ${tag}.txt`)}`, {
      token: tokens.member,
      body: `the notes of ${tag}`,
      contentType: "text/plain",
    }),
    201,
  );
  const groupDm = await ok<{ conversation: { id: string } }>(
    api("POST", "/v1/conversations", { token: tokens.member, json: { users: [users.admin, users.owner] } }),
    201,
  );
  await ok(api("PATCH", "/v1/connect/prefs/org", { token: tokens.admin, json: SEEDED_ORG_PREFS }));
  await ok(api("PATCH", `/v1/connect/prefs/partners/${partner}`, { token: tokens.admin, json: SEEDED_PARTNER_PREFS }));
  const team: Team = {
    id,
    tag,
    domain,
    users,
    channels,
    partner,
    partnerUser,
    partnerAdmin,
    emails,
    tokens,
    requestId: served.request_id,
    features,
    target: {
      team: id,
      channel: channels.general,
      privateChannel: channels.private,
      user: users.member,
      userTeam: id,
      email: emails[users.member] as string,
      tag,
      requestId: served.request_id,
      invitation: pending.invitation.id,
      connection: connected.connection.id,
      code: redeemed.invitation.code,
      partner,
      sharedChannel: invitedChannel.shared_channel.id,
      file: posted.file.id,
      groupDm: groupDm.conversation.id,
    },
  };
  await settled(team);
  return team;
}

/** Ids no team has: the answer for them is what another team's ids must get. */
export function ghostTarget(): Target {
  const w = randomWord(8).toUpperCase();
  const tag = `ghost${randomWord(6)}`;
  return {
    team: `TGHOST${w}`,
    userTeam: `TGHOST${w}`,
    channel: `CGHOST${w}`,
    privateChannel: `CGHOSTP${w}`,
    user: `UGHOST${w}`,
    email: `member@${tag}.test`,
    tag,
    requestId: crypto.randomUUID(),
    invitation: `IGHOST${w}`,
    connection: `KGHOST${w}`,
    code: [...crypto.getRandomValues(new Uint8Array(20))].map((b) => b.toString(16).padStart(2, "0")).join(""),
    partner: `TGHOSTPART${w}`,
    sharedChannel: `HGHOST${w}`,
    file: `FGHOST${w}`,
    groupDm: `GGHOST${w}`,
  };
}

async function importFeatures(team: string, tokenText: string, ndjson: string): Promise<void> {
  const res = await SELF.fetch(
    `https://edge.test/v1/admin/teams/${team}/features/import?as_of=${FEATURES_CUT}&dataset=isolation`,
    {
      method: "POST",
      headers: { authorization: `Bearer ${tokenText}`, "content-type": "application/x-ndjson" },
      body: ndjson,
    },
  );
  expect(res.status, await res.clone().text()).toBe(201);
  await res.body?.cancel();
}

/** A small activity history over the team's own ids, as the offline pipeline would export it. */
function featureRows(users: Record<string, string>, channels: Record<string, string>): string {
  const userIds = Object.values(users);
  const channelIds = Object.values(channels);
  const T = dayOf(FEATURES_CUT);
  const activity: CollabDataset["activity"] = [];
  const hours: CollabDataset["hours"] = [];
  const interactions: CollabDataset["interactions"] = [];
  for (let u = 1; u <= userIds.length; u++) {
    for (let k = 0; k < 3; k++) {
      const channel = 1 + ((u + k) % channelIds.length);
      activity.push({ day: T - 5 - u * 3 - k, user: u, channel, commits: 1 + k, files: 1 });
      hours.push({ day: T - 5 - u * 3 - k, user: u, hour: (u * 5) % 24, commits: 1 });
    }
    if (u < userIds.length) interactions.push({ day: T - 9, user: u, other: u + 1, kind: "merged_pr", count: 1 });
  }
  const ds: CollabDataset = {
    name: "isolation",
    channels: channelIds.map((_, i) => ({ channel: i + 1, name: `c${i + 1}`, firstDay: T - 100 })),
    activity,
    interactions,
    hours,
  };
  const vec = (i: number) => [Math.cos(i), Math.sin(i)];
  const embeddings = {
    dims: 2,
    users: Object.fromEntries(userIds.map((_, i) => [String(i + 1), vec(i + 1)])),
    channels: Object.fromEntries(channelIds.map((_, i) => [String(i + 1), vec(i * 2)])),
  };
  const ids = {
    user: (n: number) => userIds[n - 1] ?? `U${n}`,
    channel: (n: number) => channelIds[n - 1] ?? `C${n}`,
  };
  const rows = snapshotToRows(buildSnapshot(ds, T, embeddings, ids));
  return `${rows.map((r) => JSON.stringify({ kind: r.kind, key: r.key, data: JSON.parse(r.data) })).join("\n")}\n`;
}

/** Domain counts are kept by a queue consumer: wait until they count every seeded user. */
async function settled(team: Team): Promise<void> {
  const expected = Object.keys(team.users).length;
  await eventually(
    () =>
      api<{ counts: Array<{ domain: string; count: number }> }>("GET", `/v1/admin/teams/${team.id}/domains`, {
        token: team.tokens.admin,
      }),
    (res) => res.body.counts.filter((c) => c.domain === "*").reduce((n, c) => n + c.count, 0) === expected,
  );
}

/**
 * A team's state as its own admin reads it back through the API (team,
 * users, profiles, channels, member lists, domain counts, the directory's
 * change-log version, its connect invitations and connections, its connect
 * prefs at both levels and their audit), plus its published feature snapshot:
 * before and after another team's requests, these must be equal.
 */
export async function stateOf(team: Team): Promise<Record<string, unknown>> {
  const t = team.tokens.admin;
  const read = async (path: string) => {
    const res = await api("GET", path, { token: t });
    return { status: res.status, body: res.body };
  };
  const base = `/v1/admin/teams/${team.id}`;
  const userIds = Object.values(team.users);
  const channelIds = Object.values(team.channels);
  // One read per part of the state, all at once; the answer keyed as the reads are.
  const reads: Record<string, Promise<unknown>> = {
    info: read(base),
    domains: read(`${base}/domains`),
    boot: read("/v1/directory/boot"),
    people: read("/v1/directory/people?deactivated=include&limit=100"),
    users: Promise.all(userIds.map((u) => read(`${base}/users/${u}`))),
    channels: Promise.all(channelIds.map((c) => read(`/v1/directory/channels/${c}`))),
    members: Promise.all(channelIds.map((c) => read(`/v1/directory/channels/${c}/members?limit=100`))),
    // The Worker's own bindings (STORAGE, DB, DATABASE_URL): typed as Cloudflare.Env, which lacks the secrets.
    features: featureStore(driverFor(env as unknown as Env)).current(team.id),
    invitations: read("/v1/connect/invitations?limit=200"),
    connections: read("/v1/connect/connections?limit=200"),
    orgPrefs: read("/v1/connect/prefs/org"),
    partnerPrefs: read(`/v1/connect/prefs/partners/${team.partner}`),
    prefsAudit: read("/v1/connect/prefs/audit?limit=200"),
    sharedChannels: read("/v1/connect/shared-channels?limit=200"),
    file: SELF.fetch(`https://edge.test/v1/channels/${team.channels.general}/files/${team.target.file}`, {
      headers: { authorization: `Bearer ${t}` },
    }).then(async (res) => ({ status: res.status, type: res.headers.get("content-type"), text: await res.text() })),
  };
  const entries = await Promise.all(Object.entries(reads).map(async ([key, value]) => [key, await value] as const));
  return Object.fromEntries(entries);
}

/**
 * Everything of `team` that must never reach another team: its ids (but
 * those both teams use), its tag (in every name, address and domain), its
 * partner's users, its served request id, and its invitations, connection and code.
 */
export function markersOf(team: Team): string[] {
  const shared = new Set([team.users.same, team.channels.same, team.channels.samePrivate]);
  return [
    team.id,
    team.tag,
    team.partner,
    team.partnerUser,
    team.partnerAdmin,
    team.requestId,
    team.target.invitation,
    team.target.connection,
    team.target.code,
    team.target.sharedChannel,
    team.target.file,
    team.target.groupDm,
    ...Object.values(team.users),
    ...Object.values(team.channels),
  ].filter((m) => !shared.has(m));
}

/** The markers of `team` found in `text` (case-insensitive: tags are lower-cased in handles and domains). */
export function leaks(text: string, markers: readonly string[]): string[] {
  const lower = text.toLowerCase();
  return markers.filter((m) => lower.includes(m.toLowerCase()));
}
