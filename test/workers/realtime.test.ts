import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { PING_TEXT } from "../../src/realtime/protocol";
import { api, ok, token } from "./client";
import { buildTeam, Client, type Fixture, type Frame, MEMBERS, rtmUpgrade, sleep, ticketUrl } from "./realtime-fixture";

// Real-time fan-out end to end, inside workerd: client WebSockets through the
// Worker to gateway shards, messages through POST /v1/channels/:id/messages to
// topic objects and back out to exactly the subscribed sockets.

describe("real-time fan-out", () => {
  let f: Fixture;
  const as = (who: string) => token(f.team, f.ids[who] ?? who);
  const post = async (who: string, channel: string, text: string, mentions?: string[]) =>
    ok<{ topic: string; seq: number }>(
      api("POST", `/v1/channels/${f.channels[channel] ?? channel}/messages`, {
        token: await as(who),
        json: mentions ? { text, mentions } : { text },
      }),
      201,
    );
  const topicStub = (channel: string) => {
    const key = `ch:${f.team}:${f.channels[channel]}`;
    return { key, stub: env.TOPIC.get(env.TOPIC.idFromName(key)) };
  };
  const connect = async (who: string) => {
    const c = await Client.connect(await as(who));
    const hello = await c.one();
    expect(hello.type).toBe("hello");
    return { c, gateway: String(hello.gateway) };
  };

  beforeAll(async () => {
    f = await buildTeam();
  });

  it("says hello on connect, with a ticket or with the token in the Authorization header", async () => {
    const a = await Client.connect(await as("ada"), "ticket");
    const hello = await a.one();
    expect(hello).toEqual({
      v: 1,
      type: "hello",
      user: f.ids.ada,
      team: f.team,
      gateway: expect.stringMatching(new RegExp(`^gw:${f.team}:[0-3]$`)),
    });
    const b = await Client.connect(await as("ada"), "header");
    expect(await b.one()).toEqual(hello);
    a.close();
    b.close();
  });

  it("refuses a missing or bad credential with 401 JSON, and a plain GET with 426", async () => {
    const none = await rtmUpgrade("/v1/rtm");
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    expect(none.webSocket).toBeNull();
    expect((await rtmUpgrade("/v1/rtm?ticket=nope")).status).toBe(401);
    expect((await rtmUpgrade("/v1/rtm", "nope")).status).toBe(401);
    const expired = await token(f.team, f.ids.ada ?? "", -10);
    expect((await rtmUpgrade("/v1/rtm", expired)).status).toBe(401);
    const plain = await SELF.fetch("https://edge.test/v1/rtm", {
      headers: { authorization: `Bearer ${await as("ada")}` },
    });
    expect(plain.status).toBe(426);
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe("upgrade_required");
  });

  it("delivers a channel's messages to a subscriber in seq order, each once", async () => {
    const { c } = await connect("bob");
    const sub = await c.subscribe([{ topic: `channel:${f.channels.ordered}` }]);
    expect(sub).toEqual({
      v: 1,
      type: "subscribed",
      id: "s",
      topics: [{ topic: `channel:${f.channels.ordered}`, seq: 0 }],
    });
    const first = await post("ada", "ordered", "one", [f.ids.bob ?? ""]);
    expect(first).toEqual({ topic: `channel:${f.channels.ordered}`, seq: 1 });
    await post("cat", "ordered", "two");
    // Concurrent posts: whatever order the topic numbers them in, that is the order delivered.
    const posted = await Promise.all(["a", "b", "c", "d", "e", "f"].map((t) => post("dan", "ordered", t)));
    const frames = await c.take(8);
    expect(frames.map((x) => x.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(frames[0]).toEqual({
      v: 1,
      type: "event",
      topic: `channel:${f.channels.ordered}`,
      seq: 1,
      event: {
        type: "message",
        channel: f.channels.ordered,
        user: f.ids.ada,
        text: "one",
        mentions: [f.ids.bob],
        ts: expect.any(Number),
      },
    });
    const bySeq = new Map(posted.map((p, i) => [p.seq, ["a", "b", "c", "d", "e", "f"][i]]));
    for (const x of frames.slice(2)) expect((x.event as { text: string }).text).toBe(bySeq.get(x.seq as number));
    expect(await c.rest()).toEqual([]);
    c.close();
  });

  it("refuses channels the user cannot see, with an error frame and no subscription", async () => {
    const { c } = await connect("bob");
    const refused = await c.subscribe([{ topic: `channel:${f.channels.secret}` }], "p");
    expect(refused).toMatchObject({
      v: 1,
      type: "error",
      id: "p",
      topic: `channel:${f.channels.secret}`,
      code: "not_found",
    });
    const unknown = await c.subscribe([{ topic: "channel:CNOPE" }], "u");
    expect(unknown).toMatchObject({ type: "error", code: "not_found", topic: "channel:CNOPE" });
    // A mixed frame: the refused topic is named, the visible one is subscribed.
    c.send({
      v: 1,
      type: "subscribe",
      id: "m",
      topics: [{ topic: `channel:${f.channels.secret}` }, { topic: `channel:${f.channels.general}` }],
    });
    const [err, sub] = await c.take(2);
    expect(err).toMatchObject({ type: "error", id: "m", topic: `channel:${f.channels.secret}` });
    expect(sub).toMatchObject({ type: "subscribed", id: "m", topics: [{ topic: `channel:${f.channels.general}` }] });
    await post("ada", "secret", "for ada only");
    expect(await c.rest()).toEqual([]);
    // A guest sees only the channels it belongs to.
    const { c: guest } = await connect("gus");
    expect(await guest.subscribe([{ topic: `channel:${f.channels.general}` }])).toMatchObject({
      type: "error",
      code: "not_found",
    });
    expect(await guest.subscribe([{ topic: `channel:${f.channels.guests}` }])).toMatchObject({ type: "subscribed" });
    c.close();
    guest.close();
  });

  it("answers 404 to a poster who cannot see the channel, 400 to a bad message, 401 without a token", async () => {
    const bob = await as("bob");
    const url = `/v1/channels/${f.channels.secret}/messages`;
    expect((await api("POST", url, { token: bob, json: { text: "hi" } })).status).toBe(404);
    expect((await api("POST", "/v1/channels/CNOPE/messages", { token: bob, json: { text: "hi" } })).status).toBe(404);
    const general = `/v1/channels/${f.channels.general}/messages`;
    for (const json of [
      { text: "" },
      { text: "x".repeat(4001) },
      {},
      { text: "hi", extra: 1 },
      { text: "hi", mentions: "U1" },
    ]) {
      expect((await api("POST", general, { token: bob, json })).status, JSON.stringify(json)).toBe(400);
    }
    expect((await api("POST", general, { json: { text: "hi" } })).status).toBe(401);
    expect((await api("POST", general, { token: bob, json: { text: "x".repeat(4000) } })).status).toBe(201);
  });

  it("fans out once per gateway shard: members on different shards each get every event once", async () => {
    const clients = await Promise.all(MEMBERS.map((m) => connect(m)));
    const shards = new Set(clients.map((x) => x.gateway));
    expect(shards.size).toBeGreaterThan(1);
    for (const { c } of clients)
      expect(await c.subscribe([{ topic: `channel:${f.channels.fan}` }])).toMatchObject({ type: "subscribed" });
    const { stub } = topicStub("fan");
    const before = await stub.stats();
    expect(before.gateways.map((g) => g.name).sort()).toEqual([...shards].sort());
    for (const text of ["x", "y", "z"]) await post("ada", "fan", text);
    for (const { c } of clients) {
      const got = await c.take(3);
      expect(got.map((x) => [x.seq, (x.event as { text: string }).text])).toEqual([
        [1, "x"],
        [2, "y"],
        [3, "z"],
      ]);
    }
    for (const { c } of clients) expect(await c.rest(100)).toEqual([]);
    const after = await stub.stats();
    // One delivery RPC per gateway shard per event (posted one at a time), not one per member.
    expect(after.deliveries - before.deliveries).toBe(3 * shards.size);
    for (const { c } of clients) c.close();
  });

  it("stops delivering after unsubscribe", async () => {
    const { c } = await connect("cat");
    const topic = `channel:${f.channels.unsub}`;
    await c.subscribe([{ topic }]);
    await post("ada", "unsub", "before");
    expect((await c.one()).event).toMatchObject({ text: "before" });
    c.send({ v: 1, type: "unsubscribe", id: "u", topics: [{ topic }] });
    expect(await c.one()).toEqual({ v: 1, type: "unsubscribed", id: "u", topics: [topic] });
    await post("ada", "unsub", "after");
    expect(await c.rest()).toEqual([]);
    // The topic drops the gateway once it hears nobody there follows it.
    const { stub } = topicStub("unsub");
    expect((await stub.stats()).gateways).toEqual([]);
    c.close();
  });

  it("resumes after a reconnect with since: exactly the missed events, then live ones", async () => {
    const topic = `channel:${f.channels.resume}`;
    const first = await connect("dan");
    await first.c.subscribe([{ topic }]);
    await post("ada", "resume", "1");
    await post("ada", "resume", "2");
    const seen = await first.c.take(2);
    const last = seen.at(-1)?.seq as number;
    first.c.close();
    for (const t of ["3", "4", "5"]) await post("ada", "resume", t);
    const again = await connect("dan");
    const sub = await again.c.subscribe([{ topic, since: last }]);
    expect(sub).toMatchObject({ type: "subscribed", topics: [{ topic, seq: 5 }] });
    const missed = await again.c.take(3);
    expect(missed.map((x) => [x.seq, (x.event as { text: string }).text])).toEqual([
      [3, "3"],
      [4, "4"],
      [5, "5"],
    ]);
    await post("ada", "resume", "6");
    expect(await again.c.one()).toMatchObject({ type: "event", seq: 6 });
    // Subscribing again to a topic the socket follows acknowledges it, without replaying.
    expect(await again.c.subscribe([{ topic, since: 0 }], "again")).toEqual({
      v: 1,
      type: "subscribed",
      id: "again",
      topics: [{ topic, seq: 6 }],
    });
    expect(await again.c.rest()).toEqual([]);
    again.c.close();
  });

  it("subscribes in the handshake (?subscribe=): hello, subscribed and the missed events, with no frame sent", async () => {
    const created = await ok<{ channel: { id: string } }>(
      api("POST", `/v1/admin/teams/${f.team}/channels`, { token: f.admin, json: { name: "handshake-room" } }),
      201,
    );
    const topic = `channel:${created.channel.id}`;
    for (const t of ["1", "2", "3"]) await post("ada", created.channel.id, t);
    const url = await ticketUrl(await as("eve"));
    const c = Client.accept(await rtmUpgrade(`${url}&subscribe=${encodeURIComponent(`${topic}@1,team`)}`));
    const [hello, sub, ...missed] = await c.take(4);
    expect(hello).toMatchObject({ type: "hello", user: f.ids.eve });
    expect(sub).toEqual({
      v: 1,
      type: "subscribed",
      topics: [
        { topic, seq: 3 },
        { topic: "team", seq: expect.any(Number) },
      ],
    });
    expect(missed.map((x) => [x.type, x.topic, x.seq])).toEqual([
      ["event", topic, 2],
      ["event", topic, 3],
    ]);
    await post("ada", created.channel.id, "4");
    expect(await c.one()).toMatchObject({ type: "event", topic, seq: 4 });
    expect(c.messages.some((m) => m.type === "error")).toBe(false);
    // Refused topics get the same error frames as a subscribe frame, and the socket stays.
    const bob = Client.accept(
      await rtmUpgrade(`/v1/rtm?subscribe=channel:${f.channels.secret},channel:CNOPE`, await as("bob")),
    );
    const [, ...refused] = await bob.take(3);
    expect(refused.map((x) => [x.type, x.code, x.topic])).toEqual([
      ["error", "not_found", `channel:${f.channels.secret}`],
      ["error", "not_found", "channel:CNOPE"],
    ]);
    c.close();
    bob.close();
  });

  it("refuses a malformed ?subscribe= with 400 JSON before any upgrade, leaving the ticket unused", async () => {
    const url = await ticketUrl(await as("eve"));
    for (const bad of [
      "",
      "general",
      "channel:",
      "channel:C1@-1",
      "channel:C1@x",
      "team@1.5",
      `channel:${"x".repeat(41)}`,
    ]) {
      const res = await rtmUpgrade(`${url}&subscribe=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(res.webSocket).toBeNull();
      expect(await res.json()).toMatchObject({
        error: { code: "bad_request", message: expect.stringMatching(/^subscribe/) },
      });
    }
    const c = Client.accept(await rtmUpgrade(url));
    expect(await c.one()).toMatchObject({ type: "hello" });
    c.close();
  });

  it("sends reload when since is older than the topic's log", async () => {
    const { key, stub } = topicStub("old");
    await stub.configure(key, { logSize: 3 });
    for (let i = 1; i <= 6; i++) await post("ada", "old", `m${i}`);
    expect(await stub.stats()).toMatchObject({ seq: 6, oldest: 4, logged: 3 });
    const topic = `channel:${f.channels.old}`;
    const { c } = await connect("eve");
    expect(await c.subscribe([{ topic, since: 1 }])).toMatchObject({ type: "subscribed", topics: [{ topic, seq: 6 }] });
    expect(await c.one()).toEqual({ v: 1, type: "reload", topic, reason: "gap_too_old", seq: 6 });
    // Within the log it replays; the subscription continues live after a reload.
    const { c: d } = await connect("fay");
    await d.subscribe([{ topic, since: 3 }]);
    expect((await d.take(3)).map((x) => x.seq)).toEqual([4, 5, 6]);
    await post("ada", "old", "m7");
    expect(await c.one()).toMatchObject({ type: "event", seq: 7 });
    expect(await d.one()).toMatchObject({ type: "event", seq: 7 });
    // A since beyond the topic's seq is a reload too.
    const { c: e } = await connect("gil");
    await e.subscribe([{ topic, since: 99 }]);
    expect(await e.one()).toMatchObject({ type: "reload", reason: "seq_ahead", seq: 7 });
    for (const x of [c, d, e]) x.close();
  });

  it("answers bad frames with an error and keeps the socket working", async () => {
    const { c } = await connect("hal");
    const bad: Array<[unknown, string]> = [
      ["{not json", "invalid_json"],
      ["[1,2]", "invalid_frame"],
      [{ v: 1, type: "shout" }, "unknown_type"],
      [{ v: 2, type: "ping" }, "unsupported_version"],
      [{ type: "ping" }, "unsupported_version"],
      [{ v: 1, type: "subscribe" }, "invalid_frame"],
      [{ v: 1, type: "subscribe", topics: [] }, "invalid_frame"],
      [{ v: 1, type: "subscribe", topics: [{ topic: "dm:U1" }] }, "invalid_frame"],
      [{ v: 1, type: "subscribe", topics: [{ topic: "team", since: -1 }] }, "invalid_frame"],
      [{ v: 1, type: "unsubscribe", topics: "team" }, "invalid_frame"],
      [{ v: 1, type: "ping", pad: "x".repeat(17 * 1024) }, "frame_too_large"],
    ];
    for (const [value, code] of bad) {
      c.send(value);
      expect(await c.one(), JSON.stringify(value).slice(0, 80)).toMatchObject({ v: 1, type: "error", code });
    }
    c.send({ v: 1, type: "subscribe", id: 7, topics: "nope" });
    expect(await c.one()).toMatchObject({ type: "error", id: 7, code: "invalid_frame" });
    c.ws.send(new Uint8Array([1, 2, 3]));
    expect(await c.one()).toMatchObject({ type: "error", code: "invalid_frame" });
    // Still works: ping (the runtime's auto-response and the gateway's own), subscribe, events.
    c.send(PING_TEXT);
    expect(await c.one()).toEqual({ v: 1, type: "pong" });
    c.send({ id: "p", type: "ping", v: 1 });
    expect(await c.one()).toEqual({ v: 1, type: "pong", id: "p" });
    const topic = `channel:${f.channels.bad}`;
    await c.subscribe([{ topic }]);
    await post("ada", "bad", "still here");
    expect((await c.one()).event).toMatchObject({ text: "still here" });
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.close();
  });

  it("subscribes to the team topic (members only) and delivers team-wide events", async () => {
    const { c } = await connect("ada");
    expect(await c.subscribe([{ topic: "team" }])).toMatchObject({ type: "subscribed", topics: [{ topic: "team" }] });
    const key = `team:${f.team}`;
    const published = await env.TOPIC.get(env.TOPIC.idFromName(key)).publish(
      key,
      JSON.stringify({ type: "team_renamed" }),
    );
    const seq = published.ok ? published.seq : -1;
    expect(await c.one()).toEqual({ v: 1, type: "event", topic: "team", seq, event: { type: "team_renamed" } });
    // A token for someone who is not a member of the team gets no socket at all.
    const stranger = await rtmUpgrade("/v1/rtm", await token(f.team, "USTRANGER"));
    expect(stranger.status).toBe(403);
    expect(stranger.webSocket).toBeNull();
    c.close();
  });

  it("keeps serving a subscribed socket after its gateway is evicted (hibernation)", async () => {
    const topic = `channel:${f.channels.hib}`;
    const { c, gateway } = await connect("bob");
    await c.subscribe([{ topic }]);
    await post("ada", "hib", "before");
    expect(await c.one()).toMatchObject({ seq: 1 });
    const stub = env.GATEWAY.get(env.GATEWAY.idFromName(gateway));
    const { incarnation } = await stub.stats();
    await evictDurableObject(stub);
    await post("ada", "hib", "after");
    expect(await c.one()).toMatchObject({ type: "event", topic, seq: 2, event: { text: "after" } });
    // A new instance served it, from the socket's attachment alone.
    const now = await stub.stats();
    expect(now.incarnation).not.toBe(incarnation);
    expect(now.topics[topic]).toBe(1);
    // And the socket still answers frames.
    c.send({ v: 1, type: "ping", id: 1 });
    expect(await c.one()).toEqual({ v: 1, type: "pong", id: 1 });
    expect(await c.rest()).toEqual([]);
    c.close();
  });

  it("does not send a channel's regulars' profiles again when its gateway wakes from hibernation", async () => {
    const topic = `channel:${f.channels.woke}`;
    const { c, gateway } = await connect("hal");
    await c.subscribe([{ topic }]);
    await post("ada", "woke", "one");
    expect(await c.one()).toMatchObject({ seq: 1 });
    expect(c.profiles.map((p) => p.user.id)).toEqual([f.ids.ada]);
    // What every subscriber was sent is written behind the sends (covered.ts), long before any hibernation.
    await sleep(100);
    await evictDurableObject(env.GATEWAY.get(env.GATEWAY.idFromName(gateway)));
    await post("ada", "woke", "two");
    expect(await c.one()).toMatchObject({ seq: 2, event: { text: "two" } });
    expect(c.profiles).toHaveLength(1);
    // Someone new still comes with a profile, once.
    await post("bob", "woke", "three");
    expect(await c.one()).toMatchObject({ seq: 3 });
    expect(c.profiles.map((p) => p.user.id)).toEqual([f.ids.ada, f.ids.bob]);
    c.close();
  });

  it("fills a gap from the topic's log when a delivery to the gateway went missing", async () => {
    const topic = `channel:${f.channels.gap}`;
    const { c } = await connect("cat");
    expect(await c.subscribe([{ topic }])).toMatchObject({ topics: [{ topic, seq: 0 }] });
    const { stub } = topicStub("gap");
    // Event 1 is logged and counted as delivered, but the gateway never got it.
    await runInDurableObject(stub, (_topic, state) => {
      const lost = JSON.stringify({
        type: "message",
        channel: f.channels.gap,
        user: "U1",
        text: "lost",
        mentions: [],
        ts: 1,
      });
      state.storage.sql.exec("INSERT INTO events (seq, json) VALUES (1, ?)", lost);
      state.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', '1')");
      state.storage.sql.exec("UPDATE gateways SET acked = 1");
    });
    // The topic keeps its meta in memory: a new instance reads what was written behind its back.
    await evictDurableObject(stub);
    await post("ada", "gap", "next");
    const got = await c.take(2);
    expect(got.map((x) => [x.seq, (x.event as { text: string }).text])).toEqual([
      [1, "lost"],
      [2, "next"],
    ]);
    expect(await c.rest()).toEqual([]);
    c.close();
  });

  it("answers the canonical ping without waking the gateway (hibernation auto-response)", async () => {
    const { c, gateway } = await connect("ada");
    const stub = env.GATEWAY.get(env.GATEWAY.idFromName(gateway));
    await evictDurableObject(stub);
    c.send(PING_TEXT);
    expect(await c.one()).toEqual({ v: 1, type: "pong" });
    // The instance this call starts has handled no frame: the runtime answered the ping.
    expect((await stub.stats()).frames).toBe(0);
    c.close();
  });

  it("never skips or repeats an event for sockets subscribing while events flow", async () => {
    const topic = `channel:${f.channels.burst}`;
    const rounds = 8;
    const perRound = 5;
    const total = rounds * perRound;
    const posting = (async () => {
      for (let i = 0; i < rounds; i++) {
        await Promise.all(Array.from({ length: perRound }, (_, j) => post(MEMBERS[j] ?? "ada", "burst", `${i}.${j}`)));
      }
    })();
    const clients: Array<{ c: Client; resume: boolean }> = [];
    for (const [i, who] of MEMBERS.entries()) {
      await sleep(10);
      const { c } = await connect(who);
      const resume = i % 2 === 0;
      c.send({ v: 1, type: "subscribe", topics: [resume ? { topic, since: 0 } : { topic }] });
      clients.push({ c, resume });
    }
    await posting;
    for (const { c, resume } of clients) {
      const sub = await c.one();
      expect(sub.type).toBe("subscribed");
      const from = resume ? 0 : ((sub.topics as Array<{ seq: number }>)[0]?.seq ?? 0);
      const events = await c.take(total - from);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total - from }, (_, k) => from + k + 1));
      expect(await c.rest(50)).toEqual([]);
      c.close();
    }
  });

  it("refuses topics beyond what a socket's attachment holds, keeping the rest", async () => {
    const admin = f.admin;
    const ids = Array.from({ length: 600 }, (_, i) => `C${f.team.slice(1, 6)}${String(i).padStart(5, "0")}`);
    await ok(
      api("POST", `/v1/admin/teams/${f.team}/channels/import`, {
        token: admin,
        json: { channels: ids.map((id, i) => ({ id, name: `many-${i}` })) },
      }),
      201,
    );
    const { c } = await connect("bob");
    const refused: Frame[] = [];
    const accepted: string[] = [];
    for (let from = 0, id = 0; from < ids.length; from += 100, id++) {
      const chunk = ids.slice(from, from + 100);
      c.send({ v: 1, type: "subscribe", id, topics: chunk.map((ch) => ({ topic: `channel:${ch}` })) });
      for (let n = 0; n < chunk.length; ) {
        const x = await c.one();
        if (x.type === "error") {
          refused.push(x);
          n++;
        } else {
          expect(x).toMatchObject({ type: "subscribed", id });
          const topics = (x.topics as Array<{ topic: string }>).map((t) => t.topic);
          accepted.push(...topics);
          n += topics.length;
        }
      }
    }
    expect(refused.every((x) => x.code === "too_many_topics")).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(450);
    expect(accepted.length + refused.length).toBe(ids.length);
    const last = accepted.at(-1)?.slice("channel:".length) ?? "";
    await post("ada", last, "to the last one that fit");
    expect(await c.one()).toMatchObject({ type: "event", topic: `channel:${last}`, seq: 1 });
    c.close();
  });

  it("keeps a topic's sequence across eviction of the topic object", async () => {
    const { key, stub } = topicStub("general");
    const { seq } = await post("ada", "general", "one more");
    await evictDurableObject(stub);
    expect((await post("ada", "general", "and another")).seq).toBe(seq + 1);
    expect((await stub.stats()).topic).toBe(key);
  });

  it("numbers a publishMany list in order, logs every event, and keeps each state key's last value", async () => {
    const key = `presence:${f.team}:test`;
    const stub = env.TOPIC.get(env.TOPIC.idFromName(key));
    const change = (user: string, presence: string) => ({ json: JSON.stringify({ user, presence }), stateKey: user });
    expect(
      await stub.publishMany(key, [change("U1", "active"), { json: '{"note":1}' }, change("U2", "active")]),
    ).toEqual({
      seqs: [1, 2, 3],
    });
    expect(await stub.publishMany(key, [change("U1", "away"), change("U1", "active"), change("U2", "away")])).toEqual({
      seqs: [4, 5, 6],
    });
    const log = await stub.eventsSince(key, 0);
    expect(log.events.map((e) => [e.seq, JSON.parse(e.json)])).toEqual([
      [1, { user: "U1", presence: "active" }],
      [2, { note: 1 }],
      [3, { user: "U2", presence: "active" }],
      [4, { user: "U1", presence: "away" }],
      [5, { user: "U1", presence: "active" }],
      [6, { user: "U2", presence: "away" }],
    ]);
    const snap = await stub.snapshot(key, ["U1", "U2", "U3"]);
    expect(snap.seq).toBe(6);
    expect(Object.fromEntries(Object.entries(snap.state).map(([k, v]) => [k, JSON.parse(v).presence]))).toEqual({
      U1: "active",
      U2: "away",
    });
  });
});
