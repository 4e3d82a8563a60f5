import { Hono, type MiddlewareHandler } from "hono";
import { pingQueuedIndexes } from "../../platform/deps";
import { connectIndexOf } from "../../platform/stubs";
import { parseSearchQuery, searchConnections } from "../../src/connect/search";
import type { AppEnv } from "../http";
import { connectAdminOf } from "./connect-admin";

// The admin search over a team's Slack Connect connections
// (docs/connect.md#admin-search), mounted under /v1/admin: the caller's own
// team, its live owners and admins. The answers come from the team's
// ConnectIndex object; the rebuild replaces it from the source of truth.

export const connectSearchRoutes = new Hono<AppEnv>()
  .get("/connections", async (c) => {
    const { team } = await connectAdminOf(c);
    // `pref.<field>` filters are open-ended, so the query is read whole and checked by the parser.
    const q = parseSearchQuery(c.req.query());
    return c.json(await searchConnections(connectIndexOf(c.env, team), q));
  })
  .post("/connections/rebuild", async (c) => {
    const { team } = await connectAdminOf(c);
    const { count, ms } = await connectIndexOf(c.env, team).rebuildFromSource(team);
    return c.json({ rebuilt: count, ms });
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
