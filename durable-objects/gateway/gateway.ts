import { DurableObject } from "cloudflare:workers";
import type { TopicAccess } from "../../src/realtime/ports";
import {
  type ClientFrame,
  type ClientTopic,
  type ErrorCode,
  eventFrame,
  frame,
  PING_TEXT,
  PONG_TEXT,
  parseClientFrame,
  type ReloadReason,
  type TopicRequest,
} from "../../src/realtime/protocol";
import { continuation, mergeEvents, type TopicEvent } from "../../src/realtime/sequence";
import { decodeState, encodeState, fitsAttachment, type SocketState } from "../../src/realtime/socket-state";
import { channelOf, topicKey } from "../../src/realtime/topics";
import { teamCacheAccess } from "./access";

// A gateway shard (`gw:<team>:<n>`) terminates many users' WebSockets with the
// hibernation API. Everything it needs to serve a socket lives in the socket's
// attachment (who, which topics, the last seq sent per topic), so an instance
// woken from hibernation rebuilds its in-memory index from the attachments and
// serves exactly as before. Pings are answered by the runtime without waking
// it.
//
// Topics call deliver() once per gateway with a list of events; the gateway
// sends each event to exactly its sockets subscribed to that topic, each
// socket strictly in seq order: events a socket already has are skipped, and
// a gap (a socket behind the events at hand) is filled from the topic's log
// before anything newer is sent.

/** Headers by which the Worker tells the gateway who connects (only the Worker can reach a gateway). */
export const GATEWAY_HEADERS = { team: "x-rtm-team", user: "x-rtm-user", gateway: "x-rtm-gateway" } as const;

/** At most this many catch-up pages per delivery before giving up until the next one. */
const MAX_CATCHUP_PAGES = 20;

export interface GatewayStats {
  /** A fresh id per instance: it changes when the object was evicted and woken again. */
  incarnation: string;
  sockets: number;
  /** Client frames this instance handled (auto-answered pings never reach it). */
  frames: number;
  /** Per topic key, the subscribed sockets. */
  topics: Record<string, number>;
}

interface Conn {
  ws: WebSocket;
  state: SocketState;
}

type Opened =
  | { ok: true; topic: ClientTopic; key: string; seq: number; replay: TopicEvent[]; reload?: ReloadReason }
  | { ok: false; topic: ClientTopic; code: ErrorCode; message: string };

