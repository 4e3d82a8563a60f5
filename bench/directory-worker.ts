import { SharedChannel } from "../durable-objects/shared-channel/shared-channel";
import {
  fold,
  PREFIX_LEN,
  prefixEnd,
  prefixOf,
  queryTokens,
  searchText,
  searchWords,
  wordPrefixes,
} from "../durable-objects/team-cache/normalize";
import {
  and,
  type Cond as CacheCond,
  CONTACT_CHANNEL_MAX,
  DENSE_MATCHES,
  decodeCursor,
  encodeCursor,
  NONE,
  toUser,
} from "../durable-objects/team-cache/queries";
import { type CacheError, LOAD_PAGE, TeamCache } from "../durable-objects/team-cache/team-cache";
import { directorySourceFor, driverFor } from "../platform/deps";
import { statusOf } from "../platform/error-status";
import { verifyToken } from "../src/auth/tokens";
import type { DirUser } from "../src/directory/model";
import type { DirectorySource } from "../src/directory/source";
import type { SqlDriver, Statement } from "../storage/sql-driver";
import { createApp } from "../workers/app";
import worker from "../workers/index";

// Benchmark-only Worker for `npm run bench:directory` (bench/wrangler.directory.toml,
// never deployed): the real app and queue handler, the team cache with one
// extra RPC (an in-object loop), and /bench routes that
// - seed a big team straight into the database (no admin validation),
// - build the indexed baseline's search tables in that database and answer
//   each directory query from them: the best the database can do, what a
//   team would build instead of the cache,
// - time both sides from inside the Worker, interleaved, checking that they
//   give the same answers,
// - measure a full team snapshot's size.

// The focused boot's figure (bench/directory.ts) seeds and reads a
// conversation's messages through the real routes: its object, and the topic
// its events go to (bound by bench/directory.ts next to the config's objects).
export { Conversation } from "../durable-objects/conversation/conversation";
export { Topic } from "../durable-objects/topic/topic";
export { SharedChannel };

// --- the cache, plus a loop -------------------------------------------------

export type LoopOp = "empty" | "switcher" | "mentions" | "channel" | "members" | "directory" | "lookup" | "boot";
export interface LoopCall {
  viewer?: string;
  args: unknown[];
}
export interface LoopResult {
  n: number;
  /** performance.now() around the loop, read after an awaited timer (workerd's clock only moves across I/O). */
  ms: number;
  /** The same clock read before that timer: ~0 when the clock stood still during the loop. */
  msBeforeIo: number;
  /** The timer alone, measured the same way after the loop: subtract it from `ms`. */
  msIo: number;
  /** Results that came back as errors (should be 0). */
  errors: number;
}

/** One awaited call to the DirectorySource, in object time (ms since the first call was recorded). */
export interface SourceCall {
  method: string;
  start: number;
  end: number;
  rows: number;
}

export class BenchTeamCache extends TeamCache {
  /** Which instance answers: a load recorded by one instance and read by another means the object was evicted meanwhile. */
  private readonly instance = `${Math.random().toString(36).slice(2, 10)}`;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Kept in the object's SQLite, not in memory: local workerd may evict the
    // object right after a long load (see bench/directory.ts), and the
    // timeline must survive that.
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS bench_source_calls (method TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, rows INTEGER NOT NULL, instance TEXT NOT NULL)",
    );
  }

  /** The real source, with every call timed: a load's time splits into waiting for pages and working on them. */
  protected override source(): DirectorySource {
    const inner = super.source();
    const sql = this.ctx.storage.sql;
    const instance = this.instance;
    const timed = {} as Record<string, unknown>;
    for (const [method, fn] of Object.entries(inner)) {
      timed[method] = async (...args: unknown[]) => {
        const start = performance.now();
        const out = await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
        const rows = Array.isArray(out) ? out.length : 1;
        sql.exec(
          "INSERT INTO bench_source_calls VALUES (?, ?, ?, ?, ?)",
          method,
          start,
          performance.now(),
          rows,
          instance,
        );
        return out;
      };
    }
    return timed as unknown as DirectorySource;
  }

  /** The source calls recorded since the last ask (a load's timeline); `instance` answers now, `recordedBy` recorded them. */
  async takeSourceCalls(): Promise<{ calls: SourceCall[]; instance: string; recordedBy: string[] }> {
    const sql = this.ctx.storage.sql;
    const rows = sql
      .exec<{ method: string; start: number; end: number; rows: number; instance: string }>(
        "SELECT method, start, end, rows, instance FROM bench_source_calls ORDER BY rowid",
      )
      .toArray();
    sql.exec("DELETE FROM bench_source_calls");
    return {
      calls: rows.map(({ method, start, end, rows }) => ({ method, start, end, rows })),
      instance: this.instance,
      recordedBy: [...new Set(rows.map((r) => r.instance))],
    };
  }

  async whoami(): Promise<string> {
    return this.instance;
  }

  /** Runs one query n times inside the object (no RPC, no HTTP), cycling through `calls`. */
  async loop(teamId: string, viewerId: string, op: LoopOp, n: number, calls: LoopCall[] = [{ args: [] }]) {
    let errors = 0;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const call = calls[i % calls.length] as LoopCall;
      const v = call.viewer ?? viewerId;
      const a = call.args as [never, never, never];
      let r: { ok: boolean } | null = null;
      switch (op) {
        case "empty":
          await Promise.resolve();
          break;
        case "switcher":
          r = await this.quickSwitcher(teamId, v, a[0], a[1]);
          break;
        case "mentions":
          r = await this.mentions(teamId, v, a[0], a[1], a[2]);
          break;
        case "channel":
          r = await this.channel(teamId, v, a[0]);
          break;
        case "members":
          r = await this.channelMembers(teamId, v, a[0], a[1], a[2]);
          break;
        case "directory":
          r = await this.directory(teamId, v, a[0]);
          break;
        case "lookup":
          r = await this.lookup(teamId, v, a[0], a[1]);
          break;
        case "boot":
          r = await this.boot(teamId, v, a[0]);
          break;
      }
      if (r && !r.ok) errors++;
    }
    const t1 = performance.now();
    await scheduler.wait(1);
    const t2 = performance.now();
    await scheduler.wait(1);
    const t3 = performance.now();
    return { n, ms: t2 - t0, msBeforeIo: t1 - t0, msIo: t3 - t2, errors } satisfies LoopResult;
  }
}

function cacheStub(env: Env, name: string) {
  const ns = env.TEAM_CACHE as unknown as DurableObjectNamespace<BenchTeamCache>;
  return ns.get(ns.idFromName(name));
}

/** One input of the paired loop: the cache's arguments (as the loop RPC takes them) and the baseline's. */
interface PairCall {
  viewer: string;
  args: unknown[];
  directArgs: DirectArgs;
}

/** What the app's /v1/directory route answers for this call, from the cache (the route's unwrap). */
async function cacheAnswer(
  stub: ReturnType<typeof cacheStub>,
  team: string,
  viewer: string,
  op: LoopOp,
  args: unknown[],
): Promise<unknown> {
  const a = args as [never, never, never];
  const value = <T>(r: { ok: true; value: T } | CacheError): T => {
    if (!r.ok) throw new HttpFail(statusOf(r.kind, r.code), r.message);
    return r.value;
  };
  switch (op) {
    case "switcher":
      return { items: value(await stub.quickSwitcher(team, viewer, a[0], a[1])) };
    case "mentions":
      return { items: value(await stub.mentions(team, viewer, a[0], a[1], a[2])) };
    case "channel":
      return { channel: value(await stub.channel(team, viewer, a[0])) };
    case "members":
      return value(await stub.channelMembers(team, viewer, a[0], a[1], a[2]));
    case "directory":
      return value(await stub.directory(team, viewer, a[0]));
    case "lookup":
      return value(await stub.lookup(team, viewer, a[0], a[1]));
    case "boot":
      return value(await stub.boot(team, viewer, a[0]));
    case "empty":
      return null;
  }
}

/**
 * Every `id` in an answer, in document order: two answers are identical when
 * these sequences are (the same ids in the same order). bench/directory.ts
 * compares HTTP answers the same way.
 */
function answerIds(json: unknown, out: string[] = []): string[] {
  if (Array.isArray(json)) for (const x of json) answerIds(x, out);
  else if (json && typeof json === "object") {
    for (const [k, v] of Object.entries(json)) {
      if (k === "id" && typeof v === "string") out.push(v);
      else if (typeof v === "object") answerIds(v, out);
    }
  }
  return out;
}

// --- the team's shape (deterministic) ---------------------------------------

export interface Shape {
  users: number;
  channels: number;
  memberships: number;
}

