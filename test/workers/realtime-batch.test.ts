import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_BATCH_FRAMES } from "../../src/realtime/protocol";
import { api, ok, token } from "./client";
import { buildTeam, Client, type Fixture, type Frame, MEMBERS, sleep } from "./realtime-fixture";

// Frame coalescing, inside workerd: the frames a gateway has for one socket at
// once (several events of a delivery, the profiles before them, a resume's
// missed events) arrive as one `batch` message, exactly the frames that would
// otherwise come one by one and in the same order; a lone frame comes bare.
// The fixture unwraps batches into `frames`; these tests look at `messages`,
// what actually came over the socket.

describe("real-time frame coalescing", () => {
  let f: Fixture;
  const as = (who: string) => token(f.team, f.ids[who] ?? who);
  const id = (who: string) => f.ids[who] ?? who;
  const post = async (who: string, channel: string, text: string, mentions?: string[]) =>
    ok<{ seq: number }>(
      api("POST", `/v1/channels/${f.channels[channel] ?? channel}/messages`, {
        token: await as(who),
        json: mentions ? { text, mentions } : { text },
      }),
      201,
    );
  const connect = async (who: string, withProfiles = false) => {
    const c = await Client.connect(await as(who), "header", withProfiles);
    const hello = await c.one();
    expect(hello.type).toBe("hello");
    return { c, gateway: env.GATEWAY.get(env.GATEWAY.idFromName(String(hello.gateway))) };
  };
  const batches = (c: Client) => c.messages.filter((m) => m.type === "batch");
  const inner = (m: Frame) => m.frames as Frame[];
  const events = (frames: Frame[]) => frames.filter((x) => x.type === "event");
  const seqs = (frames: Frame[]) => events(frames).map((x) => x.seq as number);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  /** Waits until the socket has received n event frames in all, then for anything more to turn up. */
  const untilEvents = async (c: Client, n: number, ms = 5_000) => {
    const deadline = Date.now() + ms;
    while (events(c.frames).length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} events, got ${seqs(c.frames).join(",")}`);
      await sleep(5);
    }
    await c.rest(100);
  };

  beforeAll(async () => {
    f = await buildTeam();
  });

  it("delivers concurrent publishes as batch messages whose events are in seq order, without gaps or duplicates", async () => {
    const { c } = await connect("bob");
    await c.subscribe([{ topic: `channel:${f.channels.burst}` }]);
    const total = 30;
    // Several posters: each has its own rate per channel (a burst of 20).
    await Promise.all(range(1, total).map((i) => post(MEMBERS[i % MEMBERS.length] ?? "ada", "burst", `m${i}`)));
    const got = await c.take(total);
    expect(seqs(got)).toEqual(range(1, total));
    expect(await c.rest(100)).toEqual([]);
    // While a round is in flight the next publishes wait and go out together:
    // those reach the socket as one message, not one per event.
    const multi = batches(c).filter((m) => events(inner(m)).length > 1);
    expect(multi.length).toBeGreaterThan(0);
    for (const m of batches(c)) {
      expect(inner(m).length).toBeGreaterThan(1);
      expect(inner(m).length).toBeLessThanOrEqual(DEFAULT_BATCH_FRAMES);
      expect(inner(m).every((x) => x.type !== "batch")).toBe(true);
      const s = seqs(inner(m));
      expect(s).toEqual(range(s[0] ?? 0, (s[0] ?? 0) + s.length - 1));
    }
    // Fewer messages than events: the per-message cost was paid per batch.
    expect(c.messages.length).toBeLessThan(total + 2);
    c.close();
  });

  it("puts a just-in-time profile in the batch, before the first event naming that user", async () => {
    const { c } = await connect("bob", true);
    const topic = `channel:${f.channels.jit}`;
    await c.subscribe([{ topic }]);
    await post("ada", "jit", "hi @cat", [id("cat")]);
    await c.take(3);
    expect(c.messages.at(-1)).toMatchObject({
      type: "batch",
      frames: [
        { type: "user", user: { id: id("ada") } },
        { type: "user", user: { id: id("cat") } },
        { type: "event", topic, event: { text: "hi @cat" } },
      ],
    });
    // Concurrent authors naming others: every named user's profile comes
    // before the first event naming them, within a batch or before it.
    const authors = MEMBERS.filter((m) => m !== "bob");
    const before = c.frames.length;
    const posted = await Promise.all(
      authors.map((who, i) => post(who, "jit", `from ${who}`, [id(authors[(i + 1) % authors.length] ?? "ada")])),
    );
    await untilEvents(c, 1 + posted.length);
    const frames = c.frames.slice(before);
    expect(seqs(frames)).toEqual(range(2, 1 + posted.length));
    const profiled = new Set([id("ada"), id("cat")]);
    for (const x of frames) {
      if (x.type === "user") profiled.add((x.user as { id: string }).id);
      if (x.type !== "event") continue;
      const e = x.event as { user: string; mentions: string[] };
      for (const u of [e.user, ...e.mentions])
        expect(profiled.has(u), `profile of ${u} before seq ${x.seq}`).toBe(true);
    }
    c.close();
  });

  it("never batches when the limit is one frame per message (GATEWAY_BATCH_FRAMES=1)", async () => {
    const { c, gateway } = await connect("cat", true);
    expect((await gateway.configure({})).batchFrames).toBe(DEFAULT_BATCH_FRAMES);
    await gateway.configure({ batchFrames: 1 });
    try {
      await c.subscribe([{ topic: `channel:${f.channels.ordered}` }]);
      const authors = MEMBERS.filter((m) => m !== "cat");
      await Promise.all(authors.map((who) => post(who, "ordered", `hi from ${who}`, [id("hal")])));
      await untilEvents(c, authors.length);
      expect(batches(c)).toEqual([]);
      expect(seqs(c.frames)).toEqual(range(1, authors.length));
      // Each profile still precedes the first event naming that user, as separate messages.
      const firstUser = c.frames.findIndex((x) => x.type === "user");
      const firstEvent = c.frames.findIndex((x) => x.type === "event");
      expect(firstUser).toBeGreaterThanOrEqual(0);
      expect(firstUser).toBeLessThan(firstEvent);
      expect(c.messages.length).toBe(c.frames.length);
    } finally {
      await gateway.configure({ batchFrames: DEFAULT_BATCH_FRAMES });
    }
    c.close();
  });

  it("sends a lone frame bare: an idle subscribe, and one event with nothing to annotate", async () => {
    const { c } = await connect("dan", true);
    await c.subscribe([{ topic: `channel:${f.channels.hib}` }]);
    expect(c.messages.at(-1)).toMatchObject({ type: "subscribed" });
    await post("eve", "hib", "first");
    await c.take(2);
    expect(c.messages.at(-1)).toMatchObject({ type: "batch", frames: [{ type: "user" }, { type: "event" }] });
    // The author's profile was sent: the next event is alone, and bare.
    await post("eve", "hib", "second");
    expect(await c.one()).toMatchObject({ type: "event", event: { text: "second" } });
    expect(c.messages.at(-1)).toMatchObject({ v: 1, type: "event", seq: 2, event: { text: "second" } });
    c.close();
  });

  it("sends a resume's answer and missed events together, split at the limit", async () => {
    const topic = `channel:${f.channels.resume}`;
    for (const t of ["1", "2", "3", "4", "5", "6", "7"]) await post("ada", "resume", t);
    const { c, gateway } = await connect("eve");
    await gateway.configure({ batchFrames: 3 });
    try {
      c.send({ v: 1, type: "subscribe", id: "r", topics: [{ topic, since: 1 }] });
      const got = await c.take(7);
      expect(got[0]).toMatchObject({ type: "subscribed", id: "r", topics: [{ topic, seq: 7 }] });
      expect(seqs(got)).toEqual(range(2, 7));
      expect(c.messages.slice(1).map((m) => (m.type === "batch" ? inner(m).length : 1))).toEqual([3, 3, 1]);
    } finally {
      await gateway.configure({ batchFrames: DEFAULT_BATCH_FRAMES });
    }
    c.close();
  });
});
