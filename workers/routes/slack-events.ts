import { createRoute } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { slackAckPortsFor, slackApiFor, slackInstallPortsFor } from "../../platform/deps";
import { tooLarge, unauthorized, unavailable } from "../../src/errors";
import { acknowledge, checkOauthState, install, oauthState } from "../../src/slackbot/service";
import { exchangeCode } from "../../src/slackbot/web-api";
import type { AppContext } from "../http";
import { errors, json, open, queryOf, routes } from "../openapi";

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

const tags = ["slack"];
const slackSigned = [{ slackSignature: [] }];

const events = createRoute({
  method: "post",
  path: "/events",
  tags,
  summary: "The Events API request URL",
  description:
    "Signed by Slack (X-Slack-Signature over the raw bytes and X-Slack-Request-Timestamp), no platform token: anything unsigned is a 401. `url_verification` is answered with its challenge; events are queued.",
  security: slackSigned,
  middleware: bodyLimit({
    maxSize: EVENTS_LIMIT,
    onError: () => {
      throw tooLarge(`request body larger than ${EVENTS_LIMIT} bytes`);
    },
  }),
  request: {
    headers: z.object({
      "x-slack-request-timestamp": z.string().optional(),
      "x-slack-signature": z.string().optional(),
      "x-slack-retry-num": z.string().optional(),
      "x-slack-retry-reason": z.string().optional(),
    }),
    body: {
      required: true,
      description: "Slack's event envelope, as Slack sends it (checked against the signature before it is read)",
      content: { "application/json": { schema: { type: "object" } } },
    },
  },
  responses: {
    200: json(z.union([z.object({ challenge: z.string() }), z.object({ ok: z.literal(true) })]), "acknowledged"),
    ...errors,
  },
});
const installRoute = createRoute({
  method: "get",
  path: "/install",
  tags,
  summary: "A redirect to Slack's OAuth v2 consent, with a signed state",
  security: open,
  responses: { 302: { description: "to Slack's /oauth/v2/authorize" }, ...errors },
});
const callback = createRoute({
  method: "get",
  path: "/oauth/callback",
  tags,
  summary: "Slack's OAuth redirect: the code exchanged, the bot token stored",
  description: "Authenticated by the signed OAuth state from GET /slack/install; without a valid one, a 401.",
  security: open,
  request: { query: Callback },
  responses: {
    201: json(
      z.object({ installed: z.object({ team_id: z.string(), bot_user_id: z.string(), app_id: z.string() }) }),
      "installed",
    ),
    ...errors,
  },
});

export const slackRoutes = routes()
  .openapi(events, async (c) => {
    const ack = await acknowledge(slackAckPortsFor(c.env), {
      timestamp: c.req.header("x-slack-request-timestamp"),
      signature: c.req.header("x-slack-signature"),
      body: new Uint8Array(await c.req.arrayBuffer()),
      contentType: c.req.header("content-type") ?? "",
      retryNum: c.req.header("x-slack-retry-num"),
      retryReason: c.req.header("x-slack-retry-reason"),
    });
    if (ack.kind === "challenge") return c.json({ challenge: ack.challenge }, 200);
    return c.json({ ok: true as const }, 200);
  })
  .openapi(installRoute, async (c) => {
    const client = oauthClient(c);
    const authorize = new URL("/oauth/v2/authorize", c.env.SLACK_API_BASE || "https://slack.com/api");
    authorize.searchParams.set("client_id", client.id);
    authorize.searchParams.set("scope", BOT_SCOPES.join(","));
    authorize.searchParams.set("redirect_uri", callbackUrl(c));
    authorize.searchParams.set("state", await oauthState(client.secret, Date.now()));
    return c.redirect(authorize.toString(), 302);
  })
  .openapi(callback, async (c) => {
    const client = oauthClient(c);
    const q = queryOf(c, callback);
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
