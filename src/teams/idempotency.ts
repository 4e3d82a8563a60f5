import { badRequest, DomainError } from "../errors";
import type { IdempotencyRecord, TeamStore } from "./team-store";

// Idempotency-Key on admin writes (the way Stripe's API does it): a client
// that did not see the answer to a write (a timeout, a dropped connection, a
// crash on our side) sends the same request with the same key again and gets
// the first answer, instead of a duplicate or a conflict. The key's record (a
// hash of the request, the result) is written in the same atomic unit as the
// change (DerivedWrites.idempotency), so there is no moment at which the
// change exists without its record, or the reverse. Keys are per team, kept
// IDEMPOTENCY_RETENTION_MS, and a key sent with a different request is
// refused (idempotency_key_reused).

/** Printable ASCII, no spaces, at most 255 characters (a UUID fits). */
const KEY = /^[\x21-\x7e]{1,255}$/;
export const IDEMPOTENCY_RETENTION_MS = 24 * 3600_000;

/** What a write with a key must know: the key and a hash of the request it came with. */
export interface IdempotencyRequest {
  key: string;
  requestHash: string;
}

/** The header's key, checked (invalid when malformed), or null when the header is absent. */
export function idempotencyKeyOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  if (!KEY.test(header)) {
    throw badRequest("Idempotency-Key must be 1-255 printable ASCII characters without spaces");
  }
  return header;
}

/** SHA-256 (hex) of what identifies a request: method, route with its ids, and the validated body. */
export async function requestHashOf(method: string, path: string, body: unknown): Promise<string> {
  const text = `${method} ${path}\n${JSON.stringify(body ?? null)}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The stored result of an earlier write with this key, decoded, or null when
 * there was none (the write is to be made now). A different request under the
 * same key is refused (idempotency_key_reused): the client reused a key by
 * mistake, and nothing is written or replayed.
 */
export async function priorResult<T>(
  store: Pick<TeamStore, "idempotencyRecord">,
  teamId: string,
  request: IdempotencyRequest,
): Promise<T | null> {
  const record = await store.idempotencyRecord(teamId, request.key);
  if (!record) return null;
  if (record.requestHash !== request.requestHash) {
    throw keyReused();
  }
  return JSON.parse(record.result) as T;
}

/** Invalid: the key came with another request; nothing is written or replayed. */
export function keyReused(): DomainError {
  return new DomainError(
    "invalid",
    "idempotency_key_reused",
    "this Idempotency-Key was used with a different request; use a new key for a new request",
  );
}

/** The record to write with the change. */
export function recordOf(request: IdempotencyRequest, result: unknown, at: number): IdempotencyRecord {
  return { key: request.key, requestHash: request.requestHash, result: JSON.stringify(result), at };
}

/** A write's result, and whether it is the stored answer of an earlier request with the same Idempotency-Key. */
export interface Once<T> {
  value: T;
  replayed: boolean;
}

/**
 * Runs a write at most once per Idempotency-Key:
 * an earlier write with the key answers instead, and a concurrent request
 * with the same key that won the race answers in place of our conflict.
 */
export async function writeOnce<T>(
  store: Pick<TeamStore, "idempotencyRecord">,
  teamId: string,
  idempotency: IdempotencyRequest | null,
  write: (idempotency?: IdempotencyRequest) => Promise<T>,
): Promise<Once<T>> {
  if (!idempotency) return { value: await write(), replayed: false };
  const prior = await priorResult<T>(store, teamId, idempotency);
  if (prior !== null) return { value: prior, replayed: true };
  try {
    return { value: await write(idempotency), replayed: false };
  } catch (error) {
    if (error instanceof DomainError && error.kind === "conflict") {
      const raced = await priorResult<T>(store, teamId, idempotency);
      if (raced !== null) return { value: raced, replayed: true };
    }
    throw error;
  }
}
