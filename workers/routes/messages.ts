import { Hono } from "hono";
import { z } from "zod";
import { teamCacheAccess } from "../../durable-objects/gateway/access";
import { topicPublisher } from "../../platform/deps";
import { notFound } from "../../src/errors";
import { MAX_MENTIONS, MAX_TEXT_LENGTH, postMessage } from "../../src/realtime/messages";
import { type AppEnv, jsonBody } from "../http";

// POST /v1/channels/:channel/messages: the producer side of real-time
// fan-out. The message travels to the channel's topic and from there to its
// subscribers; its text is stored nowhere else. The poster must see the
// channel now (the team cache's live state: a deactivated poster is 403), and
// posts within its own rate in the channel and the channel's overall rate
// (Topic): over either, 429 with Retry-After, and `details.limit` says which.

const ChannelId = /^[A-Za-z0-9_-]{1,40}$/;
const MessageBody = z.strictObject({
  text: z.string().min(1).max(MAX_TEXT_LENGTH),
  mentions: z.array(z.string().min(1).max(40)).max(MAX_MENTIONS).default([]),
});

export const messageRoutes = new Hono<AppEnv>().post("/:channel/messages", async (c) => {
  const channelId = c.req.param("channel");
  if (!ChannelId.test(channelId)) throw notFound(`channel ${channelId} not found`);
  const body = await jsonBody(c, MessageBody);
  const { team, user } = c.get("identity");
  const posted = await postMessage(
    { access: teamCacheAccess(c.env), publisher: topicPublisher(c.env) },
    { team, user, channelId, text: body.text, mentions: body.mentions, now: c.get("deps").clock.now() },
  );
  return c.json(posted, 201);
});
