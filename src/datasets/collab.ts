// A collaboration dataset in the rails-collab format (datasets/rails-collab/
// README.md): people, places and their daily activity, person-to-person
// interactions and local hours. This module reads its rows and answers what
// a team looks like at a cut date: who exists, which channels, who is a
// member of what. Everything is a pure function of the rows and the cut, so
// the importer, the feature store and the tests agree.

export interface ActivityRow {
  day: number;
  user: number;
  channel: number;
  commits: number;
  files: number;
}

export interface InteractionRow {
  day: number;
  user: number;
  other: number;
  kind: string;
  count: number;
}

export interface HourRow {
  day: number;
  user: number;
  hour: number;
  commits: number;
}

export interface ChannelRow {
  channel: number;
  name: string;
  firstDay: number;
}

export interface CollabDataset {
  name: string;
  channels: ChannelRow[];
  activity: ActivityRow[];
  interactions: InteractionRow[];
  hours: HourRow[];
}

/** Days since 1970-01-01 (UTC) of an ISO date. */
export function dayOf(iso: string): number {
  const t = Date.parse(`${iso}T00:00:00Z`);
  if (!Number.isFinite(t) || !/^\d{4}-\d{2}-\d{2}$/.test(iso)) throw new Error(`not an ISO date: "${iso}"`);
  return Math.round(t / 86_400_000);
}

export function isoOf(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

/** Parses one CSV file's text (header row first; fields never quoted in this format). */
export function parseCsv(text: string, expected: readonly string[]): string[][] {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = lines.shift()?.split(",") ?? [];
  if (expected.some((col, i) => header[i] !== col)) {
    throw new Error(`expected columns ${expected.join(",")}, got ${header.join(",")}`);
  }
  return lines.map((l, n) => {
    const cells = l.split(",");
    if (cells.length !== expected.length)
      throw new Error(`line ${n + 2}: ${cells.length} fields, expected ${expected.length}`);
    return cells;
  });
}

const int = (s: string, what: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n)) throw new Error(`${what} is not an integer: "${s}"`);
  return n;
};

export function readDataset(
  name: string,
  files: { channels: string; activity: string; interactions: string; hours: string },
): CollabDataset {
  return {
    name,
    channels: parseCsv(files.channels, ["channel_id", "name", "first_day"]).map(([c, n, d]) => ({
      channel: int(c ?? "", "channel_id"),
      name: n ?? "",
      firstDay: dayOf(d ?? ""),
    })),
    activity: parseCsv(files.activity, ["day", "user_id", "channel_id", "commits", "files"]).map(([d, u, c, k, f]) => ({
      day: dayOf(d ?? ""),
      user: int(u ?? "", "user_id"),
      channel: int(c ?? "", "channel_id"),
      commits: int(k ?? "", "commits"),
      files: int(f ?? "", "files"),
    })),
    interactions: parseCsv(files.interactions, ["day", "user_id", "other_user_id", "kind", "count"]).map(
      ([d, u, o, kind, n]) => ({
        day: dayOf(d ?? ""),
        user: int(u ?? "", "user_id"),
        other: int(o ?? "", "other_user_id"),
        kind: kind ?? "",
        count: int(n ?? "", "count"),
      }),
    ),
    hours: parseCsv(files.hours, ["day", "user_id", "local_hour", "commits"]).map(([d, u, h, k]) => ({
      day: dayOf(d ?? ""),
      user: int(u ?? "", "user_id"),
      hour: int(h ?? "", "local_hour"),
      commits: int(k ?? "", "commits"),
    })),
  };
}

/** Platform ids for dataset ids: stable, so a re-import and the feature store agree. */
export const userIdOf = (u: number) => `U${u}`;
export const channelIdOf = (c: number) => `C${c}`;

