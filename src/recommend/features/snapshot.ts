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

/** Adds `v` to every window that holds `day` (T - w <= day < T). */
function addWindowed(into: Windowed, day: number, cut: number, v: number): void {
  for (let w = 0; w < WINDOWS.length; w++) if (inWindow(day, cut, w)) into[w] = (into[w] as number) + v;
}

const minDay = (a: number | null, d: number) => (a === null || d < a ? d : a);
const maxDay = (a: number | null, d: number) => (a === null || d > a ? d : a);

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
  // --- activity, deduplicated to one row per (day, user, channel)
  const dedup = new Map<string, { day: number; user: number; channel: number; commits: number }>();
  for (const a of ds.activity) {
    if (a.day >= cut) continue;
    const key = `${a.day},${a.user},${a.channel}`;
    const known = dedup.get(key);
    if (known) known.commits += a.commits;
    else dedup.set(key, { day: a.day, user: a.user, channel: a.channel, commits: a.commits });
  }
  type UserAcc = Pick<SnapshotUser, "activeDays" | "first" | "last" | "out" | "in" | "hourDays">;
  const users = new Map<number, UserAcc>();
  const user = (u: number): UserAcc => {
    let acc = users.get(u);
    if (!acc) {
      acc = { activeDays: zero(), first: null, last: null, out: zero(), in: zero(), hourDays: zero() };
      users.set(u, acc);
    }
    return acc;
  };
  const channels = new Map<number, Pick<SnapshotChannel, "activeDays" | "first" | "last">>();
  const members = new Map<string, { user: number; channel: number; m: Omit<SnapshotMembership, "user" | "channel"> }>();
  const userDays = new Set<string>();
  const channelDays = new Set<string>();
  // (user, day) -> channels active that day, in the 365-day window
  const sameDayGroups = new Map<string, number[]>();
  for (const r of dedup.values()) {
    const u = user(r.user);
    u.first = minDay(u.first, r.day);
    u.last = maxDay(u.last, r.day);
    if (!userDays.has(`${r.user},${r.day}`)) {
      userDays.add(`${r.user},${r.day}`);
      addWindowed(u.activeDays, r.day, cut, 1);
    }
    let ch = channels.get(r.channel);
    if (!ch) {
      ch = { activeDays: zero(), first: null, last: null };
      channels.set(r.channel, ch);
    }
    ch.first = minDay(ch.first, r.day);
    ch.last = maxDay(ch.last, r.day);
    if (!channelDays.has(`${r.channel},${r.day}`)) {
      channelDays.add(`${r.channel},${r.day}`);
      addWindowed(ch.activeDays, r.day, cut, 1);
    }
    const pairKey = `${r.user},${r.channel}`;
    let m = members.get(pairKey);
    if (!m) {
      m = { user: r.user, channel: r.channel, m: { days: zero(), commits: zero(), first: r.day, last: r.day } };
      members.set(pairKey, m);
    }
    addWindowed(m.m.days, r.day, cut, 1);
    addWindowed(m.m.commits, r.day, cut, r.commits);
    m.m.first = Math.min(m.m.first, r.day);
    m.m.last = Math.max(m.m.last, r.day);
    if (r.day >= cut - 365) {
      const g = `${r.user},${r.day}`;
      const list = sameDayGroups.get(g);
      if (list) list.push(r.channel);
      else sameDayGroups.set(g, [r.channel]);
    }
  }

  // --- interactions: undirected pairs, self-interactions dropped
  const pairs = new Map<string, { a: number; b: number; p: Omit<SnapshotPair, "a" | "b"> }>();
  for (const i of ds.interactions) {
    if (i.day >= cut || i.user === i.other) continue;
    addWindowed(user(i.user).out, i.day, cut, i.count);
    addWindowed(user(i.other).in, i.day, cut, i.count);
    const [a, b] = i.user < i.other ? [i.user, i.other] : [i.other, i.user];
    const key = `${a},${b}`;
    let p = pairs.get(key);
    if (!p) {
      p = { a, b, p: { count: zero(), first: i.day, last: i.day } };
      pairs.set(key, p);
    }
    addWindowed(p.p.count, i.day, cut, i.count);
    p.p.first = Math.min(p.p.first, i.day);
    p.p.last = Math.max(p.p.last, i.day);
  }

  // --- local hours
  const hours = new Map<string, { user: number; h: Omit<SnapshotUserHour, "user"> }>();
  const hourDays = new Set<string>();
  const userHourDays = new Set<string>();
  for (const r of ds.hours) {
    if (r.day >= cut) continue;
    const u = user(r.user);
    if (!userHourDays.has(`${r.user},${r.day}`)) {
      userHourDays.add(`${r.user},${r.day}`);
      addWindowed(u.hourDays, r.day, cut, 1);
    }
    const key = `${r.user},${r.hour}`;
    let h = hours.get(key);
    if (!h) {
      h = { user: r.user, h: { hour: r.hour, commits: zero(), days: zero(), last: r.day } };
      hours.set(key, h);
    }
    addWindowed(h.h.commits, r.day, cut, r.commits);
    if (!hourDays.has(`${r.user},${r.hour},${r.day}`)) {
      hourDays.add(`${r.user},${r.hour},${r.day}`);
      addWindowed(h.h.days, r.day, cut, 1);
    }
    h.h.last = Math.max(h.h.last, r.day);
  }

  // --- same-day co-activity (365 days): every (user, day) adds 1 to each pair of its channels
  const sameDay = new Map<string, { a: number; b: number; count: number }>();
  for (const list of sameDayGroups.values()) {
    list.sort((x, y) => x - y);
    for (let i = 0; i < list.length; i++) {
      for (let j = i; j < list.length; j++) {
        const a = list[i] as number;
        const b = list[j] as number;
        const key = `${a},${b}`;
        const s = sameDay.get(key);
        if (s) s.count++;
        else sameDay.set(key, { a, b, count: 1 });
      }
    }
  }

  // The dataset's ids are integers: rank = numeric order, as data.py `id_sort_key`.
  const userOrder = [...users.keys()].sort((a, b) => a - b);
  const channelOrder = [...channels.keys()].sort((a, b) => a - b);
  const vector = (v: readonly number[] | undefined): number[] | null => {
    if (!v) return null;
    if (v.length !== embeddings.dims) throw new Error(`embedding of length ${v.length}, expected ${embeddings.dims}`);
    return [...v];
  };
  const byPair = <T extends { a: number; b: number }>(x: T, y: T) => x.a - y.a || x.b - y.b;
  return {
    format: 1,
    dataset: ds.name,
    cut,
    dims: embeddings.dims,
    embeddingCut: embeddings.cut ?? null,
    users: userOrder.map((u, rank) => {
      const acc = users.get(u) as UserAcc;
      return { id: ids.user(u), rank, ...acc, vector: vector(embeddings.users[String(u)]) };
    }),
    channels: channelOrder.map((c, rank) => {
      const acc = channels.get(c) as { activeDays: Windowed; first: number | null; last: number | null };
      return { id: ids.channel(c), rank, ...acc, vector: vector(embeddings.channels[String(c)]) };
    }),
    memberships: [...members.values()]
      .sort((x, y) => x.user - y.user || x.channel - y.channel)
      .map(({ user: u, channel: c, m }) => ({ user: ids.user(u), channel: ids.channel(c), ...m })),
    pairs: [...pairs.values()].sort(byPair).map(({ a, b, p }) => ({ a: ids.user(a), b: ids.user(b), ...p })),
    sameDay: [...sameDay.values()]
      .sort(byPair)
      .map(({ a, b, count }) => ({ a: ids.channel(a), b: ids.channel(b), count })),
    userHours: [...hours.values()]
      .sort((x, y) => x.user - y.user || x.h.hour - y.h.hour)
      .map(({ user: u, h }) => ({ user: ids.user(u), ...h })),
  };
}

/** A short description for logs: the cut and the row counts. */
export function describeSnapshot(s: FeatureSnapshot): string {
  return (
    `${s.dataset}@${isoOf(s.cut)}: ${s.users.length} users, ${s.channels.length} channels, ` +
    `${s.memberships.length} memberships, ${s.pairs.length} pairs, ${s.sameDay.length} same-day, ` +
    `${s.userHours.length} user-hours`
  );
}
