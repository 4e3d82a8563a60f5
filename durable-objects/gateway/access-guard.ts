import { mayConnect, type Principal, seesWholeTeam } from "../../src/auth/policy";
import { channelAccessChange, userChangedCard } from "../../src/realtime/directory-events";
import type { Actor, ChannelAccess, LiveState, ProfileSource, TopicAccess, Visible } from "../../src/realtime/ports";
import { isPresenceTopic } from "../../src/realtime/presence";
import { type ClientTopic, type CloseCode, frame } from "../../src/realtime/protocol";
import type { TopicEvent } from "../../src/realtime/sequence";
import { forEachLimit, teamFilter } from "../../src/realtime/team-filter";
import { channelOf, type SubTopic } from "../../src/realtime/topics";
import { isRole, type Role } from "../../src/teams/model";
import { memberAudience, type TeamSkips } from "./audience";
import { type Conn, send } from "./conn";
import { ChannelGrants } from "./grants";
import type { SocketIndex } from "./sockets";

// Trust after connect: who may follow what, asked at subscribe time and
// asked again whenever a change may take access away; whatever a failed
// read would have allowed is denied (`unsubscribed`, reason
// `access_revoked`; the client may subscribe again, which checks afresh):
// - a channel topic's `member_left` re-checks that member's subscriptions
//   to it, and its `channel_changed` (turned private, say, or no longer
//   shared with a team: directory-events.ts) every subscriber's;
// - the directory's publisher (platform/deps.ts) calls recheckUsers() for
//   every user a change touched (a demotion to guest, a removal from a
//   channel; a reload: everyone), and disconnectUser() for deactivations.
//   recheckUsers() re-reads the user's role and active state (not an
//   active member any more: closed, code `deactivated`) and then every
//   channel and presence subscription of the user's sockets;
// - a `user_changed` event on the team topic lowers a demoted user's
//   sockets to the new role at once; a guest's team-topic events are
//   filtered to what it may see, and only owners and admins get the
//   admin-only ones (team-filter.ts); a DM's or group DM's announcements
//   go to its members only, whatever their role (audience.ts).

/** Higher sees more: a socket's role only ever moves down here. */
const ROLE_RANK: Record<Role, number> = { guest: 0, member: 1, admin: 2, owner: 3 };

/** Access checks in flight at once during a re-check (a channel with many subscribers turning private). */
const RECHECK_CONCURRENCY = 16;

export interface AccessGuardPorts {
  access: TopicAccess;
  live: LiveState;
  profiles: ProfileSource;
  /** Closes a socket the gateway's way (close code, index, presence). */
  close(conn: Conn, code: CloseCode): void;
  /** Keeps the instance alive for work nobody awaits (ctx.waitUntil). */
  background(work: Promise<unknown>): void;
}

export class AccessGuard {
  /**
   * Bumped by every re-check: a subscribe that checked access before a
   * re-check and registers after it is re-checked itself (it may have been
   * allowed by what the re-check took away).
   */
  private epochCount = 0;
  private readonly grants = new ChannelGrants();

  constructor(
    private readonly sockets: SocketIndex,
    private readonly ports: AccessGuardPorts,
  ) {}

  /** The current access epoch: compare before and after an await to learn whether a re-check ran meanwhile. */
  get epoch(): number {
    return this.epochCount;
  }

  /**
   * The subscribe-time channel check: the team cache, live, except for a
   * full member subscribing to a public channel this gateway follows and
   * checked while following it (grants.ts says why that fact may be reused
   * and how it is forgotten). Re-checks never come here: they ask live.
   */
  async channel(team: string, user: string, role: Role, channel: string, topic: SubTopic): Promise<ChannelAccess> {
    const { access } = this.ports;
    const ask = access.channelGrant;
    if (!ask || !seesWholeTeam({ role, active: true })) return access.channel(team, user, channel);
    const epoch = this.epochCount;
    const follow = this.sockets.followToken(topic);
    const host = this.grants.get(team, channel, epoch, follow, Date.now());
    if (host !== null) return { ok: true, host };
    const grant = await ask.call(access, team, user, channel);
    if (!grant.ok) return grant;
    if (grant.everyMember) {
      this.grants.put(
        team,
        channel,
        grant.host,
        { asked: epoch, now: this.epochCount },
        { asked: follow, now: this.sockets.followToken(topic) },
        Date.now(),
      );
    }
    return { ok: true, host: grant.host };
  }

  /**
   * Changes a channel topic's events announce: a member who left has their
   * subscriptions to it re-checked, after the member_left event itself; a
   * channel change (turned private, say) re-checks every subscriber. Runs in
   * the topic's queue, so nothing more of the topic is delivered here until
   * the re-check is done.
   */
  async afterDelivery(topic: SubTopic, events: TopicEvent[]): Promise<void> {
    if (!topic.startsWith("channel:")) return;
    const left = new Set<string>();
    let everyone = false;
    for (const e of events) {
      const change = channelAccessChange(e.json);
      if (change?.kind === "channel_changed") everyone = true;
      else if (change?.kind === "member_left") left.add(change.user);
    }
    if (everyone) await this.recheckTopic(topic as ClientTopic);
    else if (left.size > 0) await this.recheckTopic(topic as ClientTopic, left);
  }

