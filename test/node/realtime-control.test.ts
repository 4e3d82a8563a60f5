import { describe, expect, it } from "vitest";
import type { ChangeEvent } from "../../src/directory/model";
import { Admitter } from "../../src/realtime/admission";
import { MAX_REMEMBERED_PROFILES, mayNameUsers, remember, usersNamedBy } from "../../src/realtime/annotations";
import { deactivatedUsers, directoryTopicEvents, publishDirectoryEvents } from "../../src/realtime/directory-events";
import {
  byPresenceTopic,
  isPresenceTopic,
  PRESENCE_SHARDS,
  parsePresenceEvent,
  presenceEventJson,
  presenceOf,
} from "../../src/realtime/presence";
import { closeReason, parseClientFrame, retryAfterOf } from "../../src/realtime/protocol";
import { TokenBucket } from "../../src/realtime/rate-limit";
import { decodeState, encodeState, type SocketState } from "../../src/realtime/socket-state";
import { subTopicOfKey, topicKey } from "../../src/realtime/topics";
import { positiveVar } from "../../src/vars";
import { dirUser } from "../contract/fixtures";

// The pure rules behind presence, annotation, directory events, admission and
// rate limits. The end-to-end behaviour is in test/workers/realtime-sockets-control.test.ts.

describe("token bucket", () => {
  it("allows a burst, then the rate, and says how long to wait", () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.waitMs(0)).toBe(100);
    expect(b.take(100)).toBe(true);
    expect(b.take(100)).toBe(false);
    // Never more than the burst saved up.
    expect([b.take(10_000), b.take(10_000), b.take(10_000), b.take(10_000)]).toEqual([true, true, true, false]);
  });

  it("reads positive vars, defaulting when unset and refusing nonsense", () => {
    expect(positiveVar("X", undefined, 5)).toBe(5);
    expect(positiveVar("X", "", 5)).toBe(5);
    expect(positiveVar("X", "0.5", 5)).toBe(0.5);
    expect(() => positiveVar("X", "-1", 5)).toThrow(/X must be a positive number/);
    expect(() => positiveVar("X", "lots", 5)).toThrow();
  });
});

describe("admission", () => {
  it("admits at the configured rate and spreads the refused over the time needed to admit them", () => {
    let r = 0;
    const random = () => {
      r = (r + 0.37) % 1;
      return r;
    };
    const a = new Admitter({ maxSockets: 10_000, perSecond: 100 }, 0, random);
    const results = Array.from({ length: 1100 }, () => a.admit(0, 0));
    const admitted = results.filter((x) => x.ok).length;
    const delays = results.flatMap((x) => (x.ok ? [] : [x.retryAfterMs]));
    expect(admitted).toBe(100);
    expect(delays).toHaveLength(1000);
    // 1,000 refused at 100/s need ~10 s: the delays spread over about that, not all the same.
    expect(Math.max(...delays)).toBeGreaterThan(5_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000 + 100);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(250);
    expect(new Set(delays.map((d) => Math.round(d / 500))).size).toBeGreaterThan(10);
  });

  it("holds new connections back while too many subscribes are in flight (a reconnect storm's real backlog)", () => {
    const a = new Admitter({ maxSockets: 10_000, perSecond: 100, maxBacklog: 50 }, 0, () => 0.5);
    expect(a.admit(0, 0, 49)).toEqual({ ok: true });
    const busy = a.admit(0, 0, 300);
    expect(busy).toMatchObject({ ok: false, reason: "busy" });
    // 300 queued at 100/s: spread over about 3 s.
    expect(busy.ok ? 0 : busy.retryAfterMs).toBe(250 + 0.5 * 3000);
  });

  it("refuses a full gateway with a longer wait", () => {
    const a = new Admitter({ maxSockets: 2, perSecond: 100 }, 0, () => 0.5);
    expect(a.admit(1, 0)).toEqual({ ok: true });
    expect(a.admit(2, 0)).toEqual({ ok: false, reason: "full", retryAfterMs: 10_000 });
  });

  it("carries the delay in a short JSON close reason", () => {
    const reason = closeReason("overloaded", 1234.4);
    expect(reason).toBe('{"code":"overloaded","retry_after_ms":1234}');
    expect(new TextEncoder().encode(reason).byteLength).toBeLessThan(123);
    expect(retryAfterOf(reason)).toBe(1234);
    expect(retryAfterOf("bye")).toBeNull();
    expect(retryAfterOf(closeReason("deactivated"))).toBeNull();
  });
});

