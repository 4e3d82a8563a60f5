import { type CollabDataset, channelIdOf, isoOf, userIdOf } from "../../datasets/collab";
import { inWindow, WINDOWS } from "./spec";

// The feature store's content for one team as of a cut day T: the count
// tables of training/features.py `Tables`, as per-entity and per-pair rows,
// plus the embedding vectors trained offline. Ids and counts only, never
// text. Everything the online features read is here; FeatureTables
// (tables.ts) turns it into dense in-memory arrays.
//
// Conventions, the same as features.py:
// * A count "in window w" covers days T - w <= day < T; "all" covers day < T.
//   The window is half-open at T because the cut is the first day whose rows
//   are not known yet (the labels start there); an activity on day T - 30 is
//   in the 30-day window, one on day T is in no window.
// * Activity is deduplicated to one row per (day, user, channel), commits
//   summed, before anything is counted.
// * Interactions are undirected (a row u -> v counts for the pair {u, v}),
//   except the per-person out/in counts; self-interactions are dropped.
// * Days are days since 1970-01-01 (src/datasets/collab.ts `dayOf`); only
//   differences to T are ever used, so the epoch does not matter.

/** Counts in the windows 30, 90, 365 days and all time before the cut (spec.ts WINDOWS). */
export type Windowed = [number, number, number, number];

export interface SnapshotUser {
  id: string;
  /**
   * Position in id order. Every top-K and ranking breaks ties by the smaller
   * id (features.py); ids are opaque strings here, so the order is stored.
   */
  rank: number;
  /** Distinct days with activity in any channel. */
  activeDays: Windowed;
  /** First and last day with activity; null when none. */
  first: number | null;
  last: number | null;
  /** Interaction counts by direction: as `user_id` (out) and as `other_user_id` (in). */
  out: Windowed;
  in: Windowed;
  /** Distinct days with any local-hours row. */
  hourDays: Windowed;
  /** Unit-length embedding (rounded), or null when the training run gave the user none. */
  vector: number[] | null;
}

export interface SnapshotChannel {
  id: string;
  rank: number;
  /** Distinct days with anyone's activity. */
  activeDays: Windowed;
  first: number | null;
  last: number | null;
  vector: number[] | null;
}

/** A user's activity in a channel: one row per pair with any activity before T. */
export interface SnapshotMembership {
  user: string;
  channel: string;
  /** Distinct active days. */
  days: Windowed;
  commits: Windowed;
  first: number;
  last: number;
}

/** Interactions between two people in either direction; `a` has the smaller rank. */
export interface SnapshotPair {
  a: string;
  b: string;
  count: Windowed;
  first: number;
  last: number;
}

/**
 * Same-day co-activity in the 365-day window: the number of (user, day) with
 * activity in both channels (`a` rank <= `b` rank; a = b is the channel's
 * (user, day) count).
 */
export interface SnapshotSameDay {
  a: string;
  b: string;
  count: number;
}

/** A user's commits at a local hour. */
export interface SnapshotUserHour {
  user: string;
  hour: number;
  commits: Windowed;
  /** Distinct days with commits at that hour. */
  days: Windowed;
  last: number;
}

export interface FeatureSnapshot {
  format: 1;
  dataset: string;
  /** The cut T, in days since 1970-01-01. */
  cut: number;
  /** Embedding dimensions (every vector has this length). */
  dims: number;
  /** The cut of the training run the vectors come from (ISO), when it said. */
  embeddingCut: string | null;
  users: SnapshotUser[];
  channels: SnapshotChannel[];
  memberships: SnapshotMembership[];
  pairs: SnapshotPair[];
  sameDay: SnapshotSameDay[];
  userHours: SnapshotUserHour[];
}

/**
 * The embedding artifact of a training run (training/train.py
 * `write_embeddings`): vectors by the dataset's own ids. Computed in Python
 * (a truncated SVD), never here.
 */
export interface EmbeddingArtifact {
  dims: number;
  cut?: string;
  users: Readonly<Record<string, readonly number[]>>;
  channels: Readonly<Record<string, readonly number[]>>;
}