  /**
   * A user_changed event on the team topic carries the user's new role: the
   * user's sockets here take a demotion at once (so the next team events are
   * already filtered for a new guest). Only ever towards less: a promotion
   * waits for recheckUsers' fresh read, which the publisher sends next.
   */
  beforeDelivery(topic: SubTopic, events: TopicEvent[]): void {
    if (topic !== "team") return;
    for (const e of events) {
      const card = userChangedCard(e.json);
      if (!card || !this.sockets.hasUser(card.id)) continue;
      const role: Role = card.deleted || !isRole(card.role) ? "guest" : card.role;
      // Demotions only (to guest: filtered; from admin: no admin-only events):
      // a promotion takes effect when the socket reconnects and its role is read.
      for (const conn of this.sockets.all().values()) {
        if (conn.state.user !== card.id || ROLE_RANK[role] >= ROLE_RANK[conn.state.role]) continue;
        conn.state.role = role;
        this.sockets.save(conn);
      }
    }
  }

  /**
   * For the team topic's sockets: the events each guest among them may not
   * see, and the conversation events each user who is not in that
   * conversation skips (audience.ts); null when no event is for some only.
   */
  async teamFilter(sids: Set<string>, events: TopicEvent[]): Promise<TeamSkips | null> {
    const guests = new Set<string>();
    const viewers = new Set<string>();
    let team: string | null = null;
    for (const sid of sids) {
      const conn = this.sockets.get(sid);
      if (!conn) continue;
      team = conn.state.team;
      viewers.add(conn.state.user);
      if (!seesWholeTeam({ role: conn.state.role, active: true })) guests.add(conn.state.user);
    }
    if (team === null) return null;
    const [filter, members] = await Promise.all([
      teamFilter(this.ports, team, guests, events),
      memberAudience(this.ports, team, viewers, events),
    ]);
    if (filter.about.size === 0 && !members) return null;
    return { filter: filter.about.size > 0 ? filter : null, members };
  }

  /** Re-checks who may still follow a channel topic here (`only`: just these users); drops the rest. */
  async recheckTopic(topic: ClientTopic, only?: Set<string>): Promise<void> {
    const channel = channelOf(topic);
    const sids = this.sockets.following(topic);
    if (!channel || !sids) return;
    this.newEpoch();
    const teamOf = new Map<string, string>();
    for (const sid of sids) {
      const conn = this.sockets.get(sid);
      if (conn && (!only || only.has(conn.state.user))) teamOf.set(conn.state.user, conn.state.team);
    }
    const denied = new Set<string>();
    let failed = 0;
    await forEachLimit([...teamOf], RECHECK_CONCURRENCY, async ([user, team]) => {
      try {
        if (!(await this.ports.access.channel(team, user, channel)).ok) denied.add(user);
      } catch (error) {
        // A check that cannot be made denies.
        if (failed++ === 0) console.error(`gateway: access re-check for ${topic} failed; revoking`, error);
        denied.add(user);
      }
    });
    if (failed > 1) console.error(`gateway: ${failed} access re-checks for ${topic} failed; revoked`);
    if (denied.size === 0) return;
    for (const sid of [...(this.sockets.following(topic) ?? [])]) {
      const conn = this.sockets.get(sid);
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
    const conns = this.sockets.all();
    this.newEpoch();
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
        actors = await this.ports.live.actors(team, [...members.keys()]);
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
  recheckSoon(users: string[]): void {
    this.ports.background(
      this.recheckUsers(users)
        .then(() => undefined)
        .catch((error) => console.error("gateway: re-check failed", error)),
    );
  }

  /** Drops topics from a socket's subscriptions and tells it why; how many. */
  revoke(conn: Conn, topics: ClientTopic[]): number {
    if (topics.length === 0) return 0;
    for (const t of topics) {
      conn.state.subs.delete(t);
      this.sockets.unsubscribe(conn.state.sid, t);
    }
    this.sockets.save(conn);
    send(conn.ws, frame({ v: 1, type: "unsubscribed", topics, reason: "access_revoked" }));
    return topics.length;
  }

  /** A re-check starts: every remembered grant goes, and subscribes in flight will check again. */
  private newEpoch(): void {
    this.epochCount++;
    this.grants.clear();
  }

  private async recheckUser(
    team: string,
    user: string,
    sids: string[],
    actors: Map<string, Actor> | null,
  ): Promise<{ closed: number; revoked: number }> {
    const current = () =>
      sids.flatMap((sid) => {
        const conn = this.sockets.get(sid);
        return conn ? [conn] : [];
      });
    if (actors) {
      const actor = actors.get(user);
      const p: Principal = actor ? { kind: "member", team, user, ...actor } : { kind: "unknown", team, user };
      if (!mayConnect(p, team).ok || !actor) {
        const list = current();
        for (const conn of list) this.ports.close(conn, "deactivated");
        return { closed: list.length, revoked: 0 };
      }
      for (const conn of current()) {
        if (conn.state.role === actor.role) continue;
        conn.state.role = actor.role;
        this.sockets.save(conn);
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
      visible = await this.ports.live.visible(team, user, [...followed], [...channels]).catch((error) => {
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
        this.sockets.save(conn);
      }
      revoked += this.revoke(conn, lost);
    }
    return { closed: 0, revoked };
  }
}
