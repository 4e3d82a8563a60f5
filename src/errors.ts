// Errors a client can cause carry their HTTP status and a stable code, so the
// transport maps them to `{ error: { code, message } }` without guessing.

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
  | "internal";

export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const badRequest = (message: string, details?: unknown) => new AppError(400, "bad_request", message, details);
export const notFound = (message: string) => new AppError(404, "not_found", message);
export const conflict = (message: string, details?: unknown) => new AppError(409, "conflict", message, details);

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
