import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { featureEventSender } from "../../platform/live-features-deps";
import { mayAdminister, mayShareAcrossTeams } from "../../src/auth/policy";
import {
  addMembers,
  createChannel,
  importChannels,
  importMemberships,
  removeMember,
  shareChannel,
  updateChannel,
  updateProfile,
} from "../../src/directory/admin";
import { adminChannel, adminProfile } from "../../src/directory/cards";
import {
  CHANNEL_TEXT_MAX,
  type MembershipInput,
  type NewChannel,
  newChannelId,
  normalizeChannelName,
  PROFILE_MAX,
  type ProfilePatch,
} from "../../src/directory/writer";
import { membershipAddEvents, publishFeatureEvents } from "../../src/recommend/live-features";
import { authorize } from "../auth";
import { type AppContext, idempotencyOf } from "../http";
import { issuesOf, readImport } from "../import-body";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, routes } from "../openapi";

// Admin API over the directory (channels, memberships, profiles): the source
// of truth the edge caches load from. Each handler parses, authorizes and
// calls one use case of src/directory/admin.ts, which commits the write and
// publishes its events to the team caches.

/** Same rule as the team and user ids of admin.ts. */
const ID = z
  .string()
  .regex(/^[A-Z0-9][A-Za-z0-9_-]{0,39}$/, "ids are 1-40 of A-Z a-z 0-9 _ - starting upper-case or digit");
const CHANNEL_NAME = z.string().transform((n, ctx) => {
  const name = normalizeChannelName(n);
  if (name === null) {
    ctx.addIssue({ code: "custom", message: "channel names are 1-80 of a-z 0-9 _ - (upper case is lowered)" });
    return z.NEVER;
  }
  return name;
});
const TEXT = z.string().trim().max(CHANNEL_TEXT_MAX);
const HANDLE = z
  .string()
  .transform((h) => h.trim().toLowerCase())
  .pipe(z.string().regex(/^[a-z0-9._-]{1,80}$/, "handles are 1-80 of a-z 0-9 . _ -"));
const TZ = z.string().max(PROFILE_MAX.tz).refine(isTimeZone, "not an IANA time zone");

const NewChannelBody = z.strictObject({
  id: ID.optional(),
  name: CHANNEL_NAME,
  topic: TEXT.default(""),
  purpose: TEXT.default(""),
  private: z.boolean().default(false),
});

