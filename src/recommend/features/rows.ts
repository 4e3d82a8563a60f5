import { type FeatureRow, MAX_ROW_KEY } from "../feature-store";
import type {
  FeatureSnapshot,
  SnapshotChannel,
  SnapshotMembership,
  SnapshotPair,
  SnapshotSameDay,
  SnapshotUser,
  SnapshotUserHour,
  Windowed,
} from "./snapshot";

// A FeatureSnapshot as database rows (src/recommend/feature-store.ts): one
// row per entity or pair, (kind, key, JSON data). Keys are unique per kind,
// so a snapshot is rebuilt from its rows in any order. Windowed counts are
// arrays [30, 90, 365, all]; all-zero counts and absent days are left out of
// the JSON to keep rows small (most people never interacted, for example).
//
// kind     key                  data
// meta     "snapshot"           {format, dataset, cut, dims, embeddingCut}
// user     user id              {r: rank, d: active days, f, l: first/last day, o, i: interactions out/in,
//                                h: hour days, v: vector}
// channel  channel id           {r, d, f, l, v}
// member   "user channel"       {d: days, c: commits, f, l}
// pair     "a b"                {n: count, f, l}
// sameday  "a b"                {n}
// hour     "user hour"          {c: commits, d: days, l}

const isZero = (w: Windowed) => w.every((x) => x === 0);

function key(...parts: Array<string | number>): string {
  for (const p of parts) {
    if (typeof p === "string" && (p.length === 0 || p.includes(" ")))
      throw new Error(`id "${p}" is empty or has a space`);
  }
  const k = parts.join(" ");
  if (k.length > MAX_ROW_KEY) throw new Error(`row key longer than ${MAX_ROW_KEY}: "${k.slice(0, 40)}…"`);
  return k;
}

/** Drops undefined fields (JSON.stringify does too, but the object stays honest). */
function compact(o: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
}

const windowed = (w: Windowed) => (isZero(w) ? undefined : w);
const day = (d: number | null) => (d === null ? undefined : d);

export function snapshotToRows(s: FeatureSnapshot): FeatureRow[] {
  const rows: FeatureRow[] = [
    {
      kind: "meta",
      key: "snapshot",
      data: JSON.stringify({
        format: s.format,
        dataset: s.dataset,
        cut: s.cut,
        dims: s.dims,
        embeddingCut: s.embeddingCut,
      }),
    },
  ];
  for (const u of s.users) {
    rows.push({
      kind: "user",
      key: key(u.id),
      data: compact({
        r: u.rank,
        d: windowed(u.activeDays),
        f: day(u.first),
        l: day(u.last),
        o: windowed(u.out),
        i: windowed(u.in),
        h: windowed(u.hourDays),
        v: u.vector ?? undefined,
      }),
    });
  }
  for (const c of s.channels) {
    rows.push({
      kind: "channel",
      key: key(c.id),
      data: compact({
        r: c.rank,
        d: windowed(c.activeDays),
        f: day(c.first),
        l: day(c.last),
        v: c.vector ?? undefined,
      }),
    });
  }
  for (const m of s.memberships) {
    rows.push({
      kind: "member",
      key: key(m.user, m.channel),
      data: compact({ d: m.days, c: windowed(m.commits), f: m.first, l: m.last }),
    });
  }
  for (const p of s.pairs) {
    rows.push({ kind: "pair", key: key(p.a, p.b), data: compact({ n: p.count, f: p.first, l: p.last }) });
  }
  for (const x of s.sameDay) rows.push({ kind: "sameday", key: key(x.a, x.b), data: compact({ n: x.count }) });
  for (const h of s.userHours) {
    rows.push({
      kind: "hour",
      key: key(h.user, h.hour),
      data: compact({ c: windowed(h.commits), d: h.days, l: h.last }),
    });
  }
  return rows;
}

// --- parsing: small checks that fail loudly on a row this code did not write

type Json = Record<string, unknown>;

function fail(row: FeatureRow, what: string): never {
  throw new Error(`feature row ${row.kind}/${row.key}: ${what}`);
}

function num(row: FeatureRow, o: Json, name: string): number {
  const v = o[name];
  if (typeof v !== "number" || !Number.isFinite(v)) fail(row, `${name} is not a number`);
  return v;
}

function optDay(row: FeatureRow, o: Json, name: string): number | null {
  return o[name] === undefined ? null : num(row, o, name);
}

function win(row: FeatureRow, o: Json, name: string): Windowed {
  const v = o[name];
  if (v === undefined) return [0, 0, 0, 0];
  if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
    fail(row, `${name} is not 4 counts`);
  }
  return [v[0], v[1], v[2], v[3]];
}

function vec(row: FeatureRow, o: Json, dims: number): number[] | null {
  const v = o.v;
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length !== dims || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
    fail(row, `v is not ${dims} numbers`);
  }
  return v as number[];
}

