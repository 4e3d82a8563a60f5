import { describe, expect, it } from "vitest";
import { postMessage } from "../../src/realtime/messages";
import type { Access, ChannelAccess, TopicAccess } from "../../src/realtime/ports";
import {
  batchFramesOf,
  DEFAULT_BATCH_FRAMES,
  eventFrame,
  frame,
  frameBytes,
  MAX_BATCH_CHARS,
  MAX_FRAME_BYTES,
  MAX_TOPICS_PER_FRAME,
  packFrames,
  parseClientFrame,
  parseHandshakeTopics,
} from "../../src/realtime/protocol";
import { continuation, logWindow, mergeEvents, resumePlan, type TopicEvent } from "../../src/realtime/sequence";
import {
  decodeState,
  encodeState,
  fitsAttachment,
  type SocketState,
  STATE_BUDGET_BYTES,
} from "../../src/realtime/socket-state";
import { channelOf, gatewayName, parseShardCount, shardOf, topicKey } from "../../src/realtime/topics";

const parse = (value: unknown) => parseClientFrame(typeof value === "string" ? value : JSON.stringify(value));

describe("client frames", () => {
  it("accepts subscribe, unsubscribe and ping, keeping only known fields", () => {
    expect(
      parse({
        v: 1,
        type: "subscribe",
        id: "a",
        topics: [{ topic: "channel:C1", since: 4 }, { topic: "team" }],
        extra: true,
      }),
    ).toEqual({
      ok: true,
      frame: { v: 1, type: "subscribe", id: "a", topics: [{ topic: "channel:C1", since: 4 }, { topic: "team" }] },
    });
    expect(parse({ v: 1, type: "unsubscribe", topics: [{ topic: "team" }] })).toEqual({
      ok: true,
      frame: { v: 1, type: "unsubscribe", topics: [{ topic: "team" }] },
    });
    expect(parse({ v: 1, type: "ping", id: 3 })).toEqual({ ok: true, frame: { v: 1, type: "ping", id: 3 } });
  });

  it("deduplicates topics, the first occurrence winning", () => {
    const r = parse({
      v: 1,
      type: "subscribe",
      topics: [
        { topic: "team", since: 1 },
        { topic: "team", since: 9 },
      ],
    });
    expect(r).toMatchObject({ ok: true, frame: { topics: [{ topic: "team", since: 1 }] } });
  });

  it.each([
    ["{nope", "invalid_json"],
    ["null", "invalid_frame"],
    ["[]", "invalid_frame"],
    ['"ping"', "invalid_frame"],
    [{ type: "ping" }, "unsupported_version"],
    [{ v: "1", type: "ping" }, "unsupported_version"],
    [{ v: 1 }, "invalid_frame"],
    [{ v: 1, type: 5 }, "invalid_frame"],
    [{ v: 1, type: "publish" }, "unknown_type"],
    [{ v: 1, type: "ping", id: { x: 1 } }, "invalid_frame"],
    [{ v: 1, type: "ping", id: "x".repeat(65) }, "invalid_frame"],
    [{ v: 1, type: "subscribe" }, "invalid_frame"],
    [{ v: 1, type: "subscribe", topics: [] }, "invalid_frame"],
    [{ v: 1, type: "subscribe", topics: ["team"] }, "invalid_frame"],
    [{ v: 1, type: "subscribe", topics: [{ topic: "channel:" }] }, "invalid_frame"],
    [{ v: 1, type: "subscribe", topics: [{ topic: "channel:C 1" }] }, "invalid_frame"],
    [{ v: 1, type: "subscribe", topics: [{ topic: "dm:U1" }] }, "invalid_frame"],
    [{ v: 1, type: "subscribe", topics: [{ topic: "team", since: 1.5 }] }, "invalid_frame"],
    [{ v: 1, type: "subscribe", topics: [{ topic: "team", since: "3" }] }, "invalid_frame"],
    [{ v: 1, type: "unsubscribe", topics: [{ topic: "team", since: 3 }] }, "invalid_frame"],
  ])("rejects %j as %s", (value, code) => {
    expect(parse(value)).toMatchObject({ ok: false, code });
  });

  it("echoes the id of a frame it rejects when the id itself is valid", () => {
    expect(parse({ v: 1, type: "subscribe", id: "q", topics: 1 })).toMatchObject({ ok: false, id: "q" });
    expect(parse({ v: 9, type: "ping", id: 2 })).toMatchObject({ ok: false, id: 2, code: "unsupported_version" });
  });

  it("limits frames to 16 KB (UTF-8 bytes) and topics per frame", () => {
    const pad = (n: number) => JSON.stringify({ v: 1, type: "ping", pad: "x".repeat(n) });
    const base = pad(0).length;
    expect(parseClientFrame(pad(MAX_FRAME_BYTES - base))).toMatchObject({ ok: true });
    expect(parseClientFrame(pad(MAX_FRAME_BYTES - base + 1))).toMatchObject({ ok: false, code: "frame_too_large" });
    // Multi-byte characters count by their bytes.
    const wide = JSON.stringify({ v: 1, type: "ping", pad: "€".repeat(6000) });
    expect(wide.length).toBeLessThan(MAX_FRAME_BYTES);
    expect(frameBytes(wide)).toBeGreaterThan(MAX_FRAME_BYTES);
    expect(parseClientFrame(wide)).toMatchObject({ ok: false, code: "frame_too_large" });
    expect(parseClientFrame(new ArrayBuffer(10))).toMatchObject({ ok: false, code: "invalid_frame" });
    const many = Array.from({ length: MAX_TOPICS_PER_FRAME + 1 }, (_, i) => ({ topic: `channel:C${i}` }));
    expect(parse({ v: 1, type: "subscribe", topics: many })).toMatchObject({ ok: false, code: "invalid_frame" });
  });

  it("builds event frames around JSON bodies", () => {
    expect(JSON.parse(eventFrame("channel:C1", 7, '{"type":"message","text":"hi \\"x\\""}'))).toEqual({
      v: 1,
      type: "event",
      topic: "channel:C1",
      seq: 7,
      event: { type: "message", text: 'hi "x"' },
    });
  });
});

