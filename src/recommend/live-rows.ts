import { type CollabDataset, channelIdOf, userIdOf } from "../datasets/collab";
import { type FeatureSnapshot, SnapshotBuilder } from "./features/snapshot";

// The one definition of "a platform event is a row of the collaboration
// dataset" (training/FEATURES.md, "Live traffic"). The offline pipeline reads
// activity (day, user, channel, commits), interactions (day, user, other,
// kind, count) and hours (day, user, local_hour, commits) rows; the platform's
// own events are turned into exactly those rows here, aggregated in the
// team's ledger (durable-objects/rec-store/live-ledger.ts) and built into a
// feature snapshot by the same code that builds an imported one
// (features/snapshot.ts buildSnapshot). Pure: no bindings, no I/O.
//
// | event                                   | rows                                                     |
// | a message in a channel                  | activity (day, poster, channel, commits 1);             |
// |                                         | hours (day, poster, local hour, commits 1);              |
// |                                         | interaction (day, poster, each mentioned user, "mention", 1) |
// |                                         | and (…, the author replied to, "reply", 1)               |
// | a direct message                        | hours (day, poster, local hour, 1); interaction          |
// |                                         | (day, poster, each recipient, "dm", 1); no activity row  |
// | a user joins a channel                  | activity (day, user, channel, commits 0)                 |
// | a reaction to someone's message         | interaction (day, reactor, author, "reaction", 1)        |
// | an invite: someone adds people to a     | interaction (day, inviter, each added user, "invite", 1) |
// |   channel (at most MAX_INVITE_TARGETS)  |   (the added users' joins are join events)               |
// | a recommendation click, a leave         | nothing (FEATURES.md says why)                           |
//
// "commits" counts messages for live traffic. Days are UTC days (as in the
// dataset); the local hour is in the event's `tz` (set by the producer, or by
// the consumer from the poster's profile), else UTC.

/** Event format version; a consumer drops any other (logged). */
export const FEATURE_EVENT_VERSION = 1;

/** Platform ids: what the directory accepts (and never a space: feature row keys join ids with one). */
const ID = /^[A-Za-z0-9_-]{1,40}$/;
/** Event ids are the producer's (idempotency keys): printable, no spaces. */
const EVENT_ID = /^[A-Za-z0-9_:.@-]{1,200}$/;
/** Whether a producer's id is one an event may carry. */
export const isEventId = (v: string): boolean => EVENT_ID.test(v);
export const MAX_EVENT_TARGETS = 100;
/**
 * An add of more people than this at once is provisioning (an admin filling
 * a channel), not an invite between colleagues: it counts as joins only, so
 * one bulk add does not make its author everyone's partner.
 */
export const MAX_INVITE_TARGETS = 20;

interface EventBase {
  v: 1;
  /** Unique per event: the same event delivered again is counted once (at-least-once delivery). */
  id: string;
  team: string;
  /** The poster / the user who joined. */
  user: string;
  /** Milliseconds since the epoch, when the platform accepted it. */
  ts: number;
}

export interface MessageFeatureEvent extends EventBase {
  type: "message";
  channel: string;
  mentions: string[];
  /** The author of the message this one replies to, when it is a reply. */
  replyTo?: string;
  /** The poster's IANA time zone, when the producer has it (else the hour is UTC's). */
  tz?: string;
}

export interface DirectFeatureEvent extends EventBase {
  type: "direct";
  /** The other members of the DM or group DM. */
  to: string[];
  tz?: string;
}

export interface JoinFeatureEvent extends EventBase {
  type: "join";
  channel: string;
}

/** `user` reacted to a message by `to` (the first time with this name: a reaction counts once). */
export interface ReactionFeatureEvent extends EventBase {
  type: "reaction";
  to: string;
}

/** `user` added `to` to `channel` (each added user also has a join event). */
export interface InviteFeatureEvent extends EventBase {
  type: "invite";
  channel: string;
  to: string[];
}

export type FeatureEvent =
  | MessageFeatureEvent
  | DirectFeatureEvent
  | JoinFeatureEvent
  | ReactionFeatureEvent
  | InviteFeatureEvent;

