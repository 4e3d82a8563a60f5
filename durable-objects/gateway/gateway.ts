import { DurableObject } from "cloudflare:workers";
import { type AdmissionLimits, Admitter } from "../../src/realtime/admission";
import { MAX_REMEMBERED_PROFILES, mayNameUsers, remember, usersNamedBy } from "../../src/realtime/annotations";
import type { ProfileSource, TopicAccess } from "../../src/realtime/ports";
import {
  byPresenceTopic,
  DEFAULT_GRACE_SECONDS,
  isPresenceTopic,
  type PresenceState,
  type PresenceTopic,
  parsePresenceEvent,
  presenceEventJson,
  presenceOf,
  presenceShardOf,
  presenceTopic,
} from "../../src/realtime/presence";
import {
  batchFramesOf,
  CLOSE_CODES,
  type ClientFrame,
  type ClientTopic,
  closeReason,
  type ErrorCode,
  eventFrame,
  FRAME_BURST,
  FRAME_RATE,
  frame,
  MAX_DROPPED_FRAMES,
  PING_TEXT,
  PONG_TEXT,
  packFrames,
  parseClientFrame,
  type ReloadReason,
  type TopicRequest,
} from "../../src/realtime/protocol";
import { TokenBucket } from "../../src/realtime/rate-limit";
import { continuation, mergeEvents, type TopicEvent } from "../../src/realtime/sequence";
import { decodeState, encodeState, fitsAttachment, type SocketState } from "../../src/realtime/socket-state";
import { channelOf, type SubTopic, subTopicOfKey, topicKey } from "../../src/realtime/topics";
import { positiveVar } from "../../src/vars";
import { teamCacheAccess, teamCacheProfiles } from "./access";

// A gateway shard (`gw:<team>:<n>`) terminates many users' WebSockets with the
// hibernation API. Everything it needs to serve a socket lives in the socket's
// attachment (who, which topics, the last seq sent per topic, whose presence
// it follows), so an instance woken from hibernation rebuilds its in-memory
// index from the attachments and serves exactly as before. Pings are answered
// by the runtime without waking it.
//
// Topics call deliver() once per gateway with a list of events; the gateway
// sends each event to exactly its sockets subscribed to that topic, each
// socket strictly in seq order: events a socket already has are skipped, and
// a gap (a socket behind the events at hand) is filled from the topic's log
// before anything newer is sent.
//
// Almost every socket of a topic is at the same point, so they share one
// position: the topic's `delivered` seq, kept in the gateway's SQLite, and
// such a socket's attachment records IN_SYNC instead of a number. Delivering
// events to N in-sync sockets is then N sends and one small write, not N
// attachment rewrites; and the frames a socket gets at once go as one `batch`
// message (protocol.ts), packed once for every socket getting the same ones.
// A socket that falls behind (or subscribes at another point) records its own
// seq until it catches up and rejoins. On the way it
// - sends a profile before the first message naming a user the socket has
//   not been sent yet (just-in-time annotation),
// - passes a presence shard's events only to sockets following that user,
// - re-checks access when a member leaves a channel.
//
// It also admits connections (admission.ts) and rate limits client frames,
// and it owns its users' presence: all of a user's sockets are here.

/** Headers by which the Worker tells the gateway who connects (only the Worker can reach a gateway). */
export const GATEWAY_HEADERS = { team: "x-rtm-team", user: "x-rtm-user", gateway: "x-rtm-gateway" } as const;

/** At most this many catch-up pages per delivery before giving up until the next one. */
const MAX_CATCHUP_PAGES = 20;
const DEFAULT_MAX_SOCKETS = 20_000;
const DEFAULT_ACCEPT_PER_SECOND = 1_000;
/** A socket closed for its frame rate may come back after this (plus jitter). */
const RATE_LIMIT_RETRY_MS = 5_000;
/** A socket's recorded seq meaning "at the topic's shared delivered seq". */
const IN_SYNC = -1;

export interface GatewayStats {
  /** A fresh id per instance: it changes when the object was evicted and woken again. */
  incarnation: string;
  sockets: number;
  /** Client frames this instance handled (auto-answered pings never reach it). */
  frames: number;
  /** Per topic, the subscribed sockets. */
  topics: Record<string, number>;
  /** Connections refused by admission control, frames dropped by rate limits (this instance). */
  refused: number;
  dropped: number;
  /** Users whose last socket closed, waiting out the presence grace period. */
  awayPending: number;
}

/** What configure() sets: admission, and the most frames one message carries (1: no batching). */
export type GatewayLimits = AdmissionLimits & { batchFrames: number };