// biome-ignore format: a word list
const FIRST = [
  "Ada", "Alan", "Alice", "Ana", "Anna", "Åsa", "Björn", "Carlos", "Chloé", "Chen", "Daniel", "David", "Dmitri",
  "Élodie", "Emma", "Fatima", "François", "Grace", "Hannah", "Hiroshi", "Ingrid", "Isabel", "Jack", "James", "José",
  "Juan", "Julia", "Jürgen", "Kai", "Kenji", "Kim", "Laura", "Léa", "Lena", "Li", "Liam", "Łukasz", "Lucas", "Maria",
  "María", "Mark", "Martin", "Mateo", "Mia", "Mohammed", "Nadia", "Noah", "Noémie", "Olga", "Olivia", "Omar", "Oscar",
  "Pedro", "Peter", "Priya", "Raúl", "Ravi", "Renée", "Sam", "Sara", "Sofia", "Søren", "Tom", "Tomás", "Yuki", "Zoë",
  "Zoe", "Inès",
];
// biome-ignore format: a word list
const LAST = [
  "Smith", "Johnson", "García", "Müller", "Núñez", "Martin", "Silva", "Kim", "Nguyen", "Rossi", "Dubois", "Kowalski",
  "Andersson", "Øster", "Hernández", "Lefèvre", "Schmidt", "Tanaka", "Sato", "Brown", "Jones", "Taylor", "Wilson",
  "López", "Pérez", "Gonçalves", "Öztürk", "Ivanova", "Chen", "Wang", "Patel", "Singh", "Novák", "Dvořák", "Jensen",
  "Nielsen", "Costa", "Moreau", "Weber", "Fischer", "Ramos", "Bianchi", "O'Brien", "Murphy", "Walsh", "Khan", "Ali",
  "Ahmed", "Cohen", "Levi",
];
// biome-ignore format: a word list
const TITLES = [
  "Engineer", "Senior Engineer", "Staff Engineer", "Product Manager", "Designer", "Account Executive",
  "Support Specialist", "Data Scientist", "Recruiter", "Marketing Manager", "Director of Sales", "", "", "",
];
// biome-ignore format: a word list
const TZS = [
  "America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Europe/Paris", "Asia/Tokyo",
  "Asia/Kolkata", "Australia/Sydney", "America/Sao_Paulo", "UTC",
];
// biome-ignore format: a word list
const CH_PREFIX = [
  "eng", "team", "proj", "sales", "support", "design", "ops", "mkt", "help", "social", "announce", "data", "sec", "hr",
  "fin", "ext", "incident", "release", "office", "product",
];
// biome-ignore format: a word list
const CH_WORD = [
  "apollo", "atlas", "backend", "frontend", "mobile", "infra", "billing", "search", "growth", "emea", "apac", "latam",
  "platform", "payments", "ml", "api", "web", "ios", "android", "docs", "onboarding", "hiring", "random", "coffee",
  "london", "berlin", "tokyo", "nyc", "sf", "alerts", "oncall", "review", "launch", "q3", "q4", "planning", "standup",
  "retro", "feedback", "zürich",
];
const BOT_WORDS = [
  "jira",
  "github",
  "pagerduty",
  "deploy",
  "standup",
  "polly",
  "giphy",
  "zendesk",
  "calendar",
  "drive",
];

/** Stable pseudo-random in [0, 1) from an index and a salt (murmur3 finalizer). */
export function rand(i: number, salt: number): number {
  let x = (Math.imul(i, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca6b)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return (x >>> 0) / 4294967296;
}

const pick = <T>(xs: readonly T[], r: number): T => xs[Math.floor(r * xs.length) % xs.length] as T;
const userId = (i: number) => `U${String(i).padStart(8, "0")}`;
const channelId = (k: number) => `C${String(k).padStart(7, "0")}`;
const PARTNER_USERS = 50;
const SHARED_CHANNELS = 5;
const PARTNER_MEMBERS_PER_CHANNEL = 10;
const EPOCH = 1_767_225_600_000; // 2026-01-01
const ZIPF_S = 1.1;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function coprime(n: number, candidates: number[]): number {
  for (const p of candidates) if (gcd(p % n || n, n) === 1 && p % n !== 0) return p % n;
  return 1;
}

const STRIDES = [7919, 104729, 1299709, 15485863, 32452843, 49979687, 86028121, 122949829];

export interface Plan {
  shape: Shape;
  isGuest: Uint8Array;
  /** Channel k's member count from the Zipf draw (k >= 1; k = 0 is #general: everyone). */
  sizeOf: Int32Array;
  guestChannels: Map<number, number[]>;
  sharedChannels: number[];
  counts: { guests: number; guestExtra: number; zipf: number; partner: number };
}

let planCache: { key: string; plan: Plan } | null = null;

export function planFor(shape: Shape): Plan {
  const key = JSON.stringify(shape);
  if (planCache?.key === key) return planCache.plan;
  const { users: U, channels: C, memberships: M } = shape;
  const isGuest = new Uint8Array(U);
  let guests = 0;
  for (let u = 20; u < U; u++) {
    if (rand(u, 1) < 0.02) {
      isGuest[u] = 1;
      guests++;
    }
  }
  // Guests: #general plus 1-3 other channels.
  const guestChannels = new Map<number, number[]>();
  let guestExtra = 0;
  for (let u = 0; u < U; u++) {
    if (!isGuest[u]) continue;
    const n = 1 + Math.floor(rand(u, 9) * 3);
    const picked = new Set<number>();
    for (let t = 0; t < n; t++) picked.add(1 + Math.floor(rand(u, 10 + t) * (C - 1)));
    for (const k of picked) {
      guestChannels.set(k, [...(guestChannels.get(k) ?? []), u]);
      guestExtra++;
    }
  }
  const partner = SHARED_CHANNELS * PARTNER_MEMBERS_PER_CHANNEL;
  // Zipf-like sizes by rank (s = 1.1, at least 2, at most 60% of the team),
  // scaled so the total is exactly the requested number of memberships.
  const target = M - U - guestExtra - partner;
  const cap = Math.floor(0.6 * (U - guests));
  const sizes = (a: number) => {
    const out = new Int32Array(C);
    for (let r = 1; r < C; r++) out[r] = Math.min(cap, Math.max(2, Math.round(a / r ** ZIPF_S)));
    return out;
  };
  const total = (s: Int32Array) => s.reduce((x, y) => x + y, 0);
  let lo = 0;
  let hi = 1e10;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (total(sizes(mid)) < target) lo = mid;
    else hi = mid;
  }
  const byRank = sizes(hi);
  let diff = target - total(byRank);
  for (let r = C - 1; diff !== 0 && r >= 1; r--) {
    const step = diff > 0 ? 1 : -1;
    const next = (byRank[r] as number) + step;
    if (next >= 2 && next <= cap) {
      byRank[r] = next;
      diff -= step;
    }
  }
  // Ranks are spread over channel ids so the big channels are not C0000001...
  const P = coprime(C - 1, [10007, 7919, 104729, 1299709]);
  const sizeOf = new Int32Array(C);
  sizeOf[0] = U;
  for (let k = 1; k < C; k++) sizeOf[k] = byRank[1 + (((k - 1) * P) % (C - 1))] as number;
  const plan: Plan = {
    shape,
    isGuest,
    sizeOf,
    guestChannels,
    sharedChannels: [],
    counts: { guests, guestExtra, zipf: target, partner },
  };
  for (let k = 1; k < C && plan.sharedChannels.length < SHARED_CHANNELS; k++) {
    const ch = channelRow(plan, k);
    if (!ch.isPrivate && !ch.isArchived && (sizeOf[k] as number) >= 20 && (sizeOf[k] as number) <= 2000)
      plan.sharedChannels.push(k);
  }
  planCache = { key, plan };
  return plan;
}

function userRow(plan: Plan, i: number) {
  const guest = plan.isGuest[i] === 1;
  const bot = !guest && i >= 20 && rand(i, 4) < 0.01;
  const first = pick(FIRST, rand(i, 11));
  const last = pick(LAST, rand(i, 12));
  const ascii = (s: string) => fold(s).replace(/[^a-z0-9]/g, "");
  const botWord = pick(BOT_WORDS, rand(i, 13));
  const name = bot ? `${botWord}-bot-${i.toString(36)}` : `${ascii(first)}.${ascii(last)}.${i.toString(36)}`;
  const realName = bot ? `${botWord[0]?.toUpperCase()}${botWord.slice(1)} Bot` : `${first} ${last}`;
  const displayName = !bot && rand(i, 14) < 0.3 ? first : "";
  const role = i < 3 ? "owner" : guest ? "guest" : i < 20 || rand(i, 2) < 0.005 ? "admin" : "member";
  const deactivated = i >= 20 && rand(i, 3) < 0.05;
  const hash = [rand(i, 15), rand(i, 16), rand(i, 17), rand(i, 18)]
    .map((r) =>
      Math.floor(r * 4294967296)
        .toString(16)
        .padStart(8, "0"),
    )
    .join("");
  return {
    id: userId(i),
    email: `${name}@bench.example`,
    role,
    deactivated,
    name,
    realName,
    displayName,
    title: bot ? "" : pick(TITLES, rand(i, 19)),
    avatarHash: hash,
    tz: pick(TZS, rand(i, 20)),
    isBot: bot,
  };
}

function channelRow(plan: Plan, k: number) {
  if (k === 0) {
    return {
      id: channelId(0),
      name: "general",
      topic: "Company-wide announcements",
      purpose: "Everyone",
      isPrivate: false,
      isArchived: false,
    };
  }
  const size = plan.sizeOf[k] as number;
  return {
    id: channelId(k),
    name: `${pick(CH_PREFIX, rand(k, 21))}-${pick(CH_WORD, rand(k, 22))}-${k.toString(36)}`,
    topic: rand(k, 23) < 0.5 ? `Topic of channel ${k}` : "",
    purpose: rand(k, 24) < 0.3 ? `Where ${pick(CH_WORD, rand(k, 25))} happens` : "",
    isPrivate: size <= 5000 && rand(k, 5) < 0.2,
    isArchived: size < 1000 && rand(k, 6) < 0.02,
  };
}

/** Member user indexes of channel k, ascending. */
function membersOf(plan: Plan, k: number): number[] {
  const U = plan.shape.users;
  if (k === 0) return Array.from({ length: U }, (_, i) => i);
  const n = plan.sizeOf[k] as number;
  const start = Math.floor(rand(k, 7) * U);
  const stride = coprime(U, [STRIDES[Math.floor(rand(k, 8) * STRIDES.length)] as number, ...STRIDES]);
  const out: number[] = [];
  for (let j = 0; out.length < n && j < U; j++) {
    const u = (start + j * stride) % U;
    if (!plan.isGuest[u]) out.push(u);
  }
  out.push(...(plan.guestChannels.get(k) ?? []));
  return out.sort((a, b) => a - b);
}

// --- bulk SQL ---------------------------------------------------------------

const D1_ROWS = 5000;
const MYSQL_ROWS = 2000;