/** A channel name the directory accepts (a-z 0-9 _ -, at most 80), from a place's path. */
export function channelNameOf(path: string, channel: number): string {
  const base = path
    .toLowerCase()
    .replace(/[/.\s]+/g, "-")
    .replace(/[^a-z0-9_-]/g, "_")
    .replace(/^-+|-+$/g, "");
  const suffix = `-${channel}`;
  return `${(base || "place").slice(0, 80 - suffix.length)}${suffix}`;
}

export interface TeamSnapshot {
  cut: number;
  users: number[];
  channels: Array<{ channel: number; name: string; path: string; isPrivate: boolean }>;
  memberships: Array<{ channel: number; user: number }>;
}

/**
 * The team at a cut: people with any activity or interaction before it,
 * places with activity before it, and a membership for every (person, place)
 * with activity before it (a person "joins" a place on their first day of
 * activity there). The data has no private places; `privateShare` marks
 * that share of them private, chosen by a hash of the id, so visibility
 * rules have something to enforce (documented wherever it is used).
 */
export function snapshotAt(ds: CollabDataset, cut: number, privateShare = 0): TeamSnapshot {
  const users = new Set<number>();
  const channels = new Set<number>();
  const members = new Set<string>();
  const memberships: TeamSnapshot["memberships"] = [];
  for (const a of ds.activity) {
    if (a.day >= cut) continue;
    users.add(a.user);
    channels.add(a.channel);
    const key = `${a.channel}:${a.user}`;
    if (!members.has(key)) {
      members.add(key);
      memberships.push({ channel: a.channel, user: a.user });
    }
  }
  for (const i of ds.interactions) {
    if (i.day >= cut || i.user === i.other) continue;
    users.add(i.user);
    users.add(i.other);
  }
  const names = new Map(ds.channels.map((c) => [c.channel, c.name]));
  return {
    cut,
    users: [...users].sort((a, b) => a - b),
    channels: [...channels]
      .sort((a, b) => a - b)
      .map((c) => {
        const path = names.get(c) ?? `place-${c}`;
        return { channel: c, name: channelNameOf(path, c), path, isPrivate: hashShare(c) < privateShare };
      }),
    memberships: memberships.sort((a, b) => a.channel - b.channel || a.user - b.user),
  };
}

/** A stable number in [0, 1) per id. */
function hashShare(id: number): number {
  let x = (id ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  x ^= x >>> 16;
  return (x >>> 0) / 2 ** 32;
}

/** One raw row of a team's history, as `POST /v1/admin/teams/:team/features/history` takes it (NDJSON). */
export type HistoryLine =
  | { table: "activity"; day: string; user_id: string; channel_id: string; commits: number }
  | { table: "interactions"; day: string; user_id: string; other_user_id: string; kind: string; count: number }
  | { table: "hours"; day: string; user_id: string; local_hour: number; commits: number };

/** The dataset's rows before `cut` (all of them without one) as history lines, table by table. */
export function historyLinesOf(ds: CollabDataset, cut = Number.POSITIVE_INFINITY): HistoryLine[] {
  return [
    ...ds.activity
      .filter((a) => a.day < cut)
      .map(
        (a): HistoryLine => ({
          table: "activity",
          day: isoOf(a.day),
          user_id: userIdOf(a.user),
          channel_id: channelIdOf(a.channel),
          commits: a.commits,
        }),
      ),
    ...ds.interactions
      .filter((i) => i.day < cut)
      .map(
        (i): HistoryLine => ({
          table: "interactions",
          day: isoOf(i.day),
          user_id: userIdOf(i.user),
          other_user_id: userIdOf(i.other),
          kind: i.kind,
          count: i.count,
        }),
      ),
    ...ds.hours
      .filter((h) => h.day < cut)
      .map(
        (h): HistoryLine => ({
          table: "hours",
          day: isoOf(h.day),
          user_id: userIdOf(h.user),
          local_hour: h.hour,
          commits: h.commits,
        }),
      ),
  ];
}
