import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "./http";

// Cross-origin access for browser clients on other origins (a web app
// calling the API from its own domain). CORS_ORIGINS lists the origins
// allowed, comma-separated ("https://app.example.com,https://admin.example.com"),
// or "*" for any. Empty (the default): no CORS headers, so a browser keeps
// other origins' scripts out; same-origin clients (the console at /) need none.
//
// The API authenticates with bearer tokens, never cookies, so credentials
// are not allowed: a page on an allowed origin still needs a token to do
// anything.

/** The headers a browser client sends beyond the simple ones. */
const ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key"];
/** The headers a client script may read from an answer. */
const EXPOSE_HEADERS = ["retry-after", "x-request-id", "idempotent-replayed"];

/** CORS_ORIGINS as a list: trimmed, empties dropped. */
export function corsOriginsOf(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
}

/** Hono's cors() for one CORS_ORIGINS value, built once per isolate and value, not per request. */
let built: { value: string; handler: MiddlewareHandler<AppEnv> | null } | null = null;

function corsFor(value: string | undefined): MiddlewareHandler<AppEnv> | null {
  const key = value ?? "";
  if (built?.value === key) return built.handler;
  const origins = corsOriginsOf(key);
  const any = origins.includes("*");
  const handler =
    origins.length === 0
      ? null
      : cors({
          origin: (origin) => (any ? "*" : origins.includes(origin) ? origin : null),
          allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
          allowHeaders: ALLOW_HEADERS,
          exposeHeaders: EXPOSE_HEADERS,
          maxAge: 600,
        });
  built = { value: key, handler };
  return handler;
}

/** The CORS middleware for the configured origins; a no-op when none are. */
export const corsFromVars: MiddlewareHandler<AppEnv> = async (c, next) => {
  const handler = corsFor(c.env.CORS_ORIGINS);
  // A WebSocket upgrade is not subject to CORS (the gateway checks the
  // ticket), and its 101 answer comes from the gateway with headers that
  // cannot be changed.
  if (!handler || c.req.header("upgrade")?.toLowerCase() === "websocket") return next();
  return handler(c, next);
};
