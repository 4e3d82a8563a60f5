import { DurableObject } from "cloudflare:workers";
import { errorAnswer } from "../../platform/error-status";
import { topicOf } from "../../platform/stubs";
import { teamCacheAccess, teamCacheLiveState, teamCacheProfiles } from "../../platform/team-cache-access";
import { badRequest, unauthorized } from "../../src/errors";
import { DEFAULT_GRACE_SECONDS } from "../../src/realtime/presence";
import {
  CLOSE_CODES,
  type CloseCode,
  closeReason,
  frame,
  parseClientFrame,
  parseHandshakeTopics,
} from "../../src/realtime/protocol";
import type { TopicEvent } from "../../src/realtime/sequence";
import { encodeState, type SocketState } from "../../src/realtime/socket-state";
import { isRole } from "../../src/teams/model";
import { positiveVar } from "../../src/vars";
import type { Topic } from "../topic/topic";
import { AccessGuard } from "./access-guard";
import { Annotator } from "./annotator";
import { type Conn, enqueue, idOf, send } from "./conn";
import { CoveredProfiles } from "./covered";
import { Fanout } from "./fanout";
import { FrameRate } from "./frame-rate";
import { type GatewayLimits, ShardLimits } from "./limits";
import { SharedPositions } from "./positions";
import { PresenceKeeper } from "./presence-keeper";
import { hibernatesOf, hibernatingSockets, inMemorySockets, type SocketMode } from "./socket-mode";
import { SocketIndex } from "./sockets";
import { Subscriptions } from "./subscriptions";
import { TicketLedger } from "./tickets";

// A gateway shard (`gw:<team>:<n>`) terminates many users' WebSockets with the
// hibernation API. Everything it needs to serve a socket lives in the socket's
// attachment (who, which topics, the last seq sent per topic, whose presence
// it follows), so an instance woken from hibernation rebuilds its in-memory
// index from the attachments and serves exactly as before. Pings are answered
// by the runtime without waking it.
//
// This object is the runtime's side of it (connect, the WebSocket and alarm
// hooks, the RPC methods) over named parts, each in its own file:
// - sockets.ts       the socket index: by id, topic and user, and where each
//                    socket stands in each topic (positions.ts: the shared
//                    position of a topic's in-sync sockets);
// - subscriptions.ts subscribe / unsubscribe / presence_sub;
// - fanout.ts        deliveries from the topics, in seq order per socket,
//                    coalesced into batch messages;
// - annotator.ts     profiles sent just before the first message naming a user;
// - access-guard.ts  subscribe-time checks and every re-check, failing closed;
// - frame-rate.ts    client frames per socket; limits.ts: admission, sockets
//                    per user, frames per message;
// - presence-keeper.ts its users' presence (away.ts: grace periods,
//                    presence-outbox.ts: changes in rounds);
// - tickets.ts, grants.ts: socket tickets, reusable channel grants;
// src/realtime/ holds the protocol and the rules they apply.
//
// It admits connections (admission.ts, and at most
// GATEWAY_MAX_SOCKETS_PER_USER per user), consumes socket tickets, closes a socket when the access token it came from expires, and
// owns its users' presence: all of a user's sockets are here.

/**
 * Headers by which the Worker tells the gateway who connects (only the
 * Worker can reach a gateway, and it drops any x-rtm-* header a client sent):
 * identity, the access token's expiry (seconds), for a ticket its nonce and
 * expiry, the live role the Worker read, and the topics to subscribe in the
 * handshake (`?subscribe=`, as the client wrote it: parsed again here).
 *
 * The live check stays in the Worker on purpose: a gateway that awaited a
 * team-cache call inside the fetch answering the upgrade (so as to batch
 * the checks of users connecting at once) could then not always be evicted
 * to hibernation (workerd's evict with webSockets "hibernate" hung in 1 test
 * run out of 2, tried 2026-12-06), so it stays here, one call per connect.
 */