export interface SnapshotIds {
  /** Snapshot id of a dataset user / channel (default: the platform ids of src/datasets/collab.ts). */
  user: (u: number) => string;
  channel: (c: number) => string;
}

const zero = (): Windowed => [0, 0, 0, 0];

/** Same-day co-activity counts the (user, day)s of this many days before the cut (features.py's 365-day window). */
export const SAME_DAY_WINDOW = 365;

/** Adds `v` to every window that holds `day` (T - w <= day < T). */
function addWindowed(into: Windowed, day: number, cut: number, v: number): void {
  for (let w = 0; w < WINDOWS.length; w++) if (inWindow(day, cut, w)) into[w] = (into[w] as number) + v;
}

const minDay = (a: number | null, d: number) => (a === null || d < a ? d : a);
const maxDay = (a: number | null, d: number) => (a === null || d > a ? d : a);

type UserAcc = Pick<SnapshotUser, "activeDays" | "first" | "last" | "out" | "in" | "hourDays">;
type ChannelAcc = Pick<SnapshotChannel, "activeDays" | "first" | "last">;

/**
 * Builds a snapshot from rows fed one at a time, holding only what the
 * snapshot holds (entities, memberships, pairs, hours) plus each entity's
 * last day seen: never the rows themselves, so a ledger far bigger than
 * memory can be built from a cursor. Distinct days are counted by "a day
 * newer than the last one seen", which is why rows come in day order:
 * - activity: days ascending; within a day, each user's rows together and
 *   each (day, user, channel) key's rows together (they are summed: the
 *   dedup). Any such order gives the same snapshot (the parity tests feed
 *   integer order and string order).
 * - hours: days ascending.
 * - interactions: any order (sums only).
 * Out-of-order input throws: it would miscount silently otherwise.
 */
export class SnapshotBuilder {
  private readonly users = new Map<number, UserAcc>();
  private readonly channels = new Map<number, ChannelAcc>();
  private readonly members = new Map<
    string,
    { user: number; channel: number; m: Omit<SnapshotMembership, "user" | "channel"> }
  >();
  private readonly pairs = new Map<string, { a: number; b: number; p: Omit<SnapshotPair, "a" | "b"> }>();
  private readonly hours = new Map<string, { user: number; h: Omit<SnapshotUserHour, "user"> }>();
  private readonly sameDay = new Map<string, { a: number; b: number; count: number }>();
  /** Last day counted per user / channel (activity), per user and per (user, hour) (hours). */
  private readonly userDay = new Map<number, number>();
  private readonly channelDay = new Map<number, number>();
  private readonly userHourDay = new Map<number, number>();
  private readonly hourDay = new Map<string, number>();
  /** The activity row being summed (its key may come again), and the (user, day) group it is in. */
  private pending: { day: number; user: number; channel: number; commits: number } | null = null;
  private group: { day: number; user: number; channels: number[] } | null = null;
  /** Users whose group of the current day is closed: one coming again is out of order. */
  private readonly closedToday = new Set<number>();
  private hoursDay = Number.NEGATIVE_INFINITY;

  constructor(readonly cut: number) {}

  /** An activity row (see the class comment for the order). Rows on or after the cut are skipped. */
  activity(day: number, user: number, channel: number, commits: number): void {
    if (day >= this.cut) return;
    const p = this.pending;
    if (p && p.day === day && p.user === user && p.channel === channel) {
      p.commits += commits;
      return;
    }
    if (p) this.count(p);
    const g = this.group;
    if (g && (day < g.day || (day === g.day && user !== g.user && this.closedToday.has(user)))) {
      throw new Error(`activity out of order: day ${day} user ${user} after day ${g.day} user ${g.user}`);
    }
    if (g && day === g.day && user === g.user && g.channels.includes(channel)) {
      throw new Error(`activity out of order: day ${day} user ${user} channel ${channel} came apart`);
    }
    this.pending = { day, user, channel, commits };
  }