function parts(row: FeatureRow, n: number): string[] {
  const p = row.key.split(" ");
  if (p.length !== n || p.some((x) => x.length === 0)) fail(row, `key is not ${n} ids`);
  return p;
}

function parse(row: FeatureRow): Json {
  let v: unknown;
  try {
    v = JSON.parse(row.data);
  } catch {
    fail(row, "data is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(row, "data is not an object");
  return v as Json;
}

/** Rebuilds a snapshot from its rows (any order). */
export function snapshotFromRows(rows: Iterable<FeatureRow>): FeatureSnapshot {
  let meta: Json | null = null;
  const pending: Array<[FeatureRow, Json]> = [];
  for (const row of rows) {
    const o = parse(row);
    if (row.kind === "meta") meta = o;
    else pending.push([row, o]);
  }
  if (!meta) throw new Error("feature rows have no meta row");
  const m = meta;
  const metaRow = { kind: "meta", key: "snapshot", data: "" };
  if (m.format !== 1) fail(metaRow, `unknown format ${String(m.format)}`);
  const dims = num(metaRow, m, "dims");
  const s: FeatureSnapshot = {
    format: 1,
    dataset: typeof m.dataset === "string" ? m.dataset : fail(metaRow, "dataset is not a string"),
    cut: num(metaRow, m, "cut"),
    dims,
    embeddingCut: typeof m.embeddingCut === "string" ? m.embeddingCut : null,
    users: [],
    channels: [],
    memberships: [],
    pairs: [],
    sameDay: [],
    userHours: [],
  };
  for (const [row, o] of pending) {
    switch (row.kind) {
      case "user":
        s.users.push({
          id: row.key,
          rank: num(row, o, "r"),
          activeDays: win(row, o, "d"),
          first: optDay(row, o, "f"),
          last: optDay(row, o, "l"),
          out: win(row, o, "o"),
          in: win(row, o, "i"),
          hourDays: win(row, o, "h"),
          vector: vec(row, o, dims),
        } satisfies SnapshotUser);
        break;
      case "channel":
        s.channels.push({
          id: row.key,
          rank: num(row, o, "r"),
          activeDays: win(row, o, "d"),
          first: optDay(row, o, "f"),
          last: optDay(row, o, "l"),
          vector: vec(row, o, dims),
        } satisfies SnapshotChannel);
        break;
      case "member": {
        const [user, channel] = parts(row, 2) as [string, string];
        s.memberships.push({
          user,
          channel,
          days: win(row, o, "d"),
          commits: win(row, o, "c"),
          first: num(row, o, "f"),
          last: num(row, o, "l"),
        } satisfies SnapshotMembership);
        break;
      }
      case "pair": {
        const [a, b] = parts(row, 2) as [string, string];
        s.pairs.push({
          a,
          b,
          count: win(row, o, "n"),
          first: num(row, o, "f"),
          last: num(row, o, "l"),
        } satisfies SnapshotPair);
        break;
      }
      case "sameday": {
        const [a, b] = parts(row, 2) as [string, string];
        s.sameDay.push({ a, b, count: num(row, o, "n") } satisfies SnapshotSameDay);
        break;
      }
      case "hour": {
        const [user, hour] = parts(row, 2) as [string, string];
        const h = Number(hour);
        if (!Number.isInteger(h) || h < 0 || h > 23) fail(row, "hour is not 0..23");
        s.userHours.push({
          user,
          hour: h,
          commits: win(row, o, "c"),
          days: win(row, o, "d"),
          last: num(row, o, "l"),
        } satisfies SnapshotUserHour);
        break;
      }
      default:
        fail(row, "unknown kind");
    }
  }
  // Row order is the store's (kind, key); the snapshot's is rank order, as buildSnapshot writes it.
  s.users.sort((a, b) => a.rank - b.rank);
  s.channels.sort((a, b) => a.rank - b.rank);
  const ur = new Map(s.users.map((u) => [u.id, u.rank]));
  const cr = new Map(s.channels.map((c) => [c.id, c.rank]));
  const rank = (m: Map<string, number>, id: string) => m.get(id) ?? Number.POSITIVE_INFINITY;
  s.memberships.sort((x, y) => rank(ur, x.user) - rank(ur, y.user) || rank(cr, x.channel) - rank(cr, y.channel));
  s.pairs.sort((x, y) => rank(ur, x.a) - rank(ur, y.a) || rank(ur, x.b) - rank(ur, y.b));
  s.sameDay.sort((x, y) => rank(cr, x.a) - rank(cr, y.a) || rank(cr, x.b) - rank(cr, y.b));
  s.userHours.sort((x, y) => rank(ur, x.user) - rank(ur, y.user) || x.hour - y.hour);
  return s;
}
