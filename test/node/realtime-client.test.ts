import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Backoff } from "../../client/realtime/backoff";
import type { EventFrame } from "../../client/realtime/frames";
import { RealtimeClient } from "../../client/realtime/realtime-client";
import { TopicPositions } from "../../client/realtime/topic-positions";
import { type LocalPlatform, startLocalPlatform } from "./local-platform";

// The real-time client (client/realtime/) against the platform served as for
// a deploy: it subscribes, receives, loses its socket while messages are
// posted, and on reconnect (with a fresh ticket) gets exactly what it missed,
// then live events: every seq once, in order. Plus its pure parts.

describe("TopicPositions", () => {
  it("resumes from the last seq seen and drops what it has seen", () => {
    const p = new TopicPositions();
    expect(p.requests(["team"])).toEqual([{ topic: "team" }]);
    p.subscribed("team", 7);
    expect(p.accept("team", 8)).toBe(true);
    expect(p.accept("team", 8)).toBe(false);
    expect(p.accept("team", 5)).toBe(false);
    // A resume's `subscribed` names where the topic stands; the missed events still come.
    p.subscribed("team", 12);
    expect(p.seen("team")).toBe(8);
    expect(TopicPositions.handshakeParam(p.requests(["team", "channel:C1"]))).toBe("team@8,channel:C1");
    p.reload("team", 40);
    expect(p.accept("team", 41)).toBe(true);
    p.forget("team");
    expect(p.requests(["team"])).toEqual([{ topic: "team" }]);
  });
});

describe("Backoff", () => {
  it("draws every reconnect under a doubling cap, and starts over after a success", () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([99, 199, 399, 799, 999]);
    b.reset();
    expect(b.next()).toBe(99);
    expect(new Backoff({ baseMs: 100, random: () => 0 }).next()).toBe(0);
  });
});

let platform: LocalPlatform;

beforeAll(async () => {
  platform = await startLocalPlatform("realtime-client-test");
}, 180_000);

afterAll(async () => {
  await platform?.close();
});

async function post(text: string): Promise<number> {
  const res = await fetch(`${platform.url}/v1/channels/CGENERAL/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${platform.admin}`, "content-type": "application/json" },
    body: JSON.stringify({ text }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { seq: number }).seq;
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("RealtimeClient against the platform", () => {
  it("receives, loses its socket, and resumes without losing or repeating an event", async () => {
    // The token provider is asked before every connect; holding it keeps the client down.
    let hold: Promise<void> = Promise.resolve();
    let tokenCalls = 0;
    let ticketCalls = 0;
    const client = new RealtimeClient({
      baseUrl: platform.url,
      token: async () => {
        tokenCalls++;
        await hold;
        return platform.member;
      },
      topics: ["channel:CGENERAL"],
      heartbeatMs: 0,
      backoff: { baseMs: 50, maxMs: 200 },
      fetch: (input, init) => {
        if (String(input).endsWith("/v1/rtm.connect")) ticketCalls++;
        return fetch(input, init);
      },
    });
    const events: EventFrame[] = [];
    const hellos: string[] = [];
    client.on("event", (e) => events.push(e));
    client.on("hello", (h) => hellos.push(h.gateway));
    try {
      await until("the first subscription", () => client.positions()["channel:CGENERAL"] !== undefined);
      const first = await post("one");
      await until("the first event", () => events.length === 1);

      let release = () => {};
      hold = new Promise<void>((r) => {
        release = r;
      });
      client.reconnect();
      await until("the socket to drop", () => client.status.state === "connecting");
      // Posted while the client has no socket: they must come on resume.
      await post("two");
      await post("three");
      release();
      await until("the missed events", () => events.length === 3);
      await post("four");
      await until("the live event after the resume", () => events.length === 4);
      await new Promise((r) => setTimeout(r, 300));

      expect(events.map((e) => e.event.text)).toEqual(["one", "two", "three", "four"]);
      expect(events.map((e) => e.seq)).toEqual([first, first + 1, first + 2, first + 3]);
      expect(events.every((e) => e.topic === "channel:CGENERAL")).toBe(true);
      expect(client.duplicatesDropped).toBe(0);
      expect(hellos).toHaveLength(2);
      // A fresh single-use ticket for each of the two connects.
      expect(ticketCalls).toBe(2);
      expect(tokenCalls).toBe(2);
      expect(client.positions()["channel:CGENERAL"]).toBe(first + 3);
    } finally {
      client.close();
    }
  });

  it("subscribes at run time and stops for good when its ticket is refused", async () => {
    const client = new RealtimeClient({ baseUrl: platform.url, token: platform.member, heartbeatMs: 0 });
    const subscribed: string[] = [];
    client.on("subscribed", (s) => subscribed.push(...s.topics.map((t) => t.topic)));
    const errors: string[] = [];
    client.on("error", (e) => errors.push(`${e.topic}:${e.code}`));
    try {
      await until("open", () => client.status.state === "open");
      client.subscribe("team", "channel:CLEADS");
      await until("the answers", () => subscribed.includes("team") && errors.length === 1);
      // A private channel the member is not in: refused, and not asked for again.
      expect(errors).toEqual(["channel:CLEADS:not_found"]);
    } finally {
      client.close();
    }
    const refused = new RealtimeClient({ baseUrl: platform.url, token: "not-a-token", heartbeatMs: 0 });
    const closes: boolean[] = [];
    refused.on("close", (c) => closes.push(c.reconnecting));
    await until("the refusal", () => refused.status.state === "closed");
    expect(closes).toEqual([false]);
    expect(refused.status.lastError).toMatch(/rtm\.connect refused: 401/);
  });
});