function inserts(driver: SqlDriver, table: string, columns: string[], rows: unknown[][]): Statement[] {
  const cols = columns.map((c) => `\`${c}\``).join(", ");
  const out: Statement[] = [];
  if (driver.dialect === "sqlite") {
    const picks = columns.map((_, i) => `j.value->>${i}`).join(", ");
    for (let i = 0; i < rows.length; i += D1_ROWS) {
      out.push({
        sql: `INSERT INTO ${table} (${cols}) SELECT ${picks} FROM json_each(?) AS j`,
        params: [JSON.stringify(rows.slice(i, i + D1_ROWS))],
      });
    }
    return out;
  }
  const one = `(${columns.map(() => "?").join(", ")})`;
  for (let i = 0; i < rows.length; i += MYSQL_ROWS) {
    const chunk = rows.slice(i, i + MYSQL_ROWS);
    out.push({ sql: `INSERT INTO ${table} (${cols}) VALUES ${chunk.map(() => one).join(", ")}`, params: chunk.flat() });
  }
  return out;
}

/** A few statements per atomic unit: one D1 batch / one MySQL transaction each. */
async function runAll(driver: SqlDriver, statements: Statement[]): Promise<void> {
  const per = driver.dialect === "sqlite" ? 10 : 20;
  for (let i = 0; i < statements.length; i += per) await driver.atomic(statements.slice(i, i + per));
}

const USER_COLS = [
  "team_id",
  "id",
  "email",
  "domain",
  "role",
  "deactivated",
  "version",
  "created_at",
  "updated_at",
  "name",
  "real_name",
  "display_name",
  "title",
  "avatar_hash",
  "tz",
  "is_bot",
];

// --- the indexed database baseline ------------------------------------------
//
// What a team would build instead of the cache, in the same database: the
// cache's search data as tables next to the source of truth (bench_dir_*,
// built from the same DirectorySource pages the cache loads), with the same
// indexes: rank-ordered prefixes, the word index, users in name order per
// filter, member counts kept per channel and user/channel counts per team.
// Each question is answered with the cache's plans, ranking and page size,
// in one round trip: independent statements go in one D1 batch, or in
// parallel over MySQL's connection pool, and a plan choice the cache makes in
// code (a rare long token, a channel's size) is a one-row guard table joined
// first, which both engines evaluate before reading anything it guards
// (SQLite: the outer loop of a CROSS JOIN; MySQL: a const table, "Impossible
// WHERE"). The one exception: mentions ask for non-members in a second round
// trip, only when members leave room on the page.

type Dialect = SqlDriver["dialect"];
type Row = Record<string, unknown>;

class HttpFail extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const n = (v: unknown) => Number(v);

/** The search tables: team-scoped copies of the cache's users/channels search columns and their indexes. */
function searchDdl(d: Dialect): string[] {
  const bin = (len: number) => (d === "mysql" ? `VARCHAR(${len}) COLLATE utf8mb4_bin NOT NULL` : "TEXT NOT NULL");
  const str = (len: number) => (d === "mysql" ? `VARCHAR(${len}) NOT NULL` : "TEXT NOT NULL");
  const int = d === "mysql" ? "INT NOT NULL" : "INTEGER NOT NULL";
  /** keys: name -> columns, or [columns, condition] for a partial index (SQLite only). */
  const table = (name: string, cols: string, pk: string, keys: Record<string, string | [string, string]> = {}) => {
    const key = (k: string, c: string | [string, string]) => {
      const [columns, partial] = typeof c === "string" ? [c, ""] : [c[0], ` WHERE ${c[1]}`];
      return d === "mysql" ? `, KEY ${k} (${columns})` : `CREATE INDEX ${k} ON ${name} (${columns})${partial}`;
    };
    const inline = d === "mysql" ? Object.entries(keys).map(([k, c]) => key(k, c)) : [];
    const rowid = d === "sqlite" ? " WITHOUT ROWID" : "";
    return [
      `CREATE TABLE ${name} (${cols}, PRIMARY KEY (${pk})${inline.join("")})${rowid}`,
      ...(d === "sqlite" ? Object.entries(keys).map(([k, c]) => key(k, c)) : []),
    ];
  };
  return [
    ...table(
      "bench_dir_users",
      `team_id ${bin(40)}, id ${bin(40)}, name ${str(80)}, real_name ${str(200)}, display_name ${str(80)}, title ${str(200)},
       avatar_hash ${str(64)}, tz ${str(64)}, is_bot ${int}, role ${str(8)}, deleted ${int}, sort_key ${bin(400)}, search_text ${bin(2000)}`,
      "team_id, id",
      // Name order per directory filter. SQLite's statistics cannot tell that
      // bots and the deactivated are few (two values, either one), so there,
      // as in the cache, they get partial indexes; MySQL's index dives can.
      d === "sqlite"
        ? {
            bench_dir_users_sort: "team_id, sort_key, id",
            bench_dir_users_role: "team_id, role, sort_key, id",
            bench_dir_users_bot: ["team_id, sort_key, id", "is_bot = 1"],
            bench_dir_users_deleted: ["team_id, sort_key, id", "deleted = 1"],
          }
        : {
            bench_dir_users_sort: "team_id, sort_key, id",
            bench_dir_users_role: "team_id, role, sort_key, id",
            bench_dir_users_bot: "team_id, is_bot, sort_key, id",
            bench_dir_users_deleted: "team_id, deleted, sort_key, id",
          },
    ),
    ...table(
      "bench_dir_user_words",
      `team_id ${bin(40)}, word ${bin(400)}, user_id ${bin(40)}`,
      "team_id, word, user_id",
    ),
    ...table(
      "bench_dir_user_prefixes",
      `team_id ${bin(40)}, prefix ${bin(PREFIX_LEN)}, sort_key ${bin(400)}, user_id ${bin(40)}`,
      "team_id, prefix, sort_key, user_id",
    ),
    ...table(
      "bench_dir_channels",
      `team_id ${bin(40)}, id ${bin(40)}, name ${bin(80)}, topic ${str(250)}, purpose ${str(250)}, is_private ${int},
       is_archived ${int}, is_shared ${int}, member_count ${int}, search_text ${bin(2000)}`,
      "team_id, id",
    ),
    ...table(
      "bench_dir_channel_words",
      `team_id ${bin(40)}, word ${bin(400)}, channel_id ${bin(40)}`,
      "team_id, word, channel_id",
    ),
    ...table(
      "bench_dir_channel_prefixes",
      `team_id ${bin(40)}, prefix ${bin(PREFIX_LEN)}, name ${bin(80)}, channel_id ${bin(40)}`,
      "team_id, prefix, name, channel_id",
    ),
    ...table("bench_dir_teams", `team_id ${bin(40)}, active_users ${int}, channels ${int}`, "team_id"),
  ];
}

/** Conditions, each starting with AND, and their parameters in order (the cache's own helper). */
type Cond = CacheCond<unknown>;
/** One statement. */
interface Sel {
  sql: string;
  params: unknown[];
}
/** A one-row table joined first: its condition decides whether anything after it is read. */
interface Guard {
  from: string;
  fromParams: unknown[];
  where: string;
  whereParams: unknown[];
}

/** Forced join order: SQLite's CROSS JOIN, MySQL's STRAIGHT_JOIN. */
const join = (d: Dialect) => (d === "mysql" ? " STRAIGHT_JOIN " : " CROSS JOIN ");

/** Every token starts a word: the cache's instr test on " word word ...". */
function tokenCheck(d: Dialect, alias: string, tokens: string[]): Cond {
  const needle = d === "mysql" ? "CONCAT(' ', ?)" : "(' ' || ?)";
  return { where: tokens.map(() => `AND INSTR(${alias}.search_text, ${needle}) > 0`).join(" "), params: tokens };
}

function keyAfter(key: string, id: string, after: readonly [string, string] | null): Cond {
  if (!after) return NONE;
  const [k, i] = after;
  return { where: `AND ${key} >= ? AND (${key} > ? OR ${id} > ?)`, params: [k, k, i] };
}

const U_CARD =
  "u.id, u.name, u.real_name, u.display_name, u.title, u.avatar_hash, u.tz, u.is_bot, u.role, u.deleted, u.sort_key";
const C_CARD =
  "c.id, c.name, c.topic, c.purpose, c.is_private, c.is_archived, c.is_shared, c.member_count, EXISTS (SELECT 1 FROM memberships mm WHERE mm.team_id = c.team_id AND mm.channel_id = c.id AND mm.user_id = vw.id) AS is_member";

/** The viewer row (alias vw), active: every statement joins it, as the cache checks its caller on every query. */
const viewerRow = (team: string, viewer: string): Cond => ({
  where: "AND vw.team_id = ? AND vw.id = ? AND vw.deleted = 0",
  params: [team, viewer],
});

/** queries.ts userVisible: a guest sees itself and the people it shares a channel with. */
const USER_VISIBLE: Cond = {
  where:
    "AND (vw.role <> 'guest' OR u.id = vw.id OR EXISTS (SELECT 1 FROM memberships g1 JOIN memberships g2 ON g2.team_id = g1.team_id AND g2.channel_id = g1.channel_id AND g2.user_id = u.id WHERE g1.team_id = vw.team_id AND g1.user_id = vw.id))",
  params: [],
};
/** queries.ts channelVisible: private channels to members; guests only their own. */
const CHANNEL_VISIBLE: Cond = {
  where:
    "AND ((vw.role <> 'guest' AND c.is_private = 0) OR EXISTS (SELECT 1 FROM memberships vm WHERE vm.team_id = c.team_id AND vm.channel_id = c.id AND vm.user_id = vw.id))",
  params: [],
};

/** Fewer than DENSE_MATCHES word rows start with `token` (queries.ts's choice for a long token): a one-row guard. */
function wordCount(
  table: "bench_dir_user_words" | "bench_dir_channel_words",
  team: string,
  token: string,
  rare: boolean,
): Guard {
  return {
    from: `(SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${table} WHERE team_id = ? AND word >= ? AND word < ? LIMIT ${DENSE_MATCHES}) z) g`,
    fromParams: [team, token, prefixEnd(token)],
    where: `g.n ${rare ? "<" : ">="} ${DENSE_MATCHES}`,
    whereParams: [],
  };
}

