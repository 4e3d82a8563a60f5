import { describe, expect, it } from "vitest";
import { mayConnect, type Principal, seesWholeTeam } from "../../src/auth/policy";
import { MAX_TOKEN_TTL_SECONDS, signToken, verifyToken } from "../../src/auth/tokens";
import type { ChangeEvent } from "../../src/directory/model";
import { accessChanges, teamEventSubject, userChangedCard } from "../../src/realtime/directory-events";
import type { LiveState, ProfileSource } from "../../src/realtime/ports";
import { CLOSE_CODES, closeReason } from "../../src/realtime/protocol";
import { KeyedBuckets } from "../../src/realtime/rate-limit";
import { forEachLimit, skippedFor, teamFilter } from "../../src/realtime/team-filter";
import { newNonce, TICKET_TTL_SECONDS, ticketGrant, ticketOf } from "../../src/realtime/tickets";
import { gatewayName, gatewayShardName } from "../../src/realtime/topics";
import { dirUser } from "../contract/fixtures";

// The pure rules behind the real-time side's trust: tickets, the close
// codes, per-poster rate limits, which directory changes re-check which
// sockets, what a team-topic event is about, and the socket policy. End to
// end: test/workers/realtime-sockets-trust.test.ts.

const SECRET = "node-test-secret-0123456789abcdef-0123";

