import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import type { CacheResult } from "../../durable-objects/team-cache/team-cache";
import { focusedBootPortsFor } from "../../platform/deps";
import { teamCacheOf } from "../../platform/stubs";
import { DEFAULT_FOCUS_LIMIT, focusedBoot } from "../../src/conversations/focused-boot";
import { MAX_PAGE } from "../../src/conversations/history";
import { badRequest, DomainError } from "../../src/errors";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, queryOf, routes } from "../openapi";

// Lazy-load queries, answered by the caller's team cache (one Durable Object
// per team). The team and the viewer always come from the token: a client can
// only ever ask its own team's cache, as itself.

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;
const MAX_LOOKUP = 500;

const Limit = z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT);
const Query = z.string().max(100).default("");
/**
 * The ids the write routes accept: no other string can name anything, and
 * MySQL's PAD SPACE collation would match "U1 " to "U1" where D1 would not.
 */
const Id = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, "ids are 1-40 of A-Z a-z 0-9 _ -");

const SwitcherQuery = z.object({ q: Query, limit: Limit });
const MentionsQuery = z.object({ channel: Id, q: Query, limit: Limit });
const MembersQuery = z.object({ cursor: z.string().max(500).optional(), limit: Limit });
const PeopleQuery = z.object({
  q: Query,
  role: z
    .string()
    .optional()
    .transform((r) => (r ? r.split(",") : undefined))
    .pipe(z.array(z.enum(["owner", "admin", "member", "guest"])).optional()),
  deactivated: z.enum(["exclude", "include", "only"]).default("exclude"),
  bots: z.enum(["exclude", "include", "only"]).default("include"),
  cursor: z.string().max(500).optional(),
  limit: Limit,
});
const BootQuery = z.object({
  since: z.coerce.number().int().min(0).optional(),
  focus: Id.optional().meta({
    description:
      "a conversation (channel, DM or group DM) to answer first: its card, newest messages and their profiles",
  }),
  focus_limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE)
    .optional()
    .meta({ description: `messages in the focus (default ${DEFAULT_FOCUS_LIMIT}); only with focus` }),
});
const LookupBody = z.strictObject({
  users: z.array(Id).max(MAX_LOOKUP).default([]),
  channels: z.array(Id).max(MAX_LOOKUP).default([]),
});

function cacheFor(c: AppContext) {
  const { team, user } = c.get("identity");
  return { team, user, stub: teamCacheOf(c.env, team) };
}

function unwrap<T>(result: CacheResult<T>): T {
  if (result.ok) return result.value;
  throw new DomainError(result.kind, result.code, result.message);
}

/** Cards are described by their top-level members; docs/directory.md has them in full. */
const Card = loose({ id: z.string() });
const Items = z.object({ items: z.array(Card) });
const CardPage = z.object({ items: z.array(Card), next_cursor: z.string().nullable() });
const tags = ["directory"];