  /** An interaction row, any order; self-interactions are dropped. */
  interaction(day: number, a: number, b: number, count: number): void {
    if (day >= this.cut || a === b) return;
    addWindowed(this.user(a).out, day, this.cut, count);
    addWindowed(this.user(b).in, day, this.cut, count);
    const [x, y] = a < b ? [a, b] : [b, a];
    const key = `${x},${y}`;
    let pair = this.pairs.get(key);
    if (!pair) {
      pair = { a: x, b: y, p: { count: zero(), first: day, last: day } };
      this.pairs.set(key, pair);
    }
    addWindowed(pair.p.count, day, this.cut, count);
    pair.p.first = Math.min(pair.p.first, day);
    pair.p.last = Math.max(pair.p.last, day);
  }

  /** A local-hours row, days ascending. */
  hour(day: number, user: number, hour: number, commits: number): void {
    if (day >= this.cut) return;
    if (day < this.hoursDay) throw new Error(`hours out of order: day ${day} after ${this.hoursDay}`);
    this.hoursDay = day;
    const u = this.user(user);
    if (this.userHourDay.get(user) !== day) {
      this.userHourDay.set(user, day);
      addWindowed(u.hourDays, day, this.cut, 1);
    }
    const key = `${user},${hour}`;
    let h = this.hours.get(key);
    if (!h) {
      h = { user, h: { hour, commits: zero(), days: zero(), last: day } };
      this.hours.set(key, h);
    }
    addWindowed(h.h.commits, day, this.cut, commits);
    if (this.hourDay.get(key) !== day) {
      this.hourDay.set(key, day);
      addWindowed(h.h.days, day, this.cut, 1);
    }
    h.h.last = Math.max(h.h.last, day);
  }

  /** The snapshot of everything fed. */
  finish(name: string, embeddings: EmbeddingArtifact, ids: SnapshotIds): FeatureSnapshot {
    if (this.pending) this.count(this.pending);
    this.pending = null;
    this.closeGroup();
    // Ranks are the order of the ids given (the dataset's integers: data.py `id_sort_key`).
    const userOrder = [...this.users.keys()].sort((a, b) => a - b);
    const channelOrder = [...this.channels.keys()].sort((a, b) => a - b);
    const vector = (v: readonly number[] | undefined): number[] | null => {
      if (!v) return null;
      if (v.length !== embeddings.dims) throw new Error(`embedding of length ${v.length}, expected ${embeddings.dims}`);
      return [...v];
    };
    const byPair = <T extends { a: number; b: number }>(x: T, y: T) => x.a - y.a || x.b - y.b;
    return {
      format: 1,
      dataset: name,
      cut: this.cut,
      dims: embeddings.dims,
      embeddingCut: embeddings.cut ?? null,
      users: userOrder.map((u, rank) => {
        const acc = this.users.get(u) as UserAcc;
        return { id: ids.user(u), rank, ...acc, vector: vector(embeddings.users[String(u)]) };
      }),
      channels: channelOrder.map((c, rank) => {
        const acc = this.channels.get(c) as ChannelAcc;
        return { id: ids.channel(c), rank, ...acc, vector: vector(embeddings.channels[String(c)]) };
      }),
      memberships: [...this.members.values()]
        .sort((x, y) => x.user - y.user || x.channel - y.channel)
        .map(({ user: u, channel: c, m }) => ({ user: ids.user(u), channel: ids.channel(c), ...m })),
      pairs: [...this.pairs.values()].sort(byPair).map(({ a, b, p }) => ({ a: ids.user(a), b: ids.user(b), ...p })),
      sameDay: [...this.sameDay.values()]
        .sort(byPair)
        .map(({ a, b, count }) => ({ a: ids.channel(a), b: ids.channel(b), count })),
      userHours: [...this.hours.values()]
        .sort((x, y) => x.user - y.user || x.h.hour - y.h.hour)
        .map(({ user: u, h }) => ({ user: ids.user(u), ...h })),
    };
  }

  private user(u: number): UserAcc {
    let acc = this.users.get(u);
    if (!acc) {
      acc = { activeDays: zero(), first: null, last: null, out: zero(), in: zero(), hourDays: zero() };
      this.users.set(u, acc);
    }
    return acc;
  }