/** Events whose rows include an hours row, so the poster's time zone matters (the consumer looks it up). */
export const hasHour = (e: FeatureEvent): e is MessageFeatureEvent | DirectFeatureEvent =>
  e.type === "message" || e.type === "direct";

export interface LiveActivity {
  day: number;
  user: string;
  channel: string;
  commits: number;
}

export interface LiveInteraction {
  day: number;
  user: string;
  other: string;
  kind: string;
  count: number;
}

export interface LiveHour {
  day: number;
  user: string;
  hour: number;
  commits: number;
}

/** Raw collaboration rows with platform ids: the dataset's three tables. */
export interface LiveRows {
  activity: LiveActivity[];
  interactions: LiveInteraction[];
  hours: LiveHour[];
}

export const emptyRows = (): LiveRows => ({ activity: [], interactions: [], hours: [] });

/** A dataset's rows as a ledger holds them: platform ids (collab.ts `userIdOf`, `channelIdOf`), days as they are. */
export function datasetRows(ds: CollabDataset): LiveRows {
  return {
    activity: ds.activity.map((a) => ({
      day: a.day,
      user: userIdOf(a.user),
      channel: channelIdOf(a.channel),
      commits: a.commits,
    })),
    interactions: ds.interactions.map((i) => ({
      day: i.day,
      user: userIdOf(i.user),
      other: userIdOf(i.other),
      kind: i.kind,
      count: i.count,
    })),
    hours: ds.hours.map((h) => ({ day: h.day, user: userIdOf(h.user), hour: h.hour, commits: h.commits })),
  };
}

/** The UTC day (days since 1970-01-01) of a time in milliseconds. */
export const utcDay = (ms: number): number => Math.floor(ms / 86_400_000);

const hourFormats = new Map<string, Intl.DateTimeFormat>();

/** The local hour (0-23) at `ms` in `tz`; UTC when `tz` is absent or not a time zone this runtime knows. */
export function localHour(ms: number, tz?: string): number {
  if (tz) {
    let f = hourFormats.get(tz);
    if (!f) {
      try {
        f = new Intl.DateTimeFormat("en-US", { timeZone: tz, hour: "numeric", hourCycle: "h23" });
      } catch {
        f = undefined;
      }
      if (f && hourFormats.size < 1000) hourFormats.set(tz, f);
    }
    const hour = f ? Number(f.formatToParts(new Date(ms)).find((p) => p.type === "hour")?.value) : Number.NaN;
    if (Number.isInteger(hour) && hour >= 0 && hour <= 23) return hour;
  }
  return new Date(ms).getUTCHours();
}

/** The rows one event stands for (FEATURES.md "Live traffic"); self-mentions are dropped as the pipeline drops a == b. */
export function eventRows(e: FeatureEvent): LiveRows {
  const day = utcDay(e.ts);
  const rows = emptyRows();
  const interact = (others: readonly string[], kind: string) => {
    for (const other of new Set(others)) {
      if (other !== e.user) rows.interactions.push({ day, user: e.user, other, kind, count: 1 });
    }
  };
  switch (e.type) {
    case "message":
      rows.activity.push({ day, user: e.user, channel: e.channel, commits: 1 });
      rows.hours.push({ day, user: e.user, hour: localHour(e.ts, e.tz), commits: 1 });
      interact(e.mentions, "mention");
      if (e.replyTo) interact([e.replyTo], "reply");
      break;
    case "direct":
      rows.hours.push({ day, user: e.user, hour: localHour(e.ts, e.tz), commits: 1 });
      interact(e.to, "dm");
      break;
    case "join":
      rows.activity.push({ day, user: e.user, channel: e.channel, commits: 0 });
      break;
    // Neither is a message: no activity (commits count messages) and no
    // hours row (hours are when people post); each is one act by one person
    // on another, which is what an interaction row is.
    case "reaction":
      interact([e.to], "reaction");
      break;
    case "invite":
      interact(e.to, "invite");
      break;
  }
  return rows;
}

export type EventCheck = { ok: true; event: FeatureEvent } | { ok: false; reason: string };

