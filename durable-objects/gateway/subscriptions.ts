import { isAdminRole, seesWholeTeam } from "../../src/auth/policy";
import type { LiveState, ProfileSource, TopicAccess, Visible } from "../../src/realtime/ports";
import { byPresenceTopic, isPresenceTopic, type PresenceTopic, presenceOf } from "../../src/realtime/presence";
import {
  type ClientFrame,
  type ClientTopic,
  type ErrorCode,
  eventFrame,
  frame,
  type ReloadReason,
  type TopicRequest,
} from "../../src/realtime/protocol";
import type { TopicEvent } from "../../src/realtime/sequence";
import { fitsAttachment, type SocketState } from "../../src/realtime/socket-state";
import { teamFilter } from "../../src/realtime/team-filter";
import { channelOf, type SubTopic, topicKey } from "../../src/realtime/topics";
import type { Role } from "../../src/teams/model";
import type { Catchup, Topic } from "../topic/topic";
import type { AccessGuard } from "./access-guard";
import { memberAudience, teamSkipsFor } from "./audience";
import { idOf, send } from "./conn";
import type { Fanout } from "./fanout";
import type { SocketIndex } from "./sockets";

// A socket's subscriptions: subscribe (channels and the team topic, with
// `since` to resume), unsubscribe, and the presence list (presence_sub).
// Each checks access live (access-guard.ts), registers this gateway with
// the topic only when no socket here follows it yet (the others start at
// the shared position, without asking the topic), answers, and then sends
// what `since` missed, in one message when it fits. No other frame of the
// socket runs meanwhile (the gateway queues them per socket), and nothing
// awaits between placing a socket and sending its answer, so no delivery
// interleaves.

type SubscribeFrame = Extract<ClientFrame, { type: "subscribe" }>;

type Opened =
  | { ok: true; topic: ClientTopic; key: string; seq: number; replay: TopicEvent[]; reload?: ReloadReason }
  | { ok: false; topic: ClientTopic; code: ErrorCode; message: string };

export interface SubscriptionPorts {
  access: TopicAccess;
  live: LiveState;
  profiles: ProfileSource;
  /** The topic (its Topic object's stub, or anything answering the same). */
  topic(key: string): Pick<Topic, "subscribe" | "eventsSince" | "snapshot">;
}

export class Subscriptions {
  /** Subscribes being served now: the real backlog a reconnect storm builds (admission reads it). */
  private active = 0;

  constructor(
    private readonly sockets: SocketIndex,
    private readonly fanout: Fanout,
    private readonly guard: AccessGuard,
    private readonly ports: SubscriptionPorts,
  ) {}

  get inProgress(): number {
    return this.active;
  }

  /** `lead`: a frame to send first, in the same message as the answer (the handshake's hello). */
  async subscribe(sid: string, f: SubscribeFrame, lead?: { text: string; sent: boolean }): Promise<void> {
    this.active++;
    try {
      await this.subscribeNow(sid, f, lead);
    } finally {
      this.active--;
    }
  }

