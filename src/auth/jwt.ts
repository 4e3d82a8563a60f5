// HS256 JSON Web Tokens on WebCrypto, so the same code runs in workerd and
// Node. Only HS256 is accepted: the "alg" header is checked, never trusted.

export interface Claims {
  team: string;
  user: string;
  /** "admin" for team admin routes, "platform" to provision teams. */
  scope: string[];
  iat: number;
  exp: number;
}

export type VerifyResult = { ok: true; claims: Claims } | { ok: false; reason: string };

const encoder = new TextEncoder();

export async function signToken(
  claims: Omit<Claims, "iat" | "exp"> & { ttlSeconds?: number },
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  const { ttlSeconds = 30 * 24 * 3600, ...rest } = claims;
  const header = b64urlJson({ alg: "HS256", typ: "JWT" });
  const payload = b64urlJson({ ...rest, iat: nowSeconds, exp: nowSeconds + ttlSeconds });
  const signature = await hmac(secret, `${header}.${payload}`);
  return `${header}.${payload}.${b64url(signature)}`;
}

export async function verifyToken(
  token: string,
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<VerifyResult> {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "malformed token" };
  const [h, p, s] = parts as [string, string, string];
  const header = parseJson(h);
  if (header?.alg !== "HS256") return { ok: false, reason: "unsupported token algorithm" };
  const signature = fromB64url(s);
  if (!signature) return { ok: false, reason: "malformed token signature" };
  const key = await importKey(secret, ["verify"]);
  const valid = await crypto.subtle.verify("HMAC", key, signature, encoder.encode(`${h}.${p}`));
  if (!valid) return { ok: false, reason: "bad token signature" };
  const payload = parseJson(p);
  if (!payload) return { ok: false, reason: "malformed token payload" };
  const { team, user, scope, iat, exp } = payload;
  if (typeof team !== "string" || team === "" || typeof user !== "string" || user === "") {
    return { ok: false, reason: "token lacks team or user" };
  }
  if (typeof exp !== "number" || exp <= nowSeconds) return { ok: false, reason: "token expired" };
  const scopes = Array.isArray(scope) ? scope.filter((x): x is string => typeof x === "string") : [];
  return { ok: true, claims: { team, user, scope: scopes, iat: typeof iat === "number" ? iat : 0, exp } };
}

async function hmac(secret: string, data: string): Promise<ArrayBuffer> {
  return crypto.subtle.sign("HMAC", await importKey(secret, ["sign"]), encoder.encode(data));
}

function importKey(secret: string, usages: Array<"sign" | "verify">): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, usages);
}

function b64urlJson(value: unknown): string {
  return b64url(encoder.encode(JSON.stringify(value)));
}

function b64url(bytes: ArrayBuffer | Uint8Array): string {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let bin = "";
  for (const b of u8) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromB64url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return null;
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function parseJson(segment: string): Record<string, unknown> | null {
  const bytes = fromB64url(segment);
  if (!bytes) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
