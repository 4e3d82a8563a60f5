import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { slackAckPortsFor, slackApiFor, slackInstallPortsFor } from "../../platform/deps";
import { tooLarge, unauthorized, unavailable } from "../../src/errors";
import { acknowledge, checkOauthState, install, oauthState } from "../../src/slackbot/service";
import { exchangeCode } from "../../src/slackbot/web-api";
import { type AppContext, type AppEnv, queryParams } from "../http";

// The Slack app's endpoints, outside /v1: Slack authenticates them, not a
// platform token.
//   POST /slack/events            the Events API request URL: signature checked on the raw
//                                 bytes, url_verification answered, events queued (slack-events)
//   GET  /slack/install           a redirect to Slack's OAuth v2 consent with a signed state
//   GET  /slack/oauth/callback    the code exchanged (oauth.v2.access), the bot token stored
// Use cases: src/slackbot/service.ts. docs/slack-bot.md.

/** Event bodies are a few KB; Slack's own limit is far below this. */
const EVENTS_LIMIT = 256 * 1024;

/** What the bot asks a workspace for: see mentions, read channel messages, post replies. */
export const BOT_SCOPES = ["app_mentions:read", "channels:history", "chat:write"];

const Callback = z.object({
  code: z.string().min(1).max(512).optional(),
  state: z.string().min(1).max(512).optional(),
  error: z.string().max(200).optional(),
});

function oauthClient(c: AppContext): { id: string; secret: string } {
  const id = c.env.SLACK_CLIENT_ID;
  const secret = c.env.SLACK_CLIENT_SECRET;
  if (!id || !secret)
    throw unavailable("the Slack OAuth client (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET) is not configured");
  return { id, secret };
}

const callbackUrl = (c: AppContext) => `${new URL(c.req.url).origin}/slack/oauth/callback`;

export const slackRoutes = new Hono<AppEnv>();

slackRoutes.post(
  "/events",
  bodyLimit({
    maxSize: EVENTS_LIMIT,
    onError: () => {
      throw tooLarge(`request body larger than ${EVENTS_LIMIT} bytes`);
    },
  }),
  async (c) => {
    const ack = await acknowledge(slackAckPortsFor(c.env), {
      timestamp: c.req.header("x-slack-request-timestamp"),
      signature: c.req.header("x-slack-signature"),
      body: new Uint8Array(await c.req.arrayBuffer()),
      contentType: c.req.header("content-type") ?? "",
      retryNum: c.req.header("x-slack-retry-num"),
      retryReason: c.req.header("x-slack-retry-reason"),
    });
    if (ack.kind === "challenge") return c.json({ challenge: ack.challenge });
    return c.json({ ok: true });
  },
);

slackRoutes.get("/install", async (c) => {
  const client = oauthClient(c);
  const authorize = new URL("/oauth/v2/authorize", c.env.SLACK_API_BASE || "https://slack.com/api");
  authorize.searchParams.set("client_id", client.id);
  authorize.searchParams.set("scope", BOT_SCOPES.join(","));
  authorize.searchParams.set("redirect_uri", callbackUrl(c));
  authorize.searchParams.set("state", await oauthState(client.secret, Date.now()));
  return c.redirect(authorize.toString(), 302);
});

slackRoutes.get("/oauth/callback", async (c) => {
  const client = oauthClient(c);
  const q = queryParams(c, Callback);
  if (!q.state) throw unauthorized("the OAuth state is missing");
  await checkOauthState(client.secret, q.state, Date.now());
  if (q.error || !q.code) throw unauthorized(`the install was not granted (${q.error ?? "no code"})`);
  const grant = await exchangeCode(slackApiFor(c.env), client, q.code, callbackUrl(c));
  if (!grant.ok) {
    console.error(JSON.stringify({ slack: "oauth", failure: grant.kind, reason: grant.reason }));
    throw unavailable(`Slack refused the code exchange: ${grant.reason}`);
  }
  const view = await install(slackInstallPortsFor(c.env), {
    team_id: grant.value.teamId,
    bot_token: grant.value.botToken,
    bot_user_id: grant.value.botUserId,
    app_id: grant.value.appId,
  });
  return c.json({ installed: { team_id: view.teamId, bot_user_id: view.botUserId, app_id: view.appId } }, 201);
});