export class Gateway extends DurableObject<Env> {
  private readonly incarnation = crypto.randomUUID();
  private frames = 0;
  private readonly access: TopicAccess;
  /** Sockets by id, rebuilt from the attachments on first use after a wake-up. */
  private conns: Map<string, Conn> | null = null;
  /** Topic key → the client topic name and the ids of the sockets subscribed to it. */
  private readonly byTopic = new Map<string, { topic: ClientTopic; sids: Set<string> }>();
  /** Sockets in the middle of subscribing to a topic: they count as subscribers. */
  private readonly pending = new Map<string, number>();
  /** The highest seq this instance has heard of, per topic key. */
  private readonly heads = new Map<string, number>();
  private readonly topicQueues = new Map<string, Promise<unknown>>();
  private readonly socketQueues = new Map<string, Promise<unknown>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
    this.access = teamCacheAccess(env);
  }

  /** A client connecting, forwarded by the Worker after it checked the token. */
  override async fetch(request: Request): Promise<Response> {
    const team = request.headers.get(GATEWAY_HEADERS.team);
    const user = request.headers.get(GATEWAY_HEADERS.user);
    const gateway = request.headers.get(GATEWAY_HEADERS.gateway);
    if (!team || !user || !gateway || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade forwarded by the Worker", { status: 400 });
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const state: SocketState = { sid: crypto.randomUUID().slice(0, 12), team, user, gateway, subs: new Map() };
    this.load();
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment(encodeState(state));
    this.track(server, state);
    server.send(frame({ v: 1, type: "hello", user, team, gateway }));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.frames++;
    const conn = this.connOf(ws);
    if (!conn) {
      ws.close(1011, "unknown socket");
      return;
    }
    // One frame at a time per socket, so answers come in the order asked.
    await enqueue(this.socketQueues, conn.state.sid, () => this.handle(conn.state.sid, message)).catch((error) => {
      console.error("gateway: frame failed", error);
      send(ws, frame({ v: 1, type: "error", code: "unavailable", message: "internal error; try again" }));
    });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.untrack(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.untrack(ws);
  }

  /**
   * Events of one topic from its Topic object, in seq order (a topic sends
   * one list at a time). Answers how many sockets follow the topic here: 0
   * tells the topic to stop sending.
   */
  async deliver(key: string, events: TopicEvent[]): Promise<{ subscribers: number }> {
    this.load();
    const subscribers = await enqueue(this.topicQueues, key, () => this.sync(key, events));
    return { subscribers };
  }

  async stats(): Promise<GatewayStats> {
    const conns = this.load();
    const topics: Record<string, number> = {};
    for (const [key, entry] of this.byTopic) topics[key] = entry.sids.size;
    return { incarnation: this.incarnation, sockets: conns.size, frames: this.frames, topics };
  }

  // --- frames -----------------------------------------------------------------

  private async handle(sid: string, message: string | ArrayBuffer): Promise<void> {
    const conn = this.conns?.get(sid);
    if (!conn) return;
    const parsed = parseClientFrame(message);
    if (!parsed.ok) {
      const { id, code, message: text } = parsed;
      send(conn.ws, frame({ v: 1, type: "error", ...(id === undefined ? {} : { id }), code, message: text }));
      return;
    }
    const f = parsed.frame;
    switch (f.type) {
      case "ping":
        send(conn.ws, frame({ v: 1, type: "pong", ...idOf(f) }));
        return;
      case "subscribe":
        return this.subscribe(sid, f);
      case "unsubscribe":
        return this.unsubscribe(sid, f);
    }
  }

  private async subscribe(sid: string, f: Extract<ClientFrame, { type: "subscribe" }>): Promise<void> {
    const before = this.conns?.get(sid);
    if (!before) return;
    const { team, user, gateway } = before.state;
    // What fits the socket's attachment is known before asking anyone (it is
    // judged at the largest seqs), and no other frame of this socket runs
    // meanwhile: topics beyond it are refused without registering anywhere.
    const trial: SocketState = { ...before.state, subs: new Map(before.state.subs) };
    const fresh: TopicRequest[] = [];
    const full: ClientTopic[] = [];
    const already: ClientTopic[] = [];
    for (const t of f.topics) {
      if (before.state.subs.has(t.topic)) {
        already.push(t.topic);
        continue;
      }
      trial.subs.set(t.topic, 0);
      if (fitsAttachment(trial)) fresh.push(t);
      else {
        trial.subs.delete(t.topic);
        full.push(t.topic);
      }
    }
    const keys = fresh.map((t) => topicKey(team, t.topic));
    for (const key of keys) this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    let opened: Opened[];
    try {
      opened = await Promise.all(fresh.map((t) => this.open(team, user, gateway, t)));
    } finally {
      for (const key of keys) {
        const n = (this.pending.get(key) ?? 1) - 1;
        if (n > 0) this.pending.set(key, n);
        else this.pending.delete(key);
      }
    }
    // From here to the sends, nothing awaits: no delivery can interleave.
    const conn = this.conns?.get(sid);
    if (!conn) return;
    const out: string[] = [];
    const after: string[] = [];
    const accepted: Array<{ topic: ClientTopic; seq: number }> = [];
    const started: string[] = [];
    for (const topic of full) {
      out.push(
        frame({
          v: 1,
          type: "error",
          ...idOf(f),
          topic,
          code: "too_many_topics",
          message: "this socket follows as many topics as it can; unsubscribe from some first",
        }),
      );
    }
    for (const o of opened) {
      if (!o.ok) {
        out.push(frame({ v: 1, type: "error", ...idOf(f), topic: o.topic, code: o.code, message: o.message }));
        continue;
      }
      const last = o.replay.at(-1)?.seq ?? o.seq;
      conn.state.subs.set(o.topic, last);
      accepted.push({ topic: o.topic, seq: last });
      started.push(o.key);
      this.heads.set(o.key, Math.max(this.heads.get(o.key) ?? 0, last));
      for (const e of o.replay) after.push(eventFrame(o.topic, e.seq, e.json));
      if (o.reload) after.push(frame({ v: 1, type: "reload", topic: o.topic, reason: o.reload, seq: o.seq }));
    }
    for (const topic of already) {
      const seq = conn.state.subs.get(topic);
      if (seq !== undefined) accepted.push({ topic, seq });
    }
    this.save(conn);
    for (const o of accepted) this.indexAdd(conn.state, o.topic);
    for (const text of out) send(conn.ws, text);
    if (accepted.length > 0) send(conn.ws, frame({ v: 1, type: "subscribed", ...idOf(f), topics: accepted }));
    for (const text of after) send(conn.ws, text);
    // Events that reached this gateway while the socket was subscribing.
    for (const key of started) {
      void enqueue(this.topicQueues, key, () => this.sync(key, [])).catch((error) =>
        console.error(`gateway: catch-up of ${key} failed`, error),
      );
    }
  }

  /** Checks access, registers this gateway with the topic, and fetches what `since` missed. */
  private async open(team: string, user: string, gateway: string, req: TopicRequest): Promise<Opened> {
    const { topic } = req;
    try {
      const channel = channelOf(topic);
      const access = channel ? await this.access.channel(team, user, channel) : await this.access.team(team, user);
      if (!access.ok) return { ok: false, topic, code: access.code, message: access.message };
      const key = topicKey(team, topic);
      const stub = this.topic(key);
      let page = await stub.subscribe(key, gateway, req.since);
      if (page.reload) return { ok: true, topic, key, seq: page.seq, replay: [], reload: page.reload };
      const replay = [...page.events];
      // Later pages, until caught up with the seq the subscription started at.
      while (req.since !== undefined && page.events.length > 0 && (replay.at(-1)?.seq ?? 0) < page.seq) {
        const next = await stub.eventsSince(key, replay.at(-1)?.seq ?? req.since);
        if (next.reload) return { ok: true, topic, key, seq: next.seq, replay: [], reload: next.reload };
        page = { ...next, seq: Math.max(page.seq, next.seq) };
        replay.push(...next.events);
      }
      return { ok: true, topic, key, seq: page.seq, replay };
    } catch (error) {
      console.error(`gateway: subscribe to ${topic} failed`, error);
      return { ok: false, topic, code: "unavailable", message: "topic unavailable; try again" };
    }
  }

  private async unsubscribe(sid: string, f: Extract<ClientFrame, { type: "unsubscribe" }>): Promise<void> {
    const conn = this.conns?.get(sid);
    if (!conn) return;
    for (const { topic } of f.topics) {
      conn.state.subs.delete(topic);
      this.indexRemove(conn.state, topic);
    }
    this.save(conn);
    // The topics drop this gateway lazily: their next delivery hears "no subscribers".
    send(conn.ws, frame({ v: 1, type: "unsubscribed", ...idOf(f), topics: f.topics.map((t) => t.topic) }));
  }

  // --- delivery ---------------------------------------------------------------

  /**
   * Sends each subscribed socket the events that continue its sequence,
   * fetching from the topic's log what the events at hand do not cover.
   * Runs in the topic's queue: one delivery per topic at a time.
   */
  private async sync(key: string, incoming: TopicEvent[]): Promise<number> {
    let known = incoming;
    let head = Math.max(this.heads.get(key) ?? 0, incoming.at(-1)?.seq ?? 0);
    this.heads.set(key, head);
    for (let page = 0; page <= MAX_CATCHUP_PAGES; page++) {
      const entry = this.byTopic.get(key);
      if (!entry || entry.sids.size === 0) break;
      const behind = this.sendContinuations(entry.topic, entry.sids, known, head);
      if (behind === null || page === MAX_CATCHUP_PAGES) break;
      const log = await this.topic(key).eventsSince(key, behind);
      head = Math.max(head, log.seq);
      this.heads.set(key, head);
      if (log.reload) {
        this.sendReloads(key, log.oldest, log.seq, log.reload);
        continue;
      }
      if (log.events.length === 0) break;
      known = mergeEvents(known, log.events);
    }
    const subscribers = (this.byTopic.get(key)?.sids.size ?? 0) + (this.pending.get(key) ?? 0);
    if (subscribers === 0) this.heads.delete(key);
    return subscribers;
  }

  /** Sends what it can; returns the lowest seq a socket is still stuck at, or null when all reached head. */
  private sendContinuations(topic: ClientTopic, sids: Set<string>, known: TopicEvent[], head: number): number | null {
    const frames = new Map<number, string>();
    let behind: number | null = null;
    for (const sid of sids) {
      const conn = this.conns?.get(sid);
      const last = conn?.state.subs.get(topic);
      if (!conn || last === undefined) continue;
      const next = continuation(last, known, head);
      for (const e of next.send) {
        let text = frames.get(e.seq);
        if (text === undefined) {
          text = eventFrame(topic, e.seq, e.json);
          frames.set(e.seq, text);
        }
        send(conn.ws, text);
      }
      if (next.last !== last) {
        conn.state.subs.set(topic, next.last);
        this.save(conn);
      }
      if (!next.complete) behind = behind === null ? next.last : Math.min(behind, next.last);
    }
    return behind;
  }

  /** Sockets whose next event is no longer in the topic's log: reload, then continue after `seq`. */
  private sendReloads(key: string, oldest: number, seq: number, reason: ReloadReason): void {
    const entry = this.byTopic.get(key);
    if (!entry) return;
    for (const sid of entry.sids) {
      const conn = this.conns?.get(sid);
      const last = conn?.state.subs.get(entry.topic);
      if (!conn || last === undefined) continue;
      if (reason === "gap_too_old" ? last + 1 < oldest : last > seq) {
        send(conn.ws, frame({ v: 1, type: "reload", topic: entry.topic, reason, seq }));
        conn.state.subs.set(entry.topic, seq);
        this.save(conn);
      }
    }
  }

  // --- sockets and the in-memory index ----------------------------------------

  /** The socket index, rebuilt from the attachments after a wake-up. */
  private load(): Map<string, Conn> {
    if (this.conns) return this.conns;
    this.conns = new Map();
    this.byTopic.clear();
    for (const ws of this.ctx.getWebSockets()) {
      const state = decodeState(ws.deserializeAttachment());
      if (state) this.track(ws, state);
    }
    return this.conns;
  }

  private connOf(ws: WebSocket): Conn | null {
    const state = decodeState(ws.deserializeAttachment());
    if (!state) return null;
    const conns = this.load();
    return conns.get(state.sid) ?? this.track(ws, state);
  }

  private track(ws: WebSocket, state: SocketState): Conn {
    const conn = { ws, state };
    this.conns?.set(state.sid, conn);
    for (const topic of state.subs.keys()) this.indexAdd(state, topic);
    return conn;
  }

  private untrack(ws: WebSocket): void {
    const state = decodeState(ws.deserializeAttachment());
    if (!state) return;
    const conn = this.conns?.get(state.sid);
    this.conns?.delete(state.sid);
    for (const topic of (conn?.state ?? state).subs.keys()) this.indexRemove(state, topic);
  }

  /** Writes the socket's state through to its attachment (sized by fitsAttachment, so it always fits). */
  private save(conn: Conn): void {
    try {
      conn.ws.serializeAttachment(encodeState(conn.state));
    } catch (error) {
      // Never expected; if it happens, the socket keeps its in-memory state
      // and other sockets are still served.
      console.error(`gateway: could not save the state of socket ${conn.state.sid}`, error);
    }
  }

  private indexAdd(state: SocketState, topic: ClientTopic): void {
    const key = topicKey(state.team, topic);
    let entry = this.byTopic.get(key);
    if (!entry) {
      entry = { topic, sids: new Set() };
      this.byTopic.set(key, entry);
    }
    entry.sids.add(state.sid);
  }

  private indexRemove(state: SocketState, topic: ClientTopic): void {
    const key = topicKey(state.team, topic);
    const entry = this.byTopic.get(key);
    if (!entry) return;
    entry.sids.delete(state.sid);
    if (entry.sids.size === 0) this.byTopic.delete(key);
  }

  private topic(key: string) {
    return this.env.TOPIC.get(this.env.TOPIC.idFromName(key));
  }
}

function idOf(f: { id?: string | number }): { id?: string | number } {
  return f.id === undefined ? {} : { id: f.id };
}

function send(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // The socket is closing; its close event removes it.
  }
}

/** Runs `fn` after everything queued under `key`; the queue entry goes away when idle. */
function enqueue<T>(queues: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => {});
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}
