import { DurableObject } from "cloudflare:workers";
import { topicOf } from "../../platform/stubs";
import { mayConnect, type Principal, seesWholeTeam } from "../../src/auth/policy";
import { ActorRounds } from "../../src/realtime/actor-rounds";
import { type AdmissionLimits, Admitter } from "../../src/realtime/admission";
import { MAX_REMEMBERED_PROFILES, mayNameUsers, remember, usersNamedBy } from "../../src/realtime/annotations";
import { userChangedCard } from "../../src/realtime/directory-events";
import type { Actor, ChannelAccess, LiveState, ProfileSource, TopicAccess, Visible } from "../../src/realtime/ports";
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
  type CloseCode,
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
  parseHandshakeTopics,
  type ReloadReason,
  type TopicRequest,
} from "../../src/realtime/protocol";
import { TokenBucket } from "../../src/realtime/rate-limit";
import { continuation, mergeEvents, type TopicEvent } from "../../src/realtime/sequence";
import { decodeState, encodeState, fitsAttachment, type SocketState } from "../../src/realtime/socket-state";
import { forEachLimit, skippedFor, type TeamFilter, teamFilter } from "../../src/realtime/team-filter";
import { channelOf, type SubTopic, subTopicOfKey, topicKey } from "../../src/realtime/topics";
import { isRole, type Role } from "../../src/teams/model";
import { positiveVar, wholeVarOr } from "../../src/vars";
import type { Catchup, Topic } from "../topic/topic";
import { teamCacheAccess, teamCacheLiveState, teamCacheProfiles } from "./access";
import { AwayLedger } from "./away";
import { ChannelGrants } from "./grants";
import { SharedPositions } from "./positions";
import { PresenceOutbox } from "./presence-outbox";
import { TicketLedger } from "./tickets";

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
// position: the topic's `delivered` seq, kept in the gateway's SQLite
// (written behind the sends: positions.ts), and such a socket's attachment
// records IN_SYNC instead of a number. Delivering events to N in-sync
// sockets is then N sends and one small write, not N attachment rewrites;
// a socket subscribing to a topic the gateway already follows starts there
// too, without asking the topic; and the frames a socket gets at once go as one `batch`
// message (protocol.ts), packed once for every socket getting the same ones.
// A socket that falls behind (or subscribes at another point) records its own
// seq until it catches up and rejoins. On the way it
// - sends a profile before the first message naming a user the socket has
//   not been sent yet (just-in-time annotation),
// - passes a presence shard's events only to sockets following that user,
// - passes a guest only the team-topic events about users and channels it
//   may see (the others are skipped for it),
// - re-checks access when a change may take some away, failing closed.
//
// It also admits connections (admission.ts, and at most
// GATEWAY_MAX_SOCKETS_PER_USER per user), consumes socket tickets (each
// opens one socket: tickets.ts), closes a socket when the access token it
// came from expires, rate limits client frames, and owns its users'
// presence: all of a user's sockets are here.
//
// Re-checks. Live state (the team cache) is read again whenever a change
// may take access away, and whatever a failed read would have allowed is
// denied (`unsubscribed`, reason `access_revoked`; the client may subscribe
// again, which checks afresh):
// - a channel topic's `member_left` re-checks that member's subscriptions
//   to it, and its `channel_changed` (turned private, say) every subscriber's;
// - the directory's publisher (platform/deps.ts) calls recheckUsers() for
//   every user a change touched (a demotion to guest, a removal from a
//   channel; a reload: everyone), and disconnectUser() for deactivations.
//   recheckUsers() re-reads the user's role and active state (not an
//   active member any more: closed, code `deactivated`) and then every
//   channel and presence subscription of the user's sockets.

/**
 * Headers by which the Worker tells the gateway who connects (only the
 * Worker can reach a gateway, and it drops any x-rtm-* header a client sent):
 * identity, the access token's expiry (seconds), for a ticket its nonce and
 * expiry, and the topics to subscribe in the handshake (`?subscribe=`, as
 * the client wrote it: parsed again here). The user's live role and active
 * state are read here, not by the Worker: a gateway asks the team cache for
 * the users connecting at once in one call (src/realtime/actor-rounds.ts).
 */
export const GATEWAY_HEADERS = {
  team: "x-rtm-team",
  user: "x-rtm-user",
  gateway: "x-rtm-gateway",
  exp: "x-rtm-exp",
  ticket: "x-rtm-ticket",
  ticketExp: "x-rtm-ticket-exp",
  subscribe: "x-rtm-subscribe",
} as const;

/** At most this many catch-up pages per delivery before giving up until the next one. */
const MAX_CATCHUP_PAGES = 20;
const DEFAULT_MAX_SOCKETS = 20_000;
const DEFAULT_ACCEPT_PER_SECOND = 1_000;
/** Sockets one user may hold (GATEWAY_MAX_SOCKETS_PER_USER): tabs and devices, not a connection farm. */
export const DEFAULT_MAX_SOCKETS_PER_USER = 10;
/** Access checks in flight at once during a re-check (a channel with many subscribers turning private). */
const RECHECK_CONCURRENCY = 16;
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
  /** Sockets closed because their token expired, and ticket nonces remembered (this instance / now). */
  expired: number;
  usedTickets: number;
}