describe("frame coalescing", () => {
  const ev = (seq: number, text = "hi") => eventFrame("channel:C1", seq, JSON.stringify({ type: "message", text }));
  const frames = (n: number) => Array.from({ length: n }, (_, i) => ev(i + 1));
  /** What a client sees: each message unwrapped into its frames. */
  const unwrap = (messages: string[]) =>
    messages.flatMap((m) => {
      const parsed = JSON.parse(m) as { type: string; frames?: unknown[] };
      return parsed.type === "batch" ? (parsed.frames ?? []) : [parsed];
    });

  it("sends nothing, or a lone frame bare (the protocol unchanged when idle)", () => {
    expect(packFrames([])).toEqual([]);
    expect(packFrames([ev(1)])).toEqual([ev(1)]);
  });

  it("packs several frames into one batch: exactly those frames, in order", () => {
    const texts = [frame({ v: 1, type: "user", user: { id: "U1" } }), ev(1), ev(2)];
    const [batch, ...more] = packFrames(texts);
    expect(more).toEqual([]);
    expect(batch).toBe(`{"v":1,"type":"batch","frames":[${texts.join(",")}]}`);
    expect(JSON.parse(batch ?? "")).toEqual({ v: 1, type: "batch", frames: texts.map((t) => JSON.parse(t)) });
  });

  it("splits at the frame limit, and never batches with a limit of 1", () => {
    const texts = frames(10);
    const packed = packFrames(texts, 4);
    expect(packed.map((m) => (JSON.parse(m) as { frames?: unknown[] }).frames?.length ?? 1)).toEqual([4, 4, 2]);
    expect(unwrap(packed)).toEqual(texts.map((t) => JSON.parse(t)));
    expect(packFrames(texts, 1)).toEqual(texts);
    // A remainder of one goes bare.
    expect(JSON.parse(packFrames(frames(5), 4).at(-1) ?? "")).toMatchObject({ type: "event", seq: 5 });
    expect(packFrames(frames(200)).length).toBe(Math.ceil(200 / DEFAULT_BATCH_FRAMES));
  });

  it("splits at the text limit; a frame larger than the limit on its own goes bare", () => {
    const big = Array.from({ length: 6 }, (_, i) => ev(i + 1, "x".repeat(3_000)));
    const packed = packFrames(big, 64, 10_000);
    for (const m of packed) expect(m.length).toBeLessThanOrEqual(10_000);
    expect(packed.length).toBe(2);
    expect(unwrap(packed)).toEqual(big.map((t) => JSON.parse(t)));
    const huge = ev(9, "y".repeat(MAX_BATCH_CHARS));
    const withHuge = packFrames([ev(7), ev(8), huge, ev(10)]);
    expect(withHuge[1]).toBe(huge);
    expect(unwrap(withHuge).map((x) => (x as { seq: number }).seq)).toEqual([7, 8, 9, 10]);
  });

  it("reads GATEWAY_BATCH_FRAMES: a whole number ≥ 1, else the default (and an error logged)", () => {
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (e: unknown) => errors.push(e);
    try {
      expect(batchFramesOf(undefined)).toBe(DEFAULT_BATCH_FRAMES);
      expect(batchFramesOf("")).toBe(DEFAULT_BATCH_FRAMES);
      expect(batchFramesOf("1")).toBe(1);
      expect(batchFramesOf("16")).toBe(16);
      expect(errors).toEqual([]);
      for (const bad of ["0", "-3", "2.5", "many"]) expect(batchFramesOf(bad), bad).toBe(DEFAULT_BATCH_FRAMES);
      expect(errors).toHaveLength(4);
    } finally {
      console.error = original;
    }
  });
});

