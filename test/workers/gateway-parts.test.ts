import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AccessGuard } from "../../durable-objects/gateway/access-guard";
import { Annotator } from "../../durable-objects/gateway/annotator";
import { type Conn, IN_SYNC } from "../../durable-objects/gateway/conn";
import { SharedPositions } from "../../durable-objects/gateway/positions";
import { PresenceKeeper } from "../../durable-objects/gateway/presence-keeper";
import { SocketIndex } from "../../durable-objects/gateway/sockets";
import type { Actor, ProfileSource } from "../../src/realtime/ports";
import type { SocketState } from "../../src/realtime/socket-state";
import type { SubTopic } from "../../src/realtime/topics";

// The gateway's parts, each alone, inside workerd: real WebSockets (a
// WebSocketPair's server side, which carries an attachment) and a real
// Durable Object SQLite for the shared positions; the team cache is a tiny
// in-memory port where a part asks one.

/** Runs `fn` with a fresh gateway's storage (its SQLite holds the positions). */
function withStorage<T>(fn: (state: DurableObjectState) => Promise<T> | T): Promise<T> {
  const stub = env.GATEWAY.get(env.GATEWAY.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(state));
}

/** A socket's server side with its state; `received()` starts listening on its client side. */
function socketOf(state: Omit<SocketState, "subs" | "presence"> & { subs?: Array<[SubTopic, number]> }) {
  const [client, ws] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  const received = () => {
    const texts: string[] = [];
    client.accept();
    ws.accept();
    client.addEventListener("message", (e) => {
      texts.push(String(e.data));
    });
    return texts;
  };
  return { ws, received, state: { ...state, subs: new Map(state.subs ?? []), presence: new Set<string>() } };
}

const base = { team: "T1", gateway: "gw:T1:0", exp: 2 ** 40, role: "member" as const };

function indexOver(storage: DurableObjectState, sockets: WebSocket[] = [], gone: string[] = []) {
  const positions = new SharedPositions(storage.storage.sql, () => {});
  return new SocketIndex(positions, {
    sockets: () => sockets,
    gone: (s, last) => gone.push(`${s.sid}${last ? " (last of user)" : ""}`),
  });
}

describe("SocketIndex", () => {
  it("indexes sockets by topic and user, and hears who left last", async () => {
    await withStorage((storage) => {
      const gone: string[] = [];
      const index = indexOver(storage, [], gone);
      index.all();
      const a = socketOf({ ...base, sid: "s1", user: "U1" });
      const b = socketOf({ ...base, sid: "s2", user: "U1" });
      index.track(a.ws, a.state);
      index.track(b.ws, b.state);
      for (const s of [a, b]) {
        index.place(s.state, "channel:C1", 0);
        index.subscribe(s.state.sid, "channel:C1");
      }
      expect(index.socketsOf("U1")).toBe(2);
      expect([...(index.following("channel:C1") ?? [])]).toEqual(["s1", "s2"]);
      index.untrack(a.ws);
      index.untrack(b.ws);
      expect(gone).toEqual(["s1", "s2 (last of user)"]);
      expect(index.following("channel:C1")).toBeUndefined();
      expect(index.hasUser("U1")).toBe(false);
    });
  });

  it("starts a topic's shared position with its first subscriber, and drops it with its last", async () => {
    await withStorage((storage) => {
      const index = indexOver(storage);
      index.all();
      const a = socketOf({ ...base, sid: "s1", user: "U1" });
      const b = socketOf({ ...base, sid: "s2", user: "U2" });
      const c = socketOf({ ...base, sid: "s3", user: "U3" });
      for (const s of [a, b, c]) index.track(s.ws, s.state);
      index.place(a.state, "channel:C1", 7);
      index.subscribe("s1", "channel:C1");
      expect(index.positions.get("channel:C1")).toBe(7);
      expect(a.state.subs.get("channel:C1")).toBe(IN_SYNC);
      index.place(b.state, "channel:C1", 7);
      expect(b.state.subs.get("channel:C1")).toBe(IN_SYNC);
      // Elsewhere in the topic: its own seq, until it catches up.
      index.place(c.state, "channel:C1", 5);
      expect(c.state.subs.get("channel:C1")).toBe(5);
      expect(index.lastOf(a.state, "channel:C1")).toBe(7);
      expect(index.lastOf(c.state, "channel:C1")).toBe(5);
      index.unsubscribe("s1", "channel:C1");
      expect(index.positions.get("channel:C1")).toBeUndefined();
    });
  });

  it("renews a topic's follow token when it is followed again after a break", async () => {
    await withStorage((storage) => {
      const index = indexOver(storage);
      index.all();
      index.subscribe("s1", "channel:C1");
      const first = index.followToken("channel:C1");
      index.subscribe("s2", "channel:C1");
      expect(index.followToken("channel:C1")).toBe(first);
      index.unsubscribe("s1", "channel:C1");
      index.unsubscribe("s2", "channel:C1");
      expect(index.followToken("channel:C1")).toBeUndefined();
      index.subscribe("s1", "channel:C1");
      expect(index.followToken("channel:C1")).not.toBe(first);
    });
  });

  it("rebuilds itself from the sockets' attachments (a wake-up from hibernation)", async () => {
    await withStorage((storage) => {
      const a = socketOf({ ...base, sid: "s1", user: "U1", subs: [["channel:C1", 4]] });
      const first = indexOver(storage, [a.ws]);
      first.all();
      first.track(a.ws, a.state);
      first.save(first.get("s1") as Conn);
      const woken = indexOver(storage, [a.ws]);
      expect([...woken.all().keys()]).toEqual(["s1"]);
      expect(woken.get("s1")?.state.subs.get("channel:C1")).toBe(4);
      expect([...(woken.following("channel:C1") ?? [])]).toEqual(["s1"]);
      expect(woken.of(a.ws)?.state.user).toBe("U1");
    });
  });
});

