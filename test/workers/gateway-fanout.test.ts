import { describe, expect, it } from "vitest";
import { AccessGuard } from "../../durable-objects/gateway/access-guard";
import { Annotator } from "../../durable-objects/gateway/annotator";
import { Fanout, type FanoutPorts } from "../../durable-objects/gateway/fanout";
import { SharedPositions } from "../../durable-objects/gateway/positions";
import { SocketIndex } from "../../durable-objects/gateway/sockets";
import type { Catchup } from "../../durable-objects/topic/topic";
import { presenceEventJson, presenceShardOf, presenceTopic } from "../../src/realtime/presence";
import type { TopicEvent } from "../../src/realtime/sequence";
import type { SubTopic } from "../../src/realtime/topics";
import type { Role } from "../../src/teams/model";

// Fanout alone, inside workerd: real WebSockets (a WebSocketPair's server
// side, carrying an attachment), a real Durable Object SQLite for the shared
// positions, and the real socket index, annotator and access guard it works
// with. What it asks of other objects is in memory: the topic's log
// (eventsSince / snapshot) and the team cache behind the guard.

import { connectedSocket, teamCache, withStorage } from "./gateway-fixture";

/** A topic's log in memory: events 1..head, and the eventsSince calls it was asked. */
function topicLog(events: TopicEvent[]) {
  const asked: Array<{ key: string; since: number }> = [];
  const head = () => events.at(-1)?.seq ?? 0;
  const port: ReturnType<FanoutPorts["topic"]> = {
    async eventsSince(key: string, since: number): Promise<Catchup> {
      asked.push({ key, since });
      return { seq: head(), oldest: 1, events: events.filter((e) => e.seq > since) };
    },
    async snapshot() {
      return { seq: head(), state: {} };
    },
  };
  return { port, asked };
}

/** A gateway's sockets and a Fanout over them, with the topic's log and the team cache in memory. */
function fanoutOver(
  storage: DurableObjectState,
  options: { log?: TopicEvent[]; batchLimit?: number; hidden?: Record<string, string[]> } = {},
) {
  const index = new SocketIndex(new SharedPositions(storage.storage.sql, () => {}), { sockets: () => [] });
  index.all();
  const cache = teamCache({ hidden: options.hidden });
  const annotator = new Annotator(index, cache.profiles);
  const guard = new AccessGuard(index, { ...cache, close: () => {}, background: () => {} });
  const log = topicLog(options.log ?? []);
  const fanout = new Fanout(index, annotator, guard, {
    topic: () => log.port,
    batchLimit: () => options.batchLimit ?? 64,
  });

  /** A socket of `user` following `topics`, each from the seq given; `messages` is what its client receives. */
  const socket = (
    sid: string,
    user: string,
    topics: Array<[SubTopic, number]>,
    extra: { role?: Role; presence?: string[] } = {},
  ) => {
    const { ws, state, messages } = connectedSocket(sid, user, extra);
    index.track(ws, state);
    for (const [topic, seq] of topics) {
      index.place(state, topic, seq);
      index.subscribe(sid, topic);
    }
    return { ws, state, messages };
  };
  return { index, fanout, socket, asked: log.asked };
}

/** Plain channel events (naming nobody, so no profiles go with them). */
function events(...seqs: number[]): TopicEvent[] {
  return seqs.map((seq) => ({ seq, json: JSON.stringify({ type: "note", n: seq }) }));
}

/** The frames in the messages a client received, in order (a batch's frames unpacked). */
function framesOf(messages: string[]): Array<Record<string, unknown>> {
  return messages.flatMap((m) => {
    const f = JSON.parse(m) as { type: string; frames?: Array<Record<string, unknown>> };
    return f.type === "batch" ? (f.frames ?? []) : [f];
  });
}

/** The seqs of the event frames a client received, in order. */
function seqsOf(messages: string[]): unknown[] {
  return framesOf(messages)
    .filter((f) => f.type === "event")
    .map((f) => f.seq);
}

/** Lets the sends reach the client side of the sockets. */
const settle = () => new Promise((r) => setTimeout(r, 10));