const ChannelChange = z
  .strictObject({
    name: CHANNEL_NAME.optional(),
    topic: TEXT.optional(),
    purpose: TEXT.optional(),
    archived: z.boolean().optional(),
    private: z.boolean().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, "nothing to change");

/** Members per call; bigger changes are a memberships import. */
export const MEMBERS_MAX = 1000;

const MembersBody = z.strictObject({
  user_ids: z.array(ID).min(1).max(MEMBERS_MAX),
  /** The users' team: a team the channel is shared with; the channel's own team when absent. */
  team_id: ID.optional(),
});

const ShareBody = z.strictObject({ team_id: ID });

const ProfileChange = z
  .strictObject({
    name: HANDLE.optional(),
    real_name: z.string().trim().max(PROFILE_MAX.realName).optional(),
    display_name: z.string().trim().max(PROFILE_MAX.displayName).optional(),
    title: z.string().trim().max(PROFILE_MAX.title).optional(),
    avatar_hash: z
      .string()
      .regex(/^[A-Za-z0-9]{0,64}$/, "avatar hashes are 0-64 letters and digits")
      .optional(),
    tz: TZ.optional(),
    is_bot: z.boolean().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, "nothing to change");

const MembershipLine = z.strictObject({ channel_id: ID, user_id: ID, user_team_id: ID.optional() });

/**
 * Records per import request (bodies of /import routes may be up to 64 MB;
 * bigger imports are several requests).
 */
export const IMPORT_MAX_CHANNELS = 10_000;
export const IMPORT_MAX_MEMBERSHIPS = 50_000;

const tags = ["directory admin"];
const admins = "The team's active owners and admins, or an operator.";
const TeamParams = z.object({ team: pathId });
const ChannelParams = z.object({ team: pathId, channel: pathId });
const idempotencyKey = z.object({
  "idempotency-key": z
    .string()
    .optional()
    .meta({ description: "a retry with the same key answers the first answer (Idempotent-Replayed: true)" }),
});
const Channel = loose({ id: z.string(), team_id: z.string(), name: z.string(), shared_with: z.array(z.string()) });
const ChannelAnswer = z.object({ channel: Channel });
/** NDJSON (one record a line, streamed) or JSON `{ <key>: [...] }`: workers/import-body.ts. */
function importBody<S extends z.ZodType>(key: string, record: S) {
  return {
    required: true,
    description: `NDJSON, one record a line (streamed), or JSON \`{ ${key}: [...] }\`; validated whole before anything is written`,
    content: {
      "application/x-ndjson": { schema: { type: "string", description: "one record a line" } },
      "application/json": { schema: z.strictObject({ [key]: z.array(record).min(1) }) },
    },
  } as const;
}

const channelImport = createRoute({
  method: "post",
  path: "/teams/{team}/channels/import",
  tags,
  summary: `Import up to ${IMPORT_MAX_CHANNELS} channels`,
  description: admins,
  security: bearer,
  request: { params: TeamParams, headers: idempotencyKey, body: importBody("channels", NewChannelBody) },
  responses: { 201: json(loose({}), "how many were imported"), ...errors },
});
const membershipImport = createRoute({
  method: "post",
  path: "/teams/{team}/memberships/import",
  tags,
  summary: `Import up to ${IMPORT_MAX_MEMBERSHIPS} memberships`,
  description: `${admins} Another team's users (user_team_id): operators only.`,
  security: bearer,
  request: { params: TeamParams, headers: idempotencyKey, body: importBody("memberships", MembershipLine) },
  responses: { 201: json(loose({}), "how many were imported"), ...errors },
});
const newChannel = createRoute({
  method: "post",
  path: "/teams/{team}/channels",
  tags,
  summary: "Create a channel",
  description: admins,
  security: bearer,
  request: { params: TeamParams, body: jsonRequest(NewChannelBody) },
  responses: { 201: json(ChannelAnswer, "the channel"), ...errors },
});
const changeChannel = createRoute({
  method: "patch",
  path: "/teams/{team}/channels/{channel}",
  tags,
  summary: "Rename, describe, archive or make private a channel",
  description: admins,
  security: bearer,
  request: { params: ChannelParams, body: jsonRequest(ChannelChange) },
  responses: { 200: json(ChannelAnswer, "the channel"), ...errors },
});
const addMembersRoute = createRoute({
  method: "post",
  path: "/teams/{team}/channels/{channel}/members",
  tags,
  summary: `Add up to ${MEMBERS_MAX} users to a channel`,
  description: `${admins} Another team's users (team_id): operators only.`,
  security: bearer,
  request: { params: ChannelParams, body: jsonRequest(MembersBody) },
  responses: {
    200: json(z.object({ added: z.array(z.string()), unchanged: z.number() }), "who was added"),
    ...errors,
  },
});
const removeMemberRoute = createRoute({
  method: "delete",
  path: "/teams/{team}/channels/{channel}/members/{user}",
  tags,
  summary: "Take a user out of a channel",
  description: admins,
  security: bearer,
  request: { params: z.object({ team: pathId, channel: pathId, user: pathId }) },
  responses: { 200: json(z.object({ removed: z.boolean() }), "whether the user was a member"), ...errors },
});
const share = createRoute({
  method: "post",
  path: "/teams/{team}/channels/{channel}/share",
  tags,
  summary: "Share a channel with another team",
  description: "Platform operators only (teams share through Slack Connect: /v1/connect/shared-channels).",
  security: bearer,
  request: { params: ChannelParams, body: jsonRequest(ShareBody) },
  responses: { 200: json(ChannelAnswer, "the channel"), ...errors },
});
const changeProfile = createRoute({
  method: "patch",
  path: "/teams/{team}/users/{user}/profile",
  tags,
  summary: "Change a user's profile",
  description: admins,
  security: bearer,
  request: { params: z.object({ team: pathId, user: pathId }), body: jsonRequest(ProfileChange) },
  responses: {
    200: json(z.object({ user: loose({ id: z.string(), team_id: z.string() }) }), "the profile"),
    ...errors,
  },
});

export const directoryAdminRoutes = routes()
  .openapi(channelImport, async (c) => {
    const teamId = await asAdmin(c);
    const channels = await readImport(c, "channels", IMPORT_MAX_CHANNELS, (value) => {
      const parsed = NewChannelBody.safeParse(value);
      return parsed.success ? { ok: true, value: toNewChannel(parsed.data) } : issuesOf(parsed.error);
    });
    const idempotency = await idempotencyOf(c, channels);
    const { value, replayed } = await importChannels(c.get("deps"), teamId, channels, idempotency);
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json(value, 201);
  })
  .openapi(membershipImport, async (c) => {
    const teamId = await asAdmin(c);
    const rows = await readImport(c, "memberships", IMPORT_MAX_MEMBERSHIPS, (value) => {
      const parsed = MembershipLine.safeParse(value);
      return parsed.success ? { ok: true, value: toMembershipInput(parsed.data) } : issuesOf(parsed.error);
    });
    // Another team's users: the same rule as /members and /share. Without it a
    // host admin adds a partner team's users alone, and the 201-or-404 tells
    // whether that team has them.
    if (rows.some((m) => m.userTeamId !== undefined && m.userTeamId !== teamId)) {
      await authorize(c, mayShareAcrossTeams);
    }
    const idempotency = await idempotencyOf(c, rows);
    const { value, replayed } = await importMemberships(c.get("deps"), teamId, rows, idempotency);
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json(value, 201);
  })
  .openapi(newChannel, async (c) => {
    const teamId = await asAdmin(c);
    const body = await bodyOf(c, newChannel);
    const { channel } = await createChannel(c.get("deps"), teamId, toNewChannel(body));
    return c.json({ channel: adminChannel(channel) }, 201);
  })
  .openapi(changeChannel, async (c) => {
    const teamId = await asAdmin(c);
    const body = await bodyOf(c, changeChannel);
    const patch = {
      name: body.name,
      topic: body.topic,
      purpose: body.purpose,
      isArchived: body.archived,
      isPrivate: body.private,
    };
    const { channel } = await updateChannel(c.get("deps"), teamId, c.req.param("channel"), patch);
    return c.json({ channel: adminChannel(channel) }, 200);
  })
  .openapi(addMembersRoute, async (c) => {
    const teamId = await asAdmin(c);
    const body = await bodyOf(c, addMembersRoute);
    // Adding another team's users: the same rule as sharing (see /share).
    if (body.team_id !== undefined && body.team_id !== teamId) await authorize(c, mayShareAcrossTeams);
    const channelId = c.req.param("channel");
    const result = await addMembers(c.get("deps"), teamId, channelId, body.user_ids, body.team_id);
    // Live features: the joins (and the caller's invite) after the write; not
    // awaited. Bulk imports restate a directory and are not joins: they send nothing.
    const { team, user } = c.get("identity");
    const events = membershipAddEvents({
      team: teamId,
      channel: channelId,
      ...(body.team_id === undefined ? {} : { usersTeam: body.team_id }),
      actor: { team, user },
      added: result.added,
      ts: c.get("deps").clock.now(),
    });
    c.executionCtx.waitUntil(publishFeatureEvents(featureEventSender(c.env), events));
    return c.json(result, 200);
  })
  .openapi(removeMemberRoute, async (c) => {
    const teamId = await asAdmin(c);
    const removed = await removeMember(c.get("deps"), teamId, c.req.param("channel"), c.req.param("user"));
    return c.json({ removed }, 200);
  })
  .openapi(share, async (c) => {
    const teamId = c.req.param("team");
    // Operators only until connections with consent on both sides exist (Slack
    // Connect): a team admin sharing into any team would act without that
    // team's consent, and the answer would tell whether a team id exists.
    await authorize(c, mayShareAcrossTeams);
    const body = await bodyOf(c, share);
    const { channel } = await shareChannel(c.get("deps"), teamId, c.req.param("channel"), body.team_id);
    return c.json({ channel: adminChannel(channel) }, 200);
  })
  .openapi(changeProfile, async (c) => {
    const teamId = await asAdmin(c);
    const body = await bodyOf(c, changeProfile);
    const { user } = await updateProfile(c.get("deps"), teamId, c.req.param("user"), toProfilePatch(body));
    return c.json({ user: adminProfile(user) }, 200);
  });

/** The route's team, once the caller is allowed to administer it. */
async function asAdmin(c: AppContext): Promise<string> {
  const teamId = c.req.param("team") ?? "";
  await authorize(c, (p) => mayAdminister(p, teamId));
  return teamId;
}

function toMembershipInput(line: z.infer<typeof MembershipLine>): MembershipInput {
  const m: MembershipInput = { channelId: line.channel_id, userId: line.user_id };
  if (line.user_team_id) m.userTeamId = line.user_team_id;
  return m;
}

function toProfilePatch(body: z.infer<typeof ProfileChange>): ProfilePatch {
  return {
    name: body.name,
    realName: body.real_name,
    displayName: body.display_name,
    title: body.title,
    avatarHash: body.avatar_hash,
    tz: body.tz,
    isBot: body.is_bot,
  };
}

function toNewChannel(body: z.infer<typeof NewChannelBody>): NewChannel {
  return {
    id: body.id ?? newChannelId(),
    name: body.name,
    topic: body.topic,
    purpose: body.purpose,
    isPrivate: body.private,
  };
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
