import { isAdminRole, seesWholeTeam } from "../auth/policy";
import type { Role } from "../teams/model";
import { teamEventSubject } from "./directory-events";
import type { LiveState, ProfileSource } from "./ports";
import type { TopicEvent } from "./sequence";

// The team topic carries every user's profile changes and every public
// channel's changes. A member sees the whole team, so it gets them all; a
// guest sees only the people it shares a channel with and its own channels
// (src/auth/policy.ts), so the gateway skips, for each guest, the events
// about anyone or anything else. Skipping moves the guest's socket past
// them all the same: its seqs jump there (protocol.ts says so).
//
// Some events are for the team's owners and admins only (ADMIN_EVENTS: a
// Slack Connect prefs change): every other socket skips them.
//
// What could not be checked is skipped: a lookup that fails, an event that
// cannot be read, a guest the lookup did not cover (one that subscribed
// while it ran).

/** Lookups in flight at once when they go viewer by viewer. */
const CONCURRENCY = 16;

/**
 * Which team-topic events each guest may not see. `about`: the seqs of
 * events about a particular user or channel; `viewers`: the guests the
 * lookup covered, with `hidden` their seqs to skip.
 */
export interface TeamFilter {
  about: Set<number>;
  /** The seqs of admin-only events (also in `about`): what a member who is not an admin skips. */
  adminOnly: Set<number>;
  viewers: Set<string>;
  hidden: Map<string, Set<number>>;
}

/**
 * The filter for these events and guests. Users are looked up in one call
 * for every viewer (the profiles' per-viewer `hidden`); channels viewer by
 * viewer (guests are few, and channel changes rare).
 */
export async function teamFilter(
  ports: { profiles: ProfileSource; live: LiveState },
  team: string,
  viewers: Set<string>,
  events: readonly TopicEvent[],
): Promise<TeamFilter> {
  const about = new Map<number, { users: string[]; channels: string[]; admins?: true } | null>();
  const adminOnly = new Set<number>();
  const users = new Set<string>();
  const channels = new Set<string>();
  for (const e of events) {
    const subject = teamEventSubject(e.json);
    if (subject?.admins) adminOnly.add(e.seq);
    if (subject && !subject.admins && subject.users.length === 0 && subject.channels.length === 0) continue;
    about.set(e.seq, subject);
    for (const u of subject?.users ?? []) users.add(u);
    for (const c of subject?.channels ?? []) channels.add(c);
  }
  const out: TeamFilter = { about: new Set(about.keys()), adminOnly, viewers, hidden: new Map() };
  if (about.size === 0 || viewers.size === 0) return out;
  let userHidden: Record<string, string[]> | null = users.size === 0 ? {} : null;
  let found = new Set<string>();
  if (users.size > 0) {
    try {
      const r = await ports.profiles.profiles(team, [...viewers], [...users]);
      userHidden = r.hidden;
      found = new Set(r.profiles.map((p) => p.id));
    } catch (error) {
      console.error("team-topic visibility (users) unavailable; hiding", error);
    }
  }
  const seenChannels = new Map<string, Set<string>>();
  if (channels.size > 0) {
    await forEachLimit([...viewers], CONCURRENCY, async (viewer) => {
      const v = await ports.live.visible(team, viewer, [], [...channels]).catch((error) => {
        console.error("team-topic visibility (channels) unavailable; hiding", error);
        return null;
      });
      if (v?.ok) seenChannels.set(viewer, v.channels);
    });
  }
  for (const viewer of viewers) {
    const hiddenUsers = userHidden ? new Set(userHidden[viewer] ?? []) : null;
    const seen = seenChannels.get(viewer);
    const skip = new Set<number>();
    for (const [seq, subject] of about) {
      const visible =
        !!subject &&
        !subject.admins &&
        subject.users.every((u) => hiddenUsers?.has(u) === false && found.has(u)) &&
        subject.channels.every((c) => seen?.has(c) === true);
      if (!visible) skip.add(seq);
    }
    if (skip.size > 0) out.hidden.set(viewer, skip);
  }
  return out;
}

/**
 * The seqs a socket of `user` (whose role is `role`) must skip: none for an
 * owner or admin, the admin-only events for any other member, and for a
 * guest what the filter hid from it (everything it is about, if the filter
 * missed that guest).
 */
export function skippedFor(filter: TeamFilter | null, user: string, role: Role): ReadonlySet<number> | undefined {
  if (!filter || isAdminRole(role)) return undefined;
  if (seesWholeTeam({ role, active: true })) return filter.adminOnly.size > 0 ? filter.adminOnly : undefined;
  return filter.viewers.has(user) ? filter.hidden.get(user) : filter.about;
}

/** Runs `fn` over the items, at most `limit` at a time. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