/** Guards go first in FROM (their parameters first) and first in WHERE. */
const withGuards = (d: Dialect, guards: Guard[]) => ({
  from: guards.map((g) => `${g.from}${join(d)}`).join(""),
  fromParams: guards.flatMap((g) => g.fromParams),
  where: guards.map((g) => `${g.where} AND `).join(""),
  whereParams: guards.flatMap((g) => g.whereParams),
});

/**
 * queries.ts rankedUsers as one statement: people (alias u) matching every
 * token and `where` (given the candidate id's expression, as there), in rank
 * order (sort_key, id), after `after`, at most `limit`.
 */
function rankedUsers(
  d: Dialect,
  team: string,
  viewer: string,
  tokens: string[],
  limit: number,
  where: (id: string) => Cond,
  after: readonly [string, string] | null = null,
  guards: Guard[] = [],
): Sel {
  const first = tokens[0] as string;
  const prefix = prefixOf(first);
  const j = join(d);
  const walk = (extra: Guard[]): Sel => {
    const g = withGuards(d, [...guards, ...extra]);
    const c = and(
      viewerRow(team, viewer),
      { where: "AND p.team_id = ? AND p.prefix = ?", params: [team, prefix] },
      keyAfter("p.sort_key", "p.user_id", after),
      { where: "AND u.team_id = p.team_id AND u.id = p.user_id", params: [] },
      where("p.user_id"),
      tokenCheck(d, "u", prefix === first ? tokens.slice(1) : tokens),
    );
    return {
      sql: `SELECT ${U_CARD} FROM ${g.from}bench_dir_users vw${j}bench_dir_user_prefixes p${j}bench_dir_users u
            WHERE ${g.where}1 ${c.where} ORDER BY p.sort_key, p.user_id LIMIT ?`,
      params: [...g.fromParams, ...g.whereParams, ...c.params, limit],
    };
  };
  if (prefix === first) return walk([]);
  const g = withGuards(d, [...guards, wordCount("bench_dir_user_words", team, first, true)]);
  // The word rows joined, not a DISTINCT subquery: SQLite would materialize
  // that before looking at the guard. A user matching by two words is one
  // row after DISTINCT (the cards include the id).
  const c = and(
    viewerRow(team, viewer),
    { where: "AND w.team_id = ? AND w.word >= ? AND w.word < ?", params: [team, first, prefixEnd(first)] },
    { where: "AND u.team_id = w.team_id AND u.id = w.user_id", params: [] },
    where("u.id"),
    tokenCheck(d, "u", tokens.slice(1)),
    keyAfter("u.sort_key", "u.id", after),
  );
  const sparse: Sel = {
    sql: `SELECT DISTINCT ${U_CARD} FROM ${g.from}bench_dir_users vw${j}bench_dir_user_words w${j}bench_dir_users u
          WHERE ${g.where}1 ${c.where} ORDER BY u.sort_key, u.id LIMIT ?`,
    params: [...g.fromParams, ...g.whereParams, ...c.params, limit],
  };
  const dense = walk([wordCount("bench_dir_user_words", team, first, false)]);
  return {
    sql: `SELECT * FROM (SELECT * FROM (${sparse.sql}) a UNION ALL SELECT * FROM (${dense.sql}) b) r ORDER BY r.sort_key, r.id LIMIT ?`,
    params: [...sparse.params, ...dense.params, limit],
  };
}

/** queries.ts rankedChannels as one statement: channels (alias c) in rank order (name, id). */
function rankedChannels(d: Dialect, team: string, viewer: string, tokens: string[], limit: number, cond: Cond): Sel {
  const first = tokens[0] as string;
  const prefix = prefixOf(first);
  const j = join(d);
  const walk = (extra: Guard[]): Sel => {
    const g = withGuards(d, extra);
    const c = and(
      viewerRow(team, viewer),
      { where: "AND p.team_id = ? AND p.prefix = ?", params: [team, prefix] },
      { where: "AND c.team_id = p.team_id AND c.id = p.channel_id", params: [] },
      cond,
      tokenCheck(d, "c", prefix === first ? tokens.slice(1) : tokens),
    );
    return {
      sql: `SELECT ${C_CARD} FROM ${g.from}bench_dir_users vw${j}bench_dir_channel_prefixes p${j}bench_dir_channels c
            WHERE ${g.where}1 ${c.where} ORDER BY p.name, p.channel_id LIMIT ?`,
      params: [...g.fromParams, ...g.whereParams, ...c.params, limit],
    };
  };
  if (prefix === first) return walk([]);
  const g = withGuards(d, [wordCount("bench_dir_channel_words", team, first, true)]);
  const c = and(
    viewerRow(team, viewer),
    { where: "AND w.team_id = ? AND w.word >= ? AND w.word < ?", params: [team, first, prefixEnd(first)] },
    { where: "AND c.team_id = w.team_id AND c.id = w.channel_id", params: [] },
    cond,
    tokenCheck(d, "c", tokens.slice(1)),
  );
  const sparse: Sel = {
    sql: `SELECT DISTINCT ${C_CARD} FROM ${g.from}bench_dir_users vw${j}bench_dir_channel_words w${j}bench_dir_channels c
          WHERE ${g.where}1 ${c.where} ORDER BY c.name, c.id LIMIT ?`,
    params: [...g.fromParams, ...g.whereParams, ...c.params, limit],
  };
  const dense = walk([wordCount("bench_dir_channel_words", team, first, false)]);
  return {
    sql: `SELECT * FROM (SELECT * FROM (${sparse.sql}) a UNION ALL SELECT * FROM (${dense.sql}) b) r ORDER BY r.name, r.id LIMIT ?`,
    params: [...sparse.params, ...dense.params, limit],
  };
}

function inList(d: Dialect, values: string[]): Cond {
  if (values.length === 0) return { where: "(NULL)", params: [] };
  if (d === "sqlite") return { where: "(SELECT value FROM json_each(?))", params: [JSON.stringify(values)] };
  return { where: `(${values.map(() => "?").join(", ")})`, params: values };
}

/** Reads for one question in one round trip: a D1 batch, or MySQL statements in parallel on the pool. */
interface Reader {
  d: Dialect;
  many(statements: Sel[]): Promise<Row[][]>;
}

/**
 * SQLite's numbered parameters, one per distinct value: D1 binds at most 100
 * per statement, and a composed statement repeats the team, viewer, channel
 * and tokens many times.
 */
function numbered(s: Sel): Sel {
  const values: unknown[] = [];
  const slot = new Map<string, number>();
  let i = 0;
  const sql = s.sql.replace(/\?/g, () => {
    const v = s.params[i++];
    const key = `${typeof v}:${String(v)}`;
    let k = slot.get(key);
    if (k === undefined) {
      values.push(v);
      k = values.length;
      slot.set(key, k);
    }
    return `?${k}`;
  });
  return { sql, params: values };
}

function readerFor(env: Env): Reader {
  const db = driverFor(env);
  if (db.dialect === "sqlite") {
    return {
      d: "sqlite",
      async many(statements) {
        const results = await env.DB.batch(
          statements.map(numbered).map((s) => env.DB.prepare(s.sql).bind(...s.params)),
        );
        return results.map((r) => r.results as Row[]);
      },
    };
  }
  return { d: "mysql", many: (statements) => Promise.all(statements.map((s) => db.all(s.sql, s.params))) };
}

/** The caller, as the cache checks it: an active member, else 403. */
const viewerCheck = (team: string, viewer: string): Sel => ({
  sql: "SELECT role, deleted FROM bench_dir_users WHERE team_id = ? AND id = ?",
  params: [team, viewer],
});
function mustBeActive(rows: Row[] | undefined): void {
  const row = rows?.[0];
  if (!row || n(row.deleted) === 1) throw new HttpFail(403, "not an active member of this team");
}
/** The channel if the viewer may see it (queries.ts channelIfVisible), with its member count. */
const channelCheck = (d: Dialect, team: string, viewer: string, channel: string): Sel => {
  const c = and(
    viewerRow(team, viewer),
    { where: "AND c.team_id = ? AND c.id = ?", params: [team, channel] },
    CHANNEL_VISIBLE,
  );
  return {
    sql: `SELECT c.member_count FROM bench_dir_users vw${join(d)}bench_dir_channels c WHERE 1 ${c.where}`,
    params: c.params,
  };
};

function channelJson(r: Row) {
  return {
    id: String(r.id),
    name: String(r.name),
    topic: String(r.topic),
    purpose: String(r.purpose),
    is_private: n(r.is_private) === 1,
    is_archived: n(r.is_archived) === 1,
    is_shared: n(r.is_shared) === 1,
    member_count: n(r.member_count),
    is_member: n(r.is_member) === 1,
  };
}

type DirectArgs = Record<string, unknown>;
const limitOf = (a: DirectArgs) => n(a.limit ?? 10);

