import type { MiddlewareHandler } from "hono";
import { rateLimited } from "../src/errors";
import { positiveVar } from "../src/vars";
import type { AppEnv } from "./http";

// Requests per caller through Workers' rate-limiting binding (API_RATE_LIMIT
// in wrangler.toml: so many requests per period per key, counted at each
// Cloudflare location). The key is the verified caller (team and user), so
// one user's scripts cannot starve the rest of their team and a new token
// does not reset the count. Over the limit: 429 rate_limited with
// Retry-After, nothing done.
//
// The binding says only yes or no; Retry-After is the time left in the
// current window of API_RATE_LIMIT_PERIOD_SECONDS, which must equal the
// binding's period (test/node/deploy-doc.test.ts checks wrangler.toml).
//
// Without the binding (a deployment that removes it, the benchmarks: one
// bench user sends thousands of requests a second, which is load, not a
// user) nothing is limited. A binding that fails lets the request through,
// logged: a rate limit protects capacity, it is not an access check, and a
// limiter outage must not take the API down with it.

const DEFAULT_PERIOD_SECONDS = 60;

/** Seconds left in the fixed window of `periodSeconds` that `nowMs` falls in (at least 1). */
export function secondsLeftInWindow(nowMs: number, periodSeconds: number): number {
  const periodMs = periodSeconds * 1000;
  return Math.max(1, Math.ceil((periodMs - (nowMs % periodMs)) / 1000));
}

/** After requireToken: counts the request against its caller. */
export const limitPerCaller: MiddlewareHandler<AppEnv> = async (c, next) => {
  const limiter = c.env.API_RATE_LIMIT as RateLimit | undefined;
  if (!limiter) return next();
  const { team, user } = c.get("identity");
  let allowed = true;
  try {
    allowed = (await limiter.limit({ key: `${team}:${user}` })).success;
  } catch (error) {
    console.error("rate limiter unavailable; request let through", error);
  }
  if (!allowed) {
    const period = positiveVar(
      "API_RATE_LIMIT_PERIOD_SECONDS",
      c.env.API_RATE_LIMIT_PERIOD_SECONDS,
      DEFAULT_PERIOD_SECONDS,
    );
    throw rateLimited(
      "too many requests from this user; retry after the time in Retry-After",
      secondsLeftInWindow(Date.now(), period),
    );
  }
  return next();
};
