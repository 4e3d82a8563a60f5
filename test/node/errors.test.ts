import { describe, expect, it } from "vitest";
import { errorBody, statusOf } from "../../platform/error-status";
import {
  badRequest,
  conflict,
  DomainError,
  ERROR_KINDS,
  type ErrorKind,
  forbidden,
  invalidBody,
  notFound,
  rateLimited,
  redactedMessage,
  tooLarge,
  unauthorized,
  unavailable,
  unsupportedMedia,
} from "../../src/errors";
import { keyReused } from "../../src/teams/idempotency";
import { DatabaseUnavailable } from "../../storage/guarded-driver";

describe("redactedMessage (log lines)", () => {
  it("blanks quoted values and id-like words, keeps the rest, and stays short", () => {
    expect(
      redactedMessage(
        "Duplicate entry 'T1ABC-ann@acme.test' for key 'users.email' in INSERT INTO users VALUES (U0000042, \"Ann\")",
      ),
    ).toBe("Duplicate entry ? for key ? in INSERT INTO users VALUES (?, ?)");
    expect(redactedMessage("D1_ERROR: no such column: nope")).toBe("D1_ERROR: no such column: nope");
    expect(redactedMessage("x".repeat(500))).toHaveLength(200);
  });
});

describe("statusOf (the edge's one mapping from kinds to HTTP)", () => {
  const expected: Record<ErrorKind, number> = {
    invalid: 400,
    unauthorized: 401,
    forbidden: 403,
    not_found: 404,
    conflict: 409,
    too_large: 413,
    unsupported: 415,
    limited: 429,
    unavailable: 503,
  };

  it("answers every kind with its status, and ERROR_KINDS lists every kind", () => {
    expect([...ERROR_KINDS].sort()).toEqual(Object.keys(expected).sort());
    for (const kind of ERROR_KINDS) expect({ kind, status: statusOf(kind) }).toEqual({ kind, status: expected[kind] });
  });

  it("a code only refines its own kind: a reused idempotency key is 422, nothing else is", () => {
    expect(statusOf("invalid", "idempotency_key_reused")).toBe(422);
    expect(statusOf("invalid", "bad_request")).toBe(400);
    expect(statusOf("invalid", "invalid_body")).toBe(400);
    expect(statusOf("conflict", "idempotency_key_reused")).toBe(409);
    const reused = keyReused();
    expect(reused).toBeInstanceOf(DomainError);
    expect(statusOf(reused.kind, reused.code)).toBe(422);
  });

  it("the factories pair each kind with the code clients have always seen", () => {
    const pairs = [
      [badRequest("m"), "invalid", "bad_request", 400],
      [invalidBody("m"), "invalid", "invalid_body", 400],
      [unauthorized("m"), "unauthorized", "unauthorized", 401],
      [forbidden("m"), "forbidden", "forbidden", 403],
      [notFound("m"), "not_found", "not_found", 404],
      [conflict("m"), "conflict", "conflict", 409],
      [tooLarge("m"), "too_large", "payload_too_large", 413],
      [unsupportedMedia("m"), "unsupported", "unsupported_media_type", 415],
      [rateLimited("m", 2), "limited", "rate_limited", 429],
      [unavailable("m"), "unavailable", "unavailable", 503],
    ] as const;
    for (const [error, kind, code, status] of pairs) {
      expect(error).toBeInstanceOf(DomainError);
      expect({ kind: error.kind, code: error.code, status: statusOf(error.kind, error.code) }).toEqual({
        kind,
        code,
        status,
      });
    }
    expect(rateLimited("m", 2, { limit: "poster" })).toMatchObject({
      retryAfterSeconds: 2,
      details: { limit: "poster" },
    });
    expect(conflict("m", { ids: ["a"] }).details).toEqual({ ids: ["a"] });
  });

  it("a database that does not answer is unavailable (503) with its retry-after", () => {
    const error = new DatabaseUnavailable("breaker open", 5);
    expect(error).toBeInstanceOf(DomainError);
    expect({ kind: error.kind, code: error.code, retryAfterSeconds: error.retryAfterSeconds }).toEqual({
      kind: "unavailable",
      code: "unavailable",
      retryAfterSeconds: 5,
    });
    expect(statusOf(error.kind, error.code)).toBe(503);
  });
});

describe("errorBody (the one JSON error shape)", () => {
  it("is { error: { code, message, details? } }", () => {
    expect(errorBody("not_found", "m")).toEqual({ error: { code: "not_found", message: "m" } });
    expect(errorBody("conflict", "m", { ids: [] })).toEqual({
      error: { code: "conflict", message: "m", details: { ids: [] } },
    });
  });
});
