import { Hono } from "hono";
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
import { type AppContext, type AppEnv, jsonBody, queryParams } from "../http";
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

export const connectChannelRoutes = new Hono<AppEnv>()
  .post("/", async (c) => {
    const by = await sharingActorOf(c);
    const body = await jsonBody(c, InviteBody);
    // Ids that cannot name anything are missing ones, as on every other route.
    if (!ID.test(body.connection)) throw notFound("no such connection");
    if (!ID.test(body.channel)) throw notFound("no such channel");
    return c.json({ shared_channel: await inviteChannel(portsOf(c), by, body.connection, body.channel) }, 201);
  })
  .get("/", async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await listSharedChannels(portsOf(c), team, queryParams(c, PageQuery)));
  })
  .post("/:id/answer", async (c) => {
    const by = await connectAdminOf(c);
    const body = await jsonBody(c, AnswerBody);
    return c.json({ shared_channel: await answerChannel(portsOf(c), by, idOf(c), body.decision) });
  })
  .delete("/:id", async (c) => {
    const by = await sharingActorOf(c);
    return c.json({ shared_channel: await withdrawChannel(portsOf(c), by, idOf(c)) });
  })
  .post("/:id/members", async (c) => {
    const by = await sharingActorOf(c);
    const body = await jsonBody(c, MembersBody);
    return c.json(await joinSharedChannel(portsOf(c), by, idOf(c), body.user_ids));
  })
  .delete("/:id/members/:user", async (c) => {
    const by = await sharingActorOf(c);
    const user = c.req.param("user") ?? "";
    if (!ID.test(user)) throw notFound("no such member");
    return c.json(await leaveSharedChannel(portsOf(c), by, idOf(c), user));
  });
