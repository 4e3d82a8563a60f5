import { Hono } from "hono";
import { z } from "zod";
import { mayAdminister, mayShareAcrossTeams } from "../../src/auth/policy";
import { importChannelsOnce, importMembershipsOnce } from "../../src/directory/imports";
import type { ChangeEvent, DirChannel, DirUser } from "../../src/directory/model";
import {
  CHANNEL_TEXT_MAX,
  type MembershipInput,
  type NewChannel,
  newChannelId,
  normalizeChannelName,
  PROFILE_MAX,
} from "../../src/directory/writer";
import { authorize } from "../auth";
import { type AppContext, type AppEnv, idempotencyOf, jsonBody } from "../http";
import { issuesOf, readImport } from "../import-body";

// Admin API over the directory (channels, memberships, profiles): the source
// of truth the edge caches load from. Every write commits (entity, version
// bump and change-log row in one unit, storage/directory-store.ts), then
// publishes the events it produced to the team caches. A failed publish is
// the cache's gap to recover (changesSince), not the caller's error.

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

export const directoryAdminRoutes = new Hono<AppEnv>()
  .post("/teams/:team/channels/import", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const channels = await readImport(c, "channels", IMPORT_MAX_CHANNELS, (value) => {
      const parsed = NewChannelBody.safeParse(value);
      return parsed.success ? { ok: true, value: toNewChannel(parsed.data) } : issuesOf(parsed.error);
    });
    const { value, replayed, events } = await importChannelsOnce(
      c.get("deps"),
      teamId,
      channels,
      await idempotencyOf(c, channels),
    );
    await publishChanges(c, events);
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json(value, 201);
  })
  .post("/teams/:team/memberships/import", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const rows = await readImport(c, "memberships", IMPORT_MAX_MEMBERSHIPS, (value) => {
      const parsed = MembershipLine.safeParse(value);
      if (!parsed.success) return issuesOf(parsed.error);
      const m: MembershipInput = { channelId: parsed.data.channel_id, userId: parsed.data.user_id };
      if (parsed.data.user_team_id) m.userTeamId = parsed.data.user_team_id;
      return { ok: true, value: m };
    });
    // Another team's users: the same rule as /members and /share. Without it a
    // host admin adds a partner team's users alone, and the 201-or-404 tells
    // whether that team has them.
    if (rows.some((m) => m.userTeamId !== undefined && m.userTeamId !== teamId)) {
      await authorize(c, mayShareAcrossTeams);
    }
    const { value, replayed, events } = await importMembershipsOnce(
      c.get("deps"),
      teamId,
      rows,
      await idempotencyOf(c, rows),
    );
    await publishChanges(c, events);
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json(value, 201);
  })
  .post("/teams/:team/channels", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await jsonBody(c, NewChannelBody);
    const deps = c.get("deps");
    const { channel, events } = await deps.directory.createChannel(teamId, toNewChannel(body), deps.clock.now());
    await publishChanges(c, events);
    return c.json({ channel: channelJson(channel) }, 201);
  })
  .patch("/teams/:team/channels/:channel", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await jsonBody(c, ChannelChange);
    const deps = c.get("deps");
    const { channel, events } = await deps.directory.updateChannel(
      teamId,
      c.req.param("channel"),
      { name: body.name, topic: body.topic, purpose: body.purpose, isArchived: body.archived, isPrivate: body.private },
      deps.clock.now(),
    );
    await publishChanges(c, events);
    return c.json({ channel: channelJson(channel) });
  })
  .post("/teams/:team/channels/:channel/members", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await jsonBody(c, MembersBody);
    // Adding another team's users: the same rule as sharing (see /share).
    if (body.team_id !== undefined && body.team_id !== teamId) await authorize(c, mayShareAcrossTeams);
    const deps = c.get("deps");
    const members = body.user_ids.map((userId) => ({ userId, userTeamId: body.team_id }));
    const { added, unchanged, events } = await deps.directory.addMembers(
      teamId,
      c.req.param("channel"),
      members,
      deps.clock.now(),
    );
    await publishChanges(c, events);
    return c.json({ added: added.map((m) => m.userId), unchanged });
  })
  .delete("/teams/:team/channels/:channel/members/:user", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const deps = c.get("deps");
    const { removed, events } = await deps.directory.removeMembers(
      teamId,
      c.req.param("channel"),
      [c.req.param("user")],
      deps.clock.now(),
    );
    await publishChanges(c, events);
    return c.json({ removed: removed.length > 0 });
  })
  .post("/teams/:team/channels/:channel/share", async (c) => {
    const teamId = c.req.param("team");
    // Operators only until connections with consent on both sides exist (Slack
    // Connect): a team admin sharing into any team would act without that
    // team's consent, and the answer would tell whether a team id exists.
    await authorize(c, mayShareAcrossTeams);
    const body = await jsonBody(c, ShareBody);
    const deps = c.get("deps");
    const { channel, events } = await deps.directory.shareChannel(
      teamId,
      c.req.param("channel"),
      body.team_id,
      deps.clock.now(),
    );
    await publishChanges(c, events);
    return c.json({ channel: channelJson(channel) });
  })
  .patch("/teams/:team/users/:user/profile", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await jsonBody(c, ProfileChange);
    const deps = c.get("deps");
    const { user, events } = await deps.directory.updateProfile(
      teamId,
      c.req.param("user"),
      {
        name: body.name,
        realName: body.real_name,
        displayName: body.display_name,
        title: body.title,
        avatarHash: body.avatar_hash,
        tz: body.tz,
        isBot: body.is_bot,
      },
      deps.clock.now(),
    );
    await publishChanges(c, events);
    return c.json({ user: profileJson(user) });
  });

/** Publishes events team by team, in version order; failures are logged, never the caller's error. */
export async function publishChanges(c: AppContext, events: ChangeEvent[]): Promise<void> {
  const byTeam = new Map<string, ChangeEvent[]>();
  for (const e of events) byTeam.set(e.teamId, [...(byTeam.get(e.teamId) ?? []), e]);
  const { changes } = c.get("deps");
  for (const [teamId, list] of byTeam) {
    try {
      await changes.publish(
        teamId,
        list.sort((a, b) => a.version - b.version),
      );
    } catch (error) {
      console.error(`directory publish to team ${teamId} failed; its cache catches up from the log`, error);
    }
  }
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

function channelJson(ch: DirChannel) {
  return {
    id: ch.id,
    team_id: ch.teamId,
    name: ch.name,
    topic: ch.topic,
    purpose: ch.purpose,
    is_private: ch.isPrivate,
    is_archived: ch.isArchived,
    shared_with: ch.sharedWith,
    created_at: ch.createdAt,
    updated_at: ch.updatedAt,
  };
}

function profileJson(u: DirUser) {
  return {
    id: u.id,
    team_id: u.teamId,
    name: u.name,
    real_name: u.realName,
    display_name: u.displayName,
    title: u.title,
    avatar_hash: u.avatarHash,
    tz: u.tz,
    is_bot: u.isBot,
    role: u.role,
    deactivated: u.deleted,
    updated_at: u.updatedAt,
  };
}
