import { SharedChannel } from "../durable-objects/shared-channel/shared-channel";
import { fold, searchText, searchWords } from "../durable-objects/team-cache/normalize";
import { type DirectoryFilter, decodeCursor, encodeCursor, toUser } from "../durable-objects/team-cache/queries";
import { LOAD_PAGE, TeamCache } from "../durable-objects/team-cache/team-cache";
import { verifyToken } from "../src/auth/tokens";
import type { DirectorySource } from "../src/directory/source";
import type { SqlDriver, Statement } from "../storage/sql-driver";
import { createApp } from "../workers/app";
import { directorySourceFor, driverFor } from "../workers/deps";
import worker from "../workers/index";

// Benchmark-only Worker for `npm run bench:directory` (bench/wrangler.directory.toml,
// never deployed): the real app and queue handler, the team cache with one
// extra RPC (an in-object loop), and /bench routes that
// - seed a big team straight into the database (no admin validation),
// - answer each directory query directly from the database: the baseline the
//   edge cache replaces,
// - measure a full team snapshot's size.

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

// --- the database baseline: each query answered directly --------------------

interface DirectViewer {
  id: string;
  isGuest: boolean;
}

class HttpFail extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const U_COLS =
  "u.`id`, u.`name`, u.`real_name`, u.`display_name`, u.`title`, u.`avatar_hash`, u.`tz`, u.`is_bot`, u.`role`, u.`deactivated` AS deleted";
const SORT_NAME = "LOWER(COALESCE(NULLIF(u.`display_name`, ''), NULLIF(u.`real_name`, ''), u.`name`))";
const IS_MEMBER =
  "EXISTS (SELECT 1 FROM memberships vm WHERE vm.`team_id` = c.`team_id` AND vm.`channel_id` = c.`id` AND vm.`user_id` = ?)";
const IS_SHARED =
  "EXISTS (SELECT 1 FROM channel_shares s WHERE s.`host_team_id` = c.`team_id` AND s.`channel_id` = c.`id`)";
const MEMBER_COUNT =
  "(SELECT COUNT(*) FROM memberships mc WHERE mc.`team_id` = c.`team_id` AND mc.`channel_id` = c.`id`)";

const n = (v: unknown) => Number(v);

