import { createHmac, randomBytes } from "node:crypto";
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { base64UrlBytes, checkSecret, MAX_TOKEN_TTL_SECONDS, signToken, verifyToken } from "../../src/auth/tokens";

const NOW = 1_800_000_000;
const S = "s".repeat(32);

/** A token with exactly these claims, signed right: for claims signToken would never write. */
const raw = (claims: Record<string, unknown>, secret = S) => sign(claims, secret, "HS256");
const base = { team: "T1", sub: "U1", use: "access", iat: NOW, nbf: NOW, exp: NOW + 60 };

describe("access tokens", () => {
  it("round-trip identity only", async () => {
    const t = await signToken({ team: "T1", user: "U1", ttlSeconds: 60 }, S, NOW);
    const r = await verifyToken(t, S, { nowSeconds: NOW + 10 });
    expect(r.ok && r.identity).toEqual({ team: "T1", user: "U1", exp: NOW + 60 });
  });

  it("ignore any role or scope a token claims", async () => {
    const t = await raw({ ...base, scope: ["admin", "platform"], role: "owner" });
    const r = await verifyToken(t, S, { nowSeconds: NOW });
    expect(r.ok && r.identity).toEqual({ team: "T1", user: "U1", exp: NOW + 60 });
  });

  it("reject another secret, expiry and tampering", async () => {
    const t = await signToken({ team: "T1", user: "U1", ttlSeconds: 60 }, S, NOW);
    expect(await verifyToken(t, "o".repeat(32), { nowSeconds: NOW })).toMatchObject({
      ok: false,
      reason: "bad token signature",
    });
    expect(await verifyToken(t, S, { nowSeconds: NOW + 60 })).toMatchObject({ ok: false, reason: "token expired" });
    const [h, , sig] = t.split(".");
    const forged = Buffer.from(JSON.stringify({ ...base, team: "T2" })).toString("base64url");
    expect((await verifyToken(`${h}.${forged}.${sig}`, S, { nowSeconds: NOW })).ok).toBe(false);
  });

  it("refuse alg none and malformed tokens", async () => {
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(JSON.stringify(base)).toString("base64url")}.`;
    expect((await verifyToken(none, S, { nowSeconds: NOW })).ok).toBe(false);
    for (const bad of ["", "a.b", "a.b.c.d", "!!!.???.###", "x".repeat(5000)]) {
      expect((await verifyToken(bad, S, { nowSeconds: NOW })).ok).toBe(false);
    }
  });

  it("accept a token signed by any correct HS256 implementation, and only with a JWT header", async () => {
    // Signed here with node:crypto, not with the code under test.
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const hs256 = (header: unknown, claims: unknown) => {
      const input = `${b64(header)}.${b64(claims)}`;
      return `${input}.${createHmac("sha256", S).update(input).digest("base64url")}`;
    };
    const verify = (t: string) => verifyToken(t, S, { nowSeconds: NOW });
    for (const header of [{ alg: "HS256" }, { alg: "HS256", typ: "JWT" }, { typ: "application/jwt", alg: "HS256" }]) {
      expect((await verify(hs256(header, base))).ok).toBe(true);
    }
    for (const header of [{ alg: "HS512" }, { alg: "HS256", typ: "JWS" }, { alg: "HS256", crit: ["exp"] }]) {
      expect(await verify(hs256(header, base))).toEqual({ ok: false, reason: "unsupported token algorithm" });
    }
    // A payload that is not an object, and a signature that is not base64url.
    expect(await verify(hs256({ alg: "HS256" }, [base]))).toEqual({ ok: false, reason: "malformed token" });
    const good = hs256({ alg: "HS256" }, base);
    expect(await verify(`${good.slice(0, -2)}+/`)).toEqual({ ok: false, reason: "malformed token" });
    expect(await verify(`${good}=`)).toEqual({ ok: false, reason: "malformed token" });
  });

  it("decode base64url exactly as Node does", () => {
    for (let n = 0; n < 70; n++) {
      const bytes = randomBytes(n);
      expect(Buffer.from(base64UrlBytes(bytes.toString("base64url")) ?? [])).toEqual(bytes);
    }
    for (const bad of ["a", "ab=c", "ab c", "abé", "abcde"]) expect(base64UrlBytes(bad)).toBeNull();
  });

  it("enforce nbf and iat, and require all three time claims", async () => {
    const at = (claims: Record<string, unknown>) =>
      raw({ ...base, ...claims }).then((t) => verifyToken(t, S, { nowSeconds: NOW }));
    expect(await at({ nbf: NOW + 600 })).toMatchObject({ ok: false, reason: "token not valid yet" });
    expect(await at({ iat: NOW + 600, exp: NOW + 700 })).toMatchObject({
      ok: false,
      reason: "token issued in the future",
    });
    for (const missing of ["exp", "nbf", "iat"] as const) {
      const rest: Record<string, unknown> = { ...base };
      delete rest[missing];
      const t = await raw(rest);
      expect(await verifyToken(t, S, { nowSeconds: NOW })).toMatchObject({
        ok: false,
        reason: "token lacks exp, nbf or iat",
      });
    }
  });

  it("never accept a token that does not expire or lives too long", async () => {
    const at = (claims: Record<string, unknown>) =>
      raw({ ...base, ...claims }).then((t) => verifyToken(t, S, { nowSeconds: NOW }));
    // 1e309 is Infinity once parsed; 1e300 is finite but not a safe integer.
    const inf = await raw({ ...base, exp: 0 }).then((t) => {
      const [h, , s] = t.split(".");
      const payload = Buffer.from(JSON.stringify(base).replace(`"exp":${NOW + 60}`, '"exp":1e309')).toString(
        "base64url",
      );
      return `${h}.${payload}.${s}`;
    });
    expect((await verifyToken(inf, S, { nowSeconds: NOW })).ok).toBe(false);
    expect((await at({ exp: 1e300 })).ok).toBe(false);
    expect(await at({ exp: NOW + MAX_TOKEN_TTL_SECONDS + 1 })).toMatchObject({
      ok: false,
      reason: `token lifetime exceeds ${MAX_TOKEN_TTL_SECONDS} s`,
    });
    expect((await at({ exp: "soon" })).ok).toBe(false);
  });

  it("keep access tokens and socket tickets apart", async () => {
    const ticket = await signToken({ team: "T1", user: "U1", use: "rtm", ttlSeconds: 30 }, S, NOW);
    expect((await verifyToken(ticket, S, { nowSeconds: NOW })).ok).toBe(false);
    const access = await signToken({ team: "T1", user: "U1" }, S, NOW);
    expect((await verifyToken(access, S, { nowSeconds: NOW, use: "rtm" })).ok).toBe(false);
  });

  it("require team and user ids", async () => {
    for (const claims of [{ team: "" }, { sub: "" }, { team: "a b" }, { sub: 7 }]) {
      expect((await verifyToken(await raw({ ...base, ...claims }), S, { nowSeconds: NOW })).ok).toBe(false);
    }
  });
});

describe("the secret", () => {
  it("must be at least 32 bytes", async () => {
    expect(() => checkSecret(undefined)).toThrow(/not configured/);
    expect(() => checkSecret("short")).toThrow(/5 bytes; at least 32/);
    expect(checkSecret("x".repeat(32))).toHaveLength(32);
    await expect(signToken({ team: "T", user: "U" }, "short")).rejects.toThrow(/at least 32/);
  });
});
