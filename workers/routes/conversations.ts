import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import type { CacheResult } from "../../durable-objects/team-cache/team-cache";
import { teamCacheOf } from "../../platform/stubs";
import {
  type ConversationPeople,
  leaveConversation,
  MAX_CONVERSATION_MEMBERS,
  openConversation,
} from "../../src/conversations/directory-conversations";
import { CONVERSATION_KINDS, type ConversationKind } from "../../src/directory/model";
import { DomainError, notFound } from "../../src/errors";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, queryOf, routes } from "../openapi";

// DMs and group DMs as directory conversations (docs/directory.md,
// "Conversations: DMs and group DMs"): open, list, leave. Member token; the
// team and the caller come from it. Each handler parses and calls one use
// case of src/conversations/directory-conversations.ts; listing is the team
// cache's answer, like every directory query.

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;
/** Entries a body may name (duplicates and the caller included); the member rule itself is the use case's. */
const MAX_USERS_IN_BODY = 50;

/** Same rule as the directory routes' ids (MySQL's PAD SPACE would match "U1 " to "U1"). */
const Id = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, "ids are 1-40 of A-Z a-z 0-9 _ -");
const UserRef = z.union([Id, z.strictObject({ id: Id, team: Id.optional() })]);
const OpenBody = z.strictObject({
  users: z
    .array(UserRef)
    .min(1)
    .max(MAX_USERS_IN_BODY)
    .meta({
      description: `the other members (1-${MAX_CONVERSATION_MEMBERS - 1}), or yourself for a self-DM; { id, team } names another team's user (refused until Slack Connect DMs exist)`,
    }),
});
const Types = z
  .string()
  .default(CONVERSATION_KINDS.join(","))
  .transform((t) => t.split(",").map((k) => k.trim()))
  .pipe(z.array(z.enum(CONVERSATION_KINDS as [ConversationKind, ...ConversationKind[]])).min(1));
const ListQuery = z.object({
  types: Types,
  cursor: z.string().max(500).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
});

const Conversation = z.object({
  id: z.string(),
  kind: z.enum(["im", "mpim"]),
  members: z.array(z.string()),
  created: z.number(),
});
const tags = ["conversations"];

const open = createRoute({
  method: "post",
  path: "/",
  tags,
  summary: "Open a DM or group DM (the same members always give the same conversation)",
  security: bearer,
  request: { body: jsonRequest(OpenBody) },
  responses: {
    200: json(z.object({ conversation: Conversation }), "it existed: the conversation"),
    201: json(z.object({ conversation: Conversation }), "opened now: the conversation"),
    ...errors,
  },
});
const list = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "The caller's conversations (channels, DMs, group DMs) by id",
  security: bearer,
  request: { query: ListQuery },
  responses: {
    200: json(
      z.object({
        items: z.array(loose({ id: z.string(), kind: z.string(), name: z.string() })),
        next_cursor: z.string().nullable(),
      }),
      "a page; next_cursor null on the last one",
    ),
    ...errors,
  },
});
const leave = createRoute({
  method: "delete",
  path: "/{conversation}/members/me",
  tags,
  summary: "Leave a group DM (a DM cannot be left)",
  security: bearer,
  request: { params: z.object({ conversation: pathId }) },
  responses: { 200: json(z.object({ left: z.boolean() }), "whether the caller was in it"), ...errors },
});

function unwrap<T>(result: CacheResult<T>): T {
  if (result.ok) return result.value;
  throw new DomainError(result.kind, result.code, result.message);
}

/** The caller's team cache as the use case's view of people and conversations. */
function cachePeople(c: AppContext): ConversationPeople {
  return {
    async visibleUsers(teamId, viewerId, userIds) {
      const found = unwrap(await teamCacheOf(c.env, teamId).lookup(teamId, viewerId, userIds, []));
      return found.users.map((u) => ({ id: u.id, deleted: u.deleted }));
    },
    async conversationKind(teamId, viewerId, id) {
      const result = await teamCacheOf(c.env, teamId).channel(teamId, viewerId, id);
      if (!result.ok && result.kind === "not_found") return null;
      return unwrap(result).kind;
    },
  };
}

function depsOf(c: AppContext) {
  const deps = c.get("deps");
  return { directory: deps.directory, changes: deps.changes, clock: deps.clock, people: cachePeople(c) };
}

export const conversationRoutes = routes()
  .openapi(open, async (c) => {
    const body = await bodyOf(c, open);
    const { team, user } = c.get("identity");
    const users = body.users.map((u) => (typeof u === "string" ? { id: u } : u));
    const { conversation, created } = await openConversation(depsOf(c), team, user, users);
    return created ? c.json({ conversation }, 201) : c.json({ conversation }, 200);
  })
  .openapi(list, async (c) => {
    const { types, cursor, limit } = queryOf(c, list);
    const { team, user } = c.get("identity");
    const page = unwrap(await teamCacheOf(c.env, team).conversations(team, user, types, cursor ?? null, limit));
    return c.json(page, 200);
  })
  .openapi(leave, async (c) => {
    const { team, user } = c.get("identity");
    const id = c.req.param("conversation");
    // No stored id looks otherwise (and MySQL would match "G1 " to "G1").
    if (!Id.safeParse(id).success) throw notFound(`conversation ${id} not found`);
    return c.json(await leaveConversation(depsOf(c), team, user, id), 200);
  });