describe("topics and shards", () => {
  it("maps client topics to topic objects per team", () => {
    expect(topicKey("T1", "channel:C9")).toBe("ch:T1:C9");
    expect(topicKey("T1", "team")).toBe("team:T1");
    expect(channelOf("channel:C9")).toBe("C9");
    expect(channelOf("team")).toBeNull();
  });

  it("spreads a team's users over its gateway shards, stably", () => {
    const users = Array.from({ length: 4000 }, (_, i) => `U${i.toString(36).toUpperCase().padStart(10, "0")}`);
    const counts = [0, 0, 0, 0];
    for (const u of users) counts[shardOf(u, 4)] = (counts[shardOf(u, 4)] ?? 0) + 1;
    for (const n of counts) expect(n).toBeGreaterThan(800);
    expect(gatewayName("T1", "UABC", 4)).toBe(gatewayName("T1", "UABC", 4));
    expect(gatewayName("T1", "UABC", 4)).toMatch(/^gw:T1:[0-3]$/);
    expect(gatewayName("T1", "UABC", 1)).toBe("gw:T1:0");
  });

  it("reads GATEWAY_SHARDS, failing loudly on nonsense", () => {
    expect(parseShardCount(undefined)).toBe(4);
    expect(parseShardCount("")).toBe(4);
    expect(parseShardCount("16")).toBe(16);
    for (const bad of ["0", "-1", "2.5", "many", "5000"]) expect(() => parseShardCount(bad)).toThrow(/GATEWAY_SHARDS/);
  });
});

describe("sequence rules", () => {
  const ev = (...seqs: number[]): TopicEvent[] => seqs.map((seq) => ({ seq, json: `{"n":${seq}}` }));

  it("plans a resume from the log window", () => {
    const log = logWindow(10, 5); // events 6..10
    expect(log).toEqual({ seq: 10, oldest: 6 });
    expect(resumePlan(10, log)).toEqual({ kind: "current" });
    expect(resumePlan(7, log)).toEqual({ kind: "replay", after: 7 });
    expect(resumePlan(5, log)).toEqual({ kind: "replay", after: 5 });
    expect(resumePlan(4, log)).toEqual({ kind: "reload", reason: "gap_too_old" });
    expect(resumePlan(11, log)).toEqual({ kind: "reload", reason: "seq_ahead" });
    expect(resumePlan(0, logWindow(3, 5))).toEqual({ kind: "replay", after: 0 });
    expect(resumePlan(0, logWindow(0, 5))).toEqual({ kind: "current" });
  });

  it("sends a socket only what continues its sequence: no duplicates, no gaps", () => {
    expect(continuation(2, ev(1, 2, 3, 4), 4)).toEqual({ send: ev(3, 4), last: 4, complete: true });
    expect(continuation(2, ev(4, 5), 5)).toEqual({ send: [], last: 2, complete: false });
    expect(continuation(2, ev(3, 5), 5)).toEqual({ send: ev(3), last: 3, complete: false });
    expect(continuation(5, ev(3, 4), 4)).toEqual({ send: [], last: 5, complete: true });
  });

  it("merges event lists by seq", () => {
    expect(mergeEvents(ev(3, 5), ev(4, 5, 6)).map((e) => e.seq)).toEqual([3, 4, 5, 6]);
  });
});

