import type { Context } from "hono";
import type { z } from "zod";
import type { Deps } from "../platform/deps";

import { errorBody, statusOf } from "../platform/error-status";
import type { Principal } from "../src/auth/policy";
import type { Identity } from "../src/auth/tokens";
import { badRequest, type DomainError, invalidBody, unsupportedMedia } from "../src/errors";
import { type IdempotencyRequest, idempotencyKeyOf, requestHashOf } from "../src/teams/idempotency";

// Transport plumbing shared by the routes: the Hono env type, body parsing
// with zod, and errors as answers (errorResponse, over platform/error-status.ts:
// the status of each error kind and the one JSON error shape).

export type AppEnv = {
  Bindings: Env;
  /** recSource and errorCode label the request's metrics (workers/metrics.ts). */
  Variables: {
    identity: Identity;
    principal: Principal | undefined;
    deps: Deps;
    recSource: string;
    errorCode: string;
  };
};
export type AppContext = Context<AppEnv>;

/**
 * A domain error as the answer: its status, its code for the request's
 * metrics, Retry-After when it says when to retry, and errorBody.
 */
export function errorResponse(c: Context<AppEnv>, error: DomainError): Response {
  const status = statusOf(error.kind, error.code);
  c.set("errorCode", error.code);
  if (error.retryAfterSeconds !== undefined) c.header("retry-after", String(error.retryAfterSeconds));
  try {
    return c.json(errorBody(error.code, error.message, error.details), status);
  } catch {
    // Details that cannot be serialized never turn a 4xx into a 500.
    return c.json(errorBody(error.code, error.message), status);
  }
}

/** Deeper bodies are refused before validation: no route takes more than a few levels. */
export const MAX_JSON_DEPTH = 32;

/**
 * Reads a JSON body and validates it; anything off is a 4xx naming the
 * problem: a body not declared as JSON is 415 (a form or text/plain post from
 * a browser must not be taken as JSON), a malformed or too deeply nested one
 * 400.
 */
export async function jsonBody<S extends z.ZodType>(c: AppContext, schema: S): Promise<z.infer<S>> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (type !== "application/json" && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    throw unsupportedMedia("send the body as application/json");
  }
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw invalidBody("request body must be valid JSON");
  }
  if (depthOf(raw) > MAX_JSON_DEPTH) {
    throw invalidBody(`request body is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    throw invalidBody(issues.map((i) => `${i.path || "body"}: ${i.message}`).join("; "), { issues });
  }
  return parsed.data;
}

/** The query string by a schema; anything it refuses is a 400 naming each parameter. */
export function queryParams<S extends z.ZodType>(c: AppContext, schema: S): z.infer<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) {
    throw badRequest(parsed.error.issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; "));
  }
  return parsed.data;
}

/** Nesting depth of a parsed JSON value, walked without recursion (a hostile body can be deep). */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (d > max) max = d;
    if (max > MAX_JSON_DEPTH) return max;
    if (v !== null && typeof v === "object") {
      for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d + 1]);
    }
  }
  return max;
}

/**
 * The request's Idempotency-Key (header), with a hash of what it asks: the
 * method, the path (team and user ids) and the validated body. null without
 * the header. See src/teams/idempotency.ts.
 */
export async function idempotencyOf(c: AppContext, body: unknown): Promise<IdempotencyRequest | null> {
  const key = idempotencyKeyOf(c.req.header("idempotency-key"));
  return key === null ? null : { key, requestHash: await requestHashOf(c.req.method, c.req.path, body) };
}
