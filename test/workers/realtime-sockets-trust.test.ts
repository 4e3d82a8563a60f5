import { env, runInDurableObject, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { TopicAccess } from "../../src/realtime/ports";
import { CLOSE_CODES } from "../../src/realtime/protocol";
import { TICKET_TTL_SECONDS } from "../../src/realtime/tickets";
import { gatewayName } from "../../src/realtime/topics";
import { api, ok, token } from "./client";
import {
  buildTeam,
  Client,
  closedWith,
  type Fixture,
  type Frame,
  rtmUpgrade,
  sleep,
  ticketUrl,
} from "./realtime-fixture";

// Trust on the real-time side, inside workerd through the Worker: sockets
// open with single-use tickets, only for active members; they close when
// their token expires; access changes cut subscriptions at once and a check
// that fails denies; a guest sees on its sockets exactly what it shares; a
// user's sockets and a poster's rate are bounded.

type TicketBody = { url: string; ticket: string; expires_in: number };

describe("real-time trust", () => {
  let f: Fixture;
  const id = (who: string) => f.ids[who] ?? who;
  const as = (who: string, ttl?: number) => token(f.team, id(who), ttl);
  const base = () => `/v1/admin/teams/${f.team}`;
  const connect = async (who: string, via: "ticket" | "header" = "ticket") => {
    const c = await Client.connect(await as(who), via);
    expect((await c.one()).type).toBe("hello");
    return c;
  };
  const post = async (who: string, channel: string, text: string) =>
    api("POST", `/v1/channels/${f.channels[channel] ?? channel}/messages`, { token: await as(who), json: { text } });
  const gatewayOf = (who: string) => env.GATEWAY.get(env.GATEWAY.idFromName(gatewayName(f.team, id(who), 4)));
  /** Frames up to and including the first that matches (waiting up to ms for it). */
  const until = async (c: Client, match: (x: Frame) => boolean, ms = 3_000) => {
    const deadline = Date.now() + ms;
    const seen: Frame[] = [];
    for (;;) {
      const [x] = await c.take(1, Math.max(1, deadline - Date.now()));
      if (!x) throw new Error("no frame");
      seen.push(x);
      if (match(x)) return seen;
    }
  };
  const revoked = (topic: string) => (x: Frame) =>
    x.type === "unsubscribed" && x.reason === "access_revoked" && (x.topics as string[]).includes(topic);
  /** A public channel with these members, made by the admin (its topic starts at seq 0). */
  const channelWith = async (name: string, members: string[]) => {
    const body = await ok<{ channel: { id: string } }>(
      api("POST", `${base()}/channels`, { token: f.admin, json: { name } }),
      201,
    );
    if (members.length > 0) {
      await ok(
        api("POST", `${base()}/channels/${body.channel.id}/members`, {
          token: f.admin,
          json: { user_ids: members.map(id) },
        }),
      );
    }
    return body.channel.id;
  };

  beforeAll(async () => {
    f = await buildTeam();
  });

  describe("tickets", () => {
    it("trades an access token for a ticket that opens exactly one socket; a second connect with it is 401", async () => {
      const res = await SELF.fetch("https://edge.test/v1/rtm.connect", {
        method: "POST",
        headers: { authorization: `Bearer ${await as("ada")}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const body = (await res.json()) as TicketBody;
      expect(body).toEqual({
        url: `/v1/rtm?ticket=${encodeURIComponent(body.ticket)}`,
        ticket: expect.any(String),
        expires_in: TICKET_TTL_SECONDS,
      });
      const first = await rtmUpgrade(body.url);
      expect(first.status).toBe(101);
      const c = Client.accept(first);
      expect(await c.one()).toMatchObject({ type: "hello", user: id("ada"), team: f.team });
      const again = await rtmUpgrade(body.url);
      expect(again.status).toBe(401);
      expect(again.webSocket).toBeNull();
      expect(await again.json()).toMatchObject({ error: { code: "unauthorized", message: /already used/ } });
      expect((await gatewayOf("ada").stats()).usedTickets).toBeGreaterThanOrEqual(1);
      c.close();
    });

    it("refuses access tokens in the URL, and never takes a ticket for a token or a token for a ticket", async () => {
      const access = await as("bob");
      const url = await ticketUrl(access);
      const ticket = new URL(url, "https://edge.test").searchParams.get("ticket") ?? "";
      for (const res of [
        await rtmUpgrade(`/v1/rtm?token=${access}`),
        // Even with a valid header beside it: the token must not be in the URL at all.
        await rtmUpgrade(`/v1/rtm?token=${access}`, access),
        await rtmUpgrade(`/v1/rtm?ticket=${access}`),
        await rtmUpgrade("/v1/rtm", ticket),
      ]) {
        expect(res.status).toBe(401);
        expect(res.webSocket).toBeNull();
      }
      expect((await api("POST", "/v1/rtm.connect", { token: ticket })).status).toBe(401);
      expect((await api("POST", "/v1/rtm.connect", {})).status).toBe(401);
      // The ticket was never used by any of that: it still opens its one socket.
      const c = Client.accept(await rtmUpgrade(url));
      expect(await c.one()).toMatchObject({ type: "hello", user: id("bob") });
      c.close();
    });

    it("takes identity, role and expiry from the ticket and live state, never from headers a client sends", async () => {
      const url = await ticketUrl(await as("cat"));
      const res = await SELF.fetch(`https://edge.test${url}`, {
        headers: {
          upgrade: "websocket",
          "x-rtm-user": id("ada"),
          "x-rtm-team": "TOTHER",
          "x-rtm-role": "owner",
          "x-rtm-exp": String(2 ** 40),
        },
      });
      const c = Client.accept(res);
      expect(await c.one()).toMatchObject({ type: "hello", user: id("cat"), team: f.team });
      c.close();
    });

    it("gives a ticket no longer than its access token has left", async () => {
      const body = await ok<TicketBody>(api("POST", "/v1/rtm.connect", { token: await as("dan", 5) }));
      expect(body.expires_in).toBeGreaterThanOrEqual(1);
      expect(body.expires_in).toBeLessThanOrEqual(5);
    });
  });

  describe("live state", () => {
    it("gives unknown and deactivated users no ticket and no socket, so they publish no presence", async () => {
      const stranger = await token(f.team, "USTRANGER");
      expect((await api("POST", "/v1/rtm.connect", { token: stranger })).status).toBe(403);
      expect((await rtmUpgrade("/v1/rtm", stranger)).status).toBe(403);

      const watcher = await connect("ada");
      watcher.send({ v: 1, type: "presence_sub", id: "p", users: [id("fay")] });
      expect(await watcher.one()).toMatchObject({ id: "p", users: [{ user: id("fay"), presence: "away" }] });
      const spare = await ticketUrl(await as("fay"));
      const fay = await connect("fay");
      expect(await watcher.one()).toMatchObject({ users: [{ user: id("fay"), presence: "active" }] });
      await ok(api("DELETE", `${base()}/users/${id("fay")}`, { token: f.admin }));
      expect(await closedWith(fay)).toEqual({ code: CLOSE_CODES.deactivated, reason: '{"code":"deactivated"}' });
      expect(await watcher.one()).toMatchObject({ users: [{ user: id("fay"), presence: "away" }] });
      // No way back in: no new ticket, not the one fetched before, not a bearer token.
      expect((await api("POST", "/v1/rtm.connect", { token: await as("fay") })).status).toBe(403);
      const old = await rtmUpgrade(spare);
      expect(old.status).toBe(403);
      expect(old.webSocket).toBeNull();
      expect((await rtmUpgrade("/v1/rtm", await as("fay"))).status).toBe(403);
      // And so never "active" again.
      expect(await watcher.rest(800)).toEqual([]);
      watcher.close();
    });

    it("closes a socket when the access token it came from expires (4001 token_expired), by ticket or by header", async () => {
      const short = await as("gil", 3);
      const byTicket = await Client.connect(short, "ticket");
      const byHeader = await Client.connect(short, "header");
      for (const c of [byTicket, byHeader]) expect((await c.one()).type).toBe("hello");
      byTicket.send({ v: 1, type: "subscribe", topics: [{ topic: `channel:${f.channels.general}` }] });
      expect(await byTicket.one()).toMatchObject({ type: "subscribed" });
      for (const c of [byTicket, byHeader]) {
        const closed = await closedWith(c, 6_000);
        expect(closed.code).toBe(CLOSE_CODES.token_expired);
        expect(JSON.parse(closed.reason)).toEqual({ code: "token_expired" });
      }
      expect((await gatewayOf("gil").stats()).expired).toBeGreaterThanOrEqual(2);
    });
  });

  describe("re-checks", () => {
    it("drops the non-members when a channel turns private, within a second", async () => {
      const channel = await channelWith("turning", ["ada"]);
      const topic = `channel:${channel}`;
      const ada = await connect("ada");
      const bob = await connect("bob");
      for (const c of [ada, bob]) expect(await c.subscribe([{ topic }])).toMatchObject({ type: "subscribed" });
      await ok(api("PATCH", `${base()}/channels/${channel}`, { token: f.admin, json: { private: true } }));
      const cut = await until(bob, revoked(topic), 1_000);
      expect(cut[0]).toMatchObject({ topic, event: { type: "channel_changed", channel: { is_private: true } } });
      expect(await ada.one()).toMatchObject({ topic, event: { type: "channel_changed" } });
      await ok(post("ada", channel, "members only now"), 201);
      expect(await ada.one()).toMatchObject({ event: { text: "members only now" } });
      expect(await bob.rest()).toEqual([]);
      expect(await bob.subscribe([{ topic }])).toMatchObject({ type: "error", code: "not_found", topic });
      ada.close();
      bob.close();
    });

    it("drops a member demoted to guest from the channels it is not in, within a second", async () => {
      const wide = `channel:${await channelWith("wide-open", ["ada"])}`;
      const general = `channel:${f.channels.general}`;
      const cat = await connect("cat");
      expect(await cat.subscribe([{ topic: wide }, { topic: general }])).toMatchObject({ type: "subscribed" });
      await ok(api("PATCH", `${base()}/users/${id("cat")}`, { token: f.admin, json: { role: "guest" } }));
      const cut = await until(cat, revoked(wide), 1_000);
      expect(cut.at(-1)).toEqual({ v: 1, type: "unsubscribed", topics: [wide], reason: "access_revoked" });
      // Its own channel stays.
      await ok(post("ada", "general", "to the members"), 201);
      expect(await cat.one()).toMatchObject({ topic: general, event: { text: "to the members" } });
      await ok(post("ada", wide.slice("channel:".length), "not for guests"), 201);
      expect(await cat.rest()).toEqual([]);
      cat.close();
    });

    it("denies when a re-check cannot be made (fail closed), and says so", async () => {
      const topic = `channel:${f.channels.private}`;
      const bob = await connect("bob");
      expect(await bob.subscribe([{ topic }, { topic: "team" }])).toMatchObject({ type: "subscribed" });
      const gw = gatewayOf("bob");
      const broken: TopicAccess = {
        channel: () => Promise.reject(new Error("team cache unreachable")),
        team: () => Promise.reject(new Error("team cache unreachable")),
      };
      let working: unknown;
      // The re-checks ask through the gateway's access guard (access-guard.ts).
      const portsOf = (instance: object) => Reflect.get(Reflect.get(instance, "guard"), "ports") as object;
      await runInDurableObject(gw, (instance) => {
        working = Reflect.get(portsOf(instance), "access");
        Reflect.set(portsOf(instance), "access", broken);
      });
      try {
        // A change to the private channel re-checks every subscriber: the check throws, bob loses it.
        await ok(api("PATCH", `${base()}/channels/${f.channels.private}`, { token: f.admin, json: { topic: "x" } }));
        await until(bob, revoked(topic), 1_000);
      } finally {
        await runInDurableObject(gw, (instance) => {
          Reflect.set(portsOf(instance), "access", working);
        });
      }
      // Only what could not be confirmed went: the team topic still delivers.
      await ok(api("PATCH", `${base()}/users/${id("hal")}/profile`, { token: f.admin, json: { title: "Still here" } }));
      expect(await bob.one()).toMatchObject({ topic: "team", event: { type: "user_changed" } });
      bob.close();
    });
  });

  describe("guests", () => {
    it("sends a guest on the team topic only the users and channels it shares, live and on resume", async () => {
      const gus = await connect("gus");
      const dan = await connect("dan");
      const subscribed = await gus.subscribe([{ topic: "team" }]);
      const from = (subscribed.topics as Array<{ seq: number }>)[0]?.seq ?? 0;
      expect(await dan.subscribe([{ topic: "team" }])).toMatchObject({ type: "subscribed" });
      const profile = (who: string, title: string) =>
        ok(api("PATCH", `${base()}/users/${id(who)}/profile`, { token: f.admin, json: { title } }));
      const channelTopic = (key: string, text: string) =>
        ok(api("PATCH", `${base()}/channels/${f.channels[key]}`, { token: f.admin, json: { topic: text } }));
      await profile("hal", "Hidden"); // gus shares no channel with hal
      await profile("bob", "Shared"); // bob is in "guests" with gus
      await channelTopic("general", "not gus's"); // public, gus is not a member
      await channelTopic("guests", "gus's"); // gus's own channel
      const all = await dan.take(4);
      expect(all.map((x) => x.event)).toMatchObject([
        { type: "user_changed", user: { id: id("hal") } },
        { type: "user_changed", user: { id: id("bob") } },
        { type: "channel_changed", channel: { id: f.channels.general } },
        { type: "channel_changed", channel: { id: f.channels.guests } },
      ]);
      const seen = await gus.take(2);
      expect(seen.map((x) => x.event)).toMatchObject([
        { type: "user_changed", user: { id: id("bob"), title: "Shared" } },
        { type: "channel_changed", channel: { id: f.channels.guests } },
      ]);
      expect(seen.map((x) => x.seq)).toEqual([all[1]?.seq, all[3]?.seq]);
      expect(await gus.rest()).toEqual([]);
      // Resuming replays the same share, no more.
      const again = await connect("gus");
      again.send({ v: 1, type: "subscribe", topics: [{ topic: "team", since: from }] });
      const replay = await again.take(3);
      expect(replay[0]).toMatchObject({ type: "subscribed" });
      expect(replay.slice(1).map((x) => x.seq)).toEqual([all[1]?.seq, all[3]?.seq]);
      expect(await again.rest()).toEqual([]);
      for (const c of [gus, dan, again]) c.close();
    });

    it("answers presence_sub only with the users the viewer may see", async () => {
      const gus = await connect("gus");
      gus.send({ v: 1, type: "presence_sub", id: "g", users: [id("bob"), id("hal"), "UNOPE"] });
      const answer = await gus.one();
      expect(answer).toMatchObject({ type: "presence", id: "g" });
      expect((answer.users as Array<{ user: string }>).map((u) => u.user)).toEqual([id("bob")]);
      const hal = await connect("hal");
      expect(await gus.rest(300)).toEqual([]);
      // A member sees the whole team (and nobody who is not in it).
      const eve = await connect("eve");
      eve.send({ v: 1, type: "presence_sub", id: "e", users: [id("bob"), id("hal"), "UNOPE"] });
      const full = await eve.one();
      expect((full.users as Array<{ user: string }>).map((u) => u.user)).toEqual([id("bob"), id("hal")]);
      for (const c of [gus, hal, eve]) c.close();
    });
  });

  describe("limits", () => {
    it("closes a user's socket beyond GATEWAY_MAX_SOCKETS_PER_USER (10) with 4008, and admits again once one closes", async () => {
      const open: Client[] = [];
      for (let i = 0; i < 10; i++) open.push(await connect("eve", "header"));
      const extra = await Client.connect(await as("eve"), "header");
      const closed = await closedWith(extra);
      expect(closed).toEqual({ code: CLOSE_CODES.too_many_sockets, reason: '{"code":"too_many_sockets"}' });
      expect(extra.frames).toEqual([]);
      open.pop()?.close();
      await sleep(200);
      open.push(await connect("eve", "ticket"));
      for (const c of open) c.close();
    });
  });
});
