import type { CollabDataset } from "../src/datasets/collab";
import { channelIdOf, userIdOf } from "../src/datasets/collab";

// Replayed ground truth for the loop (scripts/replay-loop.ts): what each user
// really did in the weeks after the cut, from the dataset. These are not live
// users' clicks: a served item counts as clicked when the dataset shows the
// user joined that channel (first activity there) / first interacted with
// that person inside the window.

export type ReplaySource = "channel_browser" | "composer_dm";

export interface ReplayTruth {
  /** Users with activity in the 365 days before the cut, in a stable hashed order. */
  activeUsers: string[];
  /** source -> user -> items they newly joined / first interacted with in [cut, cut + weeks). */
  positives: Record<ReplaySource, Map<string, Set<string>>>;
}

export function replayTruth(ds: CollabDataset, cut: number, weeks: number): ReplayTruth {
  const end = cut + weeks * 7;
  const active = new Set<number>();
  const exists = new Set<number>();
  const firstJoin = new Map<string, number>(); // "user:channel" -> first activity day
  for (const a of ds.activity) {
    if (a.day < cut) {
      exists.add(a.user);
      if (a.day >= cut - 365) active.add(a.user);
    }
    const k = `${a.user}:${a.channel}`;
    const d = firstJoin.get(k);
    if (d === undefined || a.day < d) firstJoin.set(k, a.day);
  }
  const firstPair = new Map<string, number>(); // "lo:hi" -> first interaction day (either direction)
  for (const i of ds.interactions) {
    if (i.user === i.other) continue;
    if (i.day < cut) {
      exists.add(i.user);
      exists.add(i.other);
    }
    const k = i.user < i.other ? `${i.user}:${i.other}` : `${i.other}:${i.user}`;
    const d = firstPair.get(k);
    if (d === undefined || i.day < d) firstPair.set(k, i.day);
  }
  const channels = new Map<string, Set<string>>();
  for (const [k, d] of firstJoin) {
    if (d < cut || d >= end) continue;
    const [u, c] = k.split(":").map(Number) as [number, number];
    if (!active.has(u)) continue;
    add(channels, userIdOf(u), channelIdOf(c));
  }
  const people = new Map<string, Set<string>>();
  for (const [k, d] of firstPair) {
    if (d < cut || d >= end) continue;
    const [a, b] = k.split(":").map(Number) as [number, number];
    // Only people who are in the team at the cut can be recommended.
    if (!exists.has(a) || !exists.has(b)) continue;
    if (active.has(a)) add(people, userIdOf(a), userIdOf(b));
    if (active.has(b)) add(people, userIdOf(b), userIdOf(a));
  }
  const activeUsers = [...active].sort((x, y) => mix(x) - mix(y) || x - y).map(userIdOf);
  return { activeUsers, positives: { channel_browser: channels, composer_dm: people } };
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (s) s.add(v);
  else m.set(k, new Set([v]));
}

/** A stable pseudo-random order of user ids (so --users N is a spread sample, not the oldest N). */
function mix(id: number): number {
  let x = (id ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}
