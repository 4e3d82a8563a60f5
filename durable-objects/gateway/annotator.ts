import { MAX_REMEMBERED_PROFILES, mayNameUsers, remember, usersNamedBy } from "../../src/realtime/annotations";
import type { ProfileSource } from "../../src/realtime/ports";
import { frame } from "../../src/realtime/protocol";
import type { TopicEvent } from "../../src/realtime/sequence";
import type { SubTopic } from "../../src/realtime/topics";
import type { Conn } from "./conn";
import type { CoveredProfiles } from "./covered";
import type { SocketIndex } from "./sockets";

// Just-in-time annotation: before the first message naming a user a socket
// has not been sent yet, the socket gets that user's profile (a `user`
// frame), so a client never downloads the team to show who spoke. Profiles
// are fetched once per delivery for every socket that lacks them, with what
// each viewer may see, and remembered per socket (in memory: a woken
// gateway may send a profile again, which costs a frame, not correctness).
// What every subscriber of a topic was sent is also kept in the gateway's
// storage (covered.ts), so waking does not send a busy channel's regulars
// to every socket again.

/** Per event of a delivery: the users it names, and the profile frames to send before it. */
export interface Annotations {
  named: Map<number, string[]>;
  profiles: Map<string, string>;
  /** The viewers the profiles were fetched for, and what each may not see. */
  viewers: Set<string>;
  hidden: Record<string, string[]>;
}

export class Annotator {
  /** Per socket, the users whose profiles it was sent. */
  private readonly sent = new Map<string, Set<string>>();
  /** Per topic, users every current subscriber was sent the profile of (reset when a socket subscribes). */
  private coveredMap: Map<SubTopic, Set<string>> | null = null;

  constructor(
    private readonly sockets: SocketIndex,
    private readonly source: ProfileSource,
    /** Where `covered` outlives the instance (none: memory only). */
    private readonly store?: CoveredProfiles,
  ) {}

  /** A socket subscribed to the topic: what every subscriber was sent no longer holds. */
  joined(topic: SubTopic): void {
    if (this.covers().delete(topic)) this.store?.set(topic, null);
  }

  forget(sid: string): void {
    this.sent.delete(sid);
  }

  /**
   * Profiles the sockets will need for the messages at hand: the users those
   * messages name that some socket has not been sent, fetched in one call
   * with what each viewer may see. null when no message names anyone new.
   */
  async annotations(sids: Set<string>, topic: SubTopic, known: TopicEvent[]): Promise<Annotations | null> {
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
    const covered = this.covers().get(topic);
    if (covered && [...named.values()].every((users) => users.every((u) => covered.has(u)))) return null;
    const missing = new Set<string>();
    const viewers = new Set<string>();
    let team: string | null = null;
    for (const sid of sids) {
      const conn = this.sockets.get(sid);
      const last = conn ? this.sockets.lastOf(conn.state, topic) : undefined;
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
      this.markCovered(topic, named);
      return null;
    }
    try {
      const found = await this.source.profiles(team, [...viewers], [...missing]);
      const profiles = new Map(found.profiles.map((p) => [p.id, frame({ v: 1, type: "user", user: p })]));
      return { named, profiles, viewers, hidden: found.hidden };
    } catch (error) {
      // The messages still go out; a client resolves unknown users itself.
      console.error("gateway: profiles for annotation unavailable", error);
      return null;
    }
  }

  /** Every subscriber of the topic got these events and their profiles: later messages naming them skip the per-socket check. */
  markCovered(topic: SubTopic, named: Map<number, string[]>): void {
    const map = this.covers();
    let covered = map.get(topic);
    if (!covered) {
      covered = new Set();
      map.set(topic, covered);
    }
    if (covered.size > MAX_REMEMBERED_PROFILES) covered.clear();
    const before = covered.size;
    for (const users of named.values()) for (const u of users) covered.add(u);
    if (covered.size !== before) this.store?.set(topic, covered);
  }

  private covers(): Map<SubTopic, Set<string>> {
    this.coveredMap ??= this.store?.load() ?? new Map();
    return this.coveredMap;
  }

  /** Adds to `out` the profiles the socket needs before event `seq` (and counts them as sent); how many. */
  profilesFor(conn: Conn, notes: Annotations, seq: number, out: string[]): number {
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
}