export const GATEWAY_HEADERS = {
  team: "x-rtm-team",
  user: "x-rtm-user",
  gateway: "x-rtm-gateway",
  exp: "x-rtm-exp",
  role: "x-rtm-role",
  ticket: "x-rtm-ticket",
  ticketExp: "x-rtm-ticket-exp",
  subscribe: "x-rtm-subscribe",
} as const;

/** Topic stubs kept at most (presence rounds, resumes and deliveries call the same few topics again and again). */
const MAX_TOPIC_STUBS = 1_000;

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

export class Gateway extends DurableObject<Env> {
  private readonly incarnation = crypto.randomUUID();
  private frames = 0;
  private refused = 0;
  private expired = 0;
  private readonly sockets: SocketIndex;
  private readonly subscriptions: Subscriptions;
  private readonly fanout: Fanout;
  private readonly annotator: Annotator;
  private readonly guard: AccessGuard;
  private readonly rate = new FrameRate();
  private readonly tickets: TicketLedger;
  private readonly presence: PresenceKeeper;
  private readonly limits: ShardLimits;
  /** When the alarm is set for (null: unknown or none). */
  private alarmAt: number | null = null;
  /** One frame at a time per socket, so answers come in the order asked. */
  private readonly socketQueues = new Map<string, Promise<unknown>>();
  private readonly topicStubs = new Map<string, DurableObjectStub<Topic>>();
  /** Hibernatable sockets, or (GATEWAY_HIBERNATE = "false") sockets held in memory: socket-mode.ts. */
  private readonly mode: SocketMode;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const background = (work: Promise<unknown>) => ctx.waitUntil(work);
    this.mode = hibernatesOf(env.GATEWAY_HIBERNATE)
      ? hibernatingSockets(ctx)
      : inMemorySockets(
          {
            message: (ws, m) => this.webSocketMessage(ws, m),
            close: (ws, code, reason) => this.webSocketClose(ws, code, reason),
            error: (ws) => this.webSocketError(ws),
          },
          background,
        );
    this.limits = new ShardLimits(env);
    const access = teamCacheAccess(env);
    const live = teamCacheLiveState(env);
    const profiles = teamCacheProfiles(env);
    const topic = (key: string) => this.topic(key);
    this.sockets = new SocketIndex(new SharedPositions(ctx.storage.sql, background), {
      sockets: () => this.mode.sockets(),
      joined: (t) => this.annotator.joined(t),
      gone: (state, lastOfUser) => this.gone(state, lastOfUser),
    });
    this.annotator = new Annotator(this.sockets, profiles, new CoveredProfiles(ctx.storage.sql, background));
    this.guard = new AccessGuard(this.sockets, {
      access,
      live,
      profiles,
      close: (conn, code) => this.closeSocket(conn, code),
      background,
    });
    this.fanout = new Fanout(this.sockets, this.annotator, this.guard, {
      topic,
      batchLimit: () => this.limits.batchFrames(),
    });
    this.subscriptions = new Subscriptions(this.sockets, this.fanout, this.guard, { access, live, profiles, topic });
    this.tickets = new TicketLedger(ctx.storage.sql);
    this.presence = new PresenceKeeper(ctx.storage.sql, {
      publish: (key, changes) => this.topic(key).publishMany(key, changes),
      graceMs: () =>
        positiveVar("PRESENCE_GRACE_SECONDS", this.env.PRESENCE_GRACE_SECONDS, DEFAULT_GRACE_SECONDS) * 1000,
      background,
    });
  }

  /**
   * A client connecting, forwarded by the Worker after it verified the
   * ticket (or bearer token) and read the user's live state (an active
   * member of the team, or 403 before any upgrade). Here: the ticket's
   * single use, admission, the per-user socket limit, and the handshake's
   * subscriptions.
   */
  override async fetch(request: Request): Promise<Response> {
    const h = (name: string) => request.headers.get(name);
    const team = h(GATEWAY_HEADERS.team);
    const user = h(GATEWAY_HEADERS.user);
    const gateway = h(GATEWAY_HEADERS.gateway);
    const exp = Number(h(GATEWAY_HEADERS.exp));
    const role = h(GATEWAY_HEADERS.role);
    const ticket = h(GATEWAY_HEADERS.ticket);
    const ticketExp = Number(h(GATEWAY_HEADERS.ticketExp));
    const subscribeRaw = h(GATEWAY_HEADERS.subscribe);
    const topics = subscribeRaw === null ? [] : parseHandshakeTopics(subscribeRaw);
    if (
      !team ||
      !user ||
      !gateway ||
      !isRole(role) ||
      !Number.isSafeInteger(exp) ||
      (ticket !== null && !Number.isSafeInteger(ticketExp)) ||
      typeof topics === "string" ||
      h("upgrade")?.toLowerCase() !== "websocket"
    ) {
      return errorAnswer(badRequest("expected a WebSocket upgrade forwarded by the Worker"));
    }
    if (exp * 1000 <= Date.now()) return errorAnswer(unauthorized("token expired"));
    const now = Date.now();
    // Checked and recorded with no await in between: two connects with one
    // ticket cannot both pass.
    if (ticket !== null && this.tickets.used(ticket)) {
      return errorAnswer(unauthorized("this ticket was already used; get a new one from POST /v1/rtm.connect"));
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const conns = this.sockets.all();
    // Refusals below are accepted only to be closed: a browser cannot read an
    // HTTP refusal of a WebSocket handshake, but it can read a close code and
    // reason. A refused ticket is not used up: it may try again while valid.
    const admission = this.limits.admission().admit(conns.size, now, this.subscriptions.inProgress);
    if (!admission.ok) return this.refuse(server, client, "overloaded", admission.retryAfterMs);
    if (this.sockets.socketsOf(user) >= this.limits.socketsPerUser()) {
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
    this.mode.accept(server);
    // With handshake topics the subscribe's answer saves the attachment (an
    // object with work in progress does not hibernate; a failed subscribe
    // saves it below).
    if (topics.length === 0) server.serializeAttachment(encodeState(state));
    this.sockets.track(server, state);
    const hello = frame({ v: 1, type: "hello", user, team, gateway });
    if (topics.length === 0) server.send(hello);
    else {
      // As if the client's first frame were this subscribe: same queue, same
      // answer, which `hello` leads in one message (one send, not two).
      const sid = state.sid;
      const lead = { text: hello, sent: false };
      void enqueue(this.socketQueues, sid, () =>
        this.subscriptions.subscribe(sid, { v: 1, type: "subscribe", topics }, lead),
      ).catch((error) => {
        console.error("gateway: handshake subscribe failed", error);
        const conn = this.sockets.get(sid);
        if (conn) this.sockets.save(conn);
        const refusal = frame({ v: 1, type: "error", code: "unavailable", message: "internal error; try again" });
        this.fanout.sendFrames(server, lead.sent ? [refusal] : [hello, refusal]);
      });
    }
    if (this.sockets.socketsOf(user) === 1) this.presence.arrived(team, user);
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
    const conn = this.sockets.of(ws);
    if (!conn) {
      ws.close(1011, "unknown socket");
      return;
    }
    // The alarm closes expired sockets; a frame arriving first is not served either.
    if (conn.state.exp * 1000 <= Date.now()) {
      this.expire(conn);
      return;
    }
    const verdict = this.rate.take(conn.state.sid, Date.now());
    if (verdict.kind === "close") return this.closeSocket(conn, "rate_limited", verdict.retryAfterMs);
    if (verdict.kind === "drop") {
      send(ws, frame({ v: 1, type: "error", code: "rate_limited", message: verdict.message }));
      return;
    }
    // One frame at a time per socket, so answers come in the order asked.
    await enqueue(this.socketQueues, conn.state.sid, () => this.handle(conn.state.sid, message)).catch((error) => {
      console.error("gateway: frame failed", error);
      send(ws, frame({ v: 1, type: "error", code: "unavailable", message: "internal error; try again" }));
    });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.sockets.untrack(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.sockets.untrack(ws);
  }

  /**
   * Sockets whose access token expired: closed (token_expired). Users whose
   * presence grace period ended: away, unless they came back. Then the next
   * alarm, for the earliest of both.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const conns = this.sockets.all();
    const now = Date.now();
    for (const conn of [...conns.values()]) if (conn.state.exp * 1000 <= now) this.expire(conn);
    // Still away (a user back within the grace period kept its entry until now: nothing to say).
    await this.presence.due(now, (user) => this.sockets.socketsOf(user) > 0);
    this.tickets.prune(now);
    await this.scheduleAlarm();
  }

  /**
   * Events of one topic from its Topic object, in seq order (a topic sends
   * one list at a time). Answers how many sockets follow the topic here: 0
   * tells the topic to stop sending.
   */
  async deliver(key: string, events: TopicEvent[]): Promise<{ subscribers: number }> {
    return { subscribers: await this.fanout.deliver(key, events) };
  }

  /** Admission limits, sockets per user and frames per batch message for this shard, until the next restart (limits.ts). */
  async configure(limits: Partial<GatewayLimits>): Promise<GatewayLimits> {
    return this.limits.configure(limits);
  }

  /** Closes every socket of a user here (deactivated): they must not reconnect, and see why. */
  async disconnectUser(user: string): Promise<{ closed: number }> {
    let closed = 0;
    for (const conn of [...this.sockets.all().values()]) {
      if (conn.state.user !== user) continue;
      this.closeSocket(conn, "deactivated");
      closed++;
    }
    return { closed };
  }

  async stats(): Promise<GatewayStats> {
    const conns = this.sockets.all();
    const topics: Record<string, number> = {};
    for (const [topic, sids] of this.sockets.topics()) topics[topic] = sids.size;
    return {
      incarnation: this.incarnation,
      sockets: conns.size,
      frames: this.frames,
      topics,
      refused: this.refused,
      dropped: this.rate.dropped,
      awayPending: this.presence.pending,
      expired: this.expired,
      usedTickets: this.tickets.size(),
    };
  }

  /** Re-reads these users' live state and re-checks their sockets' subscriptions (access-guard.ts); all sockets without a list. */
  recheckUsers(users?: string[]): Promise<{ sockets: number; closed: number; revoked: number }> {
    return this.guard.recheckUsers(users);
  }

  // --- frames ----------------------------------------------------------------------

  private async handle(sid: string, message: string | ArrayBuffer): Promise<void> {
    const conn = this.sockets.get(sid);
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
        return this.subscriptions.subscribe(sid, f);
      case "unsubscribe":
        return this.subscriptions.unsubscribe(sid, f);
      case "presence_sub":
        return this.subscriptions.presence(sid, f);
    }
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
    let next = this.presence.earliest();
    for (const conn of this.sockets.all().values()) {
      const at = conn.state.exp * 1000;
      if (next === null || at < next) next = at;
    }
    return next;
  }

  /** A socket left the index: its per-socket memory goes, and a user's last socket starts their grace period. */
  private gone(state: SocketState, lastOfUser: boolean): void {
    this.rate.forget(state.sid);
    this.annotator.forget(state.sid);
    if (!lastOfUser) return;
    const due = this.presence.left(state.team, state.user);
    if (this.alarmAt === null || this.alarmAt > due) this.ctx.waitUntil(this.scheduleAlarm(due));
  }

  private closeSocket(conn: Conn, code: CloseCode, retryAfterMs?: number): void {
    try {
      conn.ws.close(CLOSE_CODES[code], closeReason(code, retryAfterMs));
    } catch {
      // already closing
    }
    this.sockets.untrack(conn.ws);
  }

  /** The access token behind the socket expired: closed, and the client knows to get a new one. */
  private expire(conn: Conn): void {
    this.expired++;
    this.closeSocket(conn, "token_expired");
  }

  /** A topic's stub, kept: presence rounds, resumes and deliveries call the same few topics again and again. */
  private topic(key: string): DurableObjectStub<Topic> {
    let stub = this.topicStubs.get(key);
    if (!stub) {
      stub = topicOf(this.env, key);
      if (this.topicStubs.size >= MAX_TOPIC_STUBS) this.topicStubs.clear();
      this.topicStubs.set(key, stub);
    }
    return stub;
  }
}