/** Each question as the indexed database answers it (same viewer, same inputs, same answer as the cache). */
const direct: Record<string, (r: Reader, team: string, viewer: string, a: DirectArgs) => Promise<unknown>> = {
  async switcher({ d, many }, team, viewer, a) {
    const limit = limitOf(a);
    const tokens = queryTokens(String(a.q ?? ""));
    if (tokens.length === 0) {
      mustBeActive((await many([viewerCheck(team, viewer)]))[0]);
      return { items: [] };
    }
    const j = join(d);
    const vw = viewerRow(team, viewer);
    const mine = and(
      vw,
      { where: "AND m.team_id = ? AND m.user_id = ?", params: [team, viewer] },
      { where: "AND c.team_id = m.team_id AND c.id = m.channel_id AND c.is_archived = 0", params: [] },
      tokenCheck(d, "c", tokens),
    );
    // The viewer's small channels drive (memberships (team, user), then their members).
    const contacts = and(
      vw,
      { where: "AND u.team_id = ? AND u.id = x.user_id AND u.deleted = 0", params: [team] },
      tokenCheck(d, "u", tokens),
    );
    const smallChannelPeople = {
      sql: `(SELECT DISTINCT m2.user_id FROM memberships m1
          JOIN bench_dir_channels cc ON cc.team_id = m1.team_id AND cc.id = m1.channel_id AND cc.member_count <= ${CONTACT_CHANNEL_MAX} AND cc.is_shared = 0
          JOIN memberships m2 ON m2.team_id = m1.team_id AND m2.channel_id = m1.channel_id
          WHERE m1.team_id = ? AND m1.user_id = ? AND m2.user_id <> ?) x`,
      params: [team, viewer, viewer],
    };
    const [who, mineRows, contactRows, channelRows, peopleRows] = await many([
      viewerCheck(team, viewer),
      {
        sql: `SELECT ${C_CARD} FROM bench_dir_users vw${j}memberships m${j}bench_dir_channels c WHERE 1 ${mine.where} ORDER BY c.name, c.id LIMIT ?`,
        params: [...mine.params, limit],
      },
      {
        sql: `SELECT ${U_CARD} FROM bench_dir_users vw${j}${smallChannelPeople.sql}${j}bench_dir_users u WHERE 1 ${contacts.where} ORDER BY u.sort_key, u.id LIMIT ?`,
        params: [...smallChannelPeople.params, ...contacts.params, limit],
      },
      rankedChannels(
        d,
        team,
        viewer,
        tokens,
        limit,
        and({ where: "AND c.is_archived = 0", params: [] }, CHANNEL_VISIBLE),
      ),
      rankedUsers(d, team, viewer, tokens, limit, () => and({ where: "AND u.deleted = 0", params: [] }, USER_VISIBLE)),
    ]);
    mustBeActive(who);
    const seen = new Set<string>();
    const items: unknown[] = [];
    const tiers = [
      ...(mineRows ?? []).map((r) => ({ type: "channel", reason: "member", ...channelJson(r) })),
      ...(contactRows ?? []).map((r) => ({ type: "user", reason: "contact", ...toUser(r) })),
      ...(channelRows ?? []).map((r) => ({ type: "channel", reason: "match", ...channelJson(r) })),
      ...(peopleRows ?? []).map((r) => ({ type: "user", reason: "match", ...toUser(r) })),
    ];
    for (const s of tiers) {
      if (seen.has(s.id) || items.length >= limit) continue;
      seen.add(s.id);
      items.push(s);
    }
    return { items };
  },

  async mentions({ d, many }, team, viewer, a) {
    const channel = String(a.channel);
    const limit = limitOf(a);
    const tokens = queryTokens(String(a.q ?? ""));
    const j = join(d);
    const vw = viewerRow(team, viewer);
    let query: Sel;
    let othersQuery: Sel | null = null;
    if (tokens.length === 0) {
      const c = and(vw, {
        where:
          "AND m.team_id = ? AND m.channel_id = ? AND u.team_id = m.team_id AND u.id = m.user_id AND u.deleted = 0",
        params: [team, channel],
      });
      query = {
        sql: `SELECT 1 AS in_channel, ${U_CARD} FROM bench_dir_users vw${j}memberships m${j}bench_dir_users u WHERE 1 ${c.where} ORDER BY m.user_id LIMIT ?`,
        params: [...c.params, limit],
      };
    } else {
      // queries.ts memberPlan, from the kept member and user counts, as
      // one-row guards: sort a small channel's matching members, or walk the
      // ranked prefix testing membership against the channel's ids gathered
      // once (list) or probing it row by row (probe, a channel of most of the team).
      const PLAN = {
        sort: "6 * ch.member_count * ch.member_count <= ? * t.active_users",
        list: "NOT (6 * ch.member_count * ch.member_count <= ? * t.active_users) AND 2 * ch.member_count * ch.member_count <= 27 * ? * t.active_users",
        probe: "2 * ch.member_count * ch.member_count > 27 * ? * t.active_users",
        notProbe: "2 * ch.member_count * ch.member_count <= 27 * ? * t.active_users",
      };
      const planIs = (which: keyof typeof PLAN): Guard => ({
        from: `bench_dir_channels ch${j}bench_dir_teams t`,
        fromParams: [],
        where: `ch.team_id = ? AND ch.id = ? AND t.team_id = ch.team_id AND ${PLAN[which]}`,
        whereParams: [team, channel, ...(which === "list" ? [limit, limit] : [limit])],
      });
      const sortGuard = planIs("sort");
      const sc = and(
        vw,
        {
          where:
            "AND m.team_id = ? AND m.channel_id = ? AND u.team_id = m.team_id AND u.id = m.user_id AND u.deleted = 0",
          params: [team, channel],
        },
        tokenCheck(d, "u", tokens),
      );
      const bySort: Sel = {
        sql: `SELECT ${U_CARD} FROM ${sortGuard.from}${j}bench_dir_users vw${j}memberships m${j}bench_dir_users u
              WHERE ${sortGuard.where} ${sc.where} ORDER BY u.sort_key, u.id LIMIT ?`,
        params: [...sortGuard.whereParams, ...sc.params, limit],
      };
      const inChannel =
        (probe: boolean, yes: boolean) =>
        (id: string): Cond =>
          probe
            ? {
                where: `AND ${yes ? "" : "NOT "}EXISTS (SELECT 1 FROM memberships cm WHERE cm.team_id = ? AND cm.channel_id = ? AND cm.user_id = ${id})`,
                params: [team, channel],
              }
            : {
                where: `AND ${id} ${yes ? "" : "NOT "}IN (SELECT user_id FROM memberships WHERE team_id = ? AND channel_id = ?)`,
                params: [team, channel],
              };
      const member = (probe: boolean) => (id: string) =>
        and({ where: "AND u.deleted = 0", params: [] }, inChannel(probe, true)(id));
      const byList = rankedUsers(d, team, viewer, tokens, limit, member(false), null, [planIs("list")]);
      const byProbe = rankedUsers(d, team, viewer, tokens, limit, member(true), null, [planIs("probe")]);
      // Others only when members leave room: a second round trip, which most
      // questions never need (one statement with a guard on the members' count
      // measured slower on MariaDB than this).
      const other = (probe: boolean) => (id: string) =>
        and({ where: "AND u.deleted = 0", params: [] }, USER_VISIBLE, inChannel(probe, false)(id));
      const othersList = rankedUsers(d, team, viewer, tokens, limit, other(false), null, [planIs("notProbe")]);
      const othersProbe = rankedUsers(d, team, viewer, tokens, limit, other(true), null, [planIs("probe")]);
      query = {
        sql: `SELECT 1 AS in_channel, x.* FROM (SELECT * FROM (${bySort.sql}) s UNION ALL SELECT * FROM (${byList.sql}) l UNION ALL SELECT * FROM (${byProbe.sql}) p) x
              ORDER BY x.sort_key, x.id`,
        params: [...bySort.params, ...byList.params, ...byProbe.params],
      };
      othersQuery = {
        sql: `SELECT 0 AS in_channel, x.* FROM (SELECT * FROM (${othersList.sql}) ol UNION ALL SELECT * FROM (${othersProbe.sql}) op) x
              ORDER BY x.sort_key, x.id`,
        params: [...othersList.params, ...othersProbe.params],
      };
    }
    const [who, visible, members = []] = await many([
      viewerCheck(team, viewer),
      channelCheck(d, team, viewer, channel),
      query,
    ]);
    mustBeActive(who);
    if (!visible?.[0]) throw new HttpFail(404, `channel ${channel} not found`);
    const others = othersQuery && members.length < limit ? ((await many([othersQuery]))[0] ?? []) : [];
    return {
      items: [...members, ...others].slice(0, limit).map((r) => ({ ...toUser(r), in_channel: n(r.in_channel) === 1 })),
    };
  },

  async channel({ d, many }, team, viewer, a) {
    const c = and(
      viewerRow(team, viewer),
      { where: "AND c.team_id = ? AND c.id = ?", params: [team, String(a.channel)] },
      CHANNEL_VISIBLE,
    );
    const [who, rows] = await many([
      viewerCheck(team, viewer),
      {
        sql: `SELECT ${C_CARD} FROM bench_dir_users vw${join(d)}bench_dir_channels c WHERE 1 ${c.where}`,
        params: c.params,
      },
    ]);
    mustBeActive(who);
    const row = rows?.[0];
    if (!row) throw new HttpFail(404, `channel ${String(a.channel)} not found`);
    return { channel: channelJson(row) };
  },

  async members({ d, many }, team, viewer, a) {
    const channel = String(a.channel);
    const limit = limitOf(a);
    const after = a.cursor ? (decodeCursor(String(a.cursor))[0] ?? "") : "";
    const [who, visible, rows] = await many([
      viewerCheck(team, viewer),
      channelCheck(d, team, viewer, channel),
      {
        sql: `SELECT ${U_CARD} FROM memberships m${join(d)}bench_dir_users u
              WHERE m.team_id = ? AND m.channel_id = ? AND m.user_id > ? AND u.team_id = m.team_id AND u.id = m.user_id AND u.deleted = 0
              ORDER BY m.user_id LIMIT ?`,
        params: [team, channel, after, limit + 1],
      },
    ]);
    mustBeActive(who);
    if (!visible?.[0]) throw new HttpFail(404, `channel ${channel} not found`);
    const items = (rows ?? []).slice(0, limit).map(toUser);
    const last = items.at(-1);
    return { items, next_cursor: (rows ?? []).length > limit && last ? encodeCursor([last.id]) : null };
  },

  async people({ d, many }, team, viewer, a) {
    const f = a as { q?: string; role?: string; deactivated?: string; bots?: string; cursor?: string; limit?: string };
    const filters: string[] = [];
    const params: unknown[] = [];
    const deactivated = f.deactivated ?? "exclude";
    if (deactivated !== "include") filters.push(deactivated === "only" ? "AND u.deleted = 1" : "AND u.deleted = 0");
    const bots = f.bots ?? "include";
    if (bots !== "include") filters.push(bots === "only" ? "AND u.is_bot = 1" : "AND u.is_bot = 0");
    const roles = f.role ? f.role.split(",") : [];
    if (roles.length > 0) {
      filters.push(`AND u.role IN (${roles.map(() => "?").join(", ")})`);
      params.push(...roles);
    }
    const cond = and(USER_VISIBLE, { where: filters.join(" "), params });
    let after: [string, string] | null = null;
    if (f.cursor) {
      const [k, id] = decodeCursor(f.cursor);
      after = [k ?? "", id ?? ""];
    }
    const limit = limitOf(a);
    const tokens = queryTokens(f.q ?? "");
    const narrow = deactivated === "only" || bots === "only" || (roles.length > 0 && !roles.includes("member"));
    let query: Sel;
    if (tokens.length > 0 && !narrow) query = rankedUsers(d, team, viewer, tokens, limit + 1, () => cond, after);
    else {
      const c = and(
        viewerRow(team, viewer),
        { where: "AND u.team_id = ?", params: [team] },
        cond,
        tokenCheck(d, "u", tokens),
        keyAfter("u.sort_key", "u.id", after),
      );
      query = {
        sql: `SELECT ${U_CARD} FROM bench_dir_users vw${join(d)}bench_dir_users u WHERE 1 ${c.where} ORDER BY u.sort_key, u.id LIMIT ?`,
        params: [...c.params, limit + 1],
      };
    }
    const [who, rows = []] = await many([viewerCheck(team, viewer), query]);
    mustBeActive(who);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(toUser),
      next_cursor: rows.length > limit && last ? encodeCursor([String(last.sort_key), String(last.id)]) : null,
    };
  },

  async lookup({ d, many }, team, viewer, a) {
    const userIds = (a.users as string[] | undefined) ?? [];
    const channelIds = (a.channels as string[] | undefined) ?? [];
    const j = join(d);
    const ui = inList(d, userIds);
    const ci = inList(d, channelIds);
    const uc = and(
      viewerRow(team, viewer),
      { where: `AND u.team_id = ? AND u.id IN ${ui.where}`, params: [team, ...ui.params] },
      USER_VISIBLE,
    );
    const cc = and(
      viewerRow(team, viewer),
      { where: `AND c.team_id = ? AND c.id IN ${ci.where}`, params: [team, ...ci.params] },
      CHANNEL_VISIBLE,
    );
    const [who, users = [], channels = []] = await many([
      viewerCheck(team, viewer),
      {
        sql: `SELECT ${U_CARD} FROM bench_dir_users vw${j}bench_dir_users u WHERE 1 ${uc.where} ORDER BY u.id`,
        params: uc.params,
      },
      {
        sql: `SELECT ${C_CARD} FROM bench_dir_users vw${j}bench_dir_channels c WHERE 1 ${cc.where} ORDER BY c.id`,
        params: cc.params,
      },
    ]);
    mustBeActive(who);
    return {
      users: userIds.length === 0 ? [] : users.map(toUser),
      channels: channelIds.length === 0 ? [] : channels.map(channelJson),
    };
  },

  async boot({ d, many }, team, viewer) {
    const [who, self = [], channels = [], counts = []] = await many([
      viewerCheck(team, viewer),
      { sql: `SELECT ${U_CARD} FROM bench_dir_users u WHERE u.team_id = ? AND u.id = ?`, params: [team, viewer] },
      {
        sql: `SELECT c.id, c.name, c.is_private, c.is_archived, c.is_shared FROM memberships m${join(d)}bench_dir_channels c
              WHERE m.team_id = ? AND m.user_id = ? AND c.team_id = m.team_id AND c.id = m.channel_id ORDER BY c.name, c.id`,
        params: [team, viewer],
      },
      {
        sql: "SELECT t.dir_version AS version, b.active_users, b.channels FROM teams t JOIN bench_dir_teams b ON b.team_id = t.id WHERE t.id = ?",
        params: [team],
      },
    ]);
    mustBeActive(who);
    const c = counts[0] ?? {};
    return {
      version: n(c.version),
      full: true,
      self: self[0] ? toUser(self[0]) : undefined,
      team: { id: team, users: n(c.active_users), channels: n(c.channels) },
      channels: channels.map((r) => ({
        id: String(r.id),
        name: String(r.name),
        is_private: n(r.is_private) === 1,
        is_archived: n(r.is_archived) === 1,
        is_shared: n(r.is_shared) === 1,
      })),
    };
  },
};

