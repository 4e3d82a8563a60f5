import { Hono } from "hono";
import { GATEWAY_HEADERS } from "../../durable-objects/gateway/gateway";
import { type Claims, verifyToken } from "../../src/auth/jwt";
import { AppError } from "../../src/errors";
import { gatewayName, parseShardCount } from "../../src/realtime/topics";
import { type AppContext, type AppEnv, errorBody } from "../http";

// GET /v1/rtm: the client's one WebSocket. Mounted ahead of the bearer-token
// middleware because a browser cannot set headers on a WebSocket: the token
// comes in the Authorization header or in `?token=`. The socket is handed to
// the user's gateway shard (gw:<team>:<n>), which speaks the protocol in
// src/realtime/protocol.ts.

async function claimsOf(c: AppContext): Promise<Claims> {
  const header = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  const token = header ?? c.req.query("token");
  if (!token) throw new AppError(401, "unauthorized", "missing token (Authorization header or ?token=)");
  if (!c.env.JWT_SECRET) throw new Error("JWT_SECRET is not configured");
  const result = await verifyToken(token, c.env.JWT_SECRET);
  if (!result.ok) throw new AppError(401, "unauthorized", result.reason);
  return result.claims;
}

export const rtmRoutes = new Hono<AppEnv>().get("/", async (c) => {
  const claims = await claimsOf(c);
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.json(errorBody("upgrade_required", "GET /v1/rtm is a WebSocket endpoint (Upgrade: websocket)"), 426);
  }
  const name = gatewayName(claims.team, claims.user, parseShardCount(c.env.GATEWAY_SHARDS));
  const headers = new Headers(c.req.raw.headers);
  headers.delete("authorization");
  headers.set(GATEWAY_HEADERS.team, claims.team);
  headers.set(GATEWAY_HEADERS.user, claims.user);
  headers.set(GATEWAY_HEADERS.gateway, name);
  const gateway = c.env.GATEWAY.get(c.env.GATEWAY.idFromName(name));
  return gateway.fetch("https://gateway/connect", { headers });
});
