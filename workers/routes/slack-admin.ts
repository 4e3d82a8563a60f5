import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { slackInstallPortsFor } from "../../platform/deps";
import { mayOperate } from "../../src/auth/policy";
import { install } from "../../src/slackbot/service";
import type { InstallationView } from "../../src/slackbot/store";
import { authorize } from "../auth";
import { bearer, bodyOf, errors, json, jsonRequest, queryOf, routes } from "../openapi";

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

const InstallationAnswer = z.object({
  team_id: z.string(),
  bot_user_id: z.string(),
  app_id: z.string(),
  installed_at: z.number(),
});
const tags = ["slack"];

const putInstallation = createRoute({
  method: "put",
  path: "/slack/installations",
  tags,
  summary: "Install the Slack bot in a workspace by hand (replaces a previous installation)",
  description: "Platform operators only.",
  security: bearer,
  request: { body: jsonRequest(Installation) },
  responses: { 200: json(InstallationAnswer, "the installation, never its token"), ...errors },
});
const listInstallations = createRoute({
  method: "get",
  path: "/slack/installations",
  tags,
  summary: "The workspaces the bot is installed in",
  description: "Platform operators only.",
  security: bearer,
  request: { query: ListQuery },
  responses: { 200: json(z.object({ items: z.array(InstallationAnswer) }), "never their tokens"), ...errors },
});

export const slackAdminRoutes = routes()
  .openapi(putInstallation, async (c) => {
    await authorize(c, mayOperate);
    const body = await bodyOf(c, putInstallation);
    return c.json(viewOf(await install(slackInstallPortsFor(c.env), body)), 200);
  })
  .openapi(listInstallations, async (c) => {
    await authorize(c, mayOperate);
    const { limit } = queryOf(c, listInstallations);
    const items = await slackInstallPortsFor(c.env).installations.list(limit);
    return c.json({ items: items.map(viewOf) }, 200);
  });
