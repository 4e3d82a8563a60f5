import {
  isPresenceTopic,
  type PresenceState,
  parsePresenceEvent,
  presenceOf,
  presenceShardOf,
  presenceTopic,
} from "../../src/realtime/presence";
import { type ClientTopic, eventFrame, frame, packFrames, type ReloadReason } from "../../src/realtime/protocol";
import { continuation, mergeEvents, type TopicEvent } from "../../src/realtime/sequence";
import type { SocketState } from "../../src/realtime/socket-state";
import { type SubTopic, subTopicOfKey } from "../../src/realtime/topics";
import type { Catchup, Topic } from "../topic/topic";
import type { AccessGuard } from "./access-guard";
import type { Annotations, Annotator } from "./annotator";
import { type TeamSkips, teamSkipsFor } from "./audience";
import { type Conn, enqueue, IN_SYNC, send } from "./conn";
import type { SocketIndex } from "./sockets";

// Delivery: Topics call deliver() once per gateway with a list of events;
// each event goes to exactly the sockets here subscribed to that topic, each
// socket strictly in seq order: events a socket already has are skipped, and
// a gap (a socket behind the events at hand) is filled from the topic's log
// before anything newer is sent.
//
// Almost every socket of a topic is at the same point, so they share one
// position (positions.ts): delivering events to N in-sync sockets is N sends
// and one small write, not N attachment rewrites, and the frames a socket
// gets at once go as one `batch` message (protocol.ts), packed once for
// every socket getting the same ones. On the way it sends a profile before
// the first message naming a user the socket has not been sent yet
// (annotator.ts), passes a presence shard's events only to sockets following
// that user, and passes each socket only the team-topic events it may get
// (access-guard.ts, audience.ts).

/** At most this many catch-up pages per delivery before giving up until the next one. */
const MAX_CATCHUP_PAGES = 20;

export interface FanoutPorts {
  /** The topic's log (its Topic object's stub, or anything answering the same). */
  topic(key: string): Pick<Topic, "eventsSince" | "snapshot">;
  /** Frames per message at most. */
  batchLimit(): number;
}

