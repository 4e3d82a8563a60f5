import { decodeState, encodeState, type SocketState } from "../../src/realtime/socket-state";
import type { SubTopic } from "../../src/realtime/topics";
import { type Conn, IN_SYNC } from "./conn";
import type { SharedPositions } from "./positions";

// A gateway's sockets, indexed: by id, by topic, per user, and where each
// stands in each topic. The sockets themselves (hibernatable) carry their
// state in their attachments; this index is memory, rebuilt from those
// attachments the first time it is used after a wake-up, so everything here
// can be lost at any moment without losing anything.
//
// Where a socket stands: almost every socket of a topic is at the same
// point, the topic's shared position (positions.ts), and records IN_SYNC;
// one that fell behind or subscribed elsewhere records its own seq until it
// catches up.

export interface SocketIndexHooks {
  /** The socket's attachments, after a wake-up (ctx.getWebSockets()). */
  sockets(): WebSocket[];
  /** A socket subscribed to a topic (what was known of all its subscribers no longer holds). */
  joined?(topic: SubTopic): void;
  /** A socket is gone from the index (closed, or closed by the gateway). */
  gone?(state: SocketState, lastOfUser: boolean): void;
}

export class SocketIndex {
  /** Sockets by id, rebuilt from the attachments on first use after a wake-up. */
  private conns: Map<string, Conn> | null = null;
  /** Topic → the ids of the sockets subscribed to it. */
  private readonly byTopic = new Map<SubTopic, Set<string>>();
  /** Open sockets per user (presence). */
  private readonly perUser = new Map<string, number>();
  /**
   * Per followed topic, a token renewed each time this gateway starts
   * following it (its first subscriber): "followed without a break since"
   * is "the same token" (grants.ts).
   */
  private readonly follows = new Map<SubTopic, number>();
  private followSeq = 0;
  /** The connection of a socket object this instance has seen (else its attachment is read). */
  private readonly byWs = new WeakMap<WebSocket, Conn>();

  constructor(
    /** Per topic, the seq every in-sync socket has been sent. */
    readonly positions: SharedPositions,
    private readonly hooks: SocketIndexHooks,
  ) {}

  /** Every socket, rebuilt from the attachments after a wake-up. */
  all(): Map<string, Conn> {
    if (this.conns) return this.conns;
    this.conns = new Map();
    this.byTopic.clear();
    this.follows.clear();
    this.perUser.clear();
    for (const ws of this.hooks.sockets()) {
      const state = decodeState(ws.deserializeAttachment());
      if (state) this.track(ws, state);
    }
    return this.conns;
  }

  get(sid: string): Conn | undefined {
    return this.conns?.get(sid);
  }

  /** The connection of a socket object (its attachment read when this instance has not seen it). */
  of(ws: WebSocket): Conn | null {
    const conns = this.all();
    const known = this.byWs.get(ws);
    if (known && conns.get(known.state.sid) === known) return known;
    const state = decodeState(ws.deserializeAttachment());
    if (!state) return null;
    return conns.get(state.sid) ?? this.track(ws, state);
  }

  /** The ids of the sockets following a topic here. */
  following(topic: SubTopic): Set<string> | undefined {
    return this.byTopic.get(topic);
  }

  topics(): IterableIterator<[SubTopic, Set<string>]> {
    return this.byTopic.entries();
  }

  /** The topic's follow token (grants.ts); undefined when no socket here follows it. */
  followToken(topic: SubTopic): number | undefined {
    return this.follows.get(topic);
  }

  socketsOf(user: string): number {
    return this.perUser.get(user) ?? 0;
  }

  hasUser(user: string): boolean {
    return this.perUser.has(user);
  }

  track(ws: WebSocket, state: SocketState): Conn {
    const conn = { ws, state };
    this.byWs.set(ws, conn);
    this.conns?.set(state.sid, conn);
    this.perUser.set(state.user, (this.perUser.get(state.user) ?? 0) + 1);
    // Topics it already followed (a state read back from its attachment): not a new subscriber.
    for (const topic of state.subs.keys()) this.follow(state.sid, topic);
    return conn;
  }

  /** Forgets a socket (its close); the `gone` hook hears of it. */
  untrack(ws: WebSocket): void {
    this.all();
    const state = this.byWs.get(ws)?.state ?? decodeState(ws.deserializeAttachment());
    if (!state) return;
    const conn = this.conns?.get(state.sid);
    if (!conn) return;
    this.byWs.delete(ws);
    this.conns?.delete(state.sid);
    for (const topic of conn.state.subs.keys()) this.unsubscribe(state.sid, topic);
    const left = (this.perUser.get(state.user) ?? 1) - 1;
    if (left > 0) this.perUser.set(state.user, left);
    else this.perUser.delete(state.user);
    this.hooks.gone?.(state, left <= 0);
  }

  /** Writes the socket's state through to its attachment (sized by fitsAttachment, so it always fits). */
  save(conn: Conn): void {
    try {
      conn.ws.serializeAttachment(encodeState(conn.state));
    } catch (error) {
      // Never expected; if it happens, the socket keeps its in-memory state
      // and other sockets are still served.
      console.error(`gateway: could not save the state of socket ${conn.state.sid}`, error);
    }
  }

  /** Adds the socket to the topic's followers (its state says where it stands); the `joined` hook hears of it. */
  subscribe(sid: string, topic: SubTopic): void {
    this.hooks.joined?.(topic);
    this.follow(sid, topic);
  }

  private follow(sid: string, topic: SubTopic): void {
    let sids = this.byTopic.get(topic);
    if (!sids) {
      sids = new Set();
      this.byTopic.set(topic, sids);
      this.follows.set(topic, ++this.followSeq);
    }
    sids.add(sid);
  }

  unsubscribe(sid: string, topic: SubTopic): void {
    const sids = this.byTopic.get(topic);
    if (!sids) return;
    sids.delete(sid);
    if (sids.size === 0) {
      this.byTopic.delete(topic);
      this.follows.delete(topic);
      // Nobody left at the shared position: the next subscriber starts a new one.
      this.positions.set(topic, null);
    }
  }

  /**
   * Records where a socket is in a topic: in sync when that is the topic's
   * shared position (or there is none and nobody else follows: it starts
   * one), else its own seq.
   */
  place(state: SocketState, topic: SubTopic, seq: number): void {
    const base = this.positions.get(topic);
    if (base === undefined && !this.hasOthers(state.sid, topic)) {
      this.positions.set(topic, seq);
      state.subs.set(topic, IN_SYNC);
    } else if (base === seq) state.subs.set(topic, IN_SYNC);
    else state.subs.set(topic, seq);
  }

  /** The last seq a socket was sent of a topic. */
  lastOf(state: SocketState, topic: SubTopic): number | undefined {
    const own = state.subs.get(topic);
    if (own !== IN_SYNC) return own;
    return this.positions.get(topic) ?? 0;
  }

  private hasOthers(sid: string, topic: SubTopic): boolean {
    const sids = this.byTopic.get(topic);
    return !!sids && (sids.size > 1 || (sids.size === 1 && !sids.has(sid)));
  }
}
