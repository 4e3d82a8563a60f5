import type { FeatureRow } from "./feature-store";
import { snapshotToRows } from "./features/rows";
import { buildLiveSnapshot, type LiveRows, type LiveVectors, orderIds } from "./live-rows";

// An incremental live build: the rows of a live snapshot that the events
// since the last build changed, without reading the whole ledger.
//
// Every feature row is a sum over ledger rows of one entity or pair (the
// windows are fixed by the cut), so while the cut stays the same, new rows
// change only:
//   user u, u's memberships, u's pairs, u's hours  ← rows naming u
//   channel c                                      ← activity in c
//   same-day pairs of c                            ← (user, day) groups with c in the 365-day window
// The ledger only grows between full builds (a history upload rebuilds in
// full), so rows are replaced or added, never removed. Recomputing a dirty
// entity's rows from *all* its ledger rows (rather than adding the delta to
// the stored row) keeps the patch idempotent: a build that crashed before it
// committed is simply done again.
//
// What stays a full build: a new cut (every window moves), new embedding
// vectors, or a new id that would sort before an existing one (ranks are
// positions in id order, so every later row would move).

/** Users and channels whose ledger rows changed since the last build. */
export interface DirtySet {
  users: ReadonlySet<string>;
  channels: ReadonlySet<string>;
}

/** The users and channels that ledger rows name: what they make dirty. */
export function dirtyOf(rows: LiveRows): { users: Set<string>; channels: Set<string> } {
  const users = new Set<string>();
  const channels = new Set<string>();
  for (const r of rows.activity) {
    users.add(r.user);
    channels.add(r.channel);
  }
  for (const r of rows.interactions) users.add(r.user).add(r.other);
  for (const r of rows.hours) users.add(r.user);
  return { users, channels };
}

// The ledger rows an incremental build reads (the store selects them in SQL,
// live-ledger.ts `ledgerRowsAround`; the node test states the rule in JS):
// every row naming a dirty user (activity, interactions either way, hours);
// every activity row of a (user, day) in the same-day window on which a
// dirty channel was active (its same-day pairs: features/snapshot.ts counts
// them over the last SAME_DAY_WINDOW days; this includes all the channel's
// own rows there); and,
// before that window, one activity row per day of a dirty channel (its row
// counts distinct active days; the other rows would add to people's and
// memberships' rows only, and those of people not dirty are not taken).

/** Ranks of ids in id order, extended by new ids; null when a new id would move an existing one. */
export function extendOrder(existing: Iterable<string>, added: Iterable<string>): Map<string, number> | null {
  const before = orderIds(existing);
  const after = orderIds([...before, ...added]);
  for (let i = 0; i < before.length; i++) if (after[i] !== before[i]) return null;
  return new Map(after.map((id, i) => [id, i]));
}

export interface LivePatch {
  /** Rows to write over the stored ones (kind, key); never the meta row. */
  rows: FeatureRow[];
  users: number;
  channels: number;
}

/**
 * The rows that `dirty` changed, built from `around` (the ledger rows the
 * store selected for them) at the unchanged `cut`, with ranks from the whole
 * snapshot's id order (`existing` ids plus the dirty ones). Null when the
 * order would move an existing id: then the caller builds in full.
 */
export function livePatch(
  around: LiveRows,
  cut: number,
  vectors: LiveVectors,
  dirty: DirtySet,
  existing: { users: readonly string[]; channels: readonly string[] },
): LivePatch | null {
  const sub = buildLiveSnapshot("live", around, cut, vectors);
  // An id in the snapshot's tables: the dirty ones the sub-build holds (a
  // dirty user with only self-interactions is in no table, as in a full build).
  const userRank = extendOrder(
    existing.users,
    sub.users.map((u) => u.id).filter((id) => dirty.users.has(id)),
  );
  const channelRank = extendOrder(
    existing.channels,
    sub.channels.map((c) => c.id).filter((id) => dirty.channels.has(id)),
  );
  if (!userRank || !channelRank) return null;
  // The sub-build orders its own ids; pair rows put the smaller rank first,
  // so it must order them as the whole snapshot does.
  const inOrder = (ids: readonly string[], rank: ReadonlyMap<string, number>) =>
    ids.every((id, i) => i === 0 || (rank.get(ids[i - 1] as string) ?? -1) < (rank.get(id) ?? -1));
  const relevantUsers = sub.users.map((u) => u.id).filter((id) => userRank.has(id));
  const relevantChannels = sub.channels.map((c) => c.id).filter((id) => channelRank.has(id));
  if (!inOrder(relevantUsers, userRank) || !inOrder(relevantChannels, channelRank)) return null;
  const mine = {
    ...sub,
    users: sub.users.filter((u) => dirty.users.has(u.id)).map((u) => ({ ...u, rank: userRank.get(u.id) as number })),
    channels: sub.channels
      .filter((c) => dirty.channels.has(c.id))
      .map((c) => ({ ...c, rank: channelRank.get(c.id) as number })),
    memberships: sub.memberships.filter((m) => dirty.users.has(m.user)),
    pairs: sub.pairs.filter((p) => dirty.users.has(p.a) || dirty.users.has(p.b)),
    sameDay: sub.sameDay.filter((s) => dirty.channels.has(s.a) || dirty.channels.has(s.b)),
    userHours: sub.userHours.filter((h) => dirty.users.has(h.user)),
  };
  return {
    rows: snapshotToRows(mine).filter((r) => r.kind !== "meta"),
    users: userRank.size,
    channels: channelRank.size,
  };
}