describe("presence", () => {
  it("spreads users over the shards and round-trips events", () => {
    const users = Array.from({ length: 2000 }, (_, i) => `U${i}`);
    const shards = byPresenceTopic(users);
    expect(shards.size).toBe(PRESENCE_SHARDS);
    for (const list of shards.values()) expect(list.length).toBeGreaterThan(60);
    for (const t of shards.keys()) expect(isPresenceTopic(t)).toBe(true);
    expect(isPresenceTopic("presence:99")).toBe(false);
    expect(isPresenceTopic("presence:01")).toBe(false);
    const json = presenceEventJson("U1", "active");
    expect(parsePresenceEvent(json)).toEqual({ type: "presence", user: "U1", presence: "active" });
    expect(parsePresenceEvent('{"type":"message"}')).toBeNull();
    expect(presenceOf(json)).toBe("active");
    expect(presenceOf(undefined)).toBe("away");
  });

  it("parses presence_sub frames", () => {
    expect(parseClientFrame('{"v":1,"type":"presence_sub","users":["U1","U2","U1"]}')).toEqual({
      ok: true,
      frame: { v: 1, type: "presence_sub", users: ["U1", "U2"] },
    });
    expect(parseClientFrame('{"v":1,"type":"presence_sub","users":[1]}')).toMatchObject({
      ok: false,
      code: "invalid_frame",
    });
  });

  it("keeps followed users and presence shards in the socket's attachment", () => {
    const state: SocketState = {
      sid: "s1",
      team: "T1",
      user: "U1",
      gateway: "gw:T1:0",
      subs: new Map([
        ["team", 3],
        ["channel:C1", 7],
        ["presence:4", 11],
      ]),
      presence: new Set(["U2", "U3"]),
      exp: 1_900_000_000,
      role: "guest",
    };
    expect(decodeState(encodeState(state))).toEqual(state);
  });
});

describe("topic names", () => {
  it("key channel topics by host team and map keys back to what a gateway follows", () => {
    expect(topicKey("THOST", "channel:C1")).toBe("ch:THOST:C1");
    expect(topicKey("T1", "presence:3")).toBe("presence:T1:3");
    expect(subTopicOfKey("ch:THOST:C1")).toBe("channel:C1");
    expect(subTopicOfKey("team:T1")).toBe("team");
    expect(subTopicOfKey("presence:T1:3")).toBe("presence:3");
    expect(subTopicOfKey("nonsense")).toBeNull();
    expect(subTopicOfKey("ch:T1")).toBeNull();
  });
});

describe("just-in-time annotation", () => {
  it("names a message's author and mentions, and nothing for other events", () => {
    expect(usersNamedBy({ type: "message", user: "U1", mentions: ["U2", "U1", 3] })).toEqual(["U1", "U2"]);
    expect(usersNamedBy({ type: "member_joined", user: "U1" })).toEqual([]);
    // An edit may mention someone new; a reaction names who reacted.
    expect(usersNamedBy({ type: "message_changed", user: "U1", mentions: ["U3"] })).toEqual(["U1", "U3"]);
    expect(usersNamedBy({ type: "reaction_added", user: "U4", message: "1" })).toEqual(["U4"]);
    expect(usersNamedBy({ type: "message_deleted", id: "1" })).toEqual([]);
    expect(mayNameUsers('{"type":"message_changed","user":"U1"}')).toBe(true);
    expect(mayNameUsers('{"type":"reaction_removed","user":"U1"}')).toBe(true);
    expect(usersNamedBy(null)).toEqual([]);
    expect(mayNameUsers('{"type":"message","user":"U1"}')).toBe(true);
    expect(mayNameUsers('{"type":"presence"}')).toBe(false);
  });

  it("bounds what it remembers per socket (resending is safe, growing without bound is not)", () => {
    const sent = new Set<string>();
    for (let i = 0; i < MAX_REMEMBERED_PROFILES; i++) remember(sent, `U${i}`);
    expect(sent.size).toBe(MAX_REMEMBERED_PROFILES);
    remember(sent, "UNEW");
    expect([...sent]).toEqual(["UNEW"]);
  });
});