/** The direct route's arguments from the request (same query strings and bodies as /v1/directory). */
async function directArgs(req: Request): Promise<DirectArgs> {
  const url = new URL(req.url);
  const a: DirectArgs = Object.fromEntries(url.searchParams);
  if (req.method === "POST") Object.assign(a, (await req.json()) as DirectArgs);
  return a;
}

// --- building the search tables ---------------------------------------------

const SEARCH_TABLES = [
  "bench_dir_users",
  "bench_dir_user_words",
  "bench_dir_user_prefixes",
  "bench_dir_channels",
  "bench_dir_channel_words",
  "bench_dir_channel_prefixes",
  "bench_dir_teams",
];

/** The cache's derived columns for one user (cache-db.ts insertUsers: sort key, words, search text) and its prefixes. */
function searchRows(team: string, u: DirUser) {
  const words = searchWords(u.name, u.realName, u.displayName);
  const sortKey = fold(u.displayName || u.realName || u.name);
  // biome-ignore format: one row
  const user = [
    team, u.id, u.name, u.realName, u.displayName, u.title, u.avatarHash, u.tz, u.isBot ? 1 : 0, u.role,
    u.deleted ? 1 : 0, sortKey, searchText(words),
  ];
  return {
    user,
    words: words.map((w) => [team, w, u.id]),
    prefixes: wordPrefixes(words).map((p) => [team, p, sortKey, u.id]),
  };
}

// --- bench routes -----------------------------------------------------------

async function body<T>(req: Request): Promise<T> {
  return (await req.json()) as T;
}

