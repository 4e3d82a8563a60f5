// Errors a client can cause. Each carries a kind (what went wrong, in the
// domain's words), a stable code (what clients match on) and a message, and
// maybe details. No HTTP here: the edge turns a kind into a status
// (statusOf in workers/http.ts) and every error into the one JSON shape
// `{ error: { code, message, details? } }` (errorBody, same file).

/** What went wrong, as the domain sees it. */
export type ErrorKind =
  /** The request is malformed or breaks a rule (a bad body, a bad parameter, a reused idempotency key). */
  | "invalid"
  /** No valid credentials. */
  | "unauthorized"
  /** Known caller, not allowed. */
  | "forbidden"
  /** Nothing of that name (or nothing the caller may know about). */
  | "not_found"
  /** The current state refuses it (taken, exists, changed concurrently). */
  | "conflict"
  /** More than is accepted in one request. */
  | "too_large"
  /** A body in a form that is not taken. */
  | "unsupported"
  /** Over a rate; retry later (retryAfterSeconds says when). */
  | "limited"
  /** A dependency is down or misconfigured; retry later. */
  | "unavailable";

/** Every kind, for exhaustive checks and tests. */
export const ERROR_KINDS = [
  "invalid",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "too_large",
  "unsupported",
  "limited",
  "unavailable",
] as const satisfies readonly ErrorKind[];

/** The codes clients see (`error.code`); stable. */
export type ErrorCode =
  | "bad_request"
  | "invalid_body"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "idempotency_key_reused"
  | "payload_too_large"
  | "unsupported_media_type"
  | "unknown_source"
  | "unknown_item"
  | "invalid_model"
  | "rate_limited"
  | "unavailable"
  | "runtime_unavailable"
  /** The promotion gate refused a model (src/recommend/promotion-gate.ts); details carry the numbers. */
  | "gate_refused"
  | "internal";

export interface DomainErrorOptions {
  /** For limited and unavailable: when a retry may succeed (the edge's Retry-After). */
  retryAfterSeconds?: number;
}

export class DomainError extends Error {
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly kind: ErrorKind,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    options: DomainErrorOptions = {},
  ) {
    super(message);
    this.name = "DomainError";
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

// The usual pairs of kind and code.
export const badRequest = (message: string, details?: unknown) =>
  new DomainError("invalid", "bad_request", message, details);
export const invalidBody = (message: string, details?: unknown) =>
  new DomainError("invalid", "invalid_body", message, details);
export const unauthorized = (message: string) => new DomainError("unauthorized", "unauthorized", message);
export const forbidden = (message: string, details?: unknown) =>
  new DomainError("forbidden", "forbidden", message, details);
export const notFound = (message: string, details?: unknown) =>
  new DomainError("not_found", "not_found", message, details);
export const conflict = (message: string, details?: unknown) =>
  new DomainError("conflict", "conflict", message, details);
export const tooLarge = (message: string, details?: unknown) =>
  new DomainError("too_large", "payload_too_large", message, details);
export const unsupportedMedia = (message: string) => new DomainError("unsupported", "unsupported_media_type", message);
export const rateLimited = (message: string, retryAfterSeconds: number, details?: unknown) =>
  new DomainError("limited", "rate_limited", message, details, { retryAfterSeconds });
export const unavailable = (message: string, options?: DomainErrorOptions) =>
  new DomainError("unavailable", "unavailable", message, undefined, options);

/**
 * An error message fit for a log line: the values it quotes (SQL literals,
 * addresses, names) and id-like words blanked, at most 200 characters.
 */
export function redactedMessage(message: string): string {
  return message
    .replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "?")
    .replace(/\b(?=[A-Z0-9]*\d)[A-Z][A-Z0-9]{5,}\b/g, "?")
    .slice(0, 200);
}
