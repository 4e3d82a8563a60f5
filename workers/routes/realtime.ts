import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { GATEWAY_HEADERS } from "../../durable-objects/gateway/gateway";
import { errorBody } from "../../platform/error-status";
import { gatewayNamed } from "../../platform/stubs";
import { mayConnect, type Principal } from "../../src/auth/policy";
import { type Identity, verifyToken } from "../../src/auth/tokens";
import { badRequest, forbidden, unauthorized } from "../../src/errors";
import { parseHandshakeTopics } from "../../src/realtime/protocol";
import { issueTicket, TICKET_TTL_SECONDS, ticketOf } from "../../src/realtime/tickets";
import { gatewayName, parseShardCount } from "../../src/realtime/topics";
import type { Role } from "../../src/teams/model";
import { authorize, secretOf } from "../auth";
import type { AppContext } from "../http";
import { bearer, ErrorBody, errors, json, routes } from "../openapi";

// The client's one WebSocket, in two steps (the way Slack's rtm.connect
// works), so that no long-lived token ever sits in a URL or a log:
//
// - POST /v1/rtm.connect, with the access token in `Authorization: Bearer`
//   like every /v1 route (mounted after requireToken), answers a ticket:
//   `{ url: "/v1/rtm?ticket=…", ticket, expires_in }`, good for one socket
//   within TICKET_TTL_SECONDS (src/realtime/tickets.ts).
// - GET /v1/rtm?ticket=… opens the socket. Mounted ahead of requireToken,
//   because a browser cannot set headers on a WebSocket. A client that can
//   (a server, a bot, the bench) may send `Authorization: Bearer <access
//   token>` instead of a ticket: a header is not logged the way a URL is.
//   `?token=` is refused: that is the long-lived token in a URL.
//
// Both steps read the user's live state: only an active member of the team
// gets a ticket or a socket (403 otherwise, before any upgrade). The socket
// goes to the user's gateway shard (gw:<team>:<n>), which uses the ticket
// up, applies its limits, closes the socket when the access token expires,
// and speaks the protocol in src/realtime/protocol.ts (`?subscribe=`
// subscribes in the handshake).

/** Who may open a socket: the access token's user, if an active member of its team right now. */
async function checkLive(c: AppContext, identity: Identity): Promise<Principal> {
  c.set("identity", identity);
  return authorize(c, (p) => mayConnect(p, identity.team));
}

const tags = ["realtime"];

const connect = createRoute({
  method: "post",
  path: "/",
  tags,
  summary: "A single-use ticket for the WebSocket (GET /v1/rtm?ticket=…)",
  description: "Only an active member of the team gets one (403 otherwise). The answer is never cached.",
  security: bearer,
  responses: {
    200: json(
      z.object({ url: z.string(), ticket: z.string(), expires_in: z.number() }),
      `the socket's URL with the ticket, good for one socket within ${TICKET_TTL_SECONDS} s`,
    ),
    ...errors,
  },
});

export const ticketRoutes = routes().openapi(connect, async (c) => {
  const identity = c.get("identity");
  await checkLive(c, identity);
  const { ticket, ttlSeconds } = await issueTicket(identity, secretOf(c.env), Math.floor(Date.now() / 1000));
  // A ticket is a credential: never cached on the way.
  c.header("cache-control", "no-store");
  return c.json({ url: `/v1/rtm?ticket=${encodeURIComponent(ticket)}`, ticket, expires_in: ttlSeconds }, 200);
});

interface Credentials {
  identity: Identity;
  /** The ticket's nonce and expiry; null when connecting with a bearer token. */
  ticket: { nonce: string; exp: number } | null;
}