describe("directory changes as topic events", () => {
  const user = dirUser;
  const channel = (isPrivate: boolean, sharedWith: string[] = []) => ({
    teamId: "T1",
    id: "C1",
    name: "ops",
    topic: "",
    purpose: "",
    isPrivate,
    isArchived: false,
    createdAt: 1,
    updatedAt: 1,
    sharedWith,
  });
  const ev = (version: number, change: ChangeEvent["change"]): ChangeEvent => ({ teamId: "T1", version, change });

  it("sends users and public channels to the team topics, private channels and members to the channel topic", () => {
    expect(directoryTopicEvents(ev(1, { kind: "user", user: user() })).map((e) => e.key)).toEqual(["team:T1"]);
    expect(directoryTopicEvents(ev(2, { kind: "channel", channel: channel(false, ["T2"]) })).map((e) => e.key)).toEqual(
      ["team:T1", "team:T2"],
    );
    expect(directoryTopicEvents(ev(3, { kind: "channel", channel: channel(true) })).map((e) => e.key)).toEqual([
      "ch:T1:C1",
    ]);
    const left = directoryTopicEvents(
      ev(4, { kind: "member_removed", membership: { channelId: "C1", userId: "U9", userTeamId: "T2" } }),
    );
    expect(left.map((e) => [e.key, JSON.parse(e.json)])).toEqual([
      ["ch:T1:C1", { type: "member_left", channel: "C1", user: "U9", user_team: "T2" }],
    ]);
    expect(directoryTopicEvents(ev(5, { kind: "reload" })).map((e) => JSON.parse(e.json))).toEqual([
      { type: "directory_reload" },
    ]);
  });

  it("sends a channel that left a team (a share ended) to its own topic, and to that team's topic when public", () => {
    const inT2 = (c: ChangeEvent["change"]): ChangeEvent => ({ teamId: "T2", version: 7, change: c });
    const keys = (e: ChangeEvent) => directoryTopicEvents(e).map((out) => out.key);
    expect(keys(inT2({ kind: "channel", channel: channel(false) }))).toEqual(["ch:T1:C1", "team:T2"]);
    expect(keys(inT2({ kind: "channel", channel: channel(true, ["T3"]) }))).toEqual(["ch:T1:C1"]);
    expect(
      JSON.parse(directoryTopicEvents(inT2({ kind: "channel", channel: channel(true) }))[0]?.json ?? ""),
    ).toMatchObject({ type: "channel_changed", channel: { id: "C1", is_shared: false } });
    // Still shared with the team: as before.
    expect(keys(inT2({ kind: "channel", channel: channel(false, ["T2"]) }))).toEqual(["team:T1", "team:T2"]);
  });

  it("publishes each topic's events in version order, and keeps going when one topic fails", async () => {
    const published: Array<[string, string]> = [];
    const errors: string[] = [];
    await publishDirectoryEvents(
      {
        async publish(key, json) {
          if (key === "ch:T1:C1") throw new Error("down");
          published.push([key, JSON.parse(json).user?.title ?? ""]);
          return { ok: true, seq: published.length };
        },
      },
      [
        ev(3, { kind: "user", user: user({ title: "third" }) }),
        ev(1, { kind: "user", user: user({ title: "first" }) }),
        ev(2, { kind: "channel", channel: channel(true) }),
      ],
      (key) => errors.push(key),
    );
    expect(published).toEqual([
      ["team:T1", "first"],
      ["team:T1", "third"],
    ]);
    expect(errors).toEqual(["ch:T1:C1"]);
  });

  it("finds the users a batch deactivates", () => {
    const events = [
      ev(1, { kind: "user", user: user({ id: "U1", deleted: true }) }),
      ev(2, { kind: "user", user: user({ id: "U2" }) }),
    ];
    expect(deactivatedUsers(events).map((u) => u.id)).toEqual(["U1"]);
  });
});
