import { describe, expect, it } from "vitest";
import { AccessGuard } from "../../durable-objects/gateway/access-guard";
import { Annotator } from "../../durable-objects/gateway/annotator";
import { Fanout } from "../../durable-objects/gateway/fanout";
import { SharedPositions } from "../../durable-objects/gateway/positions";
import { SocketIndex } from "../../durable-objects/gateway/sockets";
import { type SubscriptionPorts, Subscriptions } from "../../durable-objects/gateway/subscriptions";
import type { Catchup } from "../../durable-objects/topic/topic";
import { byPresenceTopic, presenceEventJson } from "../../src/realtime/presence";
import type { ClientFrame, TopicRequest } from "../../src/realtime/protocol";
import type { TopicEvent } from "../../src/realtime/sequence";
import { decodeState } from "../../src/realtime/socket-state";
import { topicKey } from "../../src/realtime/topics";
import type { Role } from "../../src/teams/model";

// Subscriptions alone, inside workerd: real WebSockets (a WebSocketPair's
// server side, carrying an attachment), a real Durable Object SQLite for the
// shared positions, and the real socket index, fanout and access guard it
// works with. What it asks of other objects is in memory: the topics
// (subscribe / eventsSince / snapshot over a log per topic key) and the
// team cache (who may see which channel, and which users a guest may see).

import { connectedSocket, GATEWAY, TEAM, teamCache, withStorage } from "./gateway-fixture";

/**
 * Topics in memory: a log per topic key (events 1..head), each user's last
 * presence (`state`, as a presence shard keeps it), and every registration
 * asked of them.
 */
function topics(logs: Record<string, TopicEvent[]>, state: Record<string, string> = {}) {
  const registered: Array<{ key: string; gateway: string; since?: number }> = [];
  /** When set, a registration waits for it (a subscribe caught in the middle). */
  const hold: { until?: Promise<void>; reached?: () => void } = {};
  const catchup = (key: string, since: number | undefined): Catchup => {
    const log = logs[key] ?? [];
    const seq = log.at(-1)?.seq ?? 0;
    if (since === undefined) return { seq, oldest: 1, events: [] };
    if (since > seq) return { seq, oldest: 1, events: [], reload: "seq_ahead" };
    return { seq, oldest: 1, events: log.filter((e) => e.seq > since) };
  };
  const port: ReturnType<SubscriptionPorts["topic"]> = {
    async subscribe(key: string, gateway: string, since?: number, stateKeys?: string[]) {
      registered.push({ key, gateway, ...(since === undefined ? {} : { since }) });
      hold.reached?.();
      await hold.until;
      const page = catchup(key, since);
      return stateKeys ? { ...page, state: pick(state, stateKeys) } : page;
    },
    async eventsSince(key: string, since: number) {
      return catchup(key, since);
    },
    async snapshot(key: string, keys: string[]) {
      return { seq: catchup(key, undefined).seq, state: pick(state, keys) };
    },
  };
  return { port, registered, hold };
}

function pick(state: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.flatMap((k) => (state[k] === undefined ? [] : [[k, state[k]]])));
}

/** A gateway's sockets and Subscriptions over them, with the topics and the team cache in memory. */
function subscriptionsOver(
  storage: DurableObjectState,
  options: {
    logs?: Record<string, TopicEvent[]>;
    presence?: Record<string, string>;
    refused?: string[];
    hidden?: Record<string, string[]>;
  } = {},
) {
  const index = new SocketIndex(new SharedPositions(storage.storage.sql, () => {}), { sockets: () => [] });
  index.all();
  const cache = teamCache(options);
  const topic = topics(options.logs ?? {}, options.presence);
  const guard = new AccessGuard(index, { ...cache, close: () => {}, background: () => {} });
  const fanout = new Fanout(index, new Annotator(index, cache.profiles), guard, {
    topic: () => topic.port,
    batchLimit: () => 64,
  });
  const subscriptions = new Subscriptions(index, fanout, guard, { ...cache, topic: () => topic.port });

  /** A connected socket of `user` following nothing yet; `messages` is what its client receives. */
  const socket = (sid: string, user: string, role: Role = "member") => {
    const { ws, state, messages } = connectedSocket(sid, user, { role });
    index.track(ws, state);
    /** What the socket's attachment says (what a gateway woken from hibernation would know). */
    const saved = () => decodeState(ws.deserializeAttachment());
    return { ws, state, messages, saved };
  };
  return { index, fanout, subscriptions, socket, registered: topic.registered, hold: topic.hold, asked: cache.asked };
}

