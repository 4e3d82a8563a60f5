import { Hono } from "hono";
import { z } from "zod";
import type { CacheResult } from "../../durable-objects/team-cache/team-cache";
import { teamCacheOf } from "../../platform/stubs";
import { DomainError } from "../../src/errors";
import { type AppContext, type AppEnv, jsonBody, queryParams } from "../http";

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
const BootQuery = z.object({ since: z.coerce.number().int().min(0).optional() });
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

export const directoryRoutes = new Hono<AppEnv>()
  .get("/switcher", async (c) => {
    const { q, limit } = queryParams(c, SwitcherQuery);
    const { team, user, stub } = cacheFor(c);
    return c.json({ items: unwrap(await stub.quickSwitcher(team, user, q, limit)) });
  })
  .get("/mentions", async (c) => {
    const { channel, q, limit } = queryParams(c, MentionsQuery);
    const { team, user, stub } = cacheFor(c);
    return c.json({ items: unwrap(await stub.mentions(team, user, channel, q, limit)) });
  })
  .get("/channels/:channel", async (c) => {
    const { team, user, stub } = cacheFor(c);
    return c.json({ channel: unwrap(await stub.channel(team, user, c.req.param("channel"))) });
  })
  .get("/channels/:channel/members", async (c) => {
    const { cursor, limit } = queryParams(c, MembersQuery);
    const { team, user, stub } = cacheFor(c);
    return c.json(unwrap(await stub.channelMembers(team, user, c.req.param("channel"), cursor ?? null, limit)));
  })
  .get("/people", async (c) => {
    const { q, role, deactivated, bots, cursor, limit } = queryParams(c, PeopleQuery);
    const { team, user, stub } = cacheFor(c);
    return c.json(unwrap(await stub.directory(team, user, { q, roles: role, deactivated, bots, cursor, limit })));
  })
  .post("/lookup", async (c) => {
    const body = await jsonBody(c, LookupBody);
    const { team, user, stub } = cacheFor(c);
    return c.json(unwrap(await stub.lookup(team, user, body.users, body.channels)));
  })
  .get("/boot", async (c) => {
    const { since } = queryParams(c, BootQuery);
    const { team, user, stub } = cacheFor(c);
    return c.json(unwrap(await stub.boot(team, user, since ?? null)));
  });
