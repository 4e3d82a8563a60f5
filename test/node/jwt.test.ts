import { describe, expect, it } from "vitest";
import { signToken, verifyToken } from "../../src/auth/jwt";

const NOW = 1_800_000_000;

describe("HS256 tokens", () => {
  it("round-trips team, user and scopes", async () => {
    const t = await signToken({ team: "T1", user: "U1", scope: ["admin"], ttlSeconds: 60 }, "s", NOW);
    expect(await verifyToken(t, "s", NOW + 10)).toEqual({
      ok: true,
      claims: { team: "T1", user: "U1", scope: ["admin"], iat: NOW, exp: NOW + 60 },
    });
  });

  it("rejects another secret, expiry, and tampering", async () => {
    const t = await signToken({ team: "T1", user: "U1", scope: [], ttlSeconds: 60 }, "s", NOW);
    expect(await verifyToken(t, "other", NOW)).toMatchObject({ ok: false, reason: "bad token signature" });
    expect(await verifyToken(t, "s", NOW + 60)).toMatchObject({ ok: false, reason: "token expired" });
    const [h, , sig] = t.split(".");
    const forged = Buffer.from(JSON.stringify({ team: "T2", user: "U1", scope: ["platform"], exp: NOW + 99 })).toString(
      "base64url",
    );
    expect(await verifyToken(`${h}.${forged}.${sig}`, "s", NOW)).toMatchObject({ ok: false });
  });

  it("refuses alg none and malformed tokens", async () => {
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"team":"T","user":"U","exp":9999999999}').toString("base64url")}.`;
    expect(await verifyToken(none, "s", NOW)).toMatchObject({ ok: false, reason: "unsupported token algorithm" });
    for (const bad of ["", "a.b", "a.b.c.d", "!!!.???.###"]) expect((await verifyToken(bad, "s", NOW)).ok).toBe(false);
  });

  it("requires team and user claims", async () => {
    const t = await signToken({ team: "", user: "U1", scope: [] }, "s", NOW);
    expect(await verifyToken(t, "s", NOW)).toMatchObject({ ok: false, reason: "token lacks team or user" });
  });
});
