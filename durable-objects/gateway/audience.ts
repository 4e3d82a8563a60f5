import { type ConversationAudience, conversationAudience } from "../../src/realtime/directory-events";
import type { LiveState } from "../../src/realtime/ports";
import type { TopicEvent } from "../../src/realtime/sequence";
import { forEachLimit, skippedFor, type TeamFilter } from "../../src/realtime/team-filter";
import type { Role } from "../../src/teams/model";

// Who gets which team-topic events, beyond the directory's visibility rules
// (team-filter.ts: a guest's users and channels, admin-only events): the
// announcements of a DM or group DM (directory-events.ts,
// conversationAudience) go only to the conversation's members, whatever
// their role, as its own topic does. Membership is read live from the team
// cache (a private conversation is visible to exactly its members), once per
// delivery for every event at hand: one call for every candidate viewer and
// conversation (LiveState.membersAmong), or, where the port lacks it, one
// visible() per candidate naming every conversation of the delivery.
// Candidates are the viewers here that
// the event can concern: for an opening, the members it was opened with
// (two, typically, so one or two calls on the gateways that hold them); for
// a join or a leave, every viewer here on the team topic (rare events: see
// docs/realtime.md, "Known limits"). A read that fails skips the event for
// that viewer: never delivered on a guess.

/** Membership reads in flight at once. */
const CONCURRENCY = 16;

/** The conversation events of a delivery and, per seq, the users who get them. */
export interface MemberAudience {
  /** Seqs of conversation events (all of them: nobody outside `allowed` gets one). */
  about: Set<number>;
  allowed: Map<number, Set<string>>;
  /** Answers of teamSkipsFor, by role and user. */
  memo: Map<string, ReadonlySet<number> | undefined>;
}

/** Team-topic skips of one delivery: the directory's filter and the conversation audience. */
export interface TeamSkips {
  filter: TeamFilter | null;
  members: MemberAudience | null;
}

/** The audience of the conversation events among `events`, for these viewers; null when there are none. */
export async function memberAudience(
  ports: { live: LiveState },
  team: string,
  viewers: ReadonlySet<string>,
  events: readonly TopicEvent[],
): Promise<MemberAudience | null> {
  const found = new Map<number, ConversationAudience | null>();
  for (const e of events) {
    const a = conversationAudience(e.json);
    if (a !== undefined) found.set(e.seq, a);
  }
  if (found.size === 0) return null;
  // Which conversations to ask each candidate about.
  const ask = new Map<string, Set<string>>();
  for (const a of found.values()) {
    if (!a) continue;
    for (const viewer of a.members ?? viewers) {
      if (!viewers.has(viewer)) continue;
      const set = ask.get(viewer) ?? new Set<string>();
      set.add(a.conversation);
      ask.set(viewer, set);
    }
  }
  const memberOf = new Map<string, Set<string>>();
  let failed = 0;
  const many = ports.live.membersAmong;
  if (many && ask.size > 0) {
    // One read for every candidate and conversation.
    const channels = [...new Set([...ask.values()].flatMap((set) => [...set]))];
    try {
      const members = await many.call(ports.live, team, channels, [...ask.keys()]);
      for (const [channel, users] of members) {
        for (const user of users) {
          if (!ask.get(user)?.has(channel)) continue;
          const set = memberOf.get(user) ?? new Set<string>();
          set.add(channel);
          memberOf.set(user, set);
        }
      }
    } catch (error) {
      console.error("gateway: conversation membership unavailable; skipping its events", error);
    }
    ask.clear();
  }
  await forEachLimit([...ask], CONCURRENCY, async ([viewer, conversations]) => {
    try {
      const v = await ports.live.visible(team, viewer, [], [...conversations]);
      // Denied: not an active member, so a member of nothing.
      if (v.ok) memberOf.set(viewer, v.channels);
    } catch (error) {
      if (failed++ === 0) console.error("gateway: conversation membership unavailable; skipping its events", error);
    }
  });
  const allowed = new Map<number, Set<string>>();
  for (const [seq, a] of found) {
    const users = new Set<string>();
    if (a) {
      for (const [viewer, seen] of memberOf) if (seen.has(a.conversation)) users.add(viewer);
      if (a.user !== undefined) users.add(a.user);
    }
    allowed.set(seq, users);
  }
  return { about: new Set(found.keys()), allowed, memo: new Map() };
}

/**
 * The seqs a socket of `user` (role `role`) skips on the team topic: what
 * the directory's filter hides from it, and the conversation events of
 * conversations it is not in. undefined: none.
 */
export function teamSkipsFor(skips: TeamSkips | null, user: string, role: Role): ReadonlySet<number> | undefined {
  if (!skips) return undefined;
  const base = skippedFor(skips.filter, user, role);
  const members = skips.members;
  if (!members) return base;
  // Asked once per socket: a user's sockets share the answer.
  const memo = `${role}:${user}`;
  if (members.memo.has(memo)) return members.memo.get(memo);
  let out: Set<number> | undefined;
  for (const seq of members.about) {
    if (members.allowed.get(seq)?.has(user)) continue;
    if (!out) out = new Set(base);
    out.add(seq);
  }
  const answer = out ?? base;
  members.memo.set(memo, answer);
  return answer;
}