async function credentialsOf(c: AppContext): Promise<Credentials> {
  if (c.req.query("token") !== undefined) {
    throw unauthorized(
      "access tokens are not accepted in the URL; POST /v1/rtm.connect for a ticket, then connect with ?ticket=",
    );
  }
  const secret = secretOf(c.env);
  const ticket = c.req.query("ticket");
  if (ticket !== undefined) {
    const now = Math.floor(Date.now() / 1000);
    const result = await verifyToken(ticket, secret, {
      use: "rtm",
      maxTtlSeconds: TICKET_TTL_SECONDS,
      nowSeconds: now,
    });
    if (!result.ok) throw unauthorized(result.reason);
    const t = result.claims ? ticketOf(result.claims, now) : null;
    if (!t) throw unauthorized("not a socket ticket");
    const { team, user } = result.identity;
    return { identity: { team, user, exp: t.tokenExp }, ticket: { nonce: t.nonce, exp: t.exp } };
  }
  const header = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (!header) {
    throw unauthorized("missing ticket (POST /v1/rtm.connect) or Authorization: Bearer header");
  }
  const result = await verifyToken(header, secret);
  if (!result.ok) throw unauthorized(result.reason);
  return { identity: result.identity, ticket: null };
}

const socket = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "The client's WebSocket (Upgrade: websocket)",
  description:
    "A WebSocket upgrade, not a JSON route: `?ticket=` from POST /v1/rtm.connect (a browser cannot set headers), or `Authorization: Bearer` from a client that can; an access token in the URL (`?token=`) is refused. Only an active member of the team gets a socket (403 before any upgrade). Frames: src/realtime/protocol.ts, docs/realtime.md.",
  security: [{ rtmTicket: [] }, { bearer: [] }],
  request: {
    query: z.object({
      ticket: z.string().optional().meta({ description: "the single-use ticket of POST /v1/rtm.connect" }),
      subscribe: z
        .string()
        .optional()
        .meta({ description: "topics to subscribe to in the handshake, comma-separated" }),
    }),
    headers: z.object({ upgrade: z.literal("websocket") }),
  },
  responses: {
    101: { description: "Switching Protocols: the socket, on the user's gateway shard" },
    426: json(ErrorBody, "upgrade_required: not a WebSocket request"),
    ...errors,
  },
});

export const socketRoutes = routes().openapi(socket, async (c) => {
  const credentials = await credentialsOf(c);
  c.set("identity", credentials.identity);
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.json(errorBody("upgrade_required", "GET /v1/rtm is a WebSocket endpoint (Upgrade: websocket)"), 426);
  }
  const subscribe = c.req.query("subscribe");
  const topics = subscribe === undefined ? [] : parseHandshakeTopics(subscribe);
  if (typeof topics === "string") throw badRequest(topics);
  const { team, user } = credentials.identity;
  const principal = await checkLive(c, credentials.identity);
  if (principal.kind !== "member") throw forbidden("not an active member of this team");
  const name = gatewayName(team, user, parseShardCount(c.env.GATEWAY_SHARDS));
  const headers = handshakeHeaders(c.req.raw.headers, name, credentials, principal.role, subscribe);
  return gatewayNamed(c.env, name).fetch("https://gateway/connect", { headers });
});

/**
 * What the gateway hears of a handshake: the client's headers minus its
 * credentials and anything that could pass for what only the Worker may
 * tell a gateway, then who connects (GATEWAY_HEADERS).
 */
function handshakeHeaders(
  client: Headers,
  gateway: string,
  { identity, ticket }: Credentials,
  role: Role,
  subscribe: string | undefined,
): Headers {
  const headers = new Headers();
  for (const [k, v] of client) {
    if (k === "authorization" || k === "cookie" || k.startsWith("x-rtm-")) continue;
    headers.set(k, v);
  }
  headers.set(GATEWAY_HEADERS.team, identity.team);
  headers.set(GATEWAY_HEADERS.user, identity.user);
  headers.set(GATEWAY_HEADERS.gateway, gateway);
  headers.set(GATEWAY_HEADERS.exp, String(identity.exp));
  headers.set(GATEWAY_HEADERS.role, role);
  if (subscribe !== undefined) headers.set(GATEWAY_HEADERS.subscribe, subscribe);
  if (ticket) {
    headers.set(GATEWAY_HEADERS.ticket, ticket.nonce);
    headers.set(GATEWAY_HEADERS.ticketExp, String(ticket.exp));
  }
  return headers;
}