describe("Fanout", () => {
  it("sends a socket the events after the last one it has, in order, skipping those it already has", async () => {
    await withStorage(async (storage) => {
      const { fanout, socket, asked } = fanoutOver(storage);
      const a = socket("s1", "U1", [["channel:C1", 2]]);
      // 1 and 2 the socket has; 3 and 4 continue its sequence.
      await fanout.deliver("ch:T1:C1", events(1, 2, 3, 4));
      // A topic retrying a delivery sends 4 again: the socket must not see it twice.
      await fanout.deliver("ch:T1:C1", events(4, 5));
      await settle();
      expect(seqsOf(a.messages)).toEqual([3, 4, 5]);
      // The events at hand covered everything: the topic's log was not read.
      expect(asked).toEqual([]);
    });
  });

  it("fills a socket's gap from the topic's log before sending the newer events", async () => {
    await withStorage(async (storage) => {
      const { fanout, socket, asked } = fanoutOver(storage, { log: events(1, 2, 3, 4, 5) });
      const a = socket("s1", "U1", [["channel:C1", 1]]);
      // The socket has 1; 2 and 3 never reached this gateway (say, it had just subscribed).
      await fanout.deliver("ch:T1:C1", events(4, 5));
      await settle();
      expect(asked).toEqual([{ key: "ch:T1:C1", since: 1 }]);
      // Never 4 before 2: the gap first, then the events at hand.
      expect(seqsOf(a.messages)).toEqual([2, 3, 4, 5]);
    });
  });

  it("packs the frames one socket gets at once into one batch message", async () => {
    await withStorage(async (storage) => {
      const { fanout, socket } = fanoutOver(storage);
      const a = socket("s1", "U1", [["channel:C1", 0]]);
      await fanout.deliver("ch:T1:C1", events(1, 2, 3));
      await settle();
      expect(a.messages).toHaveLength(1);
      expect(JSON.parse(a.messages[0] ?? "{}")).toMatchObject({ type: "batch" });
      expect(seqsOf(a.messages)).toEqual([1, 2, 3]);
    });
  });

  it("splits a delivery into messages of at most batchLimit() frames", async () => {
    await withStorage(async (storage) => {
      const { fanout, socket } = fanoutOver(storage, { batchLimit: 2 });
      const a = socket("s1", "U1", [["channel:C1", 0]]);
      await fanout.deliver("ch:T1:C1", events(1, 2, 3, 4, 5));
      await settle();
      // 2 + 2 + 1: the last one alone goes bare, not as a batch of one.
      expect(a.messages.map((m) => JSON.parse(m).type)).toEqual(["batch", "batch", "event"]);
      expect(seqsOf(a.messages)).toEqual([1, 2, 3, 4, 5]);
    });
  });

  it("sends nothing to a socket subscribed to another topic", async () => {
    await withStorage(async (storage) => {
      const { fanout, socket } = fanoutOver(storage);
      const c1 = socket("s1", "U1", [["channel:C1", 0]]);
      const c2 = socket("s2", "U2", [["channel:C2", 0]]);
      await fanout.deliver("ch:T1:C1", events(1));
      await settle();
      // The follower of C1 got it (so a silent C2 socket means something).
      expect(seqsOf(c1.messages)).toEqual([1]);
      expect(c2.messages).toEqual([]);
      expect(c2.state.subs.get("channel:C2")).toBe(-1);
    });
  });

  it("answers how many sockets here follow the topic, and 0 once nobody does (the topic then stops)", async () => {
    await withStorage(async (storage) => {
      const { index, fanout, socket } = fanoutOver(storage);
      socket("s1", "U1", [["channel:C1", 0]]);
      socket("s2", "U2", [["channel:C1", 0]]);
      socket("s3", "U3", [["channel:C2", 0]]);
      expect(await fanout.deliver("ch:T1:C1", events(1))).toBe(2);
      index.unsubscribe("s1", "channel:C1");
      expect(await fanout.deliver("ch:T1:C1", events(2))).toBe(1);
      index.unsubscribe("s2", "channel:C1");
      expect(await fanout.deliver("ch:T1:C1", events(3))).toBe(0);
      // A topic no socket here ever followed.
      expect(await fanout.deliver("ch:T1:C9", events(1))).toBe(0);
    });
  });

  it("counts a socket in the middle of subscribing as a subscriber", async () => {
    await withStorage(async (storage) => {
      const { fanout } = fanoutOver(storage);
      // Else a delivery racing the subscribe would drop this gateway from the topic it is joining.
      const during = await fanout.whilePending(["channel:C1"], () => fanout.deliver("ch:T1:C1", events(1)));
      expect(during).toBe(1);
      expect(await fanout.deliver("ch:T1:C1", events(2))).toBe(0);
    });
  });

  it("sends a presence shard's changes only to the sockets following that user", async () => {
    await withStorage(async (storage) => {
      const { fanout, socket } = fanoutOver(storage);
      // Two users on one shard: the shard's events carry both.
      const [u1, u2] = usersOnOneShard();
      const shard = presenceTopic(presenceShardOf(u1));
      const a = socket("s1", "V1", [[shard, 0]], { presence: [u1] });
      const b = socket("s2", "V2", [[shard, 0]], { presence: [u2] });
      const n = await fanout.deliver(`presence:T1:${presenceShardOf(u1)}`, [
        { seq: 1, json: presenceEventJson(u1, "active") },
        { seq: 2, json: presenceEventJson(u2, "away") },
      ]);
      await settle();
      expect(n).toBe(2);
      expect(framesOf(a.messages)).toEqual([{ v: 1, type: "presence", users: [{ user: u1, presence: "active" }] }]);
      expect(framesOf(b.messages)).toEqual([{ v: 1, type: "presence", users: [{ user: u2, presence: "away" }] }]);
    });
  });

  it("passes a guest only the team-topic events it may see, and moves it past the others", async () => {
    await withStorage(async (storage) => {
      // The guest may not see U9 (they share no channel); the member sees everyone.
      const { fanout, socket } = fanoutOver(storage, { hidden: { G1: ["U9"] } });
      const member = socket("s1", "M1", [["team", 0]]);
      const guest = socket("s2", "G1", [["team", 0]], { role: "guest" });
      const team: TopicEvent[] = [
        { seq: 1, json: JSON.stringify({ type: "user_changed", user: { id: "U9", role: "member" } }) },
        { seq: 2, json: JSON.stringify({ type: "user_changed", user: { id: "U8", role: "member" } }) },
        { seq: 3, json: JSON.stringify({ type: "directory_reload" }) },
      ];
      await fanout.deliver("team:T1", team);
      await settle();
      expect(seqsOf(member.messages)).toEqual([1, 2, 3]);
      expect(seqsOf(guest.messages)).toEqual([2, 3]);
      // Skipped, not pending: the next delivery does not try to send 1 again.
      await fanout.deliver("team:T1", [{ seq: 4, json: JSON.stringify({ type: "directory_reload" }) }]);
      await settle();
      expect(seqsOf(guest.messages)).toEqual([2, 3, 4]);
    });
  });
});

/** Two users whose presence lives on the same shard. */
function usersOnOneShard(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const u = `U${i}`;
    const other = seen.get(presenceShardOf(u));
    if (other) return [other, u];
    seen.set(presenceShardOf(u), u);
  }
}
