import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { conversationPortsFor, historySettingsFor } from "../../platform/deps";
import { sendConversationPostEvent, sendReactionEvent } from "../../platform/live-features-deps";
import { mayAdminister } from "../../src/auth/policy";
import { DEFAULT_PAGE, HISTORY_BOUNDS, MAX_MENTIONS, MAX_PAGE, MAX_TEXT_LENGTH } from "../../src/conversations/history";
import {
  conversationHistory,
  deleteConversationMessage,
  editConversationMessage,
  historyPolicy,
  postConversationMessage,
  reactToConversationMessage,
  setHistoryPolicy,
} from "../../src/conversations/messages";
import { authorize } from "../auth";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, queryOf, routes } from "../openapi";

// /v1/conversations/:id: messages kept per conversation (a channel; a DM or
// group DM once the directory has them), with a bounded history. Every
// change is committed with its real-time event in the conversation's own
// Durable Object and then delivered to the conversation's topic
// (docs/realtime.md#conversations-and-history). A conversation the caller
// does not see answers 404 exactly as one that does not exist, for another
// team's token too. /v1/admin/teams/:team/history sets the team's bounds.

const UserId = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, "user ids are 1-40 of A-Z a-z 0-9 _ -");
const PostBody = z.strictObject({
  text: z.string().min(1).max(MAX_TEXT_LENGTH),
  mentions: z.array(UserId).max(MAX_MENTIONS).default([]),
});
const EditBody = z.strictObject({
  text: z.string().min(1).max(MAX_TEXT_LENGTH),
  mentions: z.array(UserId).max(MAX_MENTIONS).optional(),
});
const HistoryQuery = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(DEFAULT_PAGE),
});
const PolicyBody = z.strictObject({
  max_messages: z.number().int().min(HISTORY_BOUNDS.maxMessages.min).max(HISTORY_BOUNDS.maxMessages.max),
  max_age_days: z.number().int().min(HISTORY_BOUNDS.maxAgeDays.min).max(HISTORY_BOUNDS.maxAgeDays.max),
});

const Reaction = z.object({ name: z.string(), users: z.array(z.string()), count: z.number() });
const Message = z
  .object({
    id: z.string().meta({ description: "16 digits, sortable by time: unique and increasing within the conversation" }),
    channel: z.string(),
    user: z.string(),
    team: z.string().meta({ description: "the author's team (a shared channel has several)" }),
    text: z.string(),
    mentions: z.array(z.string()),
    ts: z.number().meta({ description: "when the conversation accepted it (ms since the epoch)" }),
    edited_ts: z.number().nullable(),
    reactions: z.array(Reaction),
  })
  .meta({ id: "ConversationMessage" });
const Written = z.object({
  message: Message.nullable().meta({ description: "the message as it now is; null once deleted" }),
  topic: z.string().meta({ description: "the conversation's real-time topic (channel:<id>)" }),
  seq: z.number().nullable().meta({
    description: "the event's seq in the topic; null when no event was sent (nothing changed) or it is still queued",
  }),
});
const Policy = z.object({ max_messages: z.number(), max_age_days: z.number(), custom: z.boolean() });

const tags = ["conversations"];
const conversationParam = z.object({ conversation: pathId });
const messageParams = z.object({ conversation: pathId, message: pathId });
const reactionParams = z.object({ conversation: pathId, message: pathId, name: pathId });

const post = createRoute({
  method: "post",
  path: "/{conversation}/messages",
  tags,
  summary: "Post a message to a conversation the caller sees (stored, and sent to its subscribers)",
  security: bearer,
  request: { params: conversationParam, body: jsonRequest(PostBody) },
  responses: { 201: json(Written, "the message, and its event's seq"), ...errors },
});
const edit = createRoute({
  method: "patch",
  path: "/{conversation}/messages/{message}",
  tags,
  summary: "Edit a message (its author only; 403 for anyone else)",
  security: bearer,
  request: { params: messageParams, body: jsonRequest(EditBody) },
  responses: { 200: json(Written, "the edited message"), ...errors },
});
const remove = createRoute({
  method: "delete",
  path: "/{conversation}/messages/{message}",
  tags,
  summary: "Delete a message (its author, or a team owner or admin): its text is gone from history and the resume log",
  security: bearer,
  request: { params: messageParams },
  responses: { 200: json(Written, "message null: deleted"), ...errors },
});
const addReaction = createRoute({
  method: "post",
  path: "/{conversation}/messages/{message}/reactions/{name}",
  tags,
  summary: "React to a message with an emoji name (once per user per name; again changes nothing)",
  security: bearer,
  request: { params: reactionParams },
  responses: { 200: json(Written, "the message with its reactions"), ...errors },
});
const removeReaction = createRoute({
  method: "delete",
  path: "/{conversation}/messages/{message}/reactions/{name}",
  tags,
  summary: "Take back the caller's reaction (none there changes nothing)",
  security: bearer,
  request: { params: reactionParams },
  responses: { 200: json(Written, "the message with its reactions"), ...errors },
});
const history = createRoute({
  method: "get",
  path: "/{conversation}/history",
  tags,
  summary: "The conversation's messages, newest first, a page at a time",
  security: bearer,
  request: { params: conversationParam, query: HistoryQuery },
  responses: {
    200: json(
      z.object({
        messages: z.array(Message),
        next_cursor: z
          .string()
          .nullable()
          .meta({ description: "older messages (stable while new ones arrive); null on the last page" }),
        users: z.array(loose({ id: z.string() })).meta({
          description: "profiles of the page's authors and mentioned users that the caller may see",
        }),
      }),
      "a page of history",
    ),
    ...errors,
  },
});