/** Whether a value is an id an event may carry (what the directory accepts). */
export const isId = (v: unknown): v is string => typeof v === "string" && ID.test(v);
const ids = (v: unknown): string[] | null =>
  Array.isArray(v) && v.length <= MAX_EVENT_TARGETS && v.every(isId) ? [...v] : null;

/**
 * A queue message's body as an event, or why it is not one. Checked whole: a
 * body that fails here can never succeed, so the consumer drops it (logged)
 * instead of retrying it.
 */
export function parseFeatureEvent(body: unknown): EventCheck {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { ok: false, reason: "not an object" };
  const b = body as Record<string, unknown>;
  if (b.v !== FEATURE_EVENT_VERSION) return { ok: false, reason: `unknown version ${String(b.v)}` };
  if (typeof b.id !== "string" || !EVENT_ID.test(b.id)) return { ok: false, reason: "bad id" };
  if (!isId(b.team)) return { ok: false, reason: "bad team" };
  if (!isId(b.user)) return { ok: false, reason: "bad user" };
  // 2000-01-01 .. 2100-01-01: a time outside is a producer bug, not an event.
  if (typeof b.ts !== "number" || !Number.isInteger(b.ts) || b.ts < 946_684_800_000 || b.ts >= 4_102_444_800_000) {
    return { ok: false, reason: "bad ts" };
  }
  const tz = b.tz === undefined ? undefined : typeof b.tz === "string" && b.tz.length <= 64 ? b.tz : null;
  if (tz === null) return { ok: false, reason: "bad tz" };
  const base = { v: 1 as const, id: b.id, team: b.team, user: b.user, ts: b.ts };
  switch (b.type) {
    case "message": {
      const mentions = ids(b.mentions ?? []);
      if (!isId(b.channel) || !mentions) return { ok: false, reason: "bad message" };
      if (b.replyTo !== undefined && !isId(b.replyTo)) return { ok: false, reason: "bad replyTo" };
      const e: MessageFeatureEvent = { ...base, type: "message", channel: b.channel, mentions };
      if (b.replyTo !== undefined) e.replyTo = b.replyTo as string;
      if (tz !== undefined) e.tz = tz;
      return { ok: true, event: e };
    }
    case "direct": {
      const to = ids(b.to);
      if (!to || to.length === 0) return { ok: false, reason: "bad direct message" };
      const e: DirectFeatureEvent = { ...base, type: "direct", to };
      if (tz !== undefined) e.tz = tz;
      return { ok: true, event: e };
    }
    case "join":
      if (!isId(b.channel)) return { ok: false, reason: "bad join" };
      return { ok: true, event: { ...base, type: "join", channel: b.channel } };
    case "reaction":
      if (!isId(b.to)) return { ok: false, reason: "bad reaction" };
      return { ok: true, event: { ...base, type: "reaction", to: b.to } };
    case "invite": {
      const to = ids(b.to);
      if (!isId(b.channel) || !to || to.length === 0 || to.length > MAX_INVITE_TARGETS) {
        return { ok: false, reason: "bad invite" };
      }
      return { ok: true, event: { ...base, type: "invite", channel: b.channel, to } };
    }
    default:
      return { ok: false, reason: `unknown type ${String(b.type).slice(0, 40)}` };
  }
}

// --- ids: the import path's order ----------------------------------------------

/**
 * Ids in the order "ties by the smaller id" means (FEATURES.md section 1: ids
 * compare as integers when every id of that kind is an integer, otherwise as
 * strings). A platform id `U<n>` / `C<n>` is how an import names dataset id n
 * (src/datasets/collab.ts userIdOf, channelIdOf), so when every id of a kind
 * is one letter prefix and a canonical integer, they are ordered by n: the
 * order the import path gives the same rows. Otherwise by string (code unit)
 * order, as Python's sorted() orders ASCII ids.
 */