interface Conn {
  ws: WebSocket;
  state: SocketState;
}

type Opened =
  | { ok: true; topic: ClientTopic; key: string; seq: number; replay: TopicEvent[]; reload?: ReloadReason }
  | { ok: false; topic: ClientTopic; code: ErrorCode; message: string };

/** Per event of a delivery: the users it names, and the profile frames to send before it. */
interface Annotations {
  named: Map<number, string[]>;
  profiles: Map<string, string>;
  /** The viewers the profiles were fetched for, and what each may not see. */
  viewers: Set<string>;
  hidden: Record<string, string[]>;
}

export class Gateway extends DurableObject<Env> {
  private readonly incarnation = crypto.randomUUID();
  private frames = 0;
  private refused = 0;
  private dropped = 0;
  private readonly access: TopicAccess;
  private readonly profileSource: ProfileSource;
  private admitter: Admitter | null = null;
  /** Frames per message at most (GATEWAY_BATCH_FRAMES, or configure()); read on first use. */
  private batchFrames: number | null = null;
  /** When the alarm is set for (null: unknown or none). */
  private alarmAt: number | null = null;
  /** Subscribes being served now: the real backlog a reconnect storm builds. */
  private subscribing = 0;
  /** Sockets by id, rebuilt from the attachments on first use after a wake-up. */
  private conns: Map<string, Conn> | null = null;
  /** Topic → the ids of the sockets subscribed to it. */
  private readonly byTopic = new Map<SubTopic, Set<string>>();
  /** Open sockets per user (presence). */
  private readonly userSockets = new Map<string, number>();
  /** Sockets in the middle of subscribing to a topic: they count as subscribers. */
  private readonly pending = new Map<SubTopic, number>();
  /** The highest seq this instance has heard of, per topic key. */
  private readonly heads = new Map<string, number>();
  /** Per topic, the seq every in-sync socket has been sent (mirrors the `delivered` table). */
  private delivered: Map<SubTopic, number> | null = null;
  private readonly topicQueues = new Map<string, Promise<unknown>>();
  private readonly socketQueues = new Map<string, Promise<unknown>>();
  /** Per socket, in memory only: frame rate bucket, frames dropped, profiles sent. */
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly drops = new Map<string, number>();
  private readonly sent = new Map<string, Set<string>>();
  /** Per topic, users every current subscriber was sent the profile of (reset when a socket subscribes). */
  private readonly annotated = new Map<SubTopic, Set<string>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
    this.access = teamCacheAccess(env);
    this.profileSource = teamCacheProfiles(env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS away_pending (user TEXT PRIMARY KEY, team TEXT NOT NULL, due INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS delivered (topic TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    `);
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
    const conns = this.load();
    const admission = this.admission().admit(conns.size, Date.now(), this.subscribing);
    if (!admission.ok) {
      // Accepted only to be closed: a browser cannot read an HTTP refusal of
      // a WebSocket handshake, but it can read a close code and reason.
      this.refused++;
      server.accept();
      server.close(CLOSE_CODES.overloaded, closeReason("overloaded", admission.retryAfterMs));
      return new Response(null, { status: 101, webSocket: client });
    }
    const state: SocketState = {
      sid: crypto.randomUUID().slice(0, 12),
      team,
      user,
      gateway,
      subs: new Map(),
      presence: new Set(),
    };
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment(encodeState(state));
    this.track(server, state);
    server.send(frame({ v: 1, type: "hello", user, team, gateway }));
    if (this.userSockets.get(user) === 1) this.ctx.waitUntil(this.arrived(team, user));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.frames++;
    const conn = this.connOf(ws);
    if (!conn) {
      ws.close(1011, "unknown socket");
      return;
    }
    if (!this.withinRate(conn)) return;
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

  /** Users whose grace period ended: away, unless they came back. */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    this.load();
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    const due = sql
      .exec<{ user: string; team: string }>("SELECT user, team FROM away_pending WHERE due <= ?", now)
      .toArray();
    for (const { user, team } of due) {
      sql.exec("DELETE FROM away_pending WHERE user = ?", user);
      if ((this.userSockets.get(user) ?? 0) === 0) await this.publishPresence(team, user, "away");
    }
    await this.scheduleAwayAlarm();
  }

  /**
   * Events of one topic from its Topic object, in seq order (a topic sends
   * one list at a time). Answers how many sockets follow the topic here: 0
   * tells the topic to stop sending.
   */
  async deliver(key: string, events: TopicEvent[]): Promise<{ subscribers: number }> {
    this.load();
    const topic = subTopicOfKey(key);
    if (!topic) return { subscribers: 0 };
    const subscribers = await enqueue(this.topicQueues, key, () => this.sync(key, topic, events));
    return { subscribers };
  }

  /**
   * Admission limits and frames per batch message for this shard (an
   * operator's lever for a hot gateway; tests). Until the next restart.
   */
  async configure(limits: Partial<GatewayLimits>): Promise<GatewayLimits> {
    const { batchFrames, ...admission } = limits;
    if (batchFrames !== undefined && !(Number.isInteger(batchFrames) && batchFrames >= 1)) {
      throw new Error("batchFrames must be a whole number ≥ 1");
    }
    if (Object.keys(admission).length > 0) {
      const next = { ...this.admission().limits, ...admission };
      if (!(next.maxSockets > 0) || !(next.perSecond > 0)) throw new Error("limits must be positive");
      this.admitter = new Admitter(next, Date.now());
    }
    if (batchFrames !== undefined) this.batchFrames = batchFrames;
    return { ...this.admission().limits, batchFrames: this.batchLimit() };
  }

  /** Closes every socket of a user here (deactivated): they must not reconnect, and see why. */
  async disconnectUser(user: string): Promise<{ closed: number }> {
    let closed = 0;
    for (const conn of [...this.load().values()]) {
      if (conn.state.user !== user) continue;
      try {
        conn.ws.close(CLOSE_CODES.deactivated, closeReason("deactivated"));
      } catch {
        // already closing
      }
      this.untrack(conn.ws);
      closed++;
    }
    return { closed };
  }

  async stats(): Promise<GatewayStats> {
    const conns = this.load();
    const topics: Record<string, number> = {};
    for (const [topic, sids] of this.byTopic) topics[topic] = sids.size;
    const awayPending = Number(
      this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM away_pending").one().n,
    );
    return {
      incarnation: this.incarnation,
      sockets: conns.size,
      frames: this.frames,
      topics,
      refused: this.refused,
      dropped: this.dropped,
      awayPending,
    };
  }

  // --- admission and rate limits ----------------------------------------------

  private admission(): Admitter {
    this.admitter ??= new Admitter(
      {
        maxSockets: positiveVar("GATEWAY_MAX_SOCKETS", this.env.GATEWAY_MAX_SOCKETS, DEFAULT_MAX_SOCKETS),
        perSecond: positiveVar(
          "GATEWAY_ACCEPT_PER_SECOND",
          this.env.GATEWAY_ACCEPT_PER_SECOND,
          DEFAULT_ACCEPT_PER_SECOND,
        ),
      },
      Date.now(),
    );
    return this.admitter;
  }

  private batchLimit(): number {
    this.batchFrames ??= batchFramesOf(this.env.GATEWAY_BATCH_FRAMES);
    return this.batchFrames;
  }

  /** Frames for one socket, in order: as few messages as the batch limits allow. */
  private sendFrames(ws: WebSocket, texts: readonly string[]): void {
    for (const text of packFrames(texts, this.batchLimit())) send(ws, text);
  }

  /** Takes a token for a client frame; drops the frame (error) or the socket (close) when out. */
  private withinRate(conn: Conn): boolean {
    const { sid } = conn.state;
    const now = Date.now();
    let bucket = this.buckets.get(sid);
    if (!bucket) {
      bucket = new TokenBucket(FRAME_RATE, FRAME_BURST, now);
      this.buckets.set(sid, bucket);
    }
    if (bucket.take(now)) return true;
    this.dropped++;
    const drops = (this.drops.get(sid) ?? 0) + 1;
    this.drops.set(sid, drops);
    if (drops >= MAX_DROPPED_FRAMES) {
      const retry = RATE_LIMIT_RETRY_MS * (1 + Math.random());
      try {
        conn.ws.close(CLOSE_CODES.rate_limited, closeReason("rate_limited", retry));
      } catch {
        // already closing
      }
      this.untrack(conn.ws);
      return false;
    }
    send(
      conn.ws,
      frame({
        v: 1,
        type: "error",
        code: "rate_limited",
        message: `at most ${FRAME_RATE} frames a second; this one was dropped (retry in ${bucket.waitMs(now)} ms)`,
      }),
    );
    return false;
  }

  // --- presence ---------------------------------------------------------------

  /** The user's first socket here: active, unless they only blinked (still within grace, never shown away). */
  private async arrived(team: string, user: string): Promise<void> {
    const sql = this.ctx.storage.sql;
    const wasPending = sql.exec("SELECT 1 FROM away_pending WHERE user = ?", user).toArray().length > 0;
    if (wasPending) {
      sql.exec("DELETE FROM away_pending WHERE user = ?", user);
      return;
    }
    await this.publishPresence(team, user, "active");
  }

  /** The user's last socket here closed: away after the grace period (alarm). */
  private left(team: string, user: string): void {
    const graceMs =
      positiveVar("PRESENCE_GRACE_SECONDS", this.env.PRESENCE_GRACE_SECONDS, DEFAULT_GRACE_SECONDS) * 1000;
    const due = Date.now() + graceMs;
    this.ctx.storage.sql.exec(
      "INSERT OR REPLACE INTO away_pending (user, team, due) VALUES (?, ?, ?)",
      user,
      team,
      due,
    );
    this.ctx.waitUntil(this.scheduleAwayAlarm(due));
  }

  /**
   * One alarm for the earliest pending "away". The time it is set for is kept
   * in memory so a storm of closes does not read the alarm once per close
   * (a due time later than the alarm needs nothing: the alarm reschedules).
   */
  private async scheduleAwayAlarm(due?: number): Promise<void> {
    if (due !== undefined && this.alarmAt !== null && this.alarmAt <= due) return;
    const next = this.ctx.storage.sql.exec<{ due: number | null }>("SELECT MIN(due) AS due FROM away_pending").one();
    if (next.due === null) return;
    this.alarmAt ??= await this.ctx.storage.getAlarm();
    if (this.alarmAt === null || this.alarmAt > Number(next.due)) {
      this.alarmAt = Number(next.due);
      await this.ctx.storage.setAlarm(this.alarmAt);
    }
  }

  private async publishPresence(team: string, user: string, presence: PresenceState): Promise<void> {
    const key = topicKey(team, presenceTopic(presenceShardOf(user)));
    try {
      await this.topic(key).publish(key, presenceEventJson(user, presence), { stateKey: user });
    } catch (error) {
      console.error(`gateway: presence of ${user} not published`, error);
    }
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
      case "presence_sub":
        return this.presenceSub(sid, f);
    }
  }

  private async subscribe(sid: string, f: Extract<ClientFrame, { type: "subscribe" }>): Promise<void> {
    this.subscribing++;
    try {
      await this.subscribeNow(sid, f);
    } finally {
      this.subscribing--;
    }
  }

  private async subscribeNow(sid: string, f: Extract<ClientFrame, { type: "subscribe" }>): Promise<void> {
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
    const opened = await this.whilePending(
      fresh.map((t) => t.topic),
      () => Promise.all(fresh.map((t) => this.open(team, user, gateway, t))),
    );
    // From here to the sends, nothing awaits: no delivery can interleave.
    const conn = this.conns?.get(sid);
    if (!conn) return;
    const out: string[] = [];
    const after: string[] = [];
    const accepted: Array<{ topic: ClientTopic; seq: number }> = [];
    const started: Array<[string, SubTopic]> = [];
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
      this.place(conn.state, o.topic, last);
      accepted.push({ topic: o.topic, seq: last });
      started.push([o.key, o.topic]);
      this.heads.set(o.key, Math.max(this.heads.get(o.key) ?? 0, last));
      for (const e of o.replay) after.push(eventFrame(o.topic, e.seq, e.json));
      if (o.reload) after.push(frame({ v: 1, type: "reload", topic: o.topic, reason: o.reload, seq: o.seq }));
    }
    for (const topic of already) {
      const seq = this.lastOf(conn.state, topic);
      if (seq !== undefined) accepted.push({ topic, seq });
    }
    this.save(conn);
    for (const o of accepted) this.indexAdd(conn.state.sid, o.topic);
    if (accepted.length > 0) out.push(frame({ v: 1, type: "subscribed", ...idOf(f), topics: accepted }));
    // The answer and the missed events after it: one message when they fit.
    this.sendFrames(conn.ws, [...out, ...after]);
    this.catchUp(conn.state, started);
  }

  /** Checks access, registers this gateway with the topic, and fetches what `since` missed. */
  private async open(team: string, user: string, gateway: string, req: TopicRequest): Promise<Opened> {
    const { topic } = req;
    try {
      const channel = channelOf(topic);
      let host = team;
      if (channel) {
        const access = await this.access.channel(team, user, channel);
        if (!access.ok) return { ok: false, topic, code: access.code, message: access.message };
        host = access.host;
      } else {
        const access = await this.access.team(team, user);
        if (!access.ok) return { ok: false, topic, code: access.code, message: access.message };
      }
      const key = topicKey(host, topic);
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
      this.indexRemove(sid, topic);
    }
    this.save(conn);
    // The topics drop this gateway lazily: their next delivery hears "no subscribers".
    send(conn.ws, frame({ v: 1, type: "unsubscribed", ...idOf(f), topics: f.topics.map((t) => t.topic) }));
  }

  /**
   * Replaces the users whose presence the socket follows: follows the
   * presence shards they live on (and only those), and answers with a
   * snapshot of every listed user taken at the seq its live changes start
   * after, so no change falls between the snapshot and the stream.
   */
  private async presenceSub(sid: string, f: Extract<ClientFrame, { type: "presence_sub" }>): Promise<void> {
    const before = this.conns?.get(sid);
    if (!before) return;
    const { team, user, gateway } = before.state;
    const wanted = byPresenceTopic(f.users);
    const trial: SocketState = { ...before.state, subs: new Map(before.state.subs), presence: new Set(f.users) };
    for (const t of [...trial.subs.keys()]) if (isPresenceTopic(t) && !wanted.has(t)) trial.subs.delete(t);
    for (const t of wanted.keys()) if (!trial.subs.has(t)) trial.subs.set(t, 0);
    const refuse = (code: ErrorCode, message: string) =>
      send(before.ws, frame({ v: 1, type: "error", ...idOf(f), code, message }));
    if (!fitsAttachment(trial)) {
      return refuse("too_many_users", "this socket cannot follow that many users on top of its topics");
    }
    const access = await this.access.team(team, user).catch(() => null);
    if (!access) return refuse("unavailable", "presence unavailable; try again");
    if (!access.ok) return refuse(access.code, access.message);
    const fresh = [...wanted.keys()].filter((t) => !before.state.subs.has(t));
    let snapshots: Array<{ topic: PresenceTopic; key: string; seq: number | null; state: Record<string, string> }>;
    try {
      snapshots = await this.whilePending(fresh, () =>
        Promise.all(
          [...wanted].map(async ([topic, users]) => {
            const key = topicKey(team, topic);
            const stub = this.topic(key);
            if (before.state.subs.has(topic)) {
              const snap = await stub.snapshot(key, users);
              return { topic, key, seq: null, state: snap.state };
            }
            const page = await stub.subscribe(key, gateway, undefined, users);
            return { topic, key, seq: page.seq, state: page.state ?? {} };
          }),
        ),
      );
    } catch (error) {
      console.error("gateway: presence subscription failed", error);
      return refuse("unavailable", "presence unavailable; try again");
    }
    const conn = this.conns?.get(sid);
    if (!conn) return;
    for (const t of [...conn.state.subs.keys()]) {
      if (isPresenceTopic(t) && !wanted.has(t)) {
        conn.state.subs.delete(t);
        this.indexRemove(sid, t);
      }
    }
    const started: Array<[string, SubTopic]> = [];
    const states = new Map<string, string>();
    for (const s of snapshots) {
      for (const [u, json] of Object.entries(s.state)) states.set(u, json);
      if (s.seq === null) continue;
      this.place(conn.state, s.topic, s.seq);
      this.heads.set(s.key, Math.max(this.heads.get(s.key) ?? 0, s.seq));
      this.indexAdd(sid, s.topic);
      started.push([s.key, s.topic]);
    }
    conn.state.presence = new Set(f.users);
    this.save(conn);
    const users = f.users.map((u) => ({ user: u, presence: presenceOf(states.get(u)) }));
    send(conn.ws, frame({ v: 1, type: "presence", ...idOf(f), users }));
    this.catchUp(conn.state, started);
  }

  /** Runs `fn` with the topics counted as subscribed (a delivery meanwhile must not drop this gateway). */
  private async whilePending<T>(topics: SubTopic[], fn: () => Promise<T>): Promise<T> {
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
  private catchUp(state: SocketState, started: Array<[string, SubTopic]>): void {
    for (const [key, topic] of started) {
      if ((this.heads.get(key) ?? 0) <= (this.lastOf(state, topic) ?? 0)) continue;
      void enqueue(this.topicQueues, key, () => this.sync(key, topic, [])).catch((error) =>
        console.error(`gateway: catch-up of ${key} failed`, error),
      );
    }
  }

  // --- delivery ---------------------------------------------------------------

  /**
   * Sends each subscribed socket the events that continue its sequence,
   * fetching from the topic's log what the events at hand do not cover.
   * Runs in the topic's queue: one delivery per topic at a time.
   */
  private async sync(key: string, topic: SubTopic, incoming: TopicEvent[]): Promise<number> {
    let known = incoming;
    let head = Math.max(this.heads.get(key) ?? 0, incoming.at(-1)?.seq ?? 0);
    this.heads.set(key, head);
    for (let page = 0; page <= MAX_CATCHUP_PAGES; page++) {
      const sids = this.byTopic.get(topic);
      if (!sids || sids.size === 0) break;
      const notes = topic.startsWith("channel:") ? await this.annotations(sids, topic, known) : null;
      const behind = this.sendContinuations(topic, sids, known, head, notes);
      // Every subscriber got these events and their profiles: later messages naming them skip the per-socket check.
      if (notes && behind === null) this.markAnnotated(topic, notes.named);
      if (behind === null || page === MAX_CATCHUP_PAGES) break;
      const log = await this.topic(key).eventsSince(key, behind);
      head = Math.max(head, log.seq);
      this.heads.set(key, head);
      if (log.reload) {
        await this.sendReloads(key, topic, log.oldest, log.seq, log.reload);
        continue;
      }
      if (log.events.length === 0) break;
      known = mergeEvents(known, log.events);
    }
    await this.enforce(topic, known);
    const subscribers = (this.byTopic.get(topic)?.size ?? 0) + (this.pending.get(topic) ?? 0);
    if (subscribers === 0) this.heads.delete(key);
    return subscribers;
  }

  /** Sends what it can; returns the lowest seq a socket is still stuck at, or null when all reached head. */
  private sendContinuations(
    topic: SubTopic,
    sids: Set<string>,
    known: TopicEvent[],
    head: number,
    notes: Annotations | null,
  ): number | null {
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
          this.batchLimit(),
        );
        packed.set(key, messages);
      }
      return messages;
    };
    const base = this.deliveredMap().get(topic);
    const group = base === undefined ? null : continuation(base, known, head);
    const sendAll = (conn: Conn, events: TopicEvent[]) => {
      if (events.length === 0) return;
      if (!presence && !notes) {
        for (const message of shared(events)) send(conn.ws, message);
        return;
      }
      // Content of its own: presence filtered to its users, or profiles it lacks.
      let own = presence;
      const texts: string[] = [];
      for (const e of events) {
        const built = frameOf(e);
        if (!built) continue;
        // A presence shard carries many users' changes; a socket gets its users' only.
        if (built.user !== undefined && !conn.state.presence.has(built.user)) continue;
        if (notes && this.profilesFor(conn, notes, e.seq, texts) > 0) own = true;
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
    for (const sid of sids) {
      const conn = this.conns?.get(sid);
      const own = conn?.state.subs.get(topic);
      if (!conn || own === undefined) continue;
      if (own === IN_SYNC && group) {
        if (groupMessages) for (const message of groupMessages) send(conn.ws, message);
        else sendAll(conn, group.send);
        if (!group.complete) stuck(group.last);
        continue;
      }
      const last = own === IN_SYNC ? (base ?? 0) : own;
      const next = continuation(last, known, head);
      sendAll(conn, next.send);
      if (group && next.last === group.last) {
        conn.state.subs.set(topic, IN_SYNC);
        this.save(conn);
      } else if (next.last !== own) {
        conn.state.subs.set(topic, next.last);
        this.save(conn);
      }
      if (!next.complete) stuck(next.last);
      else reachedHead = true;
    }
    if (group && base !== undefined && group.last !== base) this.setDelivered(topic, group.last);
    // No shared position (sockets from before it existed): start one at head;
    // sockets there join it on the next delivery.
    if (base === undefined && reachedHead) this.setDelivered(topic, head);
    return behind;
  }

  /**
   * Profiles the sockets will need for the messages at hand: the users those
   * messages name that some socket has not been sent, fetched in one call
   * with what each viewer may see. null when no message names anyone new.
   */
  private async annotations(sids: Set<string>, topic: SubTopic, known: TopicEvent[]): Promise<Annotations | null> {
    const named = new Map<number, string[]>();
    for (const e of known) {
      if (!mayNameUsers(e.json)) continue;
      let users: string[] = [];
      try {
        users = usersNamedBy(JSON.parse(e.json));
      } catch {
        // not JSON: nothing to annotate
      }
      if (users.length > 0) named.set(e.seq, users);
    }
    if (named.size === 0) return null;
    // Users every current subscriber of the topic was already sent: nothing
    // to look at per socket (the common case once a channel's regulars spoke).
    const covered = this.annotated.get(topic);
    if (covered && [...named.values()].every((users) => users.every((u) => covered.has(u)))) return null;
    const missing = new Set<string>();
    const viewers = new Set<string>();
    let team: string | null = null;
    for (const sid of sids) {
      const conn = this.conns?.get(sid);
      const last = conn ? this.lastOf(conn.state, topic) : undefined;
      if (!conn || last === undefined) continue;
      const sent = this.sent.get(sid);
      for (const [seq, users] of named) {
        if (seq <= last) continue;
        for (const u of users) {
          if (sent?.has(u)) continue;
          missing.add(u);
          viewers.add(conn.state.user);
          team = conn.state.team;
        }
      }
    }
    if (missing.size === 0 || team === null) {
      this.markAnnotated(topic, named);
      return null;
    }
    try {
      const found = await this.profileSource.profiles(team, [...viewers], [...missing]);
      const profiles = new Map(found.profiles.map((p) => [p.id, frame({ v: 1, type: "user", user: p })]));
      return { named, profiles, viewers, hidden: found.hidden };
    } catch (error) {
      // The messages still go out; a client resolves unknown users itself.
      console.error("gateway: profiles for annotation unavailable", error);
      return null;
    }
  }

  private markAnnotated(topic: SubTopic, named: Map<number, string[]>): void {
    let covered = this.annotated.get(topic);
    if (!covered) {
      covered = new Set();
      this.annotated.set(topic, covered);
    }
    if (covered.size > MAX_REMEMBERED_PROFILES) covered.clear();
    for (const users of named.values()) for (const u of users) covered.add(u);
  }

  /** Adds to `out` the profiles the socket needs before event `seq` (and counts them as sent); how many. */
  private profilesFor(conn: Conn, notes: Annotations, seq: number, out: string[]): number {
    const users = notes.named.get(seq);
    if (!users) return 0;
    // A viewer the profile call did not ask about (it subscribed meanwhile)
    // gets no profile rather than one it may not be allowed to see.
    if (!notes.viewers.has(conn.state.user)) return 0;
    const hidden = notes.hidden[conn.state.user];
    let sent = this.sent.get(conn.state.sid);
    let added = 0;
    for (const u of users) {
      if (sent?.has(u)) continue;
      const text = notes.profiles.get(u);
      if (!text || hidden?.includes(u)) continue;
      if (!sent) {
        sent = new Set();
        this.sent.set(conn.state.sid, sent);
      }
      out.push(text);
      remember(sent, u);
      added++;
    }
    return added;
  }

  /** Sockets whose next event is no longer in the topic's log: reload (presence: a fresh snapshot), then continue after `seq`. */
  private async sendReloads(
    key: string,
    topic: SubTopic,
    oldest: number,
    seq: number,
    reason: ReloadReason,
  ): Promise<void> {
    const sids = this.byTopic.get(topic);
    if (!sids) return;
    const stale: Conn[] = [];
    for (const sid of sids) {
      const conn = this.conns?.get(sid);
      const last = conn ? this.lastOf(conn.state, topic) : undefined;
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
      const snap = await this.topic(key).snapshot(key, users);
      snapshot = snap.state;
      target = Math.max(seq, snap.seq);
    }
    // When the shared position itself is stale, every in-sync socket moves with it.
    const base = this.deliveredMap().get(topic);
    if (base !== undefined && (reason === "gap_too_old" ? base + 1 < oldest : base > seq)) {
      this.setDelivered(topic, target);
    }
    for (const conn of stale) {
      if (isPresenceTopic(topic)) {
        const list = [...conn.state.presence]
          .filter((u) => presenceTopic(presenceShardOf(u)) === topic)
          .map((u) => ({ user: u, presence: presenceOf(snapshot[u]) }));
        if (list.length > 0) send(conn.ws, frame({ v: 1, type: "presence", users: list }));
      } else send(conn.ws, frame({ v: 1, type: "reload", topic: topic as ClientTopic, reason, seq }));
      if (conn.state.subs.get(topic) === IN_SYNC) continue;
      this.place(conn.state, topic, target);
      this.save(conn);
    }
  }

  /**
   * A member who left a channel has their subscriptions to it re-checked: a
   * private channel drops them (`unsubscribed`, reason `access_revoked`),
   * after the member_left event itself. (Deactivated users are disconnected
   * by the directory's publisher: disconnectUser.)
   */
  private async enforce(topic: SubTopic, events: TopicEvent[]): Promise<void> {
    if (!topic.startsWith("channel:")) return;
    for (const e of events) {
      if (!e.json.includes('"member_left"')) continue;
      try {
        const parsed = JSON.parse(e.json) as { type?: string; user?: unknown };
        if (parsed.type === "member_left" && typeof parsed.user === "string") {
          await this.recheck(topic as ClientTopic, parsed.user);
        }
      } catch {
        // not JSON: nothing to enforce
      }
    }
  }

  private async recheck(topic: ClientTopic, user: string): Promise<void> {
    const channel = channelOf(topic);
    const sids = this.byTopic.get(topic);
    if (!channel || !sids) return;
    const conns = [...sids].flatMap((sid) => {
      const conn = this.conns?.get(sid);
      return conn && conn.state.user === user ? [conn] : [];
    });
    const first = conns[0];
    if (!first) return;
    const access = await this.access.channel(first.state.team, user, channel).catch(() => null);
    if (!access || access.ok) return;
    for (const conn of conns) {
      conn.state.subs.delete(topic);
      this.indexRemove(conn.state.sid, topic);
      this.save(conn);
      send(conn.ws, frame({ v: 1, type: "unsubscribed", topics: [topic], reason: "access_revoked" }));
    }
  }

  // --- sockets and the in-memory index ----------------------------------------

  /** The socket index, rebuilt from the attachments after a wake-up. */
  private load(): Map<string, Conn> {
    if (this.conns) return this.conns;
    this.conns = new Map();
    this.byTopic.clear();
    this.userSockets.clear();
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
    this.userSockets.set(state.user, (this.userSockets.get(state.user) ?? 0) + 1);
    for (const topic of state.subs.keys()) this.indexAdd(state.sid, topic);
    return conn;
  }

  private untrack(ws: WebSocket): void {
    const state = decodeState(ws.deserializeAttachment());
    if (!state) return;
    this.load();
    const conn = this.conns?.get(state.sid);
    if (!conn) return;
    this.conns?.delete(state.sid);
    for (const topic of conn.state.subs.keys()) this.indexRemove(state.sid, topic);
    this.buckets.delete(state.sid);
    this.drops.delete(state.sid);
    this.sent.delete(state.sid);
    const left = (this.userSockets.get(state.user) ?? 1) - 1;
    if (left > 0) this.userSockets.set(state.user, left);
    else {
      this.userSockets.delete(state.user);
      this.left(state.team, state.user);
    }
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

  private indexAdd(sid: string, topic: SubTopic): void {
    this.annotated.delete(topic);
    let sids = this.byTopic.get(topic);
    if (!sids) {
      sids = new Set();
      this.byTopic.set(topic, sids);
    }
    sids.add(sid);
  }

  private indexRemove(sid: string, topic: SubTopic): void {
    const sids = this.byTopic.get(topic);
    if (!sids) return;
    sids.delete(sid);
    if (sids.size === 0) {
      this.byTopic.delete(topic);
      // Nobody left at the shared position: the next subscriber starts a new one.
      this.setDelivered(topic, null);
    }
  }

  /**
   * Records where a socket is in a topic: in sync when that is the topic's
   * shared position (or there is none and nobody else follows: it starts
   * one), else its own seq.
   */
  private place(state: SocketState, topic: SubTopic, seq: number): void {
    const base = this.deliveredMap().get(topic);
    if (base === undefined && !this.hasOthers(state.sid, topic)) {
      this.setDelivered(topic, seq);
      state.subs.set(topic, IN_SYNC);
    } else if (base === seq) state.subs.set(topic, IN_SYNC);
    else state.subs.set(topic, seq);
  }

  private hasOthers(sid: string, topic: SubTopic): boolean {
    const sids = this.byTopic.get(topic);
    return !!sids && (sids.size > 1 || (sids.size === 1 && !sids.has(sid)));
  }

  /** The last seq a socket was sent of a topic. */
  private lastOf(state: SocketState, topic: SubTopic): number | undefined {
    const own = state.subs.get(topic);
    if (own !== IN_SYNC) return own;
    return this.deliveredMap().get(topic) ?? 0;
  }

  private deliveredMap(): Map<SubTopic, number> {
    if (this.delivered) return this.delivered;
    this.delivered = new Map();
    for (const row of this.ctx.storage.sql
      .exec<{ topic: string; seq: number }>("SELECT topic, seq FROM delivered")
      .toArray()) {
      this.delivered.set(row.topic as SubTopic, Number(row.seq));
    }
    return this.delivered;
  }

  private setDelivered(topic: SubTopic, seq: number | null): void {
    const map = this.deliveredMap();
    if (seq === null) {
      if (!map.has(topic)) return;
      map.delete(topic);
      this.ctx.storage.sql.exec("DELETE FROM delivered WHERE topic = ?", topic);
      return;
    }
    map.set(topic, seq);
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO delivered (topic, seq) VALUES (?, ?)", topic, seq);
  }

  private topic(key: string) {
    return this.env.TOPIC.get(this.env.TOPIC.idFromName(key));
  }
}

/** A presence change as the client sees it (no seq: a socket sees only its users' share of the shard). */
function presenceFrame(user: string, presence: PresenceState): string {
  return frame({ v: 1, type: "presence", users: [{ user, presence }] });
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