describe("Annotator", () => {
  const profileSource = (calls: string[][]): ProfileSource => ({
    async profiles(_team, _viewers, users) {
      calls.push(users);
      return { profiles: users.map((id) => ({ id, name: `name-${id}` })), hidden: {} };
    },
  });
  const message = (seq: number, user: string) => ({ seq, json: JSON.stringify({ type: "message", user, text: "hi" }) });

  it("fetches the profiles a delivery names once, sends each socket a profile once, then skips the topic", async () => {
    await withStorage(async (storage) => {
      const index = indexOver(storage);
      index.all();
      const a = socketOf({ ...base, sid: "s1", user: "U1" });
      index.track(a.ws, a.state);
      index.place(a.state, "channel:C1", 0);
      index.subscribe("s1", "channel:C1");
      const calls: string[][] = [];
      const annotator = new Annotator(index, profileSource(calls));
      const sids = new Set(["s1"]);
      const notes = await annotator.annotations(sids, "channel:C1", [message(1, "U7")]);
      expect(calls).toEqual([["U7"]]);
      if (!notes) throw new Error("a message naming a user the socket lacks needs annotations");
      const out: string[] = [];
      const conn = index.get("s1") as Conn;
      expect(annotator.profilesFor(conn, notes, 1, out)).toBe(1);
      expect(JSON.parse(out[0] ?? "{}")).toMatchObject({ type: "user", user: { id: "U7" } });
      // Sent once: the same user again costs nothing.
      expect(annotator.profilesFor(conn, notes, 1, [])).toBe(0);
      annotator.markCovered("channel:C1", notes.named);
      expect(await annotator.annotations(sids, "channel:C1", [message(2, "U7")])).toBeNull();
      expect(calls).toHaveLength(1);
      // A new subscriber: what every subscriber had no longer holds.
      annotator.joined("channel:C1");
      annotator.forget("s1");
      expect(await annotator.annotations(sids, "channel:C1", [message(3, "U7")])).not.toBeNull();
      expect(calls).toHaveLength(2);
    });
  });
});

describe("AccessGuard", () => {
  it("revokes a channel from the member who left, tells the socket, and keeps the others", async () => {
    await withStorage(async (storage) => {
      const index = indexOver(storage);
      index.all();
      const a = socketOf({ ...base, sid: "s1", user: "U1" });
      const b = socketOf({ ...base, sid: "s2", user: "U2" });
      for (const s of [a, b]) {
        index.track(s.ws, s.state);
        index.place(s.state, "channel:C1", 0);
        index.subscribe(s.state.sid, "channel:C1");
      }
      const received = a.received();
      const members = new Set(["U2"]);
      const guard = new AccessGuard(index, {
        access: {
          async channel(_team, viewer) {
            return members.has(viewer) ? { ok: true, host: "T1" } : { ok: false, code: "not_found", message: "no" };
          },
          async team() {
            return { ok: true };
          },
        },
        live: {
          async actors() {
            return new Map<string, Actor>();
          },
          async visible() {
            return { ok: true, users: new Set(), channels: new Set() };
          },
        },
        profiles: { profiles: async () => ({ profiles: [], hidden: {} }) },
        close: () => {},
        background: () => {},
      });
      const epoch = guard.epoch;
      await guard.afterDelivery("channel:C1", [
        { seq: 1, json: JSON.stringify({ type: "message", user: "U1", text: '"member_left"' }) },
        { seq: 2, json: JSON.stringify({ type: "member_left", channel: "C1", user: "U1", user_team: "T1" }) },
      ]);
      expect(guard.epoch).toBe(epoch + 1);
      expect([...(index.following("channel:C1") ?? [])]).toEqual(["s2"]);
      expect(a.state.subs.has("channel:C1")).toBe(false);
      await new Promise((r) => setTimeout(r, 10));
      expect(received.map((t) => JSON.parse(t))).toEqual([
        { v: 1, type: "unsubscribed", topics: ["channel:C1"], reason: "access_revoked" },
      ]);
    });
  });
});

describe("PresenceKeeper", () => {
  it("publishes a user's first socket as active, their last as away after the grace period, and nothing for a blink", async () => {
    await withStorage(async (storage) => {
      const published: string[] = [];
      const pending: Array<Promise<unknown>> = [];
      const keeper = new PresenceKeeper(storage.storage.sql, {
        async publish(key, changes) {
          for (const c of changes) published.push(`${key} ${c.json}`);
        },
        graceMs: () => 1_000,
        background: (work) => pending.push(work),
      });
      keeper.arrived("T1", "U1");
      await Promise.all(pending);
      expect(published).toHaveLength(1);
      expect(published[0]).toMatch(/^presence:T1:\d+ /);
      expect(JSON.parse(published[0]?.split(" ").slice(1).join(" ") ?? "{}")).toMatchObject({
        user: "U1",
        presence: "active",
      });
      const due = keeper.left("T1", "U1");
      expect(keeper.pending).toBe(1);
      expect(keeper.earliest()).toBe(due);
      // Back within the grace period: nothing said, and at the due time still connected: nothing either.
      keeper.arrived("T1", "U1");
      await keeper.due(due, () => true);
      expect(published).toHaveLength(1);
      // Gone for good: away once due.
      keeper.left("T1", "U1");
      await keeper.due(due - 1, () => false);
      expect(published).toHaveLength(1);
      await keeper.due(Date.now() + 2_000, () => false);
      expect(published).toHaveLength(2);
      expect(published[1]).toContain('"away"');
      expect(keeper.pending).toBe(0);
    });
  });
});