describe("socket state in the hibernation attachment", () => {
  const state = (topics: number): SocketState => ({
    sid: "abcdef123456",
    team: "T0123456789",
    user: "U0123456789",
    gateway: "gw:T0123456789:3",
    subs: new Map([
      ["team", 12],
      ...Array.from({ length: topics }, (_, i) => [`channel:C${String(i).padStart(10, "0")}`, 123456] as const),
    ]),
    presence: new Set(),
    exp: 1_900_000_000,
    role: "member",
  });

  it("round-trips", () => {
    const s = state(3);
    expect(decodeState(encodeState(s))).toEqual(s);
    expect(decodeState("garbage")).toBeNull();
    expect(decodeState({})).toBeNull();
  });

  it("reads a state without expiry or role as expired and guest (fail closed)", () => {
    const stored = JSON.parse(encodeState(state(1))) as Record<string, unknown>;
    delete stored.x;
    stored.r = "superuser";
    expect(decodeState(JSON.stringify(stored))).toMatchObject({ exp: 0, role: "guest" });
  });

  it("holds about 500 Slack-style channels within the 16 KiB attachment, whatever their seqs grow to", () => {
    expect(fitsAttachment(state(490))).toBe(true);
    expect(fitsAttachment(state(520))).toBe(false);
    // Judged at the largest seqs: a state that fits stays under the budget forever.
    const grown = state(490);
    for (const topic of grown.subs.keys()) grown.subs.set(topic, Number.MAX_SAFE_INTEGER);
    expect(new TextEncoder().encode(encodeState(grown)).byteLength).toBeLessThanOrEqual(STATE_BUDGET_BYTES);
  });
});

describe("posting a message", () => {
  const allow: Access = { ok: true };
  const access = (channel: ChannelAccess): TopicAccess => ({ channel: async () => channel, team: async () => allow });

  it("publishes the event to the channel's topic, keyed by the team hosting the channel", async () => {
    const published: Array<[string, unknown, unknown]> = [];
    const result = await postMessage(
      {
        access: access({ ok: true, host: "THOST" }),
        publisher: {
          async publish(key, json, options) {
            published.push([key, JSON.parse(json), options]);
            return { ok: true, seq: 42 };
          },
        },
      },
      { team: "T1", user: "U1", channelId: "C1", text: "hi", mentions: ["U2", "U2", "U3"], now: 1000 },
    );
    expect(result).toEqual({ topic: "channel:C1", seq: 42 });
    expect(published).toEqual([
      [
        "ch:THOST:C1",
        { type: "message", channel: "C1", user: "U1", text: "hi", mentions: ["U2", "U3"], ts: 1000 },
        // The poster is named with its team: a shared channel's posters come from several.
        { poster: "T1:U1" },
      ],
    ]);
  });

  it("refuses as limited, with the retry delay of the limit it hit: the poster's own, or the channel's", async () => {
    const over = (limit: "poster" | "topic") =>
      postMessage(
        {
          access: access({ ok: true, host: "T1" }),
          publisher: { publish: async () => ({ ok: false, retryAfterMs: 1_200, limit }) },
        },
        { team: "T1", user: "U1", channelId: "C1", text: "hi", mentions: [], now: 1 },
      );
    await expect(over("poster")).rejects.toMatchObject({
      kind: "limited",
      code: "rate_limited",
      retryAfterSeconds: 2,
      details: { retry_after_ms: 1_200, limit: "poster" },
      message: expect.stringMatching(/^you are posting/),
    });
    await expect(over("topic")).rejects.toMatchObject({
      kind: "limited",
      details: { limit: "topic" },
      message: expect.stringMatching(/^this channel receives/),
    });
  });

  it("publishes nothing for a channel the poster cannot see", async () => {
    let calls = 0;
    const refused = postMessage(
      {
        access: access({ ok: false, code: "not_found", message: "channel C1 not found" }),
        publisher: {
          async publish() {
            calls++;
            return { ok: true, seq: 1 };
          },
        },
      },
      { team: "T1", user: "U1", channelId: "C1", text: "hi", mentions: [], now: 1 },
    );
    await expect(refused).rejects.toMatchObject({ kind: "not_found", message: "channel C1 not found" });
    expect(calls).toBe(0);
  });
});

describe("parseHandshakeTopics (GET /v1/rtm?subscribe=)", () => {
  it("reads topics with an optional @since, deduplicated, first wins", () => {
    expect(parseHandshakeTopics("team,channel:C1@42,channel:C1@7,channel:C2")).toEqual([
      { topic: "team" },
      { topic: "channel:C1", since: 42 },
      { topic: "channel:C2" },
    ]);
    expect(parseHandshakeTopics("channel:C1@0")).toEqual([{ topic: "channel:C1", since: 0 }]);
  });

  it("names what is wrong, and refuses more topics than a frame may carry", () => {
    for (const bad of [
      "",
      "general",
      "team,",
      "channel:",
      "channel:C1@",
      "channel:C1@-1",
      "channel:C1@1e3",
      "team@1@2",
    ]) {
      expect(parseHandshakeTopics(bad), bad).toMatch(/^subscribe: /);
    }
    const many = Array.from({ length: MAX_TOPICS_PER_FRAME + 1 }, (_, i) => `channel:C${i}`).join(",");
    expect(parseHandshakeTopics(many)).toBe(`subscribe: at most ${MAX_TOPICS_PER_FRAME} topics`);
  });
});
