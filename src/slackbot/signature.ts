// Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack):
// `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">`
// keyed with the app's signing secret, `X-Slack-Request-Timestamp` in Unix
// seconds. Pure WebCrypto: the raw bytes as received are verified before any
// parsing, and the comparison is crypto.subtle.verify's (constant time).

/** Requests stamped further than this from now, either way, are refused (replays). */
export const MAX_SKEW_SECONDS = 5 * 60;

export type SignatureFailure =
  | "missing_headers"
  | "malformed_timestamp"
  | "stale_timestamp"
  | "future_timestamp"
  | "malformed_signature"
  | "bad_signature"
  | "no_secret";

export type SignatureCheck = { ok: true } | { ok: false; reason: SignatureFailure };

export interface SignedRequest {
  /** X-Slack-Request-Timestamp, as sent. */
  timestamp: string | undefined;
  /** X-Slack-Signature, as sent. */
  signature: string | undefined;
  /** The body's bytes exactly as received. */
  body: Uint8Array;
}

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    // One key per secret (a deployment has one or two while rotating).
    if (keys.size > 8) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

/** The bytes Slack signs: `v0:<timestamp>:` followed by the raw body. */
function baseString(timestamp: string, body: Uint8Array): Uint8Array {
  const prefix = encoder.encode(`v0:${timestamp}:`);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

function hexBytes(hex: string): Uint8Array | null {
  if (hex.length !== 64 || !/^[0-9a-f]+$/i.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Checks a request's Slack signature against one signing secret at `nowMs`.
 * The timestamp is checked first (a replay of an old, validly signed request
 * is refused), then the HMAC over the raw bytes.
 */
export async function verifySlackSignature(
  secret: string,
  request: SignedRequest,
  nowMs: number,
): Promise<SignatureCheck> {
  if (!secret) return { ok: false, reason: "no_secret" };
  const { timestamp, signature, body } = request;
  if (!timestamp || !signature) return { ok: false, reason: "missing_headers" };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "malformed_timestamp" };
  const skew = Number(timestamp) - Math.floor(nowMs / 1000);
  if (skew < -MAX_SKEW_SECONDS) return { ok: false, reason: "stale_timestamp" };
  if (skew > MAX_SKEW_SECONDS) return { ok: false, reason: "future_timestamp" };
  const mac = signature.startsWith("v0=") ? hexBytes(signature.slice(3)) : null;
  if (!mac) return { ok: false, reason: "malformed_signature" };
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(secret), mac, baseString(timestamp, body));
  return valid ? { ok: true } : { ok: false, reason: "bad_signature" };
}

/** The `v0=<hex>` signature of a body at a timestamp: what Slack sends (tests, the bench, a local client). */
export async function slackSignature(secret: string, timestamp: string, body: Uint8Array | string): Promise<string> {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), baseString(timestamp, bytes)));
  return `v0=${[...mac].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}
