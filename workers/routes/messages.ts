import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { topicPublisher } from "../../platform/deps";
import { featureEventSender } from "../../platform/live-features-deps";
import { teamCacheAccess } from "../../platform/team-cache-access";
import { notFound } from "../../src/errors";
import { MAX_MENTIONS, MAX_TEXT_LENGTH, postMessage } from "../../src/realtime/messages";
import { messageEvent, publishFeatureEvents } from "../../src/recommend/live-features";
import { bearer, bodyOf, errors, json, jsonRequest, pathId, routes } from "../openapi";

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

const post = createRoute({
  method: "post",
  path: "/{channel}/messages",
  tags: ["realtime"],
  summary: "Post a message to a channel the caller sees (fanned out to its subscribers)",
  security: bearer,
  request: { params: z.object({ channel: pathId }), body: jsonRequest(MessageBody) },
  responses: {
    201: json(z.object({ topic: z.string(), seq: z.number() }), "the channel's topic and the message's seq in it"),
    ...errors,
  },
});

export const messageRoutes = routes().openapi(post, async (c) => {
  const channelId = c.req.param("channel");
  if (!ChannelId.test(channelId)) throw notFound(`channel ${channelId} not found`);
  const body = await bodyOf(c, post);
  const { team, user } = c.get("identity");
  const now = c.get("deps").clock.now();
  const posted = await postMessage(
    { access: teamCacheAccess(c.env), publisher: topicPublisher(c.env) },
    { team, user, channelId, text: body.text, mentions: body.mentions, now },
  );
  // Live features: the post, as ids and a time (never its text), after it
  // succeeded. Sent in waitUntil, not awaited: the queue send is another
  // round trip the poster and the realtime bench would wait for, and a lost
  // event costs a feature one count, never the post.
  const event = messageEvent({ team, user, channel: channelId, mentions: body.mentions, ...posted, ts: now });
  c.executionCtx.waitUntil(publishFeatureEvents(featureEventSender(c.env), [event]));
  return c.json(posted, 201);
});
