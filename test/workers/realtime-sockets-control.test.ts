import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { FRAME_BURST, retryAfterOf } from "../../src/realtime/protocol";
import { gatewayName } from "../../src/realtime/topics";
import { api, ok, platformToken, token } from "./client";
import { buildTeam, Client, closedWith, type Fixture, type Frame, sleep } from "./realtime-fixture";

// The real-time behaviours around delivery: presence subscriptions, just-in-
// time profiles, access revoked by a membership change, directory events,
// shared channels, admission control and rate limits. Inside workerd, through
// the Worker, with PRESENCE_GRACE_SECONDS = 0.5 (vitest.config.ts).

describe("real-time control", () => {
  let f: Fixture;
  const as = (who: string) => token(f.team, f.ids[who] ?? who);
  const id = (who: string) => f.ids[who] ?? who;
  const admin = async () => f.admin;
  const post = async (who: string, channel: string, text: string, mentions?: string[]) =>
    api("POST", `/v1/channels/${f.channels[channel] ?? channel}/messages`, {
      token: await as(who),
      json: mentions ? { text, mentions } : { text },
    });
  const connect = async (who: string, withProfiles = false) => {
    const c = await Client.connect(await as(who), "ticket", withProfiles);
    expect((await c.one()).type).toBe("hello");
    return c;
  };

  beforeAll(async () => {
    f = await buildTeam();
  });

  describe("presence", () => {
    it("sends a snapshot of the followed users, then only their changes", async () => {
      const watcher = await connect("ada");
      watcher.send({ v: 1, type: "presence_sub", id: "p", users: [id("bob"), id("cat")] });
      expect(await watcher.one()).toEqual({
        v: 1,
        type: "presence",
        id: "p",
        users: [
          { user: id("bob"), presence: "away" },
          { user: id("cat"), presence: "away" },
        ],
      });
      const bob = await connect("bob");
      expect(await watcher.one()).toEqual({ v: 1, type: "presence", users: [{ user: id("bob"), presence: "active" }] });
      // Someone not on the list comes and goes: nothing.
      const dan = await connect("dan");
      dan.close();
      expect(await watcher.rest(300)).toEqual([]);
      // A second socket of bob changes nothing; closing the last one turns him away after the grace period.
      const bob2 = await connect("bob");
      bob.close();
      expect(await watcher.rest(200)).toEqual([]);
      bob2.close();
      expect(await watcher.rest(200)).toEqual([]);
      const [away] = await watcher.take(1, 3_000);
      expect(away).toEqual({ v: 1, type: "presence", users: [{ user: id("bob"), presence: "away" }] });
      // A later subscriber's snapshot has the current state.
      const late = await connect("eve");
      late.send({ v: 1, type: "presence_sub", id: 2, users: [id("bob"), id("ada")] });
      expect(await late.one()).toMatchObject({
        id: 2,
        users: [
          { user: id("bob"), presence: "away" },
          { user: id("ada"), presence: "active" },
        ],
      });
      watcher.close();
      late.close();
    });

    it("does not flap when a user reconnects within the grace period", async () => {
      const watcher = await connect("fay");
      watcher.send({ v: 1, type: "presence_sub", users: [id("cat")] });
      expect(await watcher.one()).toMatchObject({ users: [{ user: id("cat"), presence: "away" }] });
      const cat = await connect("cat");
      expect(await watcher.one()).toMatchObject({ users: [{ user: id("cat"), presence: "active" }] });
      cat.close();
      await sleep(100);
      const back = await connect("cat");
      expect(await watcher.rest(1_200)).toEqual([]);
      back.close();
      watcher.close();
    });

    it("replaces the list, and refuses bad or oversized lists with an error", async () => {
      const watcher = await connect("gil");
      watcher.send({ v: 1, type: "presence_sub", users: [id("hal")] });
      await watcher.one();
      watcher.send({ v: 1, type: "presence_sub", id: "none", users: [] });
      expect(await watcher.one()).toEqual({ v: 1, type: "presence", id: "none", users: [] });
      const hal = await connect("hal");
      expect(await watcher.rest(300)).toEqual([]);
      watcher.send({ v: 1, type: "presence_sub", users: "everyone" });
      expect(await watcher.one()).toMatchObject({ type: "error", code: "invalid_frame" });
      watcher.send({ v: 1, type: "presence_sub", users: Array.from({ length: 501 }, (_, i) => `U${i}`) });
      expect(await watcher.one()).toMatchObject({ type: "error", code: "too_many_users" });
      hal.close();
      watcher.close();
    });
  });

  describe("just-in-time profiles", () => {
    it("sends the author's and mentioned users' profiles before the first message naming them, once", async () => {
      const bob = await connect("bob", true);
      const topic = `channel:${f.channels.jit}`;
      await bob.subscribe([{ topic }]);
      await ok(post("ada", "jit", "hi @cat", [id("cat")]), 201);
      const [p1, p2, m1] = await bob.take(3);
      expect(p1).toMatchObject({ type: "user", user: { id: id("ada"), name: expect.any(String) } });
      expect(p2).toMatchObject({ type: "user", user: { id: id("cat") } });
      expect(m1).toMatchObject({ type: "event", topic, event: { text: "hi @cat" } });
      await ok(post("ada", "jit", "again @cat", [id("cat")]), 201);
      expect(await bob.one()).toMatchObject({ type: "event", event: { text: "again @cat" } });
      await ok(post("cat", "jit", "me", [id("ada"), id("dan")]), 201);
      const [p3, m3] = await bob.take(2);
      expect(p3).toMatchObject({ type: "user", user: { id: id("dan") } });
      expect(m3).toMatchObject({ type: "event", event: { text: "me" } });
      expect(await bob.rest()).toEqual([]);
      bob.close();
    });

    it("never sends a guest the profile of someone it may not see", async () => {
      const gus = await connect("gus", true);
      await gus.subscribe([{ topic: `channel:${f.channels.guests}` }]);
      await ok(post("bob", "guests", "meet hal", [id("hal")]), 201);
      const frames = await gus.take(2);
      expect(frames[0]).toMatchObject({ type: "user", user: { id: id("bob") } });
      expect(frames[1]).toMatchObject({ type: "event", event: { text: "meet hal", mentions: [id("hal")] } });
      expect(await gus.rest()).toEqual([]);
      gus.close();
    });
  });

  describe("directory changes", () => {
    it("drops a member removed from a private channel, after the member_left event", async () => {
      const topic = `channel:${f.channels.leave}`;
      const bob = await connect("bob");
      const ada = await connect("ada");
      await bob.subscribe([{ topic }]);
      await ada.subscribe([{ topic }]);
      await ok(
        api("DELETE", `/v1/admin/teams/${f.team}/channels/${f.channels.leave}/members/${id("bob")}`, {
          token: await admin(),
        }),
      );
      expect(await bob.one()).toMatchObject({
        type: "event",
        topic,
        event: { type: "member_left", channel: f.channels.leave, user: id("bob") },
      });
      expect(await bob.one()).toEqual({ v: 1, type: "unsubscribed", topics: [topic], reason: "access_revoked" });
      expect(await ada.one()).toMatchObject({ event: { type: "member_left" } });
      await ok(post("ada", "leave", "just us"), 201);
      expect(await ada.one()).toMatchObject({ event: { text: "just us" } });
      expect(await bob.rest()).toEqual([]);
      // Subscribing again is refused like any private channel one is not in.
      bob.send({ v: 1, type: "subscribe", topics: [{ topic }] });
      expect(await bob.one()).toMatchObject({ type: "error", code: "not_found", topic });
      bob.close();
      ada.close();
    });

    it("keeps a member removed from a public channel subscribed (they may still read it)", async () => {
      const topic = `channel:${f.channels.general}`;
      const cat = await connect("cat");
      await cat.subscribe([{ topic }]);
      await ok(
        api("DELETE", `/v1/admin/teams/${f.team}/channels/${f.channels.general}/members/${id("cat")}`, {
          token: await admin(),
        }),
      );
      expect(await cat.one()).toMatchObject({ event: { type: "member_left", user: id("cat") } });
      await ok(post("ada", "general", "still readable"), 201);
      expect(await cat.one()).toMatchObject({ event: { text: "still readable" } });
      cat.close();
    });

    it("publishes profile changes to the team topic and member joins to the channel topic", async () => {
      const dan = await connect("dan");
      const refused = await dan.subscribe([{ topic: `channel:${f.channels.private}` }], "private");
      expect(refused).toMatchObject({ type: "error", code: "not_found" });
      expect(await dan.subscribe([{ topic: "team" }, { topic: `channel:${f.channels.ordered}` }])).toMatchObject({
        type: "subscribed",
      });
      await ok(
        api("PATCH", `/v1/admin/teams/${f.team}/users/${id("eve")}/profile`, {
          token: await admin(),
          json: { title: "Principal" },
        }),
      );
      expect(await dan.one()).toMatchObject({
        topic: "team",
        event: { type: "user_changed", user: { id: id("eve"), title: "Principal" } },
      });
      await ok(
        api("POST", `/v1/admin/teams/${f.team}/channels/${f.channels.ordered}/members`, {
          token: await admin(),
          json: { user_ids: [id("gus")] },
        }),
      );
      expect(await dan.one()).toMatchObject({
        topic: `channel:${f.channels.ordered}`,
        event: { type: "member_joined", channel: f.channels.ordered, user: id("gus") },
      });
      // A private channel's changes go to its own topic only, never to the team topic.
      await ok(
        api("PATCH", `/v1/admin/teams/${f.team}/channels/${f.channels.private}`, {
          token: await admin(),
          json: { topic: "secret plans" },
        }),
      );
      expect(await dan.rest()).toEqual([]);
      dan.close();
    });

    it("closes a deactivated user's sockets with code 4003", async () => {
      const gil = await connect("gil");
      await ok(api("DELETE", `/v1/admin/teams/${f.team}/users/${id("gil")}`, { token: await admin() }));
      const closed = await closedWith(gil);
      expect(closed.code).toBe(4003);
      expect(JSON.parse(closed.reason)).toEqual({ code: "deactivated" });
    });
  });

  describe("shared channels", () => {
    it("share one topic, keyed by the host team: members of both teams get every message", async () => {
      const other = await buildTeam();
      const hostAdmin = await admin();
      const created = await ok<{ channel: { id: string } }>(
        api("POST", `/v1/admin/teams/${f.team}/channels`, { token: hostAdmin, json: { name: "partners-room" } }),
        201,
      );
      const channel = created.channel.id;
      await ok(api("GET", "/v1/directory/boot", { token: await as("ada") }));
      await ok(api("GET", "/v1/directory/boot", { token: await token(other.team, other.ids.bob ?? "") }));
      // Sharing into another team (and adding its users) is an operator's act until connections with consent exist.
      await ok(
        api("POST", `/v1/admin/teams/${f.team}/channels/${channel}/share`, {
          token: await platformToken(),
          json: { team_id: other.team },
        }),
      );
      await ok(
        api("POST", `/v1/admin/teams/${f.team}/channels/${channel}/members`, {
          token: hostAdmin,
          json: { user_ids: [id("ada")] },
        }),
      );
      await ok(
        api("POST", `/v1/admin/teams/${f.team}/channels/${channel}/members`, {
          token: await platformToken(),
          json: { user_ids: [other.ids.bob], team_id: other.team },
        }),
      );
      const topic = `channel:${channel}`;
      const ada = await connect("ada");
      const guestSide = await Client.connect(await token(other.team, other.ids.bob ?? ""), "header");
      await guestSide.one();
      expect(await ada.subscribe([{ topic }])).toMatchObject({ type: "subscribed" });
      expect(await guestSide.subscribe([{ topic }])).toMatchObject({ type: "subscribed" });
      await ok(post("ada", channel, "hello partners"), 201);
      const fromHost = (await guestSide.take(1))[0];
      expect(fromHost).toMatchObject({ topic, event: { text: "hello partners", user: id("ada") } });
      expect(await ada.one()).toMatchObject({ event: { text: "hello partners" } });
      await ok(
        api("POST", `/v1/channels/${channel}/messages`, {
          token: await token(other.team, other.ids.bob ?? ""),
          json: { text: "hello host" },
        }),
        201,
      );
      expect(await ada.one()).toMatchObject({
        topic,
        seq: (fromHost?.seq as number) + 1,
        event: { text: "hello host" },
      });
      expect(await guestSide.one()).toMatchObject({ event: { text: "hello host" } });
      ada.close();
      guestSide.close();
    });
  });

  describe("overload", () => {
    const gatewayOf = (who: string) => env.GATEWAY.get(env.GATEWAY.idFromName(gatewayName(f.team, id(who), 4)));

    it("refuses connections beyond a gateway's capacity or admission rate with 1013 and a jittered retry", async () => {
      const gw = gatewayOf("eve");
      const { sockets } = await gw.stats();
      await gw.configure({ maxSockets: sockets + 1, perSecond: 1000 });
      const first = await connect("eve");
      const full = await Client.connect(await as("eve"));
      const closed = await closedWith(full);
      expect(closed.code).toBe(1013);
      expect(JSON.parse(closed.reason)).toMatchObject({ code: "overloaded" });
      const retry = retryAfterOf(closed.reason) ?? -1;
      expect(retry).toBeGreaterThanOrEqual(5_000);
      expect(retry).toBeLessThanOrEqual(15_000);
      expect(full.frames).toEqual([]);
      // Over the admission rate: one a second here, so the second of two quick connects waits.
      await gw.configure({ maxSockets: 20_000, perSecond: 1 });
      const delays: number[] = [];
      const refused: Client[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await Client.connect(await as("eve"));
        const seen = await Promise.race([
          c.take(1, 2_000).then(() => "hello"),
          closedWith(c, 2_000).then(() => "closed"),
        ]);
        if (seen === "closed") {
          refused.push(c);
          delays.push(retryAfterOf(c.closed?.reason ?? "") ?? -1);
        } else c.close();
      }
      expect(refused.length).toBeGreaterThanOrEqual(2);
      for (const d of delays) expect(d).toBeGreaterThanOrEqual(250);
      expect((await gw.stats()).refused).toBeGreaterThanOrEqual(3);
      // A backlog limit that nothing in flight reaches admits as before (the refusal rule is in the Node tests).
      await gw.configure({ maxSockets: 20_000, perSecond: 1000, maxBacklog: 1 });
      const slow = await Client.connect(await as("eve"));
      expect((await slow.one()).type).toBe("hello");
      slow.close();
      await gw.configure({ maxSockets: 20_000, perSecond: 1000 });
      first.close();
    });

    it("drops frames over a socket's rate with an error, then closes a socket that keeps going (4029)", async () => {
      const c = await connect("fay");
      for (let i = 0; i < FRAME_BURST + 150; i++) c.send({ v: 1, type: "ping", id: i });
      const closed = await closedWith(c, 5_000);
      const pongs = c.frames.filter((x: Frame) => x.type === "pong").length;
      const limited = c.frames.filter((x: Frame) => x.type === "error" && x.code === "rate_limited").length;
      expect(pongs).toBeGreaterThanOrEqual(FRAME_BURST);
      expect(pongs).toBeLessThan(FRAME_BURST + 10);
      expect(limited).toBeGreaterThan(50);
      expect(closed.code).toBe(4029);
      expect(retryAfterOf(closed.reason)).toBeGreaterThanOrEqual(5_000);
    });

    it("answers 429 with Retry-After when a channel is posted to faster than its overall rate", async () => {
      const key = `ch:${f.team}:${f.channels.burst}`;
      await env.TOPIC.get(env.TOPIC.idFromName(key)).configure(key, { publishPerSecond: 1 });
      expect((await post("ada", "burst", "m1")).status).toBe(201);
      expect((await post("ada", "burst", "m2")).status).toBe(201);
      const limited = await SELF.fetch(`https://edge.test/v1/channels/${f.channels.burst}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${await as("ada")}`, "content-type": "application/json" },
        body: JSON.stringify({ text: "m3" }),
      });
      expect(limited.status).toBe(429);
      expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(await limited.json()).toMatchObject({
        error: { code: "rate_limited", details: { retry_after_ms: expect.any(Number), limit: "topic" } },
      });
      // The topic numbered only the accepted ones.
      expect((await env.TOPIC.get(env.TOPIC.idFromName(key)).stats()).seq).toBe(2);
      await env.TOPIC.get(env.TOPIC.idFromName(key)).configure(key, { publishPerSecond: 1000 });
    });

    it("limits each poster in a channel on its own: one user posting too fast gets 429, the others still post", async () => {
      const key = `ch:${f.team}:${f.channels.ordered}`;
      const stub = env.TOPIC.get(env.TOPIC.idFromName(key));
      await stub.configure(key, { publishPerUserPerSecond: 1, publishPerSecond: 1000 });
      const before = (await stub.stats()).seq;
      // Burst of twice the rate, then refused with the poster's own retry delay.
      expect((await post("ada", "ordered", "a1")).status).toBe(201);
      expect((await post("ada", "ordered", "a2")).status).toBe(201);
      const limited = await post("ada", "ordered", "a3");
      expect(limited.status).toBe(429);
      expect(limited.body).toMatchObject({
        error: {
          code: "rate_limited",
          message: expect.stringMatching(/^you are posting/),
          details: { retry_after_ms: expect.any(Number), limit: "poster" },
        },
      });
      // Everyone else in the channel is unaffected by ada's flood.
      for (const who of ["bob", "cat", "dan"]) expect((await post(who, "ordered", `from ${who}`)).status).toBe(201);
      expect((await post("ada", "ordered", "a4")).status).toBe(429);
      expect((await stub.stats()).seq).toBe(before + 5);
      await stub.configure(key, { publishPerUserPerSecond: 1000 });
    });
  });
});
