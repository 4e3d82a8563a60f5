import type { DomainError, ErrorCode, ErrorKind } from "../src/errors";

// Errors as HTTP, for everything that answers HTTP (the Worker's routes,
// and a Durable Object refusing a request before it reaches one): the status
// of each error kind (statusOf) and the one JSON error shape (errorBody).

/** The statuses errors answer with (500 is the unhandled error's, workers/app.ts). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503;

const STATUS_OF_KIND = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported: 415,
  limited: 429,
  unavailable: 503,
} as const satisfies Record<ErrorKind, ErrorStatus>;

/** Codes that answer with another status than their kind's. */
const STATUS_OF_CODE: { [K in ErrorKind]?: { [C in ErrorCode]?: ErrorStatus } } = {
  // Well-formed, but the key came with another request: 422, told apart from a malformed request.
  invalid: { idempotency_key_reused: 422 },
};

/** The one place an error kind (and, for a few, its code) becomes an HTTP status. */
export function statusOf(kind: ErrorKind, code?: ErrorCode): ErrorStatus {
  return (code === undefined ? undefined : STATUS_OF_CODE[kind]?.[code]) ?? STATUS_OF_KIND[kind];
}

/** The one JSON error shape: `{ error: { code, message, details? } }`. */
export function errorBody(code: string, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** A domain error as a plain Response (outside Hono: a Durable Object's refusal), Retry-After included. */
export function errorAnswer(error: DomainError): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (error.retryAfterSeconds !== undefined) headers["retry-after"] = String(error.retryAfterSeconds);
  return new Response(JSON.stringify(errorBody(error.code, error.message, error.details)), {
    status: statusOf(error.kind, error.code),
    headers,
  });
}
