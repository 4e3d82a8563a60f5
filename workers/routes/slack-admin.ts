import { Hono } from "hono";
import { z } from "zod";
import { slackInstallPortsFor } from "../../platform/deps";
import { mayOperate } from "../../src/auth/policy";
import { install } from "../../src/slackbot/service";
import type { InstallationView } from "../../src/slackbot/store";
import { authorize } from "../auth";
import { type AppEnv, jsonBody, queryParams } from "../http";

// Operators install the Slack bot in a workspace by hand (the OAuth flow,
// routes/slack-events.ts, does the same for a workspace admin), mounted at /v1/admin:
//   PUT /slack/installations   a workspace's bot token, bot user and app (replaces a previous one)
//   GET /slack/installations   the workspaces, never their tokens

const Installation = z.strictObject({
  team_id: z.string().min(1).max(40),
  bot_token: z.string().min(1).max(300),
  bot_user_id: z.string().min(1).max(40),
  app_id: z.string().min(1).max(40),
});

const ListQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

const viewOf = (v: InstallationView) => ({
  team_id: v.teamId,
  bot_user_id: v.botUserId,
  app_id: v.appId,
  installed_at: v.installedAt,
});

export const slackAdminRoutes = new Hono<AppEnv>();

slackAdminRoutes.put("/slack/installations", async (c) => {
  await authorize(c, mayOperate);
  const body = await jsonBody(c, Installation);
  return c.json(viewOf(await install(slackInstallPortsFor(c.env), body)), 200);
});

slackAdminRoutes.get("/slack/installations", async (c) => {
  await authorize(c, mayOperate);
  const { limit } = queryParams(c, ListQuery);
  const items = await slackInstallPortsFor(c.env).installations.list(limit);
  return c.json({ items: items.map(viewOf) });
});
