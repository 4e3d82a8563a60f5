import { createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { pingQueuedIndexes } from "../../platform/deps";
import { connectIndexOf } from "../../platform/stubs";
import { parseSearchQuery, searchConnections } from "../../src/connect/search";
import type { AppEnv } from "../http";
import { bearer, errors, json, loose, routes } from "../openapi";
import { connectAdminOf } from "./connect-admin";

// The admin search over a team's Slack Connect connections
// (docs/connect.md#admin-search), mounted under /v1/admin: the caller's own
// team, its live owners and admins. The answers come from the team's
// ConnectIndex object; the rebuild replaces it from the source of truth.

const tags = ["connect"];
const admins = "The caller's own team, its active owners and admins.";

const search = createRoute({
  method: "get",
  path: "/connections",
  tags,
  summary: "Search the team's connections (admin search)",
  description: `${admins} \`pref.<field>\` filters are open-ended: the query is read whole by the search parser, which refuses what it does not know with a 400.`,
  security: bearer,
  request: {
    query: loose({
      q: z.string().optional(),
      status: z.string().optional(),
      sort: z.enum(["name", "date", "channels"]).optional(),
      order: z.enum(["asc", "desc"]).optional(),
      limit: z.string().optional(),
      cursor: z.string().optional(),
    }),
  },
  responses: {
    200: json(
      z.object({ connections: z.array(loose({ connection: z.string() })), next_cursor: z.string().nullable() }),
      "a page, sorted as asked",
    ),
    ...errors,
  },
});
const rebuild = createRoute({
  method: "post",
  path: "/connections/rebuild",
  tags,
  summary: "Rebuild the team's search index from the source of truth",
  description: admins,
  security: bearer,
  responses: { 200: json(z.object({ rebuilt: z.number(), ms: z.number() }), "documents rebuilt"), ...errors },
});

export const connectSearchRoutes = routes()
  .openapi(search, async (c) => {
    const { team } = await connectAdminOf(c);
    // `pref.<field>` filters are open-ended, so the query is read whole and checked by the parser.
    const q = parseSearchQuery(c.req.query());
    return c.json(await searchConnections(connectIndexOf(c.env, team), q), 200);
  })
  .openapi(rebuild, async (c) => {
    const { team } = await connectAdminOf(c);
    const { count, ms } = await connectIndexOf(c.env, team).rebuildFromSource(team);
    return c.json({ rebuilt: count, ms }, 200);
  });

/**
 * After a write that may change connections' search documents (every
 * Slack Connect write; a team's new name or domains): the writes queued
 * their refreshes in their own units, and the indexes of the teams they
 * queued for take them now, once the answer is on its way.
 */
export const feedConnectIndexes: MiddlewareHandler<AppEnv> = async (c, next) => {
  const from = Date.now();
  await next();
  if (c.req.method === "GET" || c.res.status >= 400) return;
  c.executionCtx.waitUntil(
    pingQueuedIndexes(c.env, from, Date.now()).catch((error: unknown) =>
      console.error("connect index refresh after a write failed; the cron sweep retries", error),
    ),
  );
};