  async unsubscribe(sid: string, f: Extract<ClientFrame, { type: "unsubscribe" }>): Promise<void> {
    const conn = this.sockets.get(sid);
    if (!conn) return;
    for (const { topic } of f.topics) {
      conn.state.subs.delete(topic);
      this.sockets.unsubscribe(sid, topic);
    }
    this.sockets.save(conn);
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
  async presence(sid: string, f: Extract<ClientFrame, { type: "presence_sub" }>): Promise<void> {
    const before = this.sockets.get(sid);
    if (!before) return;
    const { team, user, gateway } = before.state;
    const epoch = this.guard.epoch;
    const refuse = (code: ErrorCode, message: string) =>
      send(before.ws, frame({ v: 1, type: "error", ...idOf(f), code, message }));
    let visible: Visible | null = null;
    if (f.users.length > 0) {
      visible = await this.ports.live.visible(team, user, f.users, []).catch((error) => {
        console.error("gateway: presence visibility check failed", error);
        return null;
      });
    } else {
      // Stopping needs no visibility; it still needs an active member.
      const access = await this.ports.access.team(team, user).catch(() => null);
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
      snapshots = await this.fanout.whilePending(fresh, () =>
        Promise.all(
          [...wanted].map(async ([topic, shardUsers]) => {
            const key = topicKey(team, topic);
            const stub = this.ports.topic(key);
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
    const conn = this.sockets.get(sid);
    if (!conn) return;
    for (const t of [...conn.state.subs.keys()]) {
      if (isPresenceTopic(t) && !wanted.has(t)) {
        conn.state.subs.delete(t);
        this.sockets.unsubscribe(sid, t);
      }
    }
    const started: Array<[string, SubTopic]> = [];
    const states = new Map<string, string>();
    for (const s of snapshots) {
      for (const [u, json] of Object.entries(s.state)) states.set(u, json);
      if (s.seq === null) continue;
      this.sockets.place(conn.state, s.topic, s.seq);
      this.fanout.heard(s.key, s.seq);
      this.sockets.subscribe(sid, s.topic);
      started.push([s.key, s.topic]);
    }
    conn.state.presence = new Set(users);
    this.sockets.save(conn);
    const list = users.map((u) => ({ user: u, presence: presenceOf(states.get(u)) }));
    send(conn.ws, frame({ v: 1, type: "presence", ...idOf(f), users: list }));
    this.fanout.catchUp(conn.state, started);
    if (this.guard.epoch !== epoch && users.length > 0) this.guard.recheckSoon([user]);
  }

  private async subscribeNow(sid: string, f: SubscribeFrame, lead?: { text: string; sent: boolean }): Promise<void> {
    const before = this.sockets.get(sid);
    if (!before) return;
    const { team, user, gateway, role } = before.state;
    const epoch = this.guard.epoch;
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
    const opened = await this.fanout.whilePending(
      fresh.map((t) => t.topic),
      () => Promise.all(fresh.map((t) => this.open(team, user, gateway, role, t))),
    );
    // From here to the sends, nothing awaits: no delivery can interleave.
    const conn = this.sockets.get(sid);
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
      this.sockets.place(conn.state, o.topic, last);
      accepted.push({ topic: o.topic, seq: last });
      started.push([o.key, o.topic]);
      this.fanout.heard(o.key, last);
      for (const e of o.replay) after.push(eventFrame(o.topic, e.seq, e.json));
      if (o.reload) after.push(frame({ v: 1, type: "reload", topic: o.topic, reason: o.reload, seq: o.seq }));
    }
    for (const topic of already) {
      const seq = this.sockets.lastOf(conn.state, topic);
      if (seq !== undefined) accepted.push({ topic, seq });
    }
    this.sockets.save(conn);
    for (const o of accepted) this.sockets.subscribe(conn.state.sid, o.topic);
    if (accepted.length > 0) out.push(frame({ v: 1, type: "subscribed", ...idOf(f), topics: accepted }));
    // The answer and the missed events after it: one message when they fit.
    if (lead) lead.sent = true;
    this.fanout.sendFrames(conn.ws, lead ? [lead.text, ...out, ...after] : [...out, ...after]);
    this.fanout.catchUp(conn.state, started);
    // Access was checked before a re-check that ran meanwhile: check again.
    if (this.guard.epoch !== epoch && started.length > 0) this.guard.recheckSoon([user]);
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
        const access = await this.guard.channel(team, user, role, channel, topic);
        if (!access.ok) return { ok: false, topic, code: access.code, message: access.message };
        host = access.host;
      } else {
        const access = await this.ports.access.team(team, user);
        if (!access.ok) return { ok: false, topic, code: access.code, message: access.message };
      }
      const key = topicKey(host, topic);
      const stub = this.ports.topic(key);
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
      if (topic === "team" && replay.length > 0) {
        // A guest's missed team events: only those about what it may see;
        // a member's: all but the admin-only ones; anyone's: only the
        // conversations it is in (the same rules as live: access-guard.ts).
        const guests = seesWholeTeam({ role, active: true }) ? new Set<string>() : new Set([user]);
        const [filter, members] = await Promise.all([
          isAdminRole(role) ? null : teamFilter(this.ports, team, guests, replay),
          memberAudience(this.ports, team, new Set([user]), replay),
        ]);
        const hidden = teamSkipsFor({ filter, members }, user, role);
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
    if ((this.sockets.following(topic)?.size ?? 0) === 0) return null;
    const base = this.sockets.positions.get(topic);
    if (base === undefined || (since !== undefined && since > base)) return null;
    return base;
  }
}