const routes: Record<string, (req: Request, env: Env) => Promise<unknown>> = {
  /** The teams (the big one, a small partner), the partner's users. */
  async "/bench/seed/teams"(req, env) {
    const { team, partner, shape } = await body<{ team: string; partner: string; shape: Shape }>(req);
    const db = driverFor(env);
    const plan = planFor(shape);
    // biome-ignore format: one row
    const teamRows = [team, partner].map((id) => [
      id, id === team ? "Bench Corp" : "Partner", "enterprise", "[]", EPOCH, 1,
    ]);
    const statements = inserts(
      db,
      "teams",
      ["id", "name", "plan", "claimed_domains", "created_at", "dir_version"],
      teamRows,
    );
    // dir_version 1: the whole directory arrived as one bulk import.
    statements.push(
      ...inserts(
        db,
        "directory_changes",
        ["team_id", "version", "kind", "entity_id", "extra", "at"],
        [team, partner].map((id) => [id, 1, "bulk", "", "reload", EPOCH]),
      ),
    );
    const partnerUsers = Array.from({ length: PARTNER_USERS }, (_, i) => {
      const id = `UP${String(i).padStart(6, "0")}`;
      const first = pick(FIRST, rand(i, 31));
      const last = pick(LAST, rand(i, 32));
      const handle = `${fold(first).replace(/[^a-z0-9]/g, "")}.p${i}`;
      // biome-ignore format: one row
      return [
        partner, id, `${handle}@partner.example`, "partner.example", "member", 0, 1, EPOCH, EPOCH, handle,
        `${first} ${last}`, "", "Partner", "", "UTC", 0,
      ];
    });
    statements.push(...inserts(db, "users", USER_COLS, partnerUsers));
    await runAll(db, statements);
    return { plan: { ...plan.counts, sharedChannels: plan.sharedChannels.map(channelId) } };
  },

  async "/bench/seed/users"(req, env) {
    const { team, shape, from, count } = await body<{ team: string; shape: Shape; from: number; count: number }>(req);
    const plan = planFor(shape);
    const db = driverFor(env);
    const rows: unknown[][] = [];
    for (let i = from; i < Math.min(from + count, shape.users); i++) {
      const u = userRow(plan, i);
      // biome-ignore format: one row
      rows.push([
        team, u.id, u.email, "bench.example", u.role, u.deactivated ? 1 : 0, 1, EPOCH, EPOCH, u.name, u.realName,
        u.displayName, u.title, u.avatarHash, u.tz, u.isBot ? 1 : 0,
      ]);
    }
    await runAll(db, inserts(db, "users", USER_COLS, rows));
    return { rows: rows.length };
  },

  async "/bench/seed/channels"(req, env) {
    const { team, shape, from, count } = await body<{ team: string; shape: Shape; from: number; count: number }>(req);
    const plan = planFor(shape);
    const db = driverFor(env);
    const rows: unknown[][] = [];
    for (let k = from; k < Math.min(from + count, shape.channels); k++) {
      const c = channelRow(plan, k);
      // biome-ignore format: one row
      rows.push([
        team, c.id, c.name, c.topic, c.purpose, c.isPrivate ? 1 : 0, c.isArchived ? 1 : 0, EPOCH + k, EPOCH + k,
      ]);
    }
    const cols = ["team_id", "id", "name", "topic", "purpose", "is_private", "is_archived", "created_at", "updated_at"];
    await runAll(db, inserts(db, "channels", cols, rows));
    return { rows: rows.length };
  },

  /** Channels [from, to): their members, ascending (team_id, channel_id, user_id) like the primary key. */
  async "/bench/seed/memberships"(req, env) {
    const { team, shape, from, to } = await body<{ team: string; shape: Shape; from: number; to: number }>(req);
    const plan = planFor(shape);
    const db = driverFor(env);
    let rows: unknown[][] = [];
    let total = 0;
    const flush = async () => {
      await runAll(
        db,
        inserts(db, "memberships", ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"], rows),
      );
      total += rows.length;
      rows = [];
    };
    for (let k = from; k < Math.min(to, shape.channels); k++) {
      const c = channelId(k);
      for (const u of membersOf(plan, k)) rows.push([team, c, userId(u), team, EPOCH]);
      // Batches of 10,000: the guarded driver bounds each call (a few seconds
      // plus a little per statement), and 50,000 rows at once outran it on a
      // MariaDB with default settings (innodb_buffer_pool_size 128 MB).
      if (rows.length >= 10_000) await flush();
    }
    await flush();
    return { rows: total };
  },

  /** A few of the big team's channels shared with the partner team, with some partner members. */
  async "/bench/seed/shares"(req, env) {
    const { team, partner, shape } = await body<{ team: string; partner: string; shape: Shape }>(req);
    const plan = planFor(shape);
    const db = driverFor(env);
    const shares = plan.sharedChannels.map((k) => [partner, channelId(k), team]);
    const members = plan.sharedChannels.flatMap((k) =>
      Array.from({ length: PARTNER_MEMBERS_PER_CHANNEL }, (_, i) => [
        team,
        channelId(k),
        `UP${String((i * 7 + k) % PARTNER_USERS).padStart(6, "0")}`,
        partner,
        EPOCH,
      ]),
    );
    await runAll(db, [
      ...inserts(db, "channel_shares", ["team_id", "channel_id", "host_team_id"], shares),
      ...inserts(db, "memberships", ["team_id", "channel_id", "user_id", "user_team_id", "joined_at"], members),
    ]);
    return { shares: shares.length, members: members.length };
  },

  /**
   * Inputs for the queries: typical members (active, not guests, not bots,
   * with the median number of channels among a sample), their channels, and
   * channels of every size the viewers may see.
   */
  async "/bench/plan"(req, env) {
    const { team, shape, viewers } = await body<{ team: string; shape: Shape; viewers: number }>(req);
    const plan = planFor(shape);
    const db = driverFor(env);
    const sample = await db.all(
      "SELECT m.`user_id` AS id, COUNT(*) AS n FROM memberships m JOIN users u ON u.`team_id` = m.`team_id` AND u.`id` = m.`user_id` WHERE m.`team_id` = ? AND m.`user_id` >= ? AND m.`user_id` < ? AND u.`deactivated` = 0 AND u.`is_bot` = 0 AND u.`role` = 'member' GROUP BY m.`user_id`",
      [team, userId(20), userId(Math.min(shape.users, 2020))],
    );
    const sorted = sample
      .map((r) => ({ id: String(r.id), n: n(r.n) }))
      .sort((a, b) => a.n - b.n || a.id.localeCompare(b.id));
    const mid = Math.floor(sorted.length / 2);
    const chosen = sorted.slice(
      Math.max(0, mid - Math.floor(viewers / 2)),
      Math.max(0, mid - Math.floor(viewers / 2)) + viewers,
    );
    const out: Array<{ id: string; channels: string[] }> = [];
    for (const v of chosen) {
      const rows = await db.all(
        "SELECT m.`channel_id` AS id FROM memberships m JOIN channels c ON c.`team_id` = m.`team_id` AND c.`id` = m.`channel_id` WHERE m.`team_id` = ? AND m.`user_id` = ? AND c.`is_archived` = 0 ORDER BY m.`channel_id`",
        [team, v.id],
      );
      out.push({
        id: v.id,
        channels: rows.map((r) => String(r.id)).filter((c) => !plan.sharedChannels.includes(Number(c.slice(1)))),
      });
    }
    // Public, unshared, unarchived channels by size: the biggest, and a spread down to the smallest.
    const pub: Array<{ id: string; size: number }> = [];
    for (let k = 1; k < shape.channels; k++) {
      const c = channelRow(plan, k);
      if (!c.isPrivate && !c.isArchived && !plan.sharedChannels.includes(k))
        pub.push({ id: c.id, size: plan.sizeOf[k] as number });
    }
    pub.sort((a, b) => b.size - a.size);
    const spread = [0, 1, 2, 5, 10, 30, 100, 300, 1000, 3000, 10000]
      .filter((i) => i < pub.length)
      .map((i) => pub[i] as { id: string; size: number });
    return {
      viewers: out,
      medianChannels: sorted[mid]?.n ?? 0,
      publicChannels: [{ id: channelId(0), size: shape.users }, ...spread],
      sharedChannels: plan.sharedChannels.map(channelId),
    };
  },

  /** Loads a cache now. `name` picks the object (a fresh name: a cold object). */
  async "/bench/warm"(req, env) {
    const { team, name } = await body<{ team: string; name?: string }>(req);
    const t0 = performance.now();
    const stub = cacheStub(env, name ?? team);
    const before = await stub.whoami();
    const stats = await stub.warm(team);
    return { ms: performance.now() - t0, stats, before, after: await stub.whoami() };
  },

  async "/bench/source-calls"(req, env) {
    const { team, name } = await body<{ team: string; name?: string }>(req);
    return cacheStub(env, name ?? team).takeSourceCalls();
  },

  async "/bench/stats"(req, env) {
    const { team, name } = await body<{ team: string; name?: string }>(req);
    return cacheStub(env, name ?? team).stats();
  },

  /** Where a load stands (meta only: cheap to poll, unlike stats()'s row counts). */
  async "/bench/load-progress"(req, env) {
    const { team, name } = await body<{ team: string; name?: string }>(req);
    return cacheStub(env, name ?? team).loadProgress();
  },

  /** The in-object loop; also timed here, around the RPC. */
  async "/bench/loop"(req, env) {
    const { team, viewer, op, n, calls } = await body<{
      team: string;
      viewer: string;
      op: LoopOp;
      n: number;
      calls: LoopCall[];
    }>(req);
    const t0 = performance.now();
    const inside = await cacheStub(env, team).loop(team, viewer, op, n, calls);
    return { ...inside, outsideMs: performance.now() - t0 };
  },

  /**
   * Bytes of a full team snapshot as JSON: every user with its profile, every
   * channel with its member ids, read in pages and counted, never held whole.
   * Also, per load page (same page sizes as the cache's load), the size of
   * the one JSON parameter the cache's insert statement binds (rows as
   * durable-objects/team-cache/cache-db.ts builds them): a SQLite-backed
   * Durable Object refuses strings over 2 MB.
   */
  async "/bench/snapshot-bytes"(req, env) {
    const { team } = await body<{ team: string }>(req);
    const src = directorySourceFor(env);
    const enc = new TextEncoder();
    const size = (s: string) => enc.encode(s).length;
    const t0 = performance.now();
    let bytes = size('{"users":[],"channels":[]}');
    let users = 0;
    const param = { users: 0, userWords: 0, channels: 0, channelWords: 0, memberships: 0 };
    const track = (key: keyof typeof param, rows: unknown[]) => {
      param[key] = Math.max(param[key], size(JSON.stringify(rows)));
    };
    for (let after: string | null = null; ; ) {
      const page = await src.pageUsers(team, after, LOAD_PAGE.users);
      for (const u of page) bytes += size(JSON.stringify(u)) + (users++ > 0 ? 1 : 0);
      const words = page.map((u) => searchWords(u.name, u.realName, u.displayName));
      // biome-ignore format: one row
      track(
        "users",
        page.map((u, i) => [
          u.id, u.teamId, u.name, u.realName, u.displayName, u.title, u.avatarHash, u.tz, u.isBot ? 1 : 0, u.role,
          u.deleted ? 1 : 0, u.updatedAt, fold(u.displayName || u.realName || u.name), searchText(words[i] ?? []),
          JSON.stringify(words[i] ?? []),
        ]),
      );
      track(
        "userWords",
        page.flatMap((u, i) => (words[i] ?? []).map((w) => [w, u.id])),
      );
      if (page.length < LOAD_PAGE.users) break;
      after = page.at(-1)?.id ?? null;
    }
    const memberIds = new Map<string, number>(); // channel -> bytes of its member id list (no brackets)
    let memberships = 0;
    for (let after: { channelId: string; userId: string } | null = null; ; ) {
      const page = await src.pageMemberships(team, after, LOAD_PAGE.memberships);
      track(
        "memberships",
        page.map((m) => [m.channelId, m.userId]),
      );
      for (const m of page) {
        const prev = memberIds.get(m.channelId);
        memberIds.set(m.channelId, (prev === undefined ? 0 : prev + 1) + size(JSON.stringify(m.userId)));
        memberships++;
      }
      if (page.length < LOAD_PAGE.memberships) break;
      const last = page.at(-1);
      after = last ? { channelId: last.channelId, userId: last.userId } : null;
    }
    let channels = 0;
    for (let after: string | null = null; ; ) {
      const page = await src.pageChannels(team, after, LOAD_PAGE.channels);
      const words = page.map((c) => searchWords(c.name));
      // biome-ignore format: one row
      track(
        "channels",
        page.map((c, i) => [
          c.id, c.teamId, c.name, c.topic, c.purpose, c.isPrivate ? 1 : 0, c.isArchived ? 1 : 0, c.createdAt,
          c.updatedAt, JSON.stringify(c.sharedWith), searchText(words[i] ?? []), JSON.stringify(words[i] ?? []),
        ]),
      );
      track(
        "channelWords",
        page.flatMap((c, i) => (words[i] ?? []).map((w) => [w, c.id])),
      );
      for (const c of page) {
        // {...channel, "members":[...]}: the object minus its closing brace, the list, the brace.
        bytes +=
          size(JSON.stringify(c)) + size(',"members":[]') + (memberIds.get(c.id) ?? 0) + (channels++ > 0 ? 1 : 0);
      }
      if (page.length < LOAD_PAGE.channels) break;
      after = page.at(-1)?.id ?? null;
    }
    return {
      bytes,
      users,
      channels,
      memberships,
      ms: performance.now() - t0,
      loadParamBytes: param,
      loadPage: LOAD_PAGE,
    };
  },

  /**
   * The indexed baseline's search tables: created, then filled from the same
   * DirectorySource pages the cache loads (so both derive from identical
   * rows), then member and team counts. `after` pages users and channels
   * across requests.
   */
  async "/bench/seed/search"(req, env) {
    const { team, step, after } = await body<{
      team: string;
      step: "create" | "users" | "channels" | "counts";
      after?: string | null;
    }>(req);
    const db = driverFor(env);
    const src = directorySourceFor(env);
    const PAGES = 10;
    if (step === "create") {
      for (const statement of searchDdl(db.dialect)) await db.run(statement);
      return { tables: SEARCH_TABLES };
    }
    if (step === "users") {
      let cursor = after ?? null;
      let rows = 0;
      for (let i = 0; i < PAGES; i++) {
        const page = await src.pageUsers(team, cursor, LOAD_PAGE.users);
        const built = page.map((u) => searchRows(team, u));
        // biome-ignore format: column lists
        await runAll(db, [
          ...inserts(db, "bench_dir_users", ["team_id", "id", "name", "real_name", "display_name", "title", "avatar_hash", "tz", "is_bot", "role", "deleted", "sort_key", "search_text"], built.map((b) => b.user)),
          ...inserts(db, "bench_dir_user_words", ["team_id", "word", "user_id"], built.flatMap((b) => b.words)),
          ...inserts(db, "bench_dir_user_prefixes", ["team_id", "prefix", "sort_key", "user_id"], built.flatMap((b) => b.prefixes)),
        ]);
        rows += page.length;
        if (page.length < LOAD_PAGE.users) return { rows, after: null };
        cursor = page.at(-1)?.id ?? null;
      }
      return { rows, after: cursor };
    }
    if (step === "channels") {
      let cursor = after ?? null;
      let rows = 0;
      for (let i = 0; i < PAGES; i++) {
        const page = await src.pageChannels(team, cursor, LOAD_PAGE.channels);
        const words = page.map((c) => searchWords(c.name));
        // biome-ignore format: column lists
        await runAll(db, [
          ...inserts(db, "bench_dir_channels", ["team_id", "id", "name", "topic", "purpose", "is_private", "is_archived", "is_shared", "member_count", "search_text"],
            page.map((c, k) => [team, c.id, c.name, c.topic, c.purpose, c.isPrivate ? 1 : 0, c.isArchived ? 1 : 0, c.sharedWith.length > 0 ? 1 : 0, 0, searchText(words[k] ?? [])])),
          ...inserts(db, "bench_dir_channel_words", ["team_id", "word", "channel_id"], page.flatMap((c, k) => (words[k] ?? []).map((w) => [team, w, c.id]))),
          ...inserts(db, "bench_dir_channel_prefixes", ["team_id", "prefix", "name", "channel_id"], page.flatMap((c, k) => wordPrefixes(words[k] ?? []).map((p) => [team, p, c.name, c.id]))),
        ]);
        rows += page.length;
        if (page.length < LOAD_PAGE.channels) return { rows, after: null };
        cursor = page.at(-1)?.id ?? null;
      }
      return { rows, after: cursor };
    }
    // Planner statistics, as a team would keep them: without them SQLite takes
    // team_id, the first column of every key, for selective, and reads a
    // team's whole memberships primary key rather than its (team, user) index.
    if (db.dialect === "sqlite") await db.run("ANALYZE");
    else await db.run(`ANALYZE TABLE memberships, users, channels, ${SEARCH_TABLES.join(", ")}`);
    // Counts a team keeps rather than computes per request, as the cache does.
    await db.run(
      "UPDATE bench_dir_channels SET member_count = (SELECT COUNT(*) FROM memberships m WHERE m.team_id = bench_dir_channels.team_id AND m.channel_id = bench_dir_channels.id) WHERE team_id = ?",
      [team],
    );
    await db.run(
      "INSERT INTO bench_dir_teams (team_id, active_users, channels) SELECT ?, (SELECT COUNT(*) FROM bench_dir_users WHERE team_id = ? AND deleted = 0), (SELECT COUNT(*) FROM bench_dir_channels WHERE team_id = ?)",
      [team, team, team],
    );
    const one = async (sql: string) => n((await db.all(sql, [team]))[0]?.n);
    return {
      users: await one("SELECT COUNT(*) AS n FROM bench_dir_users WHERE team_id = ?"),
      userWords: await one("SELECT COUNT(*) AS n FROM bench_dir_user_words WHERE team_id = ?"),
      userPrefixes: await one("SELECT COUNT(*) AS n FROM bench_dir_user_prefixes WHERE team_id = ?"),
      channels: await one("SELECT COUNT(*) AS n FROM bench_dir_channels WHERE team_id = ?"),
      channelPrefixes: await one("SELECT COUNT(*) AS n FROM bench_dir_channel_prefixes WHERE team_id = ?"),
    };
  },

  /** Debugging the baseline (bench --explain): each statement of one question alone, timed, with its plan. */
  async "/bench/explain"(req, env) {
    const { team, viewer, query, args } = await body<{ team: string; viewer: string; query: string; args: DirectArgs }>(
      req,
    );
    const fn = direct[query];
    if (!fn) throw new HttpFail(404, `no direct query ${query}`);
    const db = driverFor(env);
    const out: Array<{ ms: number; rows: number; sql: string; plan: unknown[] }> = [];
    const reader: Reader = {
      d: db.dialect,
      async many(statements) {
        const all: Row[][] = [];
        for (const statement of statements) {
          const s = db.dialect === "sqlite" ? numbered(statement) : statement;
          const t0 = performance.now();
          const rows = await db.all(s.sql, s.params);
          const ms = performance.now() - t0;
          const plan = await db.all(`${db.dialect === "sqlite" ? "EXPLAIN QUERY PLAN" : "EXPLAIN"} ${s.sql}`, s.params);
          out.push({ ms, rows: rows.length, sql: s.sql.replace(/\s+/g, " "), plan });
          all.push(rows);
        }
        return all;
      },
    };
    await fn(reader, team, viewer, args).catch((e: unknown) => out.push({ ms: 0, rows: 0, sql: String(e), plan: [] }));
    return out;
  },

  /**
   * Both sides from inside the Worker, interleaved by blocks of `block` calls
   * (alternating which side goes first), each block timed whole: workerd's
   * clock has millisecond steps, too coarse for one sub-millisecond call. The
   * cache is called as the app calls it (the RPC into the object, its work,
   * the answer cloned back), the indexed database as the baseline calls it
   * (its round trip). Every pair of answers is compared.
   */
  async "/bench/pair-loop"(req, env) {
    const { team, query, blocks, block, calls } = await body<{
      team: string;
      query: LoopOp;
      blocks: number;
      block: number;
      calls: PairCall[];
    }>(req);
    const fn = direct[query === "directory" ? "people" : query];
    if (!fn) throw new HttpFail(404, `no direct query ${query}`);
    const reader = readerFor(env);
    const stub = cacheStub(env, team);
    const cacheMs: number[] = [];
    const dbMs: number[] = [];
    let identical = 0;
    let sameJson = 0;
    let compared = 0;
    let firstDiff = "";
    for (let b = 0; b < blocks; b++) {
      const inputs = Array.from({ length: block }, (_, k) => calls[(b * block + k) % calls.length] as PairCall);
      const viaCache = async () => {
        const out: unknown[] = [];
        const t0 = performance.now();
        for (const c of inputs) out.push(await cacheAnswer(stub, team, c.viewer, query, c.args));
        cacheMs.push(performance.now() - t0);
        return out;
      };
      const viaDb = async () => {
        const out: unknown[] = [];
        const t0 = performance.now();
        for (const c of inputs) out.push(await fn(reader, team, c.viewer, c.directArgs));
        dbMs.push(performance.now() - t0);
        return out;
      };
      let a: unknown[];
      let d: unknown[];
      if (b % 2 === 0) {
        a = await viaCache();
        d = await viaDb();
      } else {
        d = await viaDb();
        a = await viaCache();
      }
      inputs.forEach((c, k) => {
        compared++;
        const [x, y] = [answerIds(a[k]).join(","), answerIds(d[k]).join(",")];
        if (x === y) identical++;
        else if (!firstDiff) firstDiff = `${JSON.stringify(c.args)}: cache ${x} / db ${y}`;
        if (JSON.stringify(a[k]) === JSON.stringify(d[k])) sameJson++;
      });
    }
    return { cacheMs, dbMs, compared, identical, sameJson, firstDiff };
  },

  async "/bench/db-counts"(req, env) {
    const { team } = await body<{ team: string }>(req);
    const db = driverFor(env);
    const one = async (sql: string) => n((await db.all(sql, [team]))[0]?.n);
    return {
      users: await one("SELECT COUNT(*) AS n FROM users WHERE `team_id` = ?"),
      channels: await one("SELECT COUNT(*) AS n FROM channels WHERE `team_id` = ?"),
      memberships: await one("SELECT COUNT(*) AS n FROM memberships WHERE `team_id` = ?"),
      guests: await one("SELECT COUNT(*) AS n FROM users WHERE `team_id` = ? AND `role` = 'guest'"),
      deactivated: await one("SELECT COUNT(*) AS n FROM users WHERE `team_id` = ? AND `deactivated` = 1"),
      bots: await one("SELECT COUNT(*) AS n FROM users WHERE `team_id` = ? AND `is_bot` = 1"),
      private: await one("SELECT COUNT(*) AS n FROM channels WHERE `team_id` = ? AND `is_private` = 1"),
    };
  },
};

const app = createApp();

async function handleDirect(request: Request, env: Env, query: string): Promise<Response> {
  const fn = direct[query];
  if (!fn) return Response.json({ error: { code: "not_found", message: query } }, { status: 404 });
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  const verified = token ? await verifyToken(token, env.JWT_SECRET) : null;
  if (!verified?.ok) return Response.json({ error: { code: "unauthorized", message: "bad token" } }, { status: 401 });
  try {
    const out = await fn(readerFor(env), verified.identity.team, verified.identity.user, await directArgs(request));
    return Response.json(out);
  } catch (error) {
    if (error instanceof HttpFail) {
      return Response.json({ error: { code: "failed", message: error.message } }, { status: error.status });
    }
    throw error;
  }
}

export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    if (path.startsWith("/bench/direct/")) return handleDirect(request, env, path.slice("/bench/direct/".length));
    const route = routes[path];
    if (!route) return app.fetch(request, env, ctx);
    try {
      return Response.json(await route(request, env));
    } catch (error) {
      const status = error instanceof HttpFail ? error.status : 500;
      return Response.json({ error: String(error instanceof Error ? error.stack : error) }, { status });
    }
  },
  queue: worker.queue,
} satisfies ExportedHandler<Env>;