  /** One (day, user, channel) row, its duplicates summed. */
  private count(r: { day: number; user: number; channel: number; commits: number }): void {
    const cut = this.cut;
    const u = this.user(r.user);
    u.first = minDay(u.first, r.day);
    u.last = maxDay(u.last, r.day);
    if (this.userDay.get(r.user) !== r.day) {
      this.userDay.set(r.user, r.day);
      addWindowed(u.activeDays, r.day, cut, 1);
    }
    let ch = this.channels.get(r.channel);
    if (!ch) {
      ch = { activeDays: zero(), first: null, last: null };
      this.channels.set(r.channel, ch);
    }
    ch.first = minDay(ch.first, r.day);
    ch.last = maxDay(ch.last, r.day);
    if (this.channelDay.get(r.channel) !== r.day) {
      this.channelDay.set(r.channel, r.day);
      addWindowed(ch.activeDays, r.day, cut, 1);
    }
    const pairKey = `${r.user},${r.channel}`;
    let m = this.members.get(pairKey);
    if (!m) {
      m = { user: r.user, channel: r.channel, m: { days: zero(), commits: zero(), first: r.day, last: r.day } };
      this.members.set(pairKey, m);
    }
    addWindowed(m.m.days, r.day, cut, 1);
    addWindowed(m.m.commits, r.day, cut, r.commits);
    m.m.first = Math.min(m.m.first, r.day);
    m.m.last = Math.max(m.m.last, r.day);
    // same-day co-activity (365 days): every (user, day) adds 1 to each pair of its channels
    const g = this.group;
    if (g && g.day === r.day && g.user === r.user) g.channels.push(r.channel);
    else {
      this.closeGroup();
      if (g && g.day !== r.day) this.closedToday.clear();
      if (g && g.day === r.day) this.closedToday.add(g.user);
      this.group = { day: r.day, user: r.user, channels: [r.channel] };
    }
  }

  private closeGroup(): void {
    const g = this.group;
    if (!g || g.day < this.cut - SAME_DAY_WINDOW) return;
    const list = [...g.channels].sort((x, y) => x - y);
    for (let i = 0; i < list.length; i++) {
      for (let j = i; j < list.length; j++) {
        const a = list[i] as number;
        const b = list[j] as number;
        const key = `${a},${b}`;
        const s = this.sameDay.get(key);
        if (s) s.count++;
        else this.sameDay.set(key, { a, b, count: 1 });
      }
    }
  }
}

/**
 * The snapshot of `ds` at `cut`, from rows with day < cut only. Mirrors
 * features.py `Tables`: the same windows, the same dedup, the same drops.
 * `embeddings` are keyed by the dataset's ids (String(id)).
 */
export function buildSnapshot(
  ds: CollabDataset,
  cut: number,
  embeddings: EmbeddingArtifact,
  ids: SnapshotIds = { user: userIdOf, channel: channelIdOf },
): FeatureSnapshot {
  const b = new SnapshotBuilder(cut);
  const activity = ds.activity
    .filter((a) => a.day < cut)
    .sort((x, y) => x.day - y.day || x.user - y.user || x.channel - y.channel);
  for (const a of activity) b.activity(a.day, a.user, a.channel, a.commits);
  for (const i of ds.interactions) b.interaction(i.day, i.user, i.other, i.count);
  const hours = ds.hours.filter((h) => h.day < cut).sort((x, y) => x.day - y.day);
  for (const h of hours) b.hour(h.day, h.user, h.hour, h.commits);
  return b.finish(ds.name, embeddings, ids);
}

/** A short description for logs: the cut and the row counts. */
export function describeSnapshot(s: FeatureSnapshot): string {
  return (
    `${s.dataset}@${isoOf(s.cut)}: ${s.users.length} users, ${s.channels.length} channels, ` +
    `${s.memberships.length} memberships, ${s.pairs.length} pairs, ${s.sameDay.length} same-day, ` +
    `${s.userHours.length} user-hours`
  );
}
