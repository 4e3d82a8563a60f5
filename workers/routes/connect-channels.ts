import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { sharedChannelPortsOf } from "../../platform/deps";
import { PAGE_DEFAULT, PAGE_MAX } from "../../src/connect/connections-service";
import {
  answerChannel,
  inviteChannel,
  joinSharedChannel,
  leaveSharedChannel,
  listSharedChannels,
  type SharedChannelsPorts,
  withdrawChannel,
} from "../../src/connect/shared-channels-service";
import { notFound } from "../../src/errors";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, queryOf, routes } from "../openapi";
import { connectAdminOf, sharingActorOf } from "./connect-admin";

// Shared channels over Slack Connect connections (docs/connect.md#shared-channels),
// mounted under /v1/connect/shared-channels by routes/connect.ts. The team is
// the caller's own. A live member invites the partner of one of its team's
// connections to a channel (as the team's channel_creation pref allows) and
// may cancel its own pending invitation; the partner's admins accept or
// decline (or its auto_approval pref accepts at once); either side's admins
// list them and end an accepted one. The partner then puts its own people
// into the channel (its admins anyone of theirs; a member itself, into a
// public one) and takes them out. Each handler authorizes,
// parses, calls one use case of src/connect/shared-channels-service.ts and
// answers; another team's ids answer as missing ones.

/** An id that cannot name anything names nothing: the answer for a missing one. */
const ID = /^[A-Za-z0-9_-]{1,40}$/;

const InviteBody = z.strictObject({
  connection: z.string().min(1).max(40),
  channel: z.string().min(1).max(40),
});

const AnswerBody = z.strictObject({ decision: z.enum(["accept", "decline"]) });

/** Users per call, as the directory's own members route takes them. */
const MEMBERS_MAX = 1000;
const MembersBody = z.strictObject({ user_ids: z.array(z.string().regex(ID)).min(1).max(MEMBERS_MAX) });

const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(PAGE_MAX).default(PAGE_DEFAULT),
  cursor: z.string().max(100).optional(),
});

function portsOf(c: AppContext): SharedChannelsPorts {
  return sharedChannelPortsOf(c.get("deps"));
}

function idOf(c: AppContext): string {
  const id = c.req.param("id") ?? "";
  if (!ID.test(id)) throw notFound("no such shared-channel invitation");
  return id;
}

const tags = ["shared channels"];
const IdParams = z.object({ id: pathId });
const SharedChannel = loose({ id: z.string(), status: z.string() });
const SharedChannelAnswer = z.object({ shared_channel: SharedChannel });

const invite = createRoute({
  method: "post",
  path: "/",
  tags,
  summary: "Invite a connection's partner to one of the team's channels",
  description: "Any active member the team's channel_creation pref allows.",
  security: bearer,
  request: { body: jsonRequest(InviteBody) },
  responses: { 201: json(SharedChannelAnswer, "pending, or accepted by the partner's auto-approval"), ...errors },
});
const list = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "The team's shared channels, both ways",
  description: "The team's active owners and admins.",
  security: bearer,
  request: { query: PageQuery },
  responses: {
    200: json(z.object({ shared_channels: z.array(SharedChannel), next_cursor: z.string().nullable() }), "a page"),
    ...errors,
  },
});
const answer = createRoute({
  method: "post",
  path: "/{id}/answer",
  tags,
  summary: "Accept or decline an invitation to a partner's channel",
  description: "The partner's active owners and admins.",
  security: bearer,
  request: { params: IdParams, body: jsonRequest(AnswerBody) },
  responses: { 200: json(SharedChannelAnswer, "the shared channel"), ...errors },
});
const withdraw = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  summary: "Cancel a pending invitation (its host) or end an accepted one (either side's admins)",
  security: bearer,
  request: { params: IdParams },
  responses: { 200: json(SharedChannelAnswer, "the shared channel"), ...errors },
});
const join = createRoute({
  method: "post",
  path: "/{id}/members",
  tags,
  summary: "The partner's people join the shared channel",
  description: "The partner's admins: any of its people; a member: itself, into a public channel.",
  security: bearer,
  request: { params: IdParams, body: jsonRequest(MembersBody) },
  responses: { 200: json(loose({ added: z.unknown(), unchanged: z.unknown() }), "who joined, who was in"), ...errors },
});
const leave = createRoute({
  method: "delete",
  path: "/{id}/members/{user}",
  tags,
  summary: "Take one of the partner's people out of the shared channel",
  security: bearer,
  request: { params: z.object({ id: pathId, user: pathId }) },
  responses: { 200: json(loose({ removed: z.unknown() }), "removed"), ...errors },
});

export const connectChannelRoutes = routes()
  .openapi(invite, async (c) => {
    const by = await sharingActorOf(c);
    const body = await bodyOf(c, invite);
    // Ids that cannot name anything are missing ones, as on every other route.
    if (!ID.test(body.connection)) throw notFound("no such connection");
    if (!ID.test(body.channel)) throw notFound("no such channel");
    return c.json({ shared_channel: await inviteChannel(portsOf(c), by, body.connection, body.channel) }, 201);
  })
  .openapi(list, async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await listSharedChannels(portsOf(c), team, queryOf(c, list)), 200);
  })
  .openapi(answer, async (c) => {
    const by = await connectAdminOf(c);
    const body = await bodyOf(c, answer);
    return c.json({ shared_channel: await answerChannel(portsOf(c), by, idOf(c), body.decision) }, 200);
  })
  .openapi(withdraw, async (c) => {
    const by = await sharingActorOf(c);
    return c.json({ shared_channel: await withdrawChannel(portsOf(c), by, idOf(c)) }, 200);
  })
  .openapi(join, async (c) => {
    const by = await sharingActorOf(c);
    const body = await bodyOf(c, join);
    return c.json(await joinSharedChannel(portsOf(c), by, idOf(c), body.user_ids), 200);
  })
  .openapi(leave, async (c) => {
    const by = await sharingActorOf(c);
    const user = c.req.param("user") ?? "";
    if (!ID.test(user)) throw notFound("no such member");
    return c.json(await leaveSharedChannel(portsOf(c), by, idOf(c), user), 200);
  });