export class Fanout {
  /** The highest seq this instance has heard of, per topic key. */
  private readonly heads = new Map<string, number>();
  /** Sockets in the middle of subscribing to a topic: they count as subscribers. */
  private readonly pending = new Map<SubTopic, number>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly sockets: SocketIndex,
    private readonly annotator: Annotator,
    private readonly guard: AccessGuard,
    private readonly ports: FanoutPorts,
  ) {}

  /**
   * Events of one topic from its Topic object, in seq order (a topic sends
   * one list at a time). Answers how many sockets follow the topic here: 0
   * tells the topic to stop sending.
   */
  async deliver(key: string, events: TopicEvent[]): Promise<number> {
    this.sockets.all();
    const topic = subTopicOfKey(key);
    if (!topic) return 0;
    return enqueue(this.queues, key, () => this.sync(key, topic, events));
  }

  /** The topic's head is at least `seq` (a subscribe learned it). */
  heard(key: string, seq: number): void {
    this.heads.set(key, Math.max(this.heads.get(key) ?? 0, seq));
  }

  /** Runs `fn` with the topics counted as subscribed (a delivery meanwhile must not drop this gateway). */
  async whilePending<T>(topics: SubTopic[], fn: () => Promise<T>): Promise<T> {
    for (const t of topics) this.pending.set(t, (this.pending.get(t) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      for (const t of topics) {
        const n = (this.pending.get(t) ?? 1) - 1;
        if (n > 0) this.pending.set(t, n);
        else this.pending.delete(t);
      }
    }
  }

  /** Events that reached this gateway while the socket was subscribing (none, usually: then nothing to do). */
  catchUp(state: SocketState, started: Array<[string, SubTopic]>): void {
    for (const [key, topic] of started) {
      if ((this.heads.get(key) ?? 0) <= (this.sockets.lastOf(state, topic) ?? 0)) continue;
      void enqueue(this.queues, key, () => this.sync(key, topic, [])).catch((error) =>
        console.error(`gateway: catch-up of ${key} failed`, error),
      );
    }
  }

  /** Frames for one socket, in order: as few messages as the batch limits allow. */
  sendFrames(ws: WebSocket, texts: readonly string[]): void {
    for (const text of packFrames(texts, this.ports.batchLimit())) send(ws, text);
  }

  /**
   * Sends each subscribed socket the events that continue its sequence,
   * fetching from the topic's log what the events at hand do not cover.
   * Runs in the topic's queue: one delivery per topic at a time.
   */
  private async sync(key: string, topic: SubTopic, incoming: TopicEvent[]): Promise<number> {
    let known = incoming;
    let head = Math.max(this.heads.get(key) ?? 0, incoming.at(-1)?.seq ?? 0);
    this.heads.set(key, head);
    this.guard.beforeDelivery(topic, incoming);
    for (let page = 0; page <= MAX_CATCHUP_PAGES; page++) {
      const sids = this.sockets.following(topic);
      if (!sids || sids.size === 0) break;
      const notes = topic.startsWith("channel:") ? await this.annotator.annotations(sids, topic, known) : null;
      const filter = topic === "team" ? await this.guard.teamFilter(sids, known) : null;
      const behind = this.sendContinuations(topic, sids, known, head, notes, filter);
      // Every subscriber got these events and their profiles: later messages naming them skip the per-socket check.
      if (notes && behind === null) this.annotator.markCovered(topic, notes.named);
      if (behind === null || page === MAX_CATCHUP_PAGES) break;
      const log: Catchup = await this.ports.topic(key).eventsSince(key, behind);
      head = Math.max(head, log.seq);
      this.heads.set(key, head);
      if (log.reload) {
        await this.sendReloads(key, topic, log.oldest, log.seq, log.reload);
        continue;
      }
      if (log.events.length === 0) break;
      known = mergeEvents(known, log.events);
    }
    await this.guard.afterDelivery(topic, known);
    const subscribers = (this.sockets.following(topic)?.size ?? 0) + (this.pending.get(topic) ?? 0);
    if (subscribers === 0) this.heads.delete(key);
    return subscribers;
  }

  /**
   * Sends what it can; returns the lowest seq a socket is still stuck at, or
   * null when all reached head. `filter`: the team-topic events a socket may
   * not get (a guest's unshared users and channels, admin-only events,
   * conversations it is not in; skipping them moves the socket on all the same).
   */
  private sendContinuations(
    topic: SubTopic,
    sids: Set<string>,
    known: TopicEvent[],
    head: number,
    notes: Annotations | null,
    filter: TeamSkips | null,
  ): number | null {
    const skipOf = (conn: Conn) => teamSkipsFor(filter, conn.state.user, conn.state.role);
    // Built once per event, sent to every socket that gets it.
    const frames = new Map<number, { text: string; user?: string } | null>();
    const presence = isPresenceTopic(topic);
    const frameOf = (e: TopicEvent) => {
      let built = frames.get(e.seq);
      if (built === undefined) {
        if (presence) {
          const p = parsePresenceEvent(e.json);
          built = p ? { text: presenceFrame(p.user, p.presence), user: p.user } : null;
        } else built = { text: eventFrame(topic as ClientTopic, e.seq, e.json) };
        frames.set(e.seq, built);
      }
      return built;
    };
    // The messages carrying a run of events, for every socket that gets just
    // those frames: packed once, the same strings sent to each. A run is a
    // continuation (no gaps), so its first and last seq name it.
    const packed = new Map<string, string[]>();
    const shared = (events: TopicEvent[]) => {
      const key = `${events[0]?.seq}:${events.at(-1)?.seq}`;
      let messages = packed.get(key);
      if (!messages) {
        messages = packFrames(
          events.flatMap((e) => frameOf(e)?.text ?? []),
          this.ports.batchLimit(),
        );
        packed.set(key, messages);
      }
      return messages;
    };
    const positions = this.sockets.positions;
    const base = positions.get(topic);
    const group = base === undefined ? null : continuation(base, known, head);
    const sendAll = (conn: Conn, events: TopicEvent[]) => {
      if (events.length === 0) return;
      const skip = skipOf(conn);
      if (!presence && !notes && !skip) {
        for (const message of shared(events)) send(conn.ws, message);
        return;
      }
      // Content of its own: presence filtered to its users, profiles it lacks, events it may not see.
      let own = presence;
      const texts: string[] = [];
      for (const e of events) {
        if (skip?.has(e.seq)) {
          own = true;
          continue;
        }
        const built = frameOf(e);
        if (!built) continue;
        // A presence shard carries many users' changes; a socket gets its users' only.
        if (built.user !== undefined && !conn.state.presence.has(built.user)) continue;
        if (notes && this.annotator.profilesFor(conn, notes, e.seq, texts) > 0) own = true;
        texts.push(built.text);
      }
      if (own) this.sendFrames(conn.ws, texts);
      else for (const message of shared(events)) send(conn.ws, message);
    };
    // What every in-sync socket gets when nothing is per socket: the loop
    // below then only sends (it runs once per socket per delivery).
    const groupMessages = group && !presence && !notes ? shared(group.send) : null;
    let behind: number | null = null;
    let reachedHead = false;
    const stuck = (at: number) => {
      behind = behind === null ? at : Math.min(behind, at);
    };
    // The usual delivery: one message (or a few) for every in-sync socket, nothing per socket.
    const only = groupMessages && !filter && groupMessages.length === 1 ? groupMessages[0] : undefined;
    for (const sid of sids) {
      const conn = this.sockets.get(sid);
      const own = conn?.state.subs.get(topic);
      if (!conn || own === undefined) continue;
      if (own === IN_SYNC && group) {
        if (only !== undefined) send(conn.ws, only);
        else if (groupMessages && !skipOf(conn)) for (const message of groupMessages) send(conn.ws, message);
        else sendAll(conn, group.send);
        if (!group.complete) stuck(group.last);
        continue;
      }
      const last = own === IN_SYNC ? (base ?? 0) : own;
      const next = continuation(last, known, head);
      sendAll(conn, next.send);
      if (group && next.last === group.last) {
        conn.state.subs.set(topic, IN_SYNC);
        this.sockets.save(conn);
      } else if (next.last !== own) {
        conn.state.subs.set(topic, next.last);
        this.sockets.save(conn);
      }
      if (!next.complete) stuck(next.last);
      else reachedHead = true;
    }
    if (group && base !== undefined && group.last !== base) positions.set(topic, group.last);
    // No shared position (sockets from before it existed): start one at head;
    // sockets there join it on the next delivery.
    if (base === undefined && reachedHead) positions.set(topic, head);
    return behind;
  }

  /** Sockets whose next event is no longer in the topic's log: reload (presence: a fresh snapshot), then continue after `seq`. */
  private async sendReloads(
    key: string,
    topic: SubTopic,
    oldest: number,
    seq: number,
    reason: ReloadReason,
  ): Promise<void> {
    const sids = this.sockets.following(topic);
    if (!sids) return;
    const stale: Conn[] = [];
    for (const sid of sids) {
      const conn = this.sockets.get(sid);
      const last = conn ? this.sockets.lastOf(conn.state, topic) : undefined;
      if (!conn || last === undefined) continue;
      if (reason === "gap_too_old" ? last + 1 < oldest : last > seq) stale.push(conn);
    }
    if (stale.length === 0) return;
    let target = seq;
    let snapshot: Record<string, string> = {};
    if (isPresenceTopic(topic)) {
      const users = [...new Set(stale.flatMap((c) => [...c.state.presence]))].filter(
        (u) => presenceTopic(presenceShardOf(u)) === topic,
      );
      const snap = await this.ports.topic(key).snapshot(key, users);
      snapshot = snap.state;
      target = Math.max(seq, snap.seq);
    }
    // When the shared position itself is stale, every in-sync socket moves with it.
    const positions = this.sockets.positions;
    const base = positions.get(topic);
    if (base !== undefined && (reason === "gap_too_old" ? base + 1 < oldest : base > seq)) {
      positions.set(topic, target);
    }
    for (const conn of stale) {
      if (isPresenceTopic(topic)) {
        const list = [...conn.state.presence]
          .filter((u) => presenceTopic(presenceShardOf(u)) === topic)
          .map((u) => ({ user: u, presence: presenceOf(snapshot[u]) }));
        if (list.length > 0) send(conn.ws, frame({ v: 1, type: "presence", users: list }));
      } else send(conn.ws, frame({ v: 1, type: "reload", topic: topic as ClientTopic, reason, seq }));
      if (conn.state.subs.get(topic) === IN_SYNC) continue;
      this.sockets.place(conn.state, topic, target);
      this.sockets.save(conn);
    }
  }
}

/** A presence change as the client sees it (no seq: a socket sees only its users' share of the shard). */
export function presenceFrame(user: string, presence: PresenceState): string {
  return frame({ v: 1, type: "presence", users: [{ user, presence }] });
}