function subscribe(...requests: TopicRequest[]): Extract<ClientFrame, { type: "subscribe" }> {
  return { v: 1, type: "subscribe", id: "r1", topics: requests };
}

/** Channel events naming nobody (no profiles go with them). */
function events(...seqs: number[]): TopicEvent[] {
  return seqs.map((seq) => ({ seq, json: JSON.stringify({ type: "note", n: seq }) }));
}

/** The frames in one message (a batch's frames unpacked). */
function framesIn(message: string | undefined): Array<Record<string, unknown>> {
  const f = JSON.parse(message ?? "null") as { type: string; frames?: Array<Record<string, unknown>> };
  return f.type === "batch" ? (f.frames ?? []) : [f];
}

/** Lets the sends reach the client side of the sockets. */
const settle = () => new Promise((r) => setTimeout(r, 10));

describe("Subscriptions", () => {
  it("answers a subscribe, and records it in the index and in the socket's attachment", async () => {
    await withStorage(async (storage) => {
      const { index, subscriptions, socket, registered } = subscriptionsOver(storage, {
        logs: { "ch:T1:C1": events(1, 2, 3) },
      });
      const a = socket("s1", "U1");
      await subscriptions.subscribe("s1", subscribe({ topic: "channel:C1" }));
      await settle();
      // The answer says where the socket starts: the topic's current seq.
      expect(a.messages.map((m) => JSON.parse(m))).toEqual([
        { v: 1, type: "subscribed", id: "r1", topics: [{ topic: "channel:C1", seq: 3 }] },
      ]);
      // This gateway registered with the topic, as the first socket here following it.
      expect(registered).toEqual([{ key: "ch:T1:C1", gateway: GATEWAY }]);
      expect([...(index.following("channel:C1") ?? [])]).toEqual(["s1"]);
      expect(index.lastOf(a.state, "channel:C1")).toBe(3);
      // Saved: a gateway woken from hibernation still knows the socket follows C1.
      expect([...(a.saved()?.subs.keys() ?? [])]).toEqual(["channel:C1"]);
    });
  });

  it("refuses a channel the user may not see with an error frame, and records no subscription", async () => {
    await withStorage(async (storage) => {
      const { index, subscriptions, socket, registered } = subscriptionsOver(storage, { refused: ["C2"] });
      const a = socket("s1", "U1");
      await subscriptions.subscribe("s1", subscribe({ topic: "channel:C2" }));
      await settle();
      expect(a.messages.map((m) => JSON.parse(m))).toEqual([
        { v: 1, type: "error", id: "r1", topic: "channel:C2", code: "not_found", message: "no such channel" },
      ]);
      // Refused before anything is registered anywhere: no topic asked, nothing followed or saved.
      expect(registered).toEqual([]);
      expect(index.following("channel:C2")).toBeUndefined();
      expect(a.state.subs.size).toBe(0);
      expect(a.saved()?.subs.size ?? 0).toBe(0);
    });
  });

  it("unsubscribes: answers, and drops the topic from the index and the attachment", async () => {
    await withStorage(async (storage) => {
      const { index, subscriptions, socket } = subscriptionsOver(storage);
      const a = socket("s1", "U1");
      await subscriptions.subscribe("s1", subscribe({ topic: "channel:C1" }, { topic: "channel:C2" }));
      await subscriptions.unsubscribe("s1", { v: 1, type: "unsubscribe", id: "r2", topics: [{ topic: "channel:C1" }] });
      await settle();
      expect(JSON.parse(a.messages.at(-1) ?? "null")).toEqual({
        v: 1,
        type: "unsubscribed",
        id: "r2",
        topics: ["channel:C1"],
      });
      expect(index.following("channel:C1")).toBeUndefined();
      expect([...a.state.subs.keys()]).toEqual(["channel:C2"]);
      expect([...(a.saved()?.subs.keys() ?? [])]).toEqual(["channel:C2"]);
    });
  });

  it("resumes from `since`: the answer and the events missed after it, in one message", async () => {
    await withStorage(async (storage) => {
      const { subscriptions, socket, registered } = subscriptionsOver(storage, {
        logs: { "ch:T1:C1": events(1, 2, 3, 4, 5) },
      });
      const a = socket("s1", "U1");
      await subscriptions.subscribe("s1", subscribe({ topic: "channel:C1", since: 2 }));
      await settle();
      expect(registered).toEqual([{ key: "ch:T1:C1", gateway: GATEWAY, since: 2 }]);
      expect(a.messages).toHaveLength(1);
      const frames = framesIn(a.messages[0]);
      // Subscribed at 5, then exactly what it missed: 3, 4, 5 (not 1 or 2, which it has).
      expect(frames[0]).toEqual({ v: 1, type: "subscribed", id: "r1", topics: [{ topic: "channel:C1", seq: 5 }] });
      expect(frames.slice(1).map((f) => [f.type, f.seq])).toEqual([
        ["event", 3],
        ["event", 4],
        ["event", 5],
      ]);
    });
  });

  it("tells a socket resuming from a seq the topic never reached to reload", async () => {
    await withStorage(async (storage) => {
      const { subscriptions, socket } = subscriptionsOver(storage, { logs: { "ch:T1:C1": events(1, 2) } });
      const a = socket("s1", "U1");
      await subscriptions.subscribe("s1", subscribe({ topic: "channel:C1", since: 9 }));
      await settle();
      expect(framesIn(a.messages[0])).toEqual([
        { v: 1, type: "subscribed", id: "r1", topics: [{ topic: "channel:C1", seq: 2 }] },
        { v: 1, type: "reload", topic: "channel:C1", reason: "seq_ahead", seq: 2 },
      ]);
    });
  });

  it("leads a handshake's subscribe answer with the hello, in one message", async () => {
    await withStorage(async (storage) => {
      const { subscriptions, socket } = subscriptionsOver(storage);
      const a = socket("s1", "U1");
      const hello = JSON.stringify({ v: 1, type: "hello", user: "U1", team: TEAM, gateway: GATEWAY });
      const lead = { text: hello, sent: false };
      await subscriptions.subscribe("s1", { v: 1, type: "subscribe", topics: [{ topic: "team" }] }, lead);
      await settle();
      expect(a.messages).toHaveLength(1);
      expect(framesIn(a.messages[0]).map((f) => f.type)).toEqual(["hello", "subscribed"]);
      // The gateway reads this: a handshake that fails after it must not send the hello twice.
      expect(lead.sent).toBe(true);
    });
  });

  it("starts a second socket on a topic this gateway follows at the shared position, without registering again", async () => {
    await withStorage(async (storage) => {
      const { subscriptions, socket, registered } = subscriptionsOver(storage, {
        logs: { "ch:T1:C1": events(1, 2, 3) },
      });
      socket("s1", "U1");
      const b = socket("s2", "U2");
      await subscriptions.subscribe("s1", subscribe({ topic: "channel:C1" }));
      await subscriptions.subscribe("s2", subscribe({ topic: "channel:C1" }));
      await settle();
      // The topic already delivers here: one registration serves every socket.
      expect(registered).toHaveLength(1);
      expect(b.state.subs.get("channel:C1")).toBe(-1);
      expect(JSON.parse(b.messages[0] ?? "null")).toMatchObject({ topics: [{ topic: "channel:C1", seq: 3 }] });
    });
  });

  it("serves a member's subscribe to a public channel this gateway follows from a grant; a guest always asks", async () => {
    await withStorage(async (storage) => {
      const { subscriptions, socket, asked } = subscriptionsOver(storage);
      for (const [sid, user] of [
        ["s1", "U1"],
        ["s2", "U2"],
        ["s3", "U3"],
      ] as const) {
        socket(sid, user);
        await subscriptions.subscribe(sid, subscribe({ topic: "channel:C1" }));
      }
      // The first asks while the gateway does not follow C1 yet (nothing kept); the
      // second's answer is kept; the third is served from it.
      expect(asked).toEqual({ channel: 0, channelGrant: 2 });
      const g = socket("s4", "G1", "guest");
      await subscriptions.subscribe("s4", subscribe({ topic: "channel:C1" }));
      await settle();
      expect(asked).toEqual({ channel: 1, channelGrant: 2 });
      expect(JSON.parse(g.messages[0] ?? "null")).toMatchObject({ type: "subscribed" });
    });
  });

  it("counts a subscribe in progress, and its socket as a subscriber of the topic meanwhile", async () => {
    await withStorage(async (storage) => {
      const { fanout, subscriptions, socket, hold } = subscriptionsOver(storage);
      socket("s1", "U1");
      let release = () => {};
      hold.until = new Promise<void>((r) => {
        release = r;
      });
      const reached = new Promise<void>((r) => {
        hold.reached = r;
      });
      const done = subscriptions.subscribe("s1", subscribe({ topic: "channel:C1" }));
      await reached;
      // Admission reads the backlog; a delivery now must not drop this gateway from the topic.
      expect(subscriptions.inProgress).toBe(1);
      expect(await fanout.deliver("ch:T1:C1", [])).toBe(1);
      release();
      await done;
      expect(subscriptions.inProgress).toBe(0);
    });
  });

  it("answers presence_sub with a snapshot of the listed users, and follows the shards they live on", async () => {
    await withStorage(async (storage) => {
      const { index, subscriptions, socket, registered } = subscriptionsOver(storage, {
        presence: { U7: presenceEventJson("U7", "active") },
      });
      const a = socket("s1", "U1");
      await subscriptions.presence("s1", { v: 1, type: "presence_sub", id: "p1", users: ["U7", "U8"] });
      await settle();
      // U8 never published: away.
      expect(a.messages.map((m) => JSON.parse(m))).toEqual([
        {
          v: 1,
          type: "presence",
          id: "p1",
          users: [
            { user: "U7", presence: "active" },
            { user: "U8", presence: "away" },
          ],
        },
      ]);
      const shards = [...byPresenceTopic(["U7", "U8"]).keys()];
      expect(registered.map((r) => r.key).sort()).toEqual(shards.map((t) => topicKey(TEAM, t)).sort());
      for (const t of shards) expect(index.following(t)?.has("s1")).toBe(true);
      // Saved: a woken gateway still filters the shards' changes to these users.
      expect([...(a.saved()?.presence ?? [])]).toEqual(["U7", "U8"]);
    });
  });

  it("replays to a resuming guest only the team events it may see", async () => {
    await withStorage(async (storage) => {
      const team: TopicEvent[] = [
        { seq: 1, json: JSON.stringify({ type: "user_changed", user: { id: "U9", role: "member" } }) },
        { seq: 2, json: JSON.stringify({ type: "user_changed", user: { id: "U8", role: "member" } }) },
        { seq: 3, json: JSON.stringify({ type: "directory_reload" }) },
      ];
      // The guest shares no channel with U9.
      const { subscriptions, socket } = subscriptionsOver(storage, {
        logs: { "team:T1": team },
        hidden: { G1: ["U9"] },
      });
      const g = socket("s1", "G1", "guest");
      await subscriptions.subscribe("s1", subscribe({ topic: "team", since: 0 }));
      await settle();
      const frames = framesIn(g.messages[0]);
      expect(frames[0]).toMatchObject({ type: "subscribed", topics: [{ topic: "team", seq: 3 }] });
      expect(frames.slice(1).map((f) => f.seq)).toEqual([2, 3]);
    });
  });
});