const caller = (c: AppContext) => {
  const { team, user } = c.get("identity");
  return { team, user };
};

export const conversationMessageRoutes = routes()
  .openapi(post, async (c) => {
    const body = await bodyOf(c, post);
    const answer = await postConversationMessage(
      conversationPortsFor(c.env),
      caller(c),
      c.req.param("conversation"),
      body,
    );
    // Live features: the post as ids and a time (never its text), after it succeeded; not awaited.
    c.executionCtx.waitUntil(sendConversationPostEvent(c.env, caller(c), c.req.param("conversation"), answer));
    return c.json(answer, 201);
  })
  .openapi(edit, async (c) => {
    const body = await bodyOf(c, edit);
    const { conversation, message } = c.req.param();
    return c.json(
      await editConversationMessage(conversationPortsFor(c.env), caller(c), conversation, message, body),
      200,
    );
  })
  .openapi(remove, async (c) => {
    const { conversation, message } = c.req.param();
    return c.json(await deleteConversationMessage(conversationPortsFor(c.env), caller(c), conversation, message), 200);
  })
  .openapi(addReaction, async (c) => {
    const { conversation, message, name } = c.req.param();
    const ports = conversationPortsFor(c.env);
    const answer = await reactToConversationMessage(ports, caller(c), conversation, message, name, true);
    // Live features: a reaction is an interaction of the reactor with the author; not awaited.
    c.executionCtx.waitUntil(
      sendReactionEvent(c.env, caller(c), conversation, name, answer, c.get("deps").clock.now()),
    );
    return c.json(answer, 200);
  })
  .openapi(removeReaction, async (c) => {
    const { conversation, message, name } = c.req.param();
    const ports = conversationPortsFor(c.env);
    return c.json(await reactToConversationMessage(ports, caller(c), conversation, message, name, false), 200);
  })
  .openapi(history, async (c) => {
    const query = queryOf(c, history);
    const ports = conversationPortsFor(c.env);
    return c.json(await conversationHistory(ports, caller(c), c.req.param("conversation"), query), 200);
  });

// --- a team's history bounds ------------------------------------------------------

const teamParam = z.object({ team: pathId });
const getPolicy = createRoute({
  method: "get",
  path: "/teams/{team}/history",
  tags,
  summary: "How much history the team's conversations keep (custom false: the default, 1,000 messages and 90 days)",
  security: bearer,
  request: { params: teamParam },
  responses: { 200: json(Policy, "the team's bounds"), ...errors },
});
const putPolicy = createRoute({
  method: "put",
  path: "/teams/{team}/history",
  tags,
  summary: "Set how much history the team's conversations keep (owners and admins)",
  description: `max_messages ${HISTORY_BOUNDS.maxMessages.min}-${HISTORY_BOUNDS.maxMessages.max}, max_age_days ${HISTORY_BOUNDS.maxAgeDays.min}-${HISTORY_BOUNDS.maxAgeDays.max}. Conversations apply it within a minute (on their next write or trim).`,
  security: bearer,
  request: { params: teamParam, body: jsonRequest(PolicyBody) },
  responses: { 200: json(Policy, "the team's bounds as now set"), ...errors },
});

const policyOut = (p: { maxMessages: number; maxAgeDays: number; custom: boolean }) => ({
  max_messages: p.maxMessages,
  max_age_days: p.maxAgeDays,
  custom: p.custom,
});

export const conversationAdminRoutes = routes()
  .openapi(getPolicy, async (c) => {
    const team = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, team));
    return c.json(policyOut(await historyPolicy(historySettingsFor(c.env), team)), 200);
  })
  .openapi(putPolicy, async (c) => {
    const team = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, team));
    const body = await bodyOf(c, putPolicy);
    const policy = { maxMessages: body.max_messages, maxAgeDays: body.max_age_days };
    return c.json(policyOut(await setHistoryPolicy(historySettingsFor(c.env), team, policy)), 200);
  });
