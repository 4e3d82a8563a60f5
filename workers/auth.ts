import type { MiddlewareHandler } from "hono";
import { liveActor } from "../platform/live-actors";
import { type Decision, isOperator, type Principal, parseOperators } from "../src/auth/policy";
import { checkSecret, SecretError, verifyToken } from "../src/auth/tokens";
import { forbidden, notFound, unauthorized, unavailable } from "../src/errors";
import type { AppContext, AppEnv } from "./http";

// Authentication at the edge: a bearer access token names the caller; what
// the caller may do is decided from live state (src/auth/policy.ts) by the
// route, through principalOf(). Nothing here trusts a claim beyond identity.

/** A secret too short (or missing) makes every request a 503: the Worker refuses to serve with it. */
export function secretOf(env: Env): string {
  try {
    return checkSecret(env.JWT_SECRET);
  } catch (error) {
    if (error instanceof SecretError) {
      console.error(`refusing to serve: ${error.message}`);
      throw unavailable("the platform is misconfigured (token secret); see docs/security.md");
    }
    throw error;
  }
}

/** Every /v1 route: a valid access token in `Authorization: Bearer`, or 401. */
export const requireToken: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw unauthorized("missing bearer token");
  const result = await verifyToken(match[1], secretOf(c.env));
  if (!result.ok) throw unauthorized(result.reason);
  c.set("identity", result.identity);
  await next();
};

/**
 * The caller as live state knows it, read once per request: an operator
 * (PLATFORM_OPERATORS), or the team cache's current row for the user (role,
 * active), or unknown.
 */
export async function principalOf(c: AppContext): Promise<Principal> {
  const cached = c.get("principal");
  if (cached) return cached;
  const { team, user } = c.get("identity");
  let principal: Principal;
  if (isOperator(parseOperators(c.env.PLATFORM_OPERATORS), team, user)) {
    principal = { kind: "operator", team, user };
  } else {
    const live = await liveActor(c.env, team, user);
    principal = live
      ? { kind: "member", team, user, role: live.role, active: live.active }
      : { kind: "unknown", team, user };
  }
  c.set("principal", principal);
  return principal;
}

/** Turns a denial into an error: forbidden for the caller's own things, not_found for anything else. */
export function enforce(decision: Decision): void {
  if (decision.ok) return;
  if (decision.kind === "not_found") throw notFound(decision.message);
  throw forbidden(decision.message);
}

/** Asks the policy about the caller: `check(principal)` must allow, or the request ends here. */
export async function authorize(c: AppContext, check: (p: Principal) => Decision): Promise<Principal> {
  const principal = await principalOf(c);
  enforce(check(principal));
  return principal;
}