describe("socket tickets", () => {
  const now = 1_800_000_000;

  it("live TICKET_TTL_SECONDS, never past the access token, and carry its expiry", async () => {
    const nonce = newNonce();
    expect(nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(newNonce()).not.toBe(nonce);
    const grant = ticketGrant({ team: "T1", user: "U1", exp: now + 3600 }, now, nonce);
    expect(grant).toEqual({ ttlSeconds: TICKET_TTL_SECONDS, extra: { jti: nonce, token_exp: now + 3600 } });
    expect(ticketGrant({ team: "T1", user: "U1", exp: now + 4 }, now, nonce).ttlSeconds).toBe(4);
    const ticket = await signToken(
      { team: "T1", user: "U1", use: "rtm", ttlSeconds: grant.ttlSeconds, extra: grant.extra },
      SECRET,
      now,
    );
    const verified = await verifyToken(ticket, SECRET, {
      use: "rtm",
      maxTtlSeconds: TICKET_TTL_SECONDS,
      nowSeconds: now,
    });
    expect(verified.ok).toBe(true);
    expect(verified.claims && ticketOf(verified.claims, now)).toEqual({
      nonce,
      tokenExp: now + 3600,
      exp: now + TICKET_TTL_SECONDS,
    });
    // Not an access token, and gone after its few seconds.
    expect((await verifyToken(ticket, SECRET, { nowSeconds: now })).ok).toBe(false);
    expect(
      (await verifyToken(ticket, SECRET, { use: "rtm", maxTtlSeconds: TICKET_TTL_SECONDS, nowSeconds: now + 31 })).ok,
    ).toBe(false);
  });

  it("refuse claims without a nonce or with a token expiry in the past or beyond any token's life", () => {
    const claims = { jti: "0123456789abcdef0123", token_exp: now + 60, exp: now + 30 };
    expect(ticketOf(claims, now)).not.toBeNull();
    expect(ticketOf({ ...claims, jti: undefined }, now)).toBeNull();
    expect(ticketOf({ ...claims, jti: "short" }, now)).toBeNull();
    expect(ticketOf({ ...claims, token_exp: now }, now)).toBeNull();
    expect(ticketOf({ ...claims, token_exp: now + MAX_TOKEN_TTL_SECONDS + 1 }, now)).toBeNull();
    expect(ticketOf({ ...claims, token_exp: Number.POSITIVE_INFINITY }, now)).toBeNull();
    expect(ticketOf({ ...claims, token_exp: "later" }, now)).toBeNull();
  });
});

describe("close codes", () => {
  it("are distinct, in the ranges a client can tell apart, with short JSON reasons", () => {
    const codes = Object.values(CLOSE_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    expect(CLOSE_CODES).toMatchObject({
      overloaded: 1013,
      token_expired: 4001,
      deactivated: 4003,
      too_many_sockets: 4008,
      rate_limited: 4029,
    });
    for (const code of Object.keys(CLOSE_CODES) as Array<keyof typeof CLOSE_CODES>) {
      expect(new TextEncoder().encode(closeReason(code, 12_345)).byteLength).toBeLessThanOrEqual(123);
    }
  });
});

describe("publish rate per poster", () => {
  it("gives each poster its own bucket, so one poster's flood leaves the others untouched", () => {
    const b = new KeyedBuckets(1, 2);
    expect([b.take("T1:ada", 0), b.take("T1:ada", 0), b.take("T1:ada", 0)]).toEqual([true, true, false]);
    expect(b.waitMs("T1:ada", 0)).toBe(1000);
    expect([b.take("T1:bob", 0), b.take("T1:bob", 0)]).toEqual([true, true]);
    expect(b.waitMs("T1:cat", 0)).toBe(0);
    expect(b.take("T1:ada", 1000)).toBe(true);
  });

  it("stays bounded by forgetting refilled buckets, never draining ones", () => {
    const b = new KeyedBuckets(1, 1, 3);
    b.take("a", 0);
    b.take("b", 0);
    b.take("c", 0);
    // At 500 ms none has refilled: all kept, the map grows by one.
    b.take("d", 500);
    expect(b.size).toBe(4);
    expect(b.waitMs("a", 500)).toBe(500);
    // Later, the refilled ones go.
    b.take("e", 5_000);
    expect(b.size).toBe(1);
  });
});

describe("which changes re-check which sockets", () => {
  const user = dirUser;
  const ev = (version: number, change: ChangeEvent["change"]): ChangeEvent => ({ teamId: "T1", version, change });

  it("closes the deactivated, re-checks users changed or removed from a channel, and everyone after a reload", () => {
    const changes = accessChanges([
      ev(1, { kind: "user", user: user({ id: "U1", role: "guest" }) }),
      ev(2, { kind: "user", user: user({ id: "U2", deleted: true }) }),
      ev(3, { kind: "member_removed", membership: { channelId: "C1", userId: "U9", userTeamId: "T2" } }),
      ev(4, { kind: "member_removed", membership: { channelId: "C1", userId: "U2", userTeamId: "T1" } }),
      ev(5, { kind: "member_added", membership: { channelId: "C1", userId: "U3", userTeamId: "T1" } }),
      ev(6, { kind: "user", user: user({ id: "U1", title: "again" }) }),
    ]);
    expect(changes.deactivated.map((u) => u.id)).toEqual(["U2"]);
    // Once each; the deactivated are closed, not re-checked; a foreign member by its own team.
    expect(changes.recheck).toEqual([
      { team: "T1", user: "U1" },
      { team: "T2", user: "U9" },
    ]);
    expect(changes.reload).toBe(false);
    expect(accessChanges([ev(7, { kind: "reload" })]).reload).toBe(true);
  });

  it("names a team's gateway shards as the per-user routing does", () => {
    const shards = [0, 1, 2, 3].map((n) => gatewayShardName("T1", n));
    expect(shards).toEqual(["gw:T1:0", "gw:T1:1", "gw:T1:2", "gw:T1:3"]);
    for (const u of ["U1", "U2", "UADMIN", "U0000MEMBER"]) expect(shards).toContain(gatewayName("T1", u, 4));
  });
});

describe("what a team-topic event is about", () => {
  it("names the user or channel of directory events; nothing for team-wide ones; null when unreadable", () => {
    const card = { id: "U1", role: "guest", deleted: false };
    expect(teamEventSubject(JSON.stringify({ type: "user_changed", user: card }))).toEqual({
      users: ["U1"],
      channels: [],
    });
    expect(teamEventSubject(JSON.stringify({ type: "channel_changed", channel: { id: "C1" } }))).toEqual({
      users: [],
      channels: ["C1"],
    });
    expect(teamEventSubject(JSON.stringify({ type: "directory_reload" }))).toEqual({ users: [], channels: [] });
    expect(teamEventSubject('{"type":"user_changed",')).toBeNull();
    expect(teamEventSubject(JSON.stringify({ type: "user_changed", user: {} }))).toBeNull();
    expect(userChangedCard(JSON.stringify({ type: "user_changed", user: card }))).toEqual(card);
    expect(userChangedCard(JSON.stringify({ type: "channel_changed", channel: { id: "C1" } }))).toBeNull();
  });
});

describe("socket policy", () => {
  const member = (over: Partial<Extract<Principal, { kind: "member" }>> = {}): Principal => ({
    kind: "member",
    team: "T1",
    user: "U1",
    role: "member",
    active: true,
    ...over,
  });

  it("lets only active members of the team connect", () => {
    expect(mayConnect(member(), "T1").ok).toBe(true);
    expect(mayConnect(member({ role: "guest" }), "T1").ok).toBe(true);
    expect(mayConnect(member({ active: false }), "T1")).toMatchObject({ ok: false, kind: "forbidden" });
    expect(mayConnect({ kind: "unknown", team: "T1", user: "U1" }, "T1").ok).toBe(false);
    expect(mayConnect({ kind: "operator", team: "T1", user: "U1" }, "T1").ok).toBe(false);
    expect(mayConnect(member(), "T2")).toMatchObject({ ok: false, kind: "not_found" });
  });

  it("filters team-wide events for guests and anyone inactive", () => {
    expect(seesWholeTeam({ role: "member", active: true })).toBe(true);
    expect(seesWholeTeam({ role: "owner", active: true })).toBe(true);
    expect(seesWholeTeam({ role: "guest", active: true })).toBe(false);
    expect(seesWholeTeam({ role: "admin", active: false })).toBe(false);
  });
});

describe("the team topic for guests", () => {
  // gus (guest) shares a channel with bob and is in channel CG; dan (member) sees everyone.
  const profiles: ProfileSource = {
    async profiles(_team, viewers, users) {
      const found = users.filter((u) => u !== "UNOPE");
      const hidden: Record<string, string[]> = {};
      for (const v of viewers) if (v === "gus") hidden[v] = found.filter((u) => u !== "bob" && u !== "gus");
      return { profiles: found.map((id) => ({ id })), hidden };
    },
  };
  const live: LiveState = {
    actors: async () => new Map(),
    async visible(_team, viewer, _users, channels) {
      const mine = viewer === "gus" ? ["CG"] : channels;
      return { ok: true, users: new Set(), channels: new Set(channels.filter((c) => mine.includes(c))) };
    },
  };
  const events = [
    { seq: 1, json: JSON.stringify({ type: "user_changed", user: { id: "hal" } }) },
    { seq: 2, json: JSON.stringify({ type: "user_changed", user: { id: "bob" } }) },
    { seq: 3, json: JSON.stringify({ type: "channel_changed", channel: { id: "CPUB" } }) },
    { seq: 4, json: JSON.stringify({ type: "channel_changed", channel: { id: "CG" } }) },
    { seq: 5, json: JSON.stringify({ type: "directory_reload" }) },
    { seq: 6, json: '{"type":"user_changed"' },
    { seq: 7, json: JSON.stringify({ type: "user_changed", user: { id: "UNOPE" } }) },
  ];

  it("skips for a guest what it may not see (and anything unreadable), never team-wide events", async () => {
    const f = await teamFilter({ profiles, live }, "T1", new Set(["gus"]), events);
    expect([...f.about].sort()).toEqual([1, 2, 3, 4, 6, 7]);
    expect([...(skippedFor(f, "gus", "guest") ?? [])].sort()).toEqual([1, 3, 6, 7]);
    // A member gets everything; a guest the lookup did not cover gets nothing about anyone.
    expect(skippedFor(f, "dan", "member")).toBeUndefined();
    expect([...(skippedFor(f, "gil", "guest") ?? [])].sort()).toEqual([1, 2, 3, 4, 6, 7]);
    expect(skippedFor(null, "gus", "guest")).toBeUndefined();
  });

  it("hides what it could not check when a lookup fails", async () => {
    const down = () => Promise.reject(new Error("cache down"));
    const noUsers = await teamFilter({ profiles: { profiles: down }, live }, "T1", new Set(["gus"]), events);
    expect([...(noUsers.hidden.get("gus") ?? [])].sort()).toEqual([1, 2, 3, 6, 7]);
    const noChannels = await teamFilter({ profiles, live: { ...live, visible: down } }, "T1", new Set(["gus"]), events);
    expect([...(noChannels.hidden.get("gus") ?? [])].sort()).toEqual([1, 3, 4, 6, 7]);
  });

  it("runs lookups at most `limit` at a time", async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await forEachLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      done.push(n);
      running--;
    });
    expect(most).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});
