import { sign } from "hono/jwt";

// Access tokens: HS256 JWTs signed and checked by hono/jwt. A token names who
// is calling (team and user) and nothing else: roles, admin rights and active
// state are read from live state on every request (src/auth/policy.ts), so a
// demoted or deactivated user loses their rights at once, not when the token
// runs out. `exp`, `nbf` and `iat` are required and enforced, and a token may
// live at most MAX_TOKEN_TTL_SECONDS, so a leaked one is worth little.

/** Shorter secrets are refused: HS256 wants a key at least as long as its hash. */
export const MIN_SECRET_BYTES = 32;
/** Default lifetime of an access token. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
/** The longest an access token may live (checked on verify, whatever it says). */
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;
/** How far a client's clock may run ahead of ours when it minted `iat`/`nbf`. */
export const CLOCK_SKEW_SECONDS = 60;

/** What a verified access token says: identity only. */
export interface Identity {
  team: string;
  user: string;
  /** When the token stops being valid (seconds); a socket opened with it closes then. */
  exp: number;
}

export type VerifyResult = { ok: true; identity: Identity } | { ok: false; reason: string };

/** Token `use` claims: an access token can never be replayed as a socket ticket, or the reverse. */
export type TokenUse = "access" | "rtm";

export class SecretError extends Error {
  override readonly name = "SecretError";
}

/** Throws unless the secret is configured and at least MIN_SECRET_BYTES long (UTF-8). */
export function checkSecret(secret: string | undefined): string {
  if (secret !== undefined && secret === lastGoodSecret) return secret;
  if (!secret) throw new SecretError("JWT_SECRET is not configured");
  const bytes = new TextEncoder().encode(secret).length;
  if (bytes < MIN_SECRET_BYTES) {
    throw new SecretError(`JWT_SECRET is ${bytes} bytes; at least ${MIN_SECRET_BYTES} are required`);
  }
  lastGoodSecret = secret;
  return secret;
}

/** The last secret that passed: every request checks the same one (its UTF-8 encoding cost a connect tens of µs). */
let lastGoodSecret: string | undefined;

const ID = /^[A-Za-z0-9_-]{1,40}$/;

/**
 * The HMAC key of a secret, imported once per isolate: hono/jwt imports a
 * string secret on every call, which cost a socket connect more than the
 * signature check itself. The key itself is kept, never the import's promise:
 * a promise made in one request and awaited by another ties the two
 * requests' lifetimes together in workerd. A deployment has one secret (two
 * while rotating).
 */
const keys = new Map<string, CryptoKey>();
async function keyOf(secret: string): Promise<CryptoKey> {
  const known = keys.get(secret);
  if (known) return known;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  if (keys.size >= 4) keys.clear();
  keys.set(secret, key);
  return key;
}

export async function signToken(
  who: { team: string; user: string; ttlSeconds?: number; use?: TokenUse; extra?: Record<string, string | number> },
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  checkSecret(secret);
  const ttl = who.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  return sign(
    {
      ...who.extra,
      team: who.team,
      sub: who.user,
      use: who.use ?? "access",
      iat: nowSeconds,
      nbf: nowSeconds,
      exp: nowSeconds + ttl,
    },
    await keyOf(secret),
    "HS256",
  );
}

/**
 * Checks signature (HS256 only: the header's alg is compared, never
 * trusted), `use`, and the time claims: all three present and finite,
 * `nbf`/`iat` not in the future (beyond the skew), `exp` in the future and
 * no further from `iat` than `maxTtl`.
 */
export async function verifyToken(
  token: string,
  secret: string,
  options: { nowSeconds?: number; use?: TokenUse; maxTtlSeconds?: number } = {},
): Promise<VerifyResult & { claims?: Record<string, unknown> }> {
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const use = options.use ?? "access";
  const maxTtl = options.maxTtlSeconds ?? MAX_TOKEN_TTL_SECONDS;
  if (token.length > 4096) return { ok: false, reason: "malformed token" };
  const checked = await checkHs256(token, await keyOf(secret));
  if (!checked.ok) return checked;
  const payload = checked.payload;
  const { team, sub, exp, nbf, iat } = payload;
  if (payload.use !== use) return { ok: false, reason: `not an ${use === "access" ? "access token" : "rtm ticket"}` };
  if (typeof team !== "string" || !ID.test(team) || typeof sub !== "string" || !ID.test(sub)) {
    return { ok: false, reason: "token lacks a valid team or user" };
  }
  if (!isTime(exp) || !isTime(nbf) || !isTime(iat)) return { ok: false, reason: "token lacks exp, nbf or iat" };
  if (iat > now + CLOCK_SKEW_SECONDS) return { ok: false, reason: "token issued in the future" };
  if (nbf > now + CLOCK_SKEW_SECONDS) return { ok: false, reason: "token not valid yet" };
  if (exp <= now) return { ok: false, reason: "token expired" };
  if (exp - iat > maxTtl) return { ok: false, reason: `token lifetime exceeds ${maxTtl} s` };
  return { ok: true, identity: { team, user: sub, exp }, claims: payload };
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * An HS256 JWT's signature, header and payload, checked the way hono/jwt's
 * verify does (header an object with `alg` HS256, `typ` absent or JWT, no
 * `crit`; the signature over the first two parts, compared by WebCrypto),
 * without its per-call overhead: every request and socket checks a token,
 * and hono's base64 and key handling cost a connect more than the HMAC.
 * The time claims are checked by verifyToken.
 */
async function checkHs256(
  token: string,
  key: CryptoKey,
): Promise<{ ok: true; payload: Record<string, unknown> } | { ok: false; reason: string }> {
  const malformed = { ok: false as const, reason: "malformed token" };
  const parts = token.split(".");
  if (parts.length !== 3) return malformed;
  const [head, body, sig] = parts as [string, string, string];
  const header = jsonPart(head);
  const payload = jsonPart(body);
  if (header === null || payload === null) return malformed;
  const typ = header.typ;
  if (
    header.alg !== "HS256" ||
    "crit" in header ||
    (typ !== undefined && (typeof typ !== "string" || typ.toLowerCase().replace(/^application\//, "") !== "jwt"))
  ) {
    return { ok: false, reason: "unsupported token algorithm" };
  }
  const signature = base64UrlBytes(sig);
  if (signature === null) return malformed;
  const valid = await crypto.subtle.verify("HMAC", key, signature, utf8.encode(`${head}.${body}`));
  return valid ? { ok: true, payload } : { ok: false, reason: "bad token signature" };
}

/** A base64url part holding a JSON object, or null. */
function jsonPart(part: string): Record<string, unknown> | null {
  const bytes = base64UrlBytes(part);
  if (bytes === null) return null;
  try {
    const value: unknown = JSON.parse(fromUtf8.decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const SEXTET = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64URL.length; i++) SEXTET[BASE64URL.charCodeAt(i)] = i;

/** Unpadded base64url (what JWTs use) to bytes; null for any other character or an impossible length. */
export function base64UrlBytes(s: string): Uint8Array | null {
  if (s.length % 4 === 1) return null;
  const out = new Uint8Array((s.length * 3) >> 2);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? (SEXTET[c] as number) : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}
