import type { MiddlewareHandler } from "hono";
import { verifyToken } from "../src/auth/jwt";
import { AppError } from "../src/errors";
import type { AppContext, AppEnv } from "./http";

/** Every /v1 route: a valid HS256 bearer token, or 401. */
export const requireToken: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw new AppError(401, "unauthorized", "missing bearer token");
  if (!c.env.JWT_SECRET) throw new Error("JWT_SECRET is not configured");
  const result = await verifyToken(match[1], c.env.JWT_SECRET);
  if (!result.ok) throw new AppError(401, "unauthorized", result.reason);
  c.set("claims", result.claims);
  await next();
};

export function hasScope(c: AppContext, scope: string): boolean {
  return c.get("claims").scope.includes(scope);
}

/** Team admin routes: admin scope for this very team, or a platform operator. */
export function requireTeamAdmin(c: AppContext, teamId: string): void {
  const claims = c.get("claims");
  if (hasScope(c, "platform")) return;
  if (!hasScope(c, "admin")) throw new AppError(403, "forbidden", "this route needs the admin scope");
  if (claims.team !== teamId) throw new AppError(403, "forbidden", "the token belongs to another team");
}

export function requirePlatform(c: AppContext): void {
  if (!hasScope(c, "platform")) throw new AppError(403, "forbidden", "this route needs the platform scope");
}