/** What configure() sets: admission, sockets per user, and the most frames one message carries (1: no batching). */
export type GatewayLimits = AdmissionLimits & { batchFrames: number; maxSocketsPerUser: number };

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
  private expired = 0;
  private readonly access: TopicAccess;
  private readonly live: LiveState;
  /** Connects' live checks, one team-cache call per round of them. */
  private readonly actorRounds: ActorRounds;
  private readonly profileSource: ProfileSource;
  /** What the team-topic filter asks (team-filter.ts). */
  private readonly filterPorts: { profiles: ProfileSource; live: LiveState };
  private readonly tickets: TicketLedger;
  private admitter: Admitter | null = null;
  /** Sockets per user at most (GATEWAY_MAX_SOCKETS_PER_USER, or configure()); read on first use. */
  private perUser: number | null = null;
  /**
   * Bumped by every re-check: a subscribe that checked access before a
   * re-check and registers after it is re-checked itself (it may have been
   * allowed by what the re-check took away).
   */
  private accessEpoch = 0;
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
  /** Per topic, the seq every in-sync socket has been sent (positions.ts). */
  private readonly positions: SharedPositions;
  private readonly topicQueues = new Map<string, Promise<unknown>>();
  private readonly socketQueues = new Map<string, Promise<unknown>>();
  /** Per socket, in memory only: frame rate bucket, frames dropped, profiles sent. */
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly drops = new Map<string, number>();
  private readonly sent = new Map<string, Set<string>>();
  /** Per topic, users every current subscriber was sent the profile of (reset when a socket subscribes). */
  private readonly annotated = new Map<SubTopic, Set<string>>();
  /**
   * Per followed topic, a token renewed each time this gateway starts
   * following it (its first subscriber): "followed without a break since"
   * is "the same token" (grants.ts).
   */
  private readonly follows = new Map<SubTopic, number>();
  private followSeq = 0;
  /** Public channels' access facts learned while following them (grants.ts). */
  private readonly grants = new ChannelGrants();
  /** Presence changes on their way to the shard topics, in rounds (presence-outbox.ts). */
  private readonly outbox: PresenceOutbox;
  /** Users whose last socket closed, and when they turn away (away.ts). */
  private readonly away: AwayLedger;
  private readonly topicStubs = new Map<string, DurableObjectStub<Topic>>();
  /** The connection of a socket object this instance has seen (else its attachment is read). */
  private readonly connByWs = new WeakMap<WebSocket, Conn>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
    this.access = teamCacheAccess(env);
    this.live = teamCacheLiveState(env);
    this.actorRounds = new ActorRounds(this.live);
    this.profileSource = teamCacheProfiles(env);
    this.filterPorts = { profiles: this.profileSource, live: this.live };
    this.away = new AwayLedger(ctx.storage.sql, (work) => ctx.waitUntil(work));
    this.positions = new SharedPositions(ctx.storage.sql, (work) => ctx.waitUntil(work));
    this.tickets = new TicketLedger(ctx.storage.sql);
    this.outbox = new PresenceOutbox(
      (key, changes) => this.topic(key).publishMany(key, changes),
      (key, changes, error) =>
        console.error(`gateway: ${changes.length} presence changes to ${key} not published`, error),
    );
  }

  /**
   * A client connecting, forwarded by the Worker after it verified the
   * ticket (or bearer token). Here: the user's live state (an active member
   * of the team, or 403 before any upgrade), the ticket's single use,
   * admission, the per-user socket limit, and the handshake's subscriptions.
   */
  override async fetch(request: Request): Promise<Response> {
    const h = (name: string) => request.headers.get(name);
    const team = h(GATEWAY_HEADERS.team);
    const user = h(GATEWAY_HEADERS.user);
    const gateway = h(GATEWAY_HEADERS.gateway);
    const exp = Number(h(GATEWAY_HEADERS.exp));
    const ticket = h(GATEWAY_HEADERS.ticket);
    const ticketExp = Number(h(GATEWAY_HEADERS.ticketExp));
    const subscribeRaw = h(GATEWAY_HEADERS.subscribe);
    const topics = subscribeRaw === null ? [] : parseHandshakeTopics(subscribeRaw);
    if (
      !team ||
      !user ||
      !gateway ||
      !Number.isSafeInteger(exp) ||
      (ticket !== null && !Number.isSafeInteger(ticketExp)) ||
      typeof topics === "string" ||
      h("upgrade")?.toLowerCase() !== "websocket"
    ) {
      return new Response("expected a WebSocket upgrade forwarded by the Worker", { status: 400 });
    }
    if (exp * 1000 <= Date.now()) return unauthorized("token expired");
    let actor: Actor | null;
    try {
      actor = await this.actorRounds.actor(team, user);
    } catch (error) {
      console.error("gateway: live state unavailable for a connect", error);
      return httpError(503, "unavailable", "the team's live state is unavailable; try again", 1);
    }
    const decision = mayConnect(
      actor ? { kind: "member", team, user, role: actor.role, active: actor.active } : { kind: "unknown", team, user },
      team,
    );
    if (!decision.ok) return httpError(403, "forbidden", decision.message);
    const role = (actor as Actor).role;
    const now = Date.now();
    // Checked and recorded with no await in between: two connects with one
    // ticket cannot both pass.
    if (ticket !== null && this.tickets.used(ticket)) {
      return unauthorized("this ticket was already used; get a new one from POST /v1/rtm.connect");
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const conns = this.load();
    // Refusals below are accepted only to be closed: a browser cannot read an
    // HTTP refusal of a WebSocket handshake, but it can read a close code and
    // reason. A refused ticket is not used up: it may try again while valid.
    const admission = this.admission().admit(conns.size, now, this.subscribing);
    if (!admission.ok) return this.refuse(server, client, "overloaded", admission.retryAfterMs);
    if ((this.userSockets.get(user) ?? 0) >= this.socketsPerUser()) {
      return this.refuse(server, client, "too_many_sockets");
    }
    if (ticket !== null) this.tickets.record(ticket, ticketExp, now);
    const state: SocketState = {
      sid: crypto.randomUUID().slice(0, 12),
      team,
      user,
      gateway,
      subs: new Map(),
      presence: new Set(),
      exp,
      role,
    };
    this.ctx.acceptWebSocket(server);
    // With handshake topics the subscribe's answer saves the attachment (an
    // object with work in progress does not hibernate; a failed subscribe
    // saves it below).
    if (topics.length === 0) server.serializeAttachment(encodeState(state));
    this.track(server, state);
    const hello = frame({ v: 1, type: "hello", user, team, gateway });
    if (topics.length === 0) server.send(hello);
    else {
      // As if the client's first frame were this subscribe: same queue, same
      // answer, which `hello` leads in one message (one send, not two).
      const sid = state.sid;
      const lead = { text: hello, sent: false };
      void enqueue(this.socketQueues, sid, () => this.subscribe(sid, { v: 1, type: "subscribe", topics }, lead)).catch(
        (error) => {
          console.error("gateway: handshake subscribe failed", error);
          const conn = this.conns?.get(sid);
          if (conn) this.save(conn);
          const refusal = frame({ v: 1, type: "error", code: "unavailable", message: "internal error; try again" });
          this.sendFrames(server, lead.sent ? [refusal] : [hello, refusal]);
        },
      );
    }
    if (this.userSockets.get(user) === 1) this.arrived(team, user);
    // The alarm already comes before this token's expiry (the usual case): nothing to do.
    if (this.alarmAt === null || this.alarmAt > exp * 1000) this.ctx.waitUntil(this.scheduleAlarm(exp * 1000));
    return new Response(null, { status: 101, webSocket: client });
  }

  private refuse(server: WebSocket, client: WebSocket, code: CloseCode, retryAfterMs?: number): Response {
    this.refused++;
    server.accept();
    server.close(CLOSE_CODES[code], closeReason(code, retryAfterMs));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.frames++;
    const conn = this.connOf(ws);
    if (!conn) {
      ws.close(1011, "unknown socket");
      return;
    }
    // The alarm closes expired sockets; a frame arriving first is not served either.
    if (conn.state.exp * 1000 <= Date.now()) {
      this.expire(conn);
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

  /**
   * Sockets whose access token expired: closed (token_expired). Users whose
   * presence grace period ended: away, unless they came back. Then the next
   * alarm, for the earliest of both.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const conns = this.load();
    const now = Date.now();
    for (const conn of [...conns.values()]) if (conn.state.exp * 1000 <= now) this.expire(conn);
    const published: Array<Promise<void>> = [];
    for (const { user, team } of this.away.takeDue(now)) {
      // Still away (a user back within the grace period kept its entry until now: nothing to say).
      if ((this.userSockets.get(user) ?? 0) === 0) published.push(this.publishPresence(team, user, "away"));
    }
    await Promise.all(published);
    this.tickets.prune(now);
    await this.scheduleAlarm();
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
   * Admission limits, sockets per user and frames per batch message for this
   * shard (an operator's lever for a hot gateway; tests). Until the next restart.
   */
  async configure(limits: Partial<GatewayLimits>): Promise<GatewayLimits> {
    const { batchFrames, maxSocketsPerUser, ...admission } = limits;
    if (batchFrames !== undefined && !(Number.isInteger(batchFrames) && batchFrames >= 1)) {
      throw new Error("batchFrames must be a whole number ≥ 1");
    }
    if (maxSocketsPerUser !== undefined && !(Number.isInteger(maxSocketsPerUser) && maxSocketsPerUser >= 1)) {
      throw new Error("maxSocketsPerUser must be a whole number ≥ 1");
    }
    if (maxSocketsPerUser !== undefined) this.perUser = maxSocketsPerUser;
    if (Object.keys(admission).length > 0) {
      const next = { ...this.admission().limits, ...admission };
      if (!(next.maxSockets > 0) || !(next.perSecond > 0)) throw new Error("limits must be positive");
      this.admitter = new Admitter(next, Date.now());
    }
    if (batchFrames !== undefined) this.batchFrames = batchFrames;
    return { ...this.admission().limits, batchFrames: this.batchLimit(), maxSocketsPerUser: this.socketsPerUser() };
  }

  /** Closes every socket of a user here (deactivated): they must not reconnect, and see why. */
  async disconnectUser(user: string): Promise<{ closed: number }> {
    let closed = 0;
    for (const conn of [...this.load().values()]) {
      if (conn.state.user !== user) continue;
      this.closeSocket(conn, "deactivated");
      closed++;
    }
    return { closed };
  }

  async stats(): Promise<GatewayStats> {
    const conns = this.load();
    const topics: Record<string, number> = {};
    for (const [topic, sids] of this.byTopic) topics[topic] = sids.size;
    const awayPending = this.away.size;
    return {
      incarnation: this.incarnation,
      sockets: conns.size,
      frames: this.frames,
      topics,
      refused: this.refused,
      dropped: this.dropped,
      awayPending,
      expired: this.expired,
      usedTickets: this.tickets.size(),
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

  private socketsPerUser(): number {
    this.perUser ??= wholeVarOr(
      "GATEWAY_MAX_SOCKETS_PER_USER",
      this.env.GATEWAY_MAX_SOCKETS_PER_USER,
      DEFAULT_MAX_SOCKETS_PER_USER,
    );
    return this.perUser;
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
      this.closeSocket(conn, "rate_limited", RATE_LIMIT_RETRY_MS * (1 + Math.random()));
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

  /**
   * The user's first socket here: active, unless they only blinked (still
   * within grace, never shown away). Nothing is written either way: the
   * pending entry of a user who came back stays until its alarm, which finds
   * them connected and drops it.
   */
  private arrived(team: string, user: string): void {
    if (this.away.has(user)) return;
    this.ctx.waitUntil(this.publishPresence(team, user, "active"));
  }

  /** The user's last socket here closed: away after the grace period (alarm). */
  private left(team: string, user: string): void {
    const graceMs =
      positiveVar("PRESENCE_GRACE_SECONDS", this.env.PRESENCE_GRACE_SECONDS, DEFAULT_GRACE_SECONDS) * 1000;
    const due = Date.now() + graceMs;
    this.away.leave(user, team, due);
    if (this.alarmAt === null || this.alarmAt > due) this.ctx.waitUntil(this.scheduleAlarm(due));
  }

  /**
   * One alarm for the earliest of: a pending "away", a socket's token
   * expiry. The time it is set for is kept in memory so a storm of closes
   * or connects does not read the alarm once each (a due time later than
   * the alarm needs nothing: the alarm, when it runs, looks at everything
   * and sets the next one). Without `due`, everything is looked at.
   */
  private async scheduleAlarm(due?: number): Promise<void> {
    if (due !== undefined && this.alarmAt !== null && this.alarmAt <= due) return;
    const next = due ?? this.earliestDue();
    if (next === null) return;
    this.alarmAt ??= await this.ctx.storage.getAlarm();
    if (this.alarmAt === null || this.alarmAt > next) {
      this.alarmAt = next;
      await this.ctx.storage.setAlarm(next);
    }
  }

  private earliestDue(): number | null {
    let next = this.away.earliest();
    for (const conn of this.conns?.values() ?? []) {
      const at = conn.state.exp * 1000;
      if (next === null || at < next) next = at;
    }
    return next;
  }

  /** Resolves once published (or failed, and logged): changes for one shard go out in rounds (presence-outbox.ts). */
  private publishPresence(team: string, user: string, presence: PresenceState): Promise<void> {
    const key = topicKey(team, presenceTopic(presenceShardOf(user)));
    return this.outbox.send(key, { json: presenceEventJson(user, presence), stateKey: user });
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

  /** `lead`: a frame to send first, in the same message as the answer (the handshake's hello). */
  private async subscribe(
    sid: string,
    f: Extract<ClientFrame, { type: "subscribe" }>,
    lead?: { text: string; sent: boolean },
  ): Promise<void> {
    this.subscribing++;
    try {
      await this.subscribeNow(sid, f, lead);
    } finally {
      this.subscribing--;
    }
  }

  private async subscribeNow(
    sid: string,
    f: Extract<ClientFrame, { type: "subscribe" }>,
    lead?: { text: string; sent: boolean },
  ): Promise<void> {
    const before = this.conns?.get(sid);
    if (!before) return;
    const { team, user, gateway, role } = before.state;
    const epoch = this.accessEpoch;
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
      () => Promise.all(fresh.map((t) => this.open(team, user, gateway, role, t))),
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
    if (lead) lead.sent = true;
    this.sendFrames(conn.ws, lead ? [lead.text, ...out, ...after] : [...out, ...after]);
    this.catchUp(conn.state, started);
    // Access was checked before a re-check that ran meanwhile: check again.
    if (this.accessEpoch !== epoch && started.length > 0) this.recheckSoon([user]);
  }

  /**
   * Checks access, registers this gateway with the topic, and fetches what
   * `since` missed. A gateway already following the topic is registered
   * already (the topic keeps delivering while any socket here follows it):
   * the socket starts at the position its in-sync sockets share, and only
   * what `since` missed before it is read from the topic's log (no write,
   * no registration call).
   */
  private async open(team: string, user: string, gateway: string, role: Role, req: TopicRequest): Promise<Opened> {
    const { topic } = req;
    try {
      const channel = channelOf(topic);
      let host = team;
      if (channel) {
        const access = await this.channelAccess(team, user, role, channel, topic);
        if (!access.ok) return { ok: false, topic, code: access.code, message: access.message };
        host = access.host;
      } else {
        const access = await this.access.team(team, user);
        if (!access.ok) return { ok: false, topic, code: access.code, message: access.message };
      }
      const key = topicKey(host, topic);
      const stub = this.topic(key);
      const shared = this.sharedPosition(topic, req.since);
      let page: Catchup =
        shared === null
          ? await stub.subscribe(key, gateway, req.since)
          : req.since === undefined || req.since === shared
            ? { seq: shared, oldest: 0, events: [] }
            : await stub.eventsSince(key, req.since);
      if (page.reload) return { ok: true, topic, key, seq: page.seq, replay: [], reload: page.reload };
      if (shared !== null) page = { ...page, seq: Math.max(page.seq, shared) };
      const replay = [...page.events];
      // Later pages, until caught up with the seq the subscription started at.
      while (req.since !== undefined && page.events.length > 0 && (replay.at(-1)?.seq ?? 0) < page.seq) {
        const next = await stub.eventsSince(key, replay.at(-1)?.seq ?? req.since);
        if (next.reload) return { ok: true, topic, key, seq: next.seq, replay: [], reload: next.reload };
        page = { ...next, seq: Math.max(page.seq, next.seq) };
        replay.push(...next.events);
      }
      if (topic === "team" && !seesWholeTeam({ role, active: true }) && replay.length > 0) {
        // A guest's missed team events: only those about what it may see.
        const hidden = (await teamFilter(this.filterPorts, team, new Set([user]), replay)).hidden.get(user);
        if (hidden) return { ok: true, topic, key, seq: page.seq, replay: replay.filter((e) => !hidden.has(e.seq)) };
      }
      return { ok: true, topic, key, seq: page.seq, replay };
    } catch (error) {
      console.error(`gateway: subscribe to ${topic} failed`, error);
      return { ok: false, topic, code: "unavailable", message: "topic unavailable; try again" };
    }
  }

  /**
   * Where a socket subscribing to a topic this gateway already follows
   * starts: the position the topic's in-sync sockets share, when some
   * socket here follows it (so this gateway is registered with the topic and
   * receives every event after that position) and `since` is not past it.
   * null: register with the topic (Topic.subscribe) as the first subscriber does.
   */
  private sharedPosition(topic: SubTopic, since: number | undefined): number | null {
    if ((this.byTopic.get(topic)?.size ?? 0) === 0) return null;
    const base = this.positions.get(topic);
    if (base === undefined || (since !== undefined && since > base)) return null;
    return base;
  }

  /**
   * The subscribe-time channel check: the team cache, live, except for a
   * full member subscribing to a public channel this gateway follows and
   * checked while following it (grants.ts says why that fact may be reused
   * and how it is forgotten). Re-checks never come here: they ask live.
   */
  private async channelAccess(
    team: string,
    user: string,
    role: Role,
    channel: string,
    topic: SubTopic,
  ): Promise<ChannelAccess> {
    const ask = this.access.channelGrant;
    if (!ask || !seesWholeTeam({ role, active: true })) return this.access.channel(team, user, channel);
    const epoch = this.accessEpoch;
    const follow = this.follows.get(topic);
    const host = this.grants.get(team, channel, epoch, follow, Date.now());
    if (host !== null) return { ok: true, host };
    const grant = await ask.call(this.access, team, user, channel);
    if (!grant.ok) return grant;
    if (grant.everyMember) {
      this.grants.put(
        team,
        channel,
        grant.host,
        { asked: epoch, now: this.accessEpoch },
        { asked: follow, now: this.follows.get(topic) },
        Date.now(),
      );
    }
    return { ok: true, host: grant.host };
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
   * after, so no change falls between the snapshot and the stream. Users the
   * viewer may not see are dropped from the list first, silently: the answer
   * is the same as for ids that do not exist.
   */
  private async presenceSub(sid: string, f: Extract<ClientFrame, { type: "presence_sub" }>): Promise<void> {
    const before = this.conns?.get(sid);
    if (!before) return;
    const { team, user, gateway } = before.state;
    const epoch = this.accessEpoch;
    const refuse = (code: ErrorCode, message: string) =>
      send(before.ws, frame({ v: 1, type: "error", ...idOf(f), code, message }));
    let visible: Visible | null = null;
    if (f.users.length > 0) {
      visible = await this.live.visible(team, user, f.users, []).catch((error) => {
        console.error("gateway: presence visibility check failed", error);
        return null;
      });
    } else {
      // Stopping needs no visibility; it still needs an active member.
      const access = await this.access.team(team, user).catch(() => null);
      visible = access && (access.ok ? { ok: true, users: new Set(), channels: new Set() } : access);
    }
    if (!visible) return refuse("unavailable", "presence unavailable; try again");
    if (!visible.ok) return refuse(visible.code, visible.message);
    const seen = visible.users;
    const users = f.users.filter((u) => seen.has(u));
    const wanted = byPresenceTopic(users);
    const trial: SocketState = { ...before.state, subs: new Map(before.state.subs), presence: new Set(users) };
    for (const t of [...trial.subs.keys()]) if (isPresenceTopic(t) && !wanted.has(t)) trial.subs.delete(t);
    for (const t of wanted.keys()) if (!trial.subs.has(t)) trial.subs.set(t, 0);
    if (!fitsAttachment(trial)) {
      return refuse("too_many_users", "this socket cannot follow that many users on top of its topics");
    }
    const fresh = [...wanted.keys()].filter((t) => !before.state.subs.has(t));
    let snapshots: Array<{ topic: PresenceTopic; key: string; seq: number | null; state: Record<string, string> }>;
    try {
      snapshots = await this.whilePending(fresh, () =>
        Promise.all(
          [...wanted].map(async ([topic, shardUsers]) => {
            const key = topicKey(team, topic);
            const stub = this.topic(key);
            if (before.state.subs.has(topic)) {
              const snap = await stub.snapshot(key, shardUsers);
              return { topic, key, seq: null, state: snap.state };
            }
            const page = await stub.subscribe(key, gateway, undefined, shardUsers);
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
    conn.state.presence = new Set(users);
    this.save(conn);
    const list = users.map((u) => ({ user: u, presence: presenceOf(states.get(u)) }));
    send(conn.ws, frame({ v: 1, type: "presence", ...idOf(f), users: list }));
    this.catchUp(conn.state, started);
    if (this.accessEpoch !== epoch && users.length > 0) this.recheckSoon([user]);
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
    if (topic === "team") this.noteRoles(incoming);
    for (let page = 0; page <= MAX_CATCHUP_PAGES; page++) {
      const sids = this.byTopic.get(topic);
      if (!sids || sids.size === 0) break;
      const notes = topic.startsWith("channel:") ? await this.annotations(sids, topic, known) : null;
      const filter = topic === "team" ? await this.teamFilterFor(sids, known) : null;
      const behind = this.sendContinuations(topic, sids, known, head, notes, filter);
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

  /**
   * Sends what it can; returns the lowest seq a socket is still stuck at, or
   * null when all reached head. `filter`: the team-topic events a guest may
   * not see (skipping them moves the socket on all the same).
   */
  private sendContinuations(
    topic: SubTopic,
    sids: Set<string>,
    known: TopicEvent[],
    head: number,
    notes: Annotations | null,
    filter: TeamFilter | null,
  ): number | null {
    const skipOf = (conn: Conn) => skippedFor(filter, conn.state.user, conn.state.role);
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
    const base = this.positions.get(topic);
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
    const conns = this.conns;
    // The usual delivery: one message (or a few) for every in-sync socket, nothing per socket.
    const only = groupMessages && !filter && groupMessages.length === 1 ? groupMessages[0] : undefined;
    for (const sid of sids) {
      const conn = conns?.get(sid);
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
    const base = this.positions.get(topic);
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

  // --- trust: re-checks, team-topic filtering, closing -------------------------

  /**
   * Changes a channel topic's events announce: a member who left has their
   * subscriptions to it re-checked, after the member_left event itself; a
   * channel change (turned private, say) re-checks every subscriber. Runs in
   * the topic's queue, so nothing more of the topic is delivered here until
   * the re-check is done.
   */
  private async enforce(topic: SubTopic, events: TopicEvent[]): Promise<void> {
    if (!topic.startsWith("channel:")) return;
    const left = new Set<string>();
    let everyone = false;
    for (const e of events) {
      if (!e.json.includes('"member_left"') && !e.json.includes('"channel_changed"')) continue;
      try {
        const parsed = JSON.parse(e.json) as { type?: unknown; user?: unknown };
        if (parsed.type === "channel_changed") everyone = true;
        else if (parsed.type === "member_left" && typeof parsed.user === "string") left.add(parsed.user);
      } catch {
        // not JSON: nothing to enforce
      }
    }
    if (everyone) await this.recheckTopic(topic as ClientTopic);
    else if (left.size > 0) await this.recheckTopic(topic as ClientTopic, left);
  }

  /** Re-checks who may still follow a channel topic here (`only`: just these users); drops the rest. */
  private async recheckTopic(topic: ClientTopic, only?: Set<string>): Promise<void> {
    const channel = channelOf(topic);
    const sids = this.byTopic.get(topic);
    if (!channel || !sids) return;
    this.accessEpoch++;
    this.grants.clear();
    const teamOf = new Map<string, string>();
    for (const sid of sids) {
      const conn = this.conns?.get(sid);
      if (conn && (!only || only.has(conn.state.user))) teamOf.set(conn.state.user, conn.state.team);
    }
    const denied = new Set<string>();
    let failed = 0;
    await forEachLimit([...teamOf], RECHECK_CONCURRENCY, async ([user, team]) => {
      try {
        if (!(await this.access.channel(team, user, channel)).ok) denied.add(user);
      } catch (error) {
        // A check that cannot be made denies.
        if (failed++ === 0) console.error(`gateway: access re-check for ${topic} failed; revoking`, error);
        denied.add(user);
      }
    });
    if (failed > 1) console.error(`gateway: ${failed} access re-checks for ${topic} failed; revoked`);
    if (denied.size === 0) return;
    for (const sid of [...(this.byTopic.get(topic) ?? [])]) {
      const conn = this.conns?.get(sid);
      if (conn && denied.has(conn.state.user)) this.revoke(conn, [topic]);
    }
  }

  /**
   * Re-reads these users' live role and active state and re-checks what
   * their sockets here follow: every channel topic and every followed
   * user's presence (the directory's publisher calls this for each user a
   * change touched). Without a list: every socket here (after a bulk
   * import). A user who is no longer an active member has its sockets
   * closed (`deactivated`); a check that fails revokes what it could not
   * confirm.
   */
  async recheckUsers(users?: string[]): Promise<{ sockets: number; closed: number; revoked: number }> {
    const conns = this.load();
    this.accessEpoch++;
    this.grants.clear();
    const wanted = users ? new Set(users) : null;
    // team → user → socket ids (a gateway serves one team; grouped anyway, as its sockets say).
    const byTeam = new Map<string, Map<string, string[]>>();
    let sockets = 0;
    for (const conn of conns.values()) {
      const { team, user, sid } = conn.state;
      if (wanted && !wanted.has(user)) continue;
      sockets++;
      let members = byTeam.get(team);
      if (!members) {
        members = new Map();
        byTeam.set(team, members);
      }
      members.set(user, [...(members.get(user) ?? []), sid]);
    }
    let closed = 0;
    let revoked = 0;
    for (const [team, members] of byTeam) {
      let actors: Map<string, Actor> | null = null;
      try {
        actors = await this.live.actors(team, [...members.keys()]);
      } catch (error) {
        console.error("gateway: live roles unavailable for a re-check; revoking what it could not confirm", error);
      }
      await forEachLimit([...members], RECHECK_CONCURRENCY, async ([user, sids]) => {
        const r = await this.recheckUser(team, user, sids, actors);
        closed += r.closed;
        revoked += r.revoked;
      });
    }
    return { sockets, closed, revoked };
  }

  /** recheckUsers() later, without holding up the caller (a subscribe that raced a re-check). */
  private recheckSoon(users: string[]): void {
    this.ctx.waitUntil(
      this.recheckUsers(users)
        .then(() => undefined)
        .catch((error) => console.error("gateway: re-check failed", error)),
    );
  }

  private async recheckUser(
    team: string,
    user: string,
    sids: string[],
    actors: Map<string, Actor> | null,
  ): Promise<{ closed: number; revoked: number }> {
    const current = () =>
      sids.flatMap((sid) => {
        const conn = this.conns?.get(sid);
        return conn ? [conn] : [];
      });
    if (actors) {
      const actor = actors.get(user);
      const p: Principal = actor ? { kind: "member", team, user, ...actor } : { kind: "unknown", team, user };
      if (!mayConnect(p, team).ok || !actor) {
        const list = current();
        for (const conn of list) this.closeSocket(conn, "deactivated");
        return { closed: list.length, revoked: 0 };
      }
      for (const conn of current()) {
        if (conn.state.role === actor.role) continue;
        conn.state.role = actor.role;
        this.save(conn);
      }
    }
    const channels = new Set<string>();
    const followed = new Set<string>();
    for (const conn of current()) {
      for (const t of conn.state.subs.keys()) {
        const ch = isPresenceTopic(t) ? null : channelOf(t);
        if (ch) channels.add(ch);
      }
      for (const u of conn.state.presence) followed.add(u);
    }
    let visible: Visible | null = null;
    if (actors && channels.size === 0 && followed.size === 0) return { closed: 0, revoked: 0 };
    if (actors) {
      visible = await this.live.visible(team, user, [...followed], [...channels]).catch((error) => {
        console.error("gateway: visibility re-check failed; revoking", error);
        return null;
      });
    }
    let revoked = 0;
    for (const conn of current()) {
      const lost: ClientTopic[] = [];
      for (const t of conn.state.subs.keys()) {
        if (isPresenceTopic(t)) continue;
        const ch = channelOf(t);
        // The team topic goes only when nothing could be confirmed; a channel when it is not visible now.
        if (ch === null ? !visible?.ok : !(visible?.ok && visible.channels.has(ch))) lost.push(t);
      }
      const seen = visible?.ok ? visible.users : new Set<string>();
      const keep = [...conn.state.presence].filter((u) => seen.has(u));
      if (keep.length !== conn.state.presence.size) {
        // No more changes of people it may not see now (their shards stay followed: harmless, filtered per user).
        conn.state.presence = new Set(keep);
        this.save(conn);
      }
      revoked += this.revoke(conn, lost);
    }
    return { closed: 0, revoked };
  }

  /** Drops topics from a socket's subscriptions and tells it why; how many. */
  private revoke(conn: Conn, topics: ClientTopic[]): number {
    if (topics.length === 0) return 0;
    for (const t of topics) {
      conn.state.subs.delete(t);
      this.indexRemove(conn.state.sid, t);
    }
    this.save(conn);
    send(conn.ws, frame({ v: 1, type: "unsubscribed", topics, reason: "access_revoked" }));
    return topics.length;
  }

  /**
   * A user_changed event on the team topic carries the user's new role: the
   * user's sockets here take a demotion at once (so the next team events are
   * already filtered for a new guest). Only ever towards less: a promotion
   * waits for recheckUsers' fresh read, which the publisher sends next.
   */
  private noteRoles(events: TopicEvent[]): void {
    for (const e of events) {
      const card = userChangedCard(e.json);
      if (!card || !this.userSockets.has(card.id)) continue;
      const role: Role = card.deleted || !isRole(card.role) ? "guest" : card.role;
      if (role !== "guest") continue;
      for (const conn of this.conns?.values() ?? []) {
        if (conn.state.user !== card.id || conn.state.role === "guest") continue;
        conn.state.role = "guest";
        this.save(conn);
      }
    }
  }

  /** teamFilter() for the guests among a team topic's sockets; null when no event is about anyone in particular. */
  private async teamFilterFor(sids: Set<string>, events: TopicEvent[]): Promise<TeamFilter | null> {
    const guests = new Set<string>();
    let team: string | null = null;
    for (const sid of sids) {
      const conn = this.conns?.get(sid);
      if (!conn) continue;
      team = conn.state.team;
      if (!seesWholeTeam({ role: conn.state.role, active: true })) guests.add(conn.state.user);
    }
    if (team === null) return null;
    const filter = await teamFilter(this.filterPorts, team, guests, events);
    return filter.about.size > 0 ? filter : null;
  }

  private closeSocket(conn: Conn, code: CloseCode, retryAfterMs?: number): void {
    try {
      conn.ws.close(CLOSE_CODES[code], closeReason(code, retryAfterMs));
    } catch {
      // already closing
    }
    this.untrack(conn.ws);
  }

  /** The access token behind the socket expired: closed, and the client knows to get a new one. */
  private expire(conn: Conn): void {
    this.expired++;
    this.closeSocket(conn, "token_expired");
  }

  // --- sockets and the in-memory index ----------------------------------------

  /** The socket index, rebuilt from the attachments after a wake-up. */
  private load(): Map<string, Conn> {
    if (this.conns) return this.conns;
    this.conns = new Map();
    this.byTopic.clear();
    this.follows.clear();
    this.userSockets.clear();
    for (const ws of this.ctx.getWebSockets()) {
      const state = decodeState(ws.deserializeAttachment());
      if (state) this.track(ws, state);
    }
    return this.conns;
  }

  private connOf(ws: WebSocket): Conn | null {
    const conns = this.load();
    // The socket object seen before (no attachment to parse per frame), if it is still tracked.
    const known = this.connByWs.get(ws);
    if (known && conns.get(known.state.sid) === known) return known;
    const state = decodeState(ws.deserializeAttachment());
    if (!state) return null;
    return conns.get(state.sid) ?? this.track(ws, state);
  }

  private track(ws: WebSocket, state: SocketState): Conn {
    const conn = { ws, state };
    this.connByWs.set(ws, conn);
    this.conns?.set(state.sid, conn);
    this.userSockets.set(state.user, (this.userSockets.get(state.user) ?? 0) + 1);
    for (const topic of state.subs.keys()) this.indexAdd(state.sid, topic);
    return conn;
  }

  private untrack(ws: WebSocket): void {
    this.load();
    const state = this.connByWs.get(ws)?.state ?? decodeState(ws.deserializeAttachment());
    if (!state) return;
    const conn = this.conns?.get(state.sid);
    if (!conn) return;
    this.connByWs.delete(ws);
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
      this.follows.set(topic, ++this.followSeq);
    }
    sids.add(sid);
  }

  private indexRemove(sid: string, topic: SubTopic): void {
    const sids = this.byTopic.get(topic);
    if (!sids) return;
    sids.delete(sid);
    if (sids.size === 0) {
      this.byTopic.delete(topic);
      this.follows.delete(topic);
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
    const base = this.positions.get(topic);
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
    return this.positions.get(topic) ?? 0;
  }

  private setDelivered(topic: SubTopic, seq: number | null): void {
    this.positions.set(topic, seq);
  }

  /** A topic's stub, kept: presence rounds, resumes and deliveries call the same few topics again and again. */
  private topic(key: string): DurableObjectStub<Topic> {
    let stub = this.topicStubs.get(key);
    if (!stub) {
      stub = topicOf(this.env, key);
      if (this.topicStubs.size >= 1_000) this.topicStubs.clear();
      this.topicStubs.set(key, stub);
    }
    return stub;
  }
}

/** A presence change as the client sees it (no seq: a socket sees only its users' share of the shard). */
function presenceFrame(user: string, presence: PresenceState): string {
  return frame({ v: 1, type: "presence", users: [{ user, presence }] });
}

/** An HTTP refusal before the upgrade, in the API's error shape (the Worker passes it on). */
function httpError(status: 401 | 403 | 503, code: string, message: string, retryAfterSeconds?: number): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (retryAfterSeconds !== undefined) headers["retry-after"] = String(retryAfterSeconds);
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers });
}

function unauthorized(message: string): Response {
  return httpError(401, "unauthorized", message);
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