function channelJson(r: Record<string, unknown>) {
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

function tokensOf(q: string): string[] {
  return [...new Set(q.toLowerCase().split(/\s+/).filter(Boolean))];
}

const esc = (t: string) => t.replace(/[!%_]/g, "!$&");

/** Every token starts a word of the handle, real name or display name. */
function userMatch(tokens: string[]): { where: string; params: string[] } {
  const like = (col: string) => `${col} LIKE ? ESCAPE '!'`;
  return {
    where: tokens
      .map(
        () =>
          `AND (${like("u.`name`")} OR ${like("u.`name`")} OR ${like("u.`real_name`")} OR ${like("u.`real_name`")} OR ${like("u.`display_name`")} OR ${like("u.`display_name`")})`,
      )
      .join(" "),
    params: tokens.flatMap((t) => [
      `${esc(t)}%`,
      `%.${esc(t)}%`,
      `${esc(t)}%`,
      `% ${esc(t)}%`,
      `${esc(t)}%`,
      `% ${esc(t)}%`,
    ]),
  };
}

/** Every token starts a word of the channel name (words split by - and _). */
function channelMatch(tokens: string[]): { where: string; params: string[] } {
  return {
    where: tokens
      .map(() => "AND (c.`name` LIKE ? ESCAPE '!' OR c.`name` LIKE ? ESCAPE '!' OR c.`name` LIKE ? ESCAPE '!')")
      .join(" "),
    params: tokens.flatMap((t) => [`${esc(t)}%`, `%-${esc(t)}%`, `%!_${esc(t)}%`]),
  };
}

function userVisible(v: DirectViewer, team: string): { where: string; params: string[] } {
  if (!v.isGuest) return { where: "", params: [] };
  return {
    where:
      "AND (u.`id` = ? OR EXISTS (SELECT 1 FROM memberships g1 JOIN memberships g2 ON g2.`team_id` = g1.`team_id` AND g2.`channel_id` = g1.`channel_id` AND g2.`user_id` = u.`id` WHERE g1.`team_id` = ? AND g1.`user_id` = ?))",
    params: [v.id, team, v.id],
  };
}

function channelVisible(v: DirectViewer): { where: string; params: string[] } {
  const member =
    "EXISTS (SELECT 1 FROM memberships cv WHERE cv.`team_id` = c.`team_id` AND cv.`channel_id` = c.`id` AND cv.`user_id` = ?)";
  return { where: v.isGuest ? `AND ${member}` : `AND (c.\`is_private\` = 0 OR ${member})`, params: [v.id] };
}

function inList(driver: SqlDriver, values: string[]): { clause: string; params: unknown[] } {
  if (values.length === 0) return { clause: "(NULL)", params: [] };
  if (driver.dialect === "sqlite")
    return { clause: "(SELECT value FROM json_each(?))", params: [JSON.stringify(values)] };
  return { clause: `(${values.map(() => "?").join(", ")})`, params: values };
}

/**
 * MySQL drives a memberships-users join from users (a range on the users key
 * implied by m.user_id > ?, then a filesort: 0.7 s for a page of #general);
 * the obvious fix, joining in the written order, is part of "best
 * straightforward SQL". SQLite already plans it that way.
 */
function straight(db: SqlDriver): string {
  return db.dialect === "mysql" ? "STRAIGHT_JOIN " : "";
}

async function directViewer(db: SqlDriver, team: string, id: string): Promise<DirectViewer> {
  const rows = await db.all("SELECT `role`, `deactivated` FROM users WHERE `team_id` = ? AND `id` = ?", [team, id]);
  const row = rows[0];
  if (!row || n(row.deactivated) === 1) throw new HttpFail(403, "not an active member of this team");
  return { id, isGuest: row.role === "guest" };
}

async function visibleChannel(db: SqlDriver, team: string, v: DirectViewer, channel: string): Promise<void> {
  const vis = channelVisible(v);
  const rows = await db.all(`SELECT c.\`id\` FROM channels c WHERE c.\`team_id\` = ? AND c.\`id\` = ? ${vis.where}`, [
    team,
    channel,
    ...vis.params,
  ]);
  if (rows.length === 0) throw new HttpFail(404, `channel ${channel} not found`);
}

type DirectArgs = Record<string, unknown>;

/** Each query as the database would answer it without the cache (same viewer, same inputs). */
const direct: Record<string, (db: SqlDriver, team: string, viewerId: string, a: DirectArgs) => Promise<unknown>> = {
  async switcher(db, team, viewerId, a) {
    const v = await directViewer(db, team, viewerId);
    const limit = n(a.limit ?? 10);
    const tokens = tokensOf(String(a.q ?? ""));
    if (tokens.length === 0) return { items: [] };
    const cm = channelMatch(tokens);
    const cvis = channelVisible(v);
    const um = userMatch(tokens);
    const uvis = userVisible(v, team);
    const [channels, users] = await Promise.all([
      db.all(
        `SELECT x.*, (SELECT COUNT(*) FROM memberships mc WHERE mc.\`team_id\` = x.\`team_id\` AND mc.\`channel_id\` = x.\`id\`) AS member_count,
           EXISTS (SELECT 1 FROM channel_shares s WHERE s.\`host_team_id\` = x.\`team_id\` AND s.\`channel_id\` = x.\`id\`) AS is_shared
         FROM (SELECT c.\`team_id\`, c.\`id\`, c.\`name\`, c.\`topic\`, c.\`purpose\`, c.\`is_private\`, c.\`is_archived\`, ${IS_MEMBER} AS is_member
               FROM channels c WHERE c.\`team_id\` = ? AND c.\`is_archived\` = 0 ${cvis.where} ${cm.where}
               ORDER BY is_member DESC, c.\`name\` LIMIT ?) x
         ORDER BY x.is_member DESC, x.\`name\``,
        [v.id, team, ...cvis.params, ...cm.params, limit],
      ),
      db.all(
        `SELECT ${U_COLS} FROM users u WHERE u.\`team_id\` = ? AND u.\`deactivated\` = 0 ${uvis.where} ${um.where}
         ORDER BY ${SORT_NAME}, u.\`id\` LIMIT ?`,
        [team, ...uvis.params, ...um.params, limit],
      ),
    ]);
    const items = [
      ...channels.map((r) => ({ type: "channel", reason: n(r.is_member) ? "member" : "match", ...channelJson(r) })),
      ...users.map((r) => ({ type: "user", reason: "match", ...toUser(r) })),
    ];
    return { items: items.slice(0, limit) };
  },

  async mentions(db, team, viewerId, a) {
    const v = await directViewer(db, team, viewerId);
    const channel = String(a.channel);
    const limit = n(a.limit ?? 10);
    const tokens = tokensOf(String(a.q ?? ""));
    const uvis = userVisible(v, team);
    const um = userMatch(tokens);
    const [, rows] = await Promise.all([
      visibleChannel(db, team, v, channel),
      tokens.length === 0
        ? db.all(
            `SELECT ${straight(db)}${U_COLS}, 1 AS in_channel FROM memberships m JOIN users u ON u.\`team_id\` = m.\`team_id\` AND u.\`id\` = m.\`user_id\`
             WHERE m.\`team_id\` = ? AND m.\`channel_id\` = ? AND u.\`deactivated\` = 0 ORDER BY m.\`user_id\` LIMIT ?`,
            [team, channel, limit],
          )
        : db.all(
            `SELECT ${U_COLS}, EXISTS (SELECT 1 FROM memberships cm WHERE cm.\`team_id\` = u.\`team_id\` AND cm.\`channel_id\` = ? AND cm.\`user_id\` = u.\`id\`) AS in_channel
             FROM users u WHERE u.\`team_id\` = ? AND u.\`deactivated\` = 0 ${uvis.where} ${um.where}
             ORDER BY in_channel DESC, ${SORT_NAME}, u.\`id\` LIMIT ?`,
            [channel, team, ...uvis.params, ...um.params, limit],
          ),
    ]);
    return { items: rows.map((r) => ({ ...toUser(r), in_channel: n(r.in_channel) === 1 })) };
  },

  async channel(db, team, viewerId, a) {
    const v = await directViewer(db, team, viewerId);
    const vis = channelVisible(v);
    const rows = await db.all(
      `SELECT c.\`id\`, c.\`name\`, c.\`topic\`, c.\`purpose\`, c.\`is_private\`, c.\`is_archived\`, ${IS_SHARED} AS is_shared,
         ${MEMBER_COUNT} AS member_count, ${IS_MEMBER} AS is_member
       FROM channels c WHERE c.\`team_id\` = ? AND c.\`id\` = ? ${vis.where}`,
      [v.id, team, String(a.channel), ...vis.params],
    );
    if (!rows[0]) throw new HttpFail(404, `channel ${String(a.channel)} not found`);
    return { channel: channelJson(rows[0]) };
  },

  async members(db, team, viewerId, a) {
    const v = await directViewer(db, team, viewerId);
    const channel = String(a.channel);
    const limit = n(a.limit ?? 10);
    const after = a.cursor ? (decodeCursor(String(a.cursor))[0] ?? "") : "";
    const [, rows] = await Promise.all([
      visibleChannel(db, team, v, channel),
      db.all(
        `SELECT ${straight(db)}${U_COLS} FROM memberships m JOIN users u ON u.\`team_id\` = m.\`team_id\` AND u.\`id\` = m.\`user_id\`
         WHERE m.\`team_id\` = ? AND m.\`channel_id\` = ? AND m.\`user_id\` > ? AND u.\`deactivated\` = 0
         ORDER BY m.\`user_id\` LIMIT ?`,
        [team, channel, after, limit + 1],
      ),
    ]);
    const items = rows.slice(0, limit).map(toUser);
    const last = items.at(-1);
    return { items, next_cursor: rows.length > limit && last ? encodeCursor([last.id]) : null };
  },

  async people(db, team, viewerId, a) {
    const v = await directViewer(db, team, viewerId);
    const f = a as unknown as DirectoryFilter & { role?: string };
    const where: string[] = [];
    const params: unknown[] = [team];
    const uvis = userVisible(v, team);
    where.push(uvis.where);
    params.push(...uvis.params);
    const deactivated = f.deactivated ?? "exclude";
    if (deactivated !== "include")
      where.push(deactivated === "only" ? "AND u.`deactivated` = 1" : "AND u.`deactivated` = 0");
    const bots = f.bots ?? "include";
    if (bots !== "include") where.push(bots === "only" ? "AND u.`is_bot` = 1" : "AND u.`is_bot` = 0");
    const roles = f.role ? f.role.split(",") : [];
    if (roles.length > 0) {
      where.push(`AND u.\`role\` IN (${roles.map(() => "?").join(", ")})`);
      params.push(...roles);
    }
    const um = userMatch(tokensOf(f.q ?? ""));
    where.push(um.where);
    params.push(...um.params);
    if (f.cursor) {
      const [sortKey, id] = decodeCursor(f.cursor);
      where.push(`AND (${SORT_NAME} > ? OR (${SORT_NAME} = ? AND u.\`id\` > ?))`);
      params.push(sortKey ?? "", sortKey ?? "", id ?? "");
    }
    const limit = n(f.limit ?? 10);
    const rows = await db.all(
      `SELECT ${U_COLS}, ${SORT_NAME} AS sort_name FROM users u WHERE u.\`team_id\` = ? ${where.join(" ")}
       ORDER BY ${SORT_NAME}, u.\`id\` LIMIT ?`,
      [...params, limit + 1],
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(toUser),
      next_cursor: rows.length > limit && last ? encodeCursor([String(last.sort_name), String(last.id)]) : null,
    };
  },

  async lookup(db, team, viewerId, a) {
    const v = await directViewer(db, team, viewerId);
    const userIds = (a.users as string[] | undefined) ?? [];
    const channelIds = (a.channels as string[] | undefined) ?? [];
    const ui = inList(db, userIds);
    const ci = inList(db, channelIds);
    const uvis = userVisible(v, team);
    const cvis = channelVisible(v);
    const [users, channels] = await Promise.all([
      userIds.length === 0
        ? []
        : db.all(`SELECT ${U_COLS} FROM users u WHERE u.\`team_id\` = ? AND u.\`id\` IN ${ui.clause} ${uvis.where}`, [
            team,
            ...ui.params,
            ...uvis.params,
          ]),
      channelIds.length === 0
        ? []
        : db.all(
            `SELECT c.\`id\`, c.\`name\`, c.\`topic\`, c.\`purpose\`, c.\`is_private\`, c.\`is_archived\`, ${IS_SHARED} AS is_shared,
               ${MEMBER_COUNT} AS member_count, ${IS_MEMBER} AS is_member
             FROM channels c WHERE c.\`team_id\` = ? AND c.\`id\` IN ${ci.clause} ${cvis.where}`,
            [v.id, team, ...ci.params, ...cvis.params],
          ),
    ]);
    return { users: users.map(toUser), channels: channels.map(channelJson) };
  },

  async boot(db, team, viewerId) {
    const v = await directViewer(db, team, viewerId);
    const [self, channels, counts] = await Promise.all([
      db.all(`SELECT ${U_COLS} FROM users u WHERE u.\`team_id\` = ? AND u.\`id\` = ?`, [team, v.id]),
      db.all(
        `SELECT c.\`id\`, c.\`name\`, c.\`is_private\`, c.\`is_archived\`, ${IS_SHARED} AS is_shared
         FROM memberships m JOIN channels c ON c.\`team_id\` = m.\`team_id\` AND c.\`id\` = m.\`channel_id\`
         WHERE m.\`team_id\` = ? AND m.\`user_id\` = ? ORDER BY c.\`name\``,
        [team, v.id],
      ),
      db.all(
        "SELECT (SELECT `dir_version` FROM teams WHERE `id` = ?) AS version, (SELECT COUNT(*) FROM users WHERE `team_id` = ? AND `deactivated` = 0) AS users, (SELECT COUNT(*) FROM channels WHERE `team_id` = ?) AS channels",
        [team, team, team],
      ),
    ]);
    const c = counts[0] ?? {};
    return {
      version: n(c.version),
      full: true,
      self: self[0] ? toUser(self[0]) : undefined,
      team: { id: team, users: n(c.users), channels: n(c.channels) },
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
      if (rows.length >= 50_000) await flush();
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

  /** The baseline loop: n direct queries inside the Worker, no HTTP. */
  async "/bench/direct-loop"(req, env) {
    const { team, query, n, calls } = await body<{
      team: string;
      query: string;
      n: number;
      calls: Array<{ viewer: string; args: DirectArgs }>;
    }>(req);
    const fn = direct[query];
    if (!fn) throw new HttpFail(404, `no direct query ${query}`);
    const db = driverFor(env);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const c = calls[i % calls.length] as { viewer: string; args: DirectArgs };
      await fn(db, team, c.viewer, c.args);
    }
    return { n, ms: performance.now() - t0 };
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
    const out = await fn(driverFor(env), verified.identity.team, verified.identity.user, await directArgs(request));
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