const switcher = createRoute({
  method: "get",
  path: "/switcher",
  tags,
  summary: "Quick switcher: the caller's channels and people matching q",
  security: bearer,
  request: { query: SwitcherQuery },
  responses: { 200: json(Items, "channels and users, best first"), ...errors },
});
const mentionsRoute = createRoute({
  method: "get",
  path: "/mentions",
  tags,
  summary: "@-mention candidates in a channel the caller sees",
  security: bearer,
  request: { query: MentionsQuery },
  responses: { 200: json(Items, "users, members of the channel first"), ...errors },
});
const channel = createRoute({
  method: "get",
  path: "/channels/{channel}",
  tags,
  summary: "A channel the caller sees",
  security: bearer,
  request: { params: z.object({ channel: pathId }) },
  responses: { 200: json(z.object({ channel: Card }), "the channel's card"), ...errors },
});
const members = createRoute({
  method: "get",
  path: "/channels/{channel}/members",
  tags,
  summary: "A page of a channel's members",
  security: bearer,
  request: { params: z.object({ channel: pathId }), query: MembersQuery },
  responses: { 200: json(CardPage, "user cards; next_cursor null on the last page"), ...errors },
});
const people = createRoute({
  method: "get",
  path: "/people",
  tags,
  summary: "The team's people, filtered",
  security: bearer,
  request: { query: PeopleQuery },
  responses: { 200: json(CardPage, "user cards; next_cursor null on the last page"), ...errors },
});
const lookup = createRoute({
  method: "post",
  path: "/lookup",
  tags,
  summary: "Cards of users and channels by id (what the caller may see of them)",
  security: bearer,
  request: { body: jsonRequest(LookupBody) },
  responses: {
    200: json(loose({ users: z.array(Card), channels: z.array(Card) }), "the cards found; unknown ids are left out"),
    ...errors,
  },
});
const BootAnswer = loose({
  version: z.number(),
  full: z.boolean(),
  team: loose({ id: z.string() }),
  channels: z.array(Card),
});
const FocusedBootAnswer = loose({
  version: z.number(),
  team: loose({ id: z.string() }),
  focus: z.object({
    conversation: Card.meta({ description: "the card GET /v1/directory/channels/:id answers (DMs: kind, members)" }),
    messages: z.array(loose({ id: z.string() })).meta({ description: "the newest messages, newest first" }),
    users: z.array(Card).meta({ description: "profiles of their authors and mentioned users the caller may see" }),
    history_cursor: z.string().nullable().meta({
      description: "cursor for GET /v1/conversations/:id/history: the messages right before these; null if none",
    }),
  }),
  rest: z
    .object({ path: z.string(), version: z.number() })
    .meta({ description: "the rest of the boot: GET path (the full boot, at this version or later)" }),
});
const boot = createRoute({
  method: "get",
  path: "/boot",
  tags,
  summary: "The client's boot payload, whole, since a version, or focused on one conversation",
  description:
    "With `focus`, one round trip answers the conversation first (docs/directory.md, Focused boot); a conversation the caller does not see is a 404 exactly like one that does not exist. `focus` cannot be combined with `since` (400).",
  security: bearer,
  request: { query: BootQuery },
  responses: {
    200: json(
      z.union([BootAnswer, FocusedBootAnswer]),
      "the caller's channels and team, what changed since `since`, or (with `focus`) the focused conversation and where the rest is",
    ),
    ...errors,
  },
});

export const directoryRoutes = routes()
  .openapi(switcher, async (c) => {
    const { q, limit } = queryOf(c, switcher);
    const { team, user, stub } = cacheFor(c);
    return c.json({ items: unwrap(await stub.quickSwitcher(team, user, q, limit)) }, 200);
  })
  .openapi(mentionsRoute, async (c) => {
    const { channel, q, limit } = queryOf(c, mentionsRoute);
    const { team, user, stub } = cacheFor(c);
    return c.json({ items: unwrap(await stub.mentions(team, user, channel, q, limit)) }, 200);
  })
  .openapi(channel, async (c) => {
    const { team, user, stub } = cacheFor(c);
    return c.json({ channel: unwrap(await stub.channel(team, user, c.req.param("channel"))) }, 200);
  })
  .openapi(members, async (c) => {
    const { cursor, limit } = queryOf(c, members);
    const { team, user, stub } = cacheFor(c);
    return c.json(unwrap(await stub.channelMembers(team, user, c.req.param("channel"), cursor ?? null, limit)), 200);
  })
  .openapi(people, async (c) => {
    const { q, role, deactivated, bots, cursor, limit } = queryOf(c, people);
    const { team, user, stub } = cacheFor(c);
    return c.json(unwrap(await stub.directory(team, user, { q, roles: role, deactivated, bots, cursor, limit })), 200);
  })
  .openapi(lookup, async (c) => {
    const body = await bodyOf(c, lookup);
    const { team, user, stub } = cacheFor(c);
    return c.json(unwrap(await stub.lookup(team, user, body.users, body.channels)), 200);
  })
  .openapi(boot, async (c) => {
    const { since, focus, focus_limit } = queryOf(c, boot);
    const { team, user, stub } = cacheFor(c);
    if (focus === undefined) {
      if (focus_limit !== undefined) throw badRequest("focus_limit needs focus");
      return c.json(unwrap(await stub.boot(team, user, since ?? null)), 200);
    }
    // A focused boot is a first screen, not a catch-up: a client with a boot
    // at `since` asks for the changes on their own (docs/directory.md).
    if (since !== undefined)
      throw badRequest("focus cannot be combined with since: fetch GET /v1/directory/boot?since= apart");
    const ports = focusedBootPortsFor(c.env);
    return c.json(await focusedBoot(ports, { team, user }, focus, focus_limit ?? DEFAULT_FOCUS_LIMIT), 200);
  });