export function orderIds(list: Iterable<string>): string[] {
  const all = [...new Set(list)];
  const parsed = all.map((id) => /^([A-Za-z]*)(0|[1-9][0-9]{0,14})$/.exec(id));
  const prefix = parsed[0]?.[1];
  if (parsed.every((m) => m !== null && m[1] === prefix)) {
    const n = (id: string) => Number(id.slice(prefix?.length ?? 0));
    return all.sort((a, b) => n(a) - n(b));
  }
  return all.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

// --- the snapshot -------------------------------------------------------------

/** Embedding vectors by platform id (trained offline; the live path never recomputes the SVD). */
export interface LiveVectors {
  dims: number;
  cut?: string;
  users: ReadonlyMap<string, readonly number[]>;
  channels: ReadonlyMap<string, readonly number[]>;
}

/**
 * The most ledger rows (imported history and live events) a full live build
 * reads. The build streams them a page at a time (live-ledger.ts
 * ledgerSource), so memory does not grow with them; time does. Measured in
 * Node, rails-collab's people and channels over 12 times its 18 years
 * (2,089,524 rows) built in 2.2 s. `REC_LIVE_MAX_ROWS` may lower it, never
 * raise it.
 */
export const LIVE_BUILD_MAX_ROWS = 2_000_000;

/**
 * The most feature rows (people, channels, memberships, pairs, hours: about
 * what snapshot.ts builds) a full live build may make: the snapshot and its
 * rows are held in the team's object, whose isolate has 128 MB. Measured in
 * Node with the heap capped at 90 MB (the rest left for the code and the
 * tables being served): rails-collab with twice its people (153,468 feature
 * rows) builds, three times (about 230,000) runs out of memory.
 */
export const LIVE_SNAPSHOT_MAX_ROWS = 130_000;

/**
 * A ledger one full build cannot take: `rows` (of which `live` are events)
 * against `max`, or about `features` snapshot rows against `maxFeatures`.
 */
export interface LedgerTooLarge {
  rows: number;
  live: number;
  max: number;
  features: number;
  maxFeatures: number;
}

/** What is too large, in words. */
export function tooLargeReason(t: LedgerTooLarge): string {
  return t.rows > t.max
    ? `a ledger of ${t.rows} rows (${t.live} of them live events) is more than the ${t.max} a full live feature build reads`
    : `a snapshot of about ${t.features} feature rows is more than the ${t.maxFeatures} a full live feature build holds in memory`;
}

/**
 * A ledger as a full build reads it, so it never has to be held whole: the
 * ids first, then the rows in the order SnapshotBuilder takes (activity by
 * day, then user, then channel; hours by day; interactions in any order).
 */
export interface LedgerSource {
  /** Every user id (activity, both sides of interactions, hours); repeats allowed. */
  users(): Iterable<string>;
  /** Every channel id of the activity; repeats allowed. */
  channels(): Iterable<string>;
  activity(): Iterable<LiveActivity>;
  interactions(): Iterable<LiveInteraction>;
  hours(): Iterable<LiveHour>;
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** The order a ledger table's primary key gives (SQLite compares TEXT by code unit, as `<` does for these ids). */
export const activityOrder = (x: LiveActivity, y: LiveActivity) =>
  x.day - y.day || byString(x.user, y.user) || byString(x.channel, y.channel);
export const hoursOrder = (x: LiveHour, y: LiveHour) => x.day - y.day || byString(x.user, y.user) || x.hour - y.hour;

/** Rows in memory as a LedgerSource (sorted copies). */
export function rowsSource(rows: LiveRows): LedgerSource {
  return {
    users: () => [
      ...rows.activity.map((r) => r.user),
      ...rows.interactions.flatMap((r) => [r.user, r.other]),
      ...rows.hours.map((r) => r.user),
    ],
    channels: () => rows.activity.map((r) => r.channel),
    activity: () => [...rows.activity].sort(activityOrder),
    interactions: () => rows.interactions,
    hours: () => [...rows.hours].sort(hoursOrder),
  };
}

/**
 * The feature snapshot of raw rows with platform ids at `cut`: the rows are
 * numbered in orderIds order and fed to the import path's builder
 * (features/snapshot.ts SnapshotBuilder, as buildSnapshot does), so the live
 * path and the import path give the same snapshot for the same rows
 * (test/node/live-features.test.ts checks it on rails-collab).
 */
export function buildLiveSnapshot(
  name: string,
  rows: LiveRows,
  cut: number,
  vectors: LiveVectors = { dims: 0, users: new Map(), channels: new Map() },
): FeatureSnapshot {
  return buildLiveSnapshotFrom(name, rowsSource(rows), cut, vectors);
}

/** buildLiveSnapshot over a source read row by row (the store's cursor over its ledger). */
export function buildLiveSnapshotFrom(
  name: string,
  source: LedgerSource,
  cut: number,
  vectors: LiveVectors = { dims: 0, users: new Map(), channels: new Map() },
): FeatureSnapshot {
  const userIds = orderIds(source.users());
  const channelIds = orderIds(source.channels());
  const ui = new Map(userIds.map((id, i) => [id, i]));
  const ci = new Map(channelIds.map((id, i) => [id, i]));
  const u = (id: string) => {
    const i = ui.get(id);
    if (i === undefined) throw new Error(`ledger row names user ${id}, not among the ledger's users`);
    return i;
  };
  const c = (id: string) => {
    const i = ci.get(id);
    if (i === undefined) throw new Error(`ledger row names channel ${id}, not among the ledger's channels`);
    return i;
  };
  const keyed = (ids: readonly string[], m: ReadonlyMap<string, readonly number[]>) => {
    const out: Record<string, readonly number[]> = {};
    ids.forEach((id, i) => {
      const v = m.get(id);
      if (v && v.length === vectors.dims) out[String(i)] = v;
    });
    return out;
  };
  const b = new SnapshotBuilder(cut);
  for (const r of source.activity()) b.activity(r.day, u(r.user), c(r.channel), r.commits);
  for (const r of source.interactions()) b.interaction(r.day, u(r.user), u(r.other), r.count);
  for (const r of source.hours()) b.hour(r.day, u(r.user), r.hour, r.commits);
  return b.finish(
    name,
    {
      dims: vectors.dims,
      ...(vectors.cut ? { cut: vectors.cut } : {}),
      users: keyed(userIds, vectors.users),
      channels: keyed(channelIds, vectors.channels),
    },
    { user: (i) => userIds[i] as string, channel: (i) => channelIds[i] as string },
  );
}

/**
 * Rows summed per key, as the ledger keeps them: activity per (day, user,
 * channel), interactions per (day, user, other, kind), hours per (day, user,
 * hour). buildSnapshot sums and counts distinct days the same either way, so
 * aggregating first changes no feature (the parity test checks it).
 */
export function aggregateRows(batches: Iterable<LiveRows>): LiveRows {
  const activity = new Map<string, LiveActivity>();
  const interactions = new Map<string, LiveInteraction>();
  const hours = new Map<string, LiveHour>();
  for (const b of batches) {
    for (const r of b.activity) {
      const k = `${r.day} ${r.user} ${r.channel}`;
      const known = activity.get(k);
      if (known) known.commits += r.commits;
      else activity.set(k, { ...r });
    }
    for (const r of b.interactions) {
      const k = `${r.day} ${r.user} ${r.other} ${r.kind}`;
      const known = interactions.get(k);
      if (known) known.count += r.count;
      else interactions.set(k, { ...r });
    }
    for (const r of b.hours) {
      const k = `${r.day} ${r.user} ${r.hour}`;
      const known = hours.get(k);
      if (known) known.commits += r.commits;
      else hours.set(k, { ...r });
    }
  }
  return { activity: [...activity.values()], interactions: [...interactions.values()], hours: [...hours.values()] };
}

/** The cut a ledger's snapshot is built at: the day after its latest row (null for no rows). */
export function liveCut(rows: LiveRows): number | null {
  let last = Number.NEGATIVE_INFINITY;
  for (const r of rows.activity) last = Math.max(last, r.day);
  for (const r of rows.interactions) last = Math.max(last, r.day);
  for (const r of rows.hours) last = Math.max(last, r.day);
  return Number.isFinite(last) ? last + 1 : null;
}
