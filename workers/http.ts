import type { Context } from "hono";
import type { z } from "zod";
import type { Claims } from "../src/auth/jwt";
import { AppError } from "../src/errors";
import type { Deps } from "./deps";

// Transport plumbing shared by the routes: the Hono env type, body parsing
// with zod, and the JSON error shape.

export type AppEnv = {
  Bindings: Env;
  /** recSource and errorCode label the request's metrics (workers/metrics.ts). */
  Variables: { claims: Claims; deps: Deps; recSource: string; errorCode: string };
};
export type AppContext = Context<AppEnv>;

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Reads a JSON body and validates it; anything off is a 400 naming the problem. */
export async function jsonBody<S extends z.ZodType>(c: AppContext, schema: S): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new AppError(400, "invalid_body", "request body must be valid JSON");
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    throw new AppError(400, "invalid_body", issues.map((i) => `${i.path || "body"}: ${i.message}`).join("; "), {
      issues,
    });
  }
  return parsed.data;
}
