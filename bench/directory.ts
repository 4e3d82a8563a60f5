import { Log, LogLevel } from "miniflare";
import type { CacheStats } from "../durable-objects/team-cache/team-cache";
import { signToken } from "../src/auth/tokens";
import { bundle, startBackend, workerOptionsOf } from "../tools/harness/backend";
import { type BenchResult, compare, printTable, writeResults } from "../tools/harness/results";
import { descendantPids, median, percentile, processUsage } from "./harness";

// npm run bench:directory [-- --quick] [--only d1|mysql] [--explain] [--queries switcher,mentions,...]
//
// Builds a 200,000-user team (20,000 channels, 2,000,000 memberships; --quick:
// a tenth) straight into the database, then per storage adapter (D1 as
// Miniflare runs it; MySQL through the real PlanetScale driver and
// tools/psdb-server on MariaDB), side by side in one run:
// - per query (quick switcher, mentions, channel header, channel members,
//   directory page, batch lookup, boot), through the edge cache (the
//   TeamCache Durable Object) vs the indexed DB query: the same question
//   answered by the database from search tables with the cache's indexes,
//   ranking and page size (bench/directory-worker.ts explains them). Every
//   pair of answers is compared (ids and order: `identical`, which must be
//   1); p50/p99 over HTTP from interleaved requests, requests/s with a few
//   concurrent clients, p50/p99 per op timed inside the Worker (the cache's
//   RPC + work vs the database's round trip), and the cache's compute in the
//   object on its own;
// - cold load of the team into the cache: the first answer (from the
//   caller's own rows, while the load goes on in steps), the time to fully
//   loaded, the largest step, then warm() of fresh objects (a caller that
//   needs the whole team), with what the loaded cache holds and workerd's CPU;
// - boot payload bytes (full and incremental) vs a full team snapshot's bytes;
// - the focused boot (GET /v1/directory/boot?focus=, a channel with messages):
//   its bytes and p50/p99 over HTTP beside the full boot's, against the same
//   first screen asked in three round trips (boot, channel header, history).

const QUICK = process.argv.includes("--quick");
/** Print the baseline's slow statements with their plans before timing each query (debugging). */
const EXPLAIN = process.argv.includes("--explain");
/** Only these queries (comma-separated), for debugging one of them. */
const ONLY_QUERIES = process.argv.includes("--queries")
  ? process.argv[process.argv.indexOf("--queries") + 1]?.split(",")
  : undefined;
const ONLY = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const SHAPE = QUICK
  ? { users: 20_000, channels: 2_000, memberships: 200_000 }
  : { users: 200_000, channels: 20_000, memberships: 2_000_000 };
const HTTP_RUNS = QUICK ? 200 : 400;
/** Interleaved runs stop early after this long per query, never below HTTP_MIN_RUNS (a p99 needs 200). */
const HTTP_BUDGET_S = QUICK ? 40 : 60;
const HTTP_MIN_RUNS = 200;
const WARMUP = 10;
/** Calls per side timed inside the Worker per query, in interleaved blocks of PAIR_BLOCK. */
const PAIR_RUNS = QUICK ? 200 : 400;
const PAIR_BLOCK = 10;
const RPS_CLIENTS = 4;
const RPS_SECONDS = QUICK ? 1 : 1.5;
const LOOP_N = QUICK ? 100 : 200;
const LOOP_REPEATS = 3;
const LOOP_TARGET_MS = 300;
/** Cold loads per adapter: the first query on a fresh cache, then warm() of fresh objects. */
const LOAD_RUNS = QUICK ? 3 : 2;
const VIEWERS = 8;
const SPECS = 48;
const SECRET = "bench-secret-0123456789abcdef-0123456789";
const TEAM = "TBENCH";
const PARTNER = "TPARTNER";

/** The bench Worker's config: its vars and Durable Objects are read from it (workerOptionsOf), not copied here. */
const CONFIG = "bench/wrangler.directory.toml";

const QUERIES = ["switcher", "mentions", "channel", "members", "directory", "lookup", "boot"] as const;
type Query = (typeof QUERIES)[number];
const LABEL: Record<Query, string> = {
  switcher: "quick switcher",
  mentions: "mentions",
  channel: "channel header",
  members: "channel members page",
  directory: "directory page",
  lookup: "batch lookup (50 users, 10 channels)",
  boot: "boot (full)",
};
// Mostly short prefixes (one read of the rank-ordered prefix index), plus a
// longer token per search (a walk of its first three letters' range, or, if
// rare, its word-index matches sorted).
const SWITCHER_Q = [
  "a",
  "jo",
  "mar",
  "eng",
  "s",
  "li",
  "pe",
  "zo",
  "ali",
  "ch",
  "sal",
  "to",
  "kr",
  "ana g",
  "da",
  "pro",
  "marti",
];
const MENTION_Q = ["", "a", "jo", "m", "sa", "li", "t", "e", "sofia"];
const DIRECTORY_F: Array<Record<string, string> & { page2?: string }> = [
  {},
  { q: "ma" },
  { role: "admin" },
  { bots: "only" },
  { page2: "1" },
  { deactivated: "only" },
  { q: "jo", bots: "exclude" },
  { q: "s" },
  { q: "a", page2: "1" },
  { q: "lucas" },
];

const BASELINE = "indexed DB query";
/** Messages seeded into the focused channel: more than a focus carries, so its history cursor has somewhere to go. */
const FOCUS_MESSAGES = 30;
const FOCUS_BASELINE = "boot + channel header + history page (3 requests at once)";

/** How each baseline answers (bench/directory-worker.ts "the indexed database baseline"). */
const BASELINE_CONFIG: Record<Query, string> = {
  switcher:
    "the cache's four tiers as one batch: own channels via memberships (team, user), contacts via small channels' members, other channels and people each by one walk of the rank-ordered prefix index (team, prefix, name | sort key, id) checking the other tokens and visibility, or for a long token with under 500 word-index rows its (team, word, id) matches sorted; limit 10",
  mentions:
    "the cache's plan for the channel's size (queries.ts memberPlan, as one-row guards on the kept member and user counts): a small channel's matching members sorted, or the prefix walk testing membership against the channel's ids gathered once, or probing it row by row; other people by the prefix walk in a second round trip only when members leave room; limit 10",
  channel: "primary-key read with the kept member count and the viewer's membership probe",
  members: "memberships primary key (team, channel, user) after the cursor joined to users by key; limit 20",
  directory:
    "users in name order per filter ((team, deleted | role | is_bot, sort key, id) indexes) or the prefix walk for a search, keyset cursor (sort key, id); limit 20",
  lookup: "primary-key IN lists for users and channels, ordered by id",
  boot: "the viewer's memberships (team, user) joined to channels, the team's kept user/channel counts and version",
};
const BASELINE_COMMON =
  "bench_dir_* tables in the same database built from the DirectorySource pages the cache loads (folded sort keys, words, prefixes of up to 3 letters; utf8mb4_bin on MySQL), ANALYZEd; the viewer checked in every statement; a question's statements in one round trip (a D1 batch, or in parallel on MySQL); same ranking and page size as the cache";
const PERCENTILES =
  "p50/p99 are nearest-rank (harness percentile: the ceil(p/100 x n)-th smallest of n samples; with 200 samples p99 is the 3rd largest)";

interface DirResult extends BenchResult {
  baseline?: { name: string; value: number; config: string };
  identical?: number;
}

/** A figure against its baseline, in the field order of shared/BENCH.md. */
function paired(
  r: Omit<BenchResult, "ratio" | "baseline">,
  baseline: { name: string; value: number; config: string },
  identical: number,
): DirResult {
  const { ratio } = compare(r, baseline);
  const { notes, target, ...head } = r;
  return {
    ...head,
    baseline,
    identical: Math.round(identical * 10_000) / 10_000,
    ...(ratio === undefined ? {} : { ratio }),
    ...(target === undefined ? {} : { target }),
    ...(notes === undefined ? {} : { notes }),
  };
}

/** Answers that differ between the cache and the baseline, one line per figure group: printed loudly at the end. */
const mismatches: string[] = [];

interface HttpCall {
  method: "GET" | "POST" | "PATCH";
  path: string;
  body?: unknown;
}
interface Spec {
  viewer: string;
  cache: HttpCall;
  direct: HttpCall;
  loop: { viewer: string; args: unknown[] };
  directArgs: Record<string, unknown>;
  /** Fetch page 1 first and ask for the page after it. */
  page2?: boolean;
}
interface BenchPlan {
  viewers: Array<{ id: string; channels: string[] }>;
  medianChannels: number;
  publicChannels: Array<{ id: string; size: number }>;
  sharedChannels: string[];
}

async function call<T>(base: string, c: HttpCall, token?: string): Promise<{ status: number; text: string; json: T }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (c.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${c.path}`, {
    method: c.method,
    headers,
    body: c.body === undefined ? undefined : JSON.stringify(c.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    json: (res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : null) as T,
  };
}

async function post<T>(base: string, path: string, body: unknown, token?: string): Promise<T> {
  const r = await call<T>(base, { method: "POST", path, body }, token);
  if (r.status >= 300) throw new Error(`${path} -> ${r.status}: ${r.text.slice(0, 800)}`);
  return r.json;
}

const qs = (params: Record<string, string | undefined>) =>
  Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(v as string)}`)
    .join("&");

/** Deterministic inputs: viewers, prefixes, channels and filters vary with i. */
function specs(query: Query, plan: BenchPlan): Spec[] {
  const out: Spec[] = [];
  for (let i = 0; i < SPECS; i++) {
    const viewer = plan.viewers[i % plan.viewers.length] as BenchPlan["viewers"][number];
    const mine = (j: number) => viewer.channels[j % viewer.channels.length] as string;
    const anyVisible = (j: number) =>
      j % 2 === 0 ? mine(j >> 1) : (plan.publicChannels[(j >> 1) % plan.publicChannels.length]?.id as string);
    const get = (cachePath: string, directPath: string) => ({
      cache: { method: "GET" as const, path: `/v1/directory${cachePath}` },
      direct: { method: "GET" as const, path: `/bench/direct${directPath}` },
    });
    switch (query) {
      case "switcher": {
        const q = SWITCHER_Q[i % SWITCHER_Q.length] as string;
        const p = qs({ q, limit: "10" });
        out.push({
          viewer: viewer.id,
          ...get(`/switcher?${p}`, `/switcher?${p}`),
          loop: { viewer: viewer.id, args: [q, 10] },
          directArgs: { q, limit: 10 },
        });
        break;
      }
      case "mentions": {
        const q = MENTION_Q[i % MENTION_Q.length] as string;
        const channel = mine(i * 7);
        const p = qs({ channel, q, limit: "10" });
        out.push({
          viewer: viewer.id,
          ...get(`/mentions?${p}`, `/mentions?${p}`),
          loop: { viewer: viewer.id, args: [channel, q, 10] },
          directArgs: { channel, q, limit: 10 },
        });
        break;
      }
      case "channel": {
        const channel = anyVisible(i);
        out.push({
          viewer: viewer.id,
          ...get(`/channels/${channel}`, `/channel?${qs({ channel })}`),
          loop: { viewer: viewer.id, args: [channel] },
          directArgs: { channel },
        });
        break;
      }
      case "members": {
        const channel = anyVisible(i >> 1);
        out.push({
          viewer: viewer.id,
          ...get(`/channels/${channel}/members?limit=20`, `/members?${qs({ channel, limit: "20" })}`),
          loop: { viewer: viewer.id, args: [channel, null, 20] },
          directArgs: { channel, limit: 20 },
          page2: i % 2 === 1,
        });
        break;
      }
      case "directory": {
        const { page2, ...f } = DIRECTORY_F[i % DIRECTORY_F.length] as Record<string, string> & { page2?: string };
        const p = qs({ ...f, limit: "20" });
        out.push({
          viewer: viewer.id,
          ...get(`/people?${p}`, `/people?${p}`),
          loop: {
            viewer: viewer.id,
            args: [
              {
                q: f.q,
                roles: f.role ? f.role.split(",") : undefined,
                deactivated: f.deactivated,
                bots: f.bots,
                cursor: null,
                limit: 20,
              },
            ],
          },
          directArgs: { ...f, limit: 20 },
          page2: page2 !== undefined,
        });
        break;
      }
      case "lookup": {
        const users = Array.from(
          { length: 50 },
          (_, j) => `U${String((i * 7919 + j * 104729) % SHAPE.users).padStart(8, "0")}`,
        );
        const channels = Array.from(
          { length: 10 },
          (_, j) => `C${String((i * 31 + j * 977) % SHAPE.channels).padStart(7, "0")}`,
        );
        out.push({
          viewer: viewer.id,
          cache: { method: "POST", path: "/v1/directory/lookup", body: { users, channels } },
          direct: { method: "POST", path: "/bench/direct/lookup", body: { users, channels } },
          loop: { viewer: viewer.id, args: [users, channels] },
          directArgs: { users, channels },
        });
        break;
      }
      case "boot":
        out.push({
          viewer: viewer.id,
          ...get("/boot", "/boot"),
          loop: { viewer: viewer.id, args: [null] },
          directArgs: {},
        });
        break;
    }
  }
  return out;
}

/** Page-2 inputs: ask for page 1 on each side and continue from its cursor. */
async function resolveCursors(url: string, list: Spec[], tokens: Map<string, string>): Promise<void> {
  for (const s of list) {
    if (!s.page2) continue;
    const token = tokens.get(s.viewer);
    const c = await call<{ next_cursor: string | null }>(url, s.cache, token);
    const d = await call<{ next_cursor: string | null }>(url, s.direct, token);
    if (c.status !== 200 || d.status !== 200)
      throw new Error(`page 1 of ${s.cache.path}: ${c.text.slice(0, 300)} ${d.text.slice(0, 300)}`);
    if (!c.json.next_cursor || !d.json.next_cursor) continue;
    s.cache.path += `&cursor=${encodeURIComponent(c.json.next_cursor)}`;
    s.direct.path += `&cursor=${encodeURIComponent(d.json.next_cursor)}`;
    s.directArgs.cursor = d.json.next_cursor;
    const args = s.loop.args;
    if (typeof args[0] === "object" && args[0] !== null) (args[0] as { cursor: string }).cursor = c.json.next_cursor;
    else args[1] = c.json.next_cursor;
  }
}

/** Each distinct input's baseline statements run one by one: the slow ones (over 5 ms) with their plans. */
async function explain(url: string, name: string, query: Query, list: Spec[]): Promise<void> {
  const seen = new Set<string>();
  for (const s of list) {
    const key = JSON.stringify(s.directArgs);
    if (seen.has(key)) continue;
    seen.add(key);
    const steps = await post<Array<{ ms: number; rows: number; sql: string; plan: unknown[] }>>(url, "/bench/explain", {
      team: TEAM,
      viewer: s.viewer,
      query: query === "directory" ? "people" : query,
      args: s.directArgs,
    });
    const total = steps.reduce((a, b) => a + b.ms, 0);
    log(name, `explain ${query} ${key}: ${total.toFixed(1)} ms in ${steps.length} statements`);
    for (const step of steps.filter((x) => x.ms > 5)) {
      log(
        name,
        `  ${step.ms.toFixed(1)} ms, ${step.rows} rows: ${step.sql.slice(0, 2000)}\n    ${JSON.stringify(step.plan)}`,
      );
    }
  }
}

async function requestsPerSecond(run: (i: number) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  const end = t0 + RPS_SECONDS * 1000;
  let done = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: RPS_CLIENTS }, async () => {
      while (performance.now() < end) {
        await run(next++);
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

function workerdUsage() {
  const pids = descendantPids("workerd");
  let cpuMs = 0;
  let rssBytes = 0;
  let peakRssBytes = 0;
  for (const pid of pids) {
    const u = processUsage(pid);
    if (!u) continue;
    cpuMs += u.cpuMs;
    rssBytes += u.rssBytes;
    peakRssBytes += u.peakRssBytes;
  }
  return { pids: pids.length, cpuMs, rssBytes, peakRssBytes };
}

/**
 * Every `id` in an answer, in document order: two answers are identical when
 * these sequences are (the same ids in the same order). The Worker's paired
 * loop compares the same way (bench/directory-worker.ts answerIds).
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

/** Where two answers first differ beyond their ids and order: a path and both values. */
function firstJsonDifference(a: unknown, b: unknown, path = "$"): string {
  if (JSON.stringify(a) === JSON.stringify(b)) return "";
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      const d = firstJsonDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        `${path}.${k}`,
      );
      if (d) return d;
    }
    return `${path}: key order`;
  }
  return `${path} cache ${JSON.stringify(a)} / db ${JSON.stringify(b)}`;
}

interface SourceCall {
  method: string;
  start: number;
  end: number;
  rows: number;
}

/**
 * A load's timeline from its source calls: time waiting for each kind of
 * page (the database, and decoding its answer) and the time the object
 * worked on them before asking for the next one (inserting, folding names,
 * indexing words); after the last membership page, the member recount.
 */
function loadBreakdown(calls: SourceCall[]) {
  const phase = (m: string) =>
    m === "pageUsers"
      ? "users"
      : m === "pageChannels"
        ? "channels"
        : m.includes("Memberships")
          ? "memberships"
          : "other";
  const wait: Record<string, number> = {};
  const work: Record<string, number> = {};
  const pages: Record<string, number> = {};
  calls.forEach((c, i) => {
    const p = phase(c.method);
    wait[p] = (wait[p] ?? 0) + (c.end - c.start);
    pages[p] = (pages[p] ?? 0) + 1;
    const next = calls[i + 1];
    if (!next) return;
    const gap = next.start - c.end;
    const into = p === "memberships" && phase(next.method) === "other" ? "recount" : p;
    work[into] = (work[into] ?? 0) + gap;
  });
  const round = (o: Record<string, number>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v)]));
  const total = (o: Record<string, number>) => Math.round(Object.values(o).reduce((a, b) => a + b, 0));
  return { waitMs: round(wait), workMs: round(work), pages, totalWaitMs: total(wait), totalWorkMs: total(work) };
}

interface Snapshot {
  bytes: number;
  users: number;
  channels: number;
  memberships: number;
  ms: number;
  /** Largest JSON parameter of each of the cache's load inserts, with the load's page sizes. */
  loadParamBytes: Record<string, number>;
  loadPage: Record<string, number>;
}

let snapshotOnce: Snapshot | null = null;

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
const log = (name: string, msg: string) => console.error(`[${name}] ${msg}`);

interface FocusAnswer {
  focus: {
    conversation: { id: string };
    messages: Array<{ id: string }>;
    users: Array<{ id: string }>;
    history_cursor: string | null;
  };
}

/**
 * The focused boot on the typical viewer's first channel, after
 * FOCUS_MESSAGES posts to it through the real route (by a few of its members,
 * each mentioning another): its bytes and p50/p99 over HTTP, interleaved with
 * the full boot and with the same first screen asked without focus (boot,
 * the channel's header and a history page of the same size, sent at once). `identical`: the focus's card, messages and profiles are the
 * header's and the history page's.
 */
async function focusedBootFigures(
  name: string,
  url: string,
  plan: BenchPlan,
  tokens: Map<string, string>,
  snapshotBytes: number,
): Promise<BenchResult[]> {
  const p = `${name}:`;
  const viewer = plan.viewers[0] as BenchPlan["viewers"][number];
  const token = tokens.get(viewer.id) as string;
  const channel = viewer.channels[0] as string;
  const members = await call<{ items: Array<{ id: string }> }>(
    url,
    { method: "GET", path: `/v1/directory/channels/${channel}/members?limit=5` },
    token,
  );
  if (members.status !== 200) throw new Error(`focus members: ${members.status} ${members.text.slice(0, 300)}`);
  const authors = members.json.items.map((m) => m.id);
  if (!authors.includes(viewer.id)) authors.push(viewer.id);
  const authorTokens = new Map<string, string>();
  for (const a of authors) authorTokens.set(a, await signToken({ team: TEAM, user: a }, SECRET));
  for (let i = 0; i < FOCUS_MESSAGES; i++) {
    const author = authors[i % authors.length] as string;
    const mentioned = authors[(i + 1) % authors.length] as string;
    const text = `status ${i}: the release train leaves at ${10 + (i % 8)}:00, ping <@${mentioned}> with blockers`;
    for (;;) {
      const r = await call(
        url,
        { method: "POST", path: `/v1/conversations/${channel}/messages`, body: { text, mentions: [mentioned] } },
        authorTokens.get(author),
      );
      if (r.status === 429) {
        await new Promise((res) => setTimeout(res, 200));
        continue;
      }
      if (r.status !== 201) throw new Error(`focus seed post: ${r.status} ${r.text.slice(0, 300)}`);
      break;
    }
  }

  const focusPath = `/v1/directory/boot?focus=${channel}`;
  const limit = 20;
  const timedCall = async (c: HttpCall) => {
    const t = performance.now();
    const r = await call<unknown>(url, c, token);
    if (r.status !== 200) throw new Error(`${c.path}: ${r.status} ${r.text.slice(0, 300)}`);
    return { r, ms: performance.now() - t };
  };
  const focusMs: number[] = [];
  const fullMs: number[] = [];
  const threeMs: number[] = [];
  const bytes = { focus: 0, full: 0, three: 0 };
  let same = 0;
  const q0 = performance.now();
  for (
    let i = 0;
    i < HTTP_RUNS + WARMUP && (i < HTTP_MIN_RUNS + WARMUP || performance.now() - q0 < HTTP_BUDGET_S * 1000);
    i++
  ) {
    const focus = async () => timedCall({ method: "GET", path: focusPath });
    const full = async () => timedCall({ method: "GET", path: "/v1/directory/boot" });
    // Without focus, the best client sends the three independent requests at
    // once and draws the screen when the last one lands.
    const three = async () => {
      const t = performance.now();
      const [boot, header, page] = await Promise.all([
        timedCall({ method: "GET", path: "/v1/directory/boot" }),
        timedCall({ method: "GET", path: `/v1/directory/channels/${channel}` }),
        timedCall({ method: "GET", path: `/v1/conversations/${channel}/history?limit=${limit}` }),
      ]);
      return { boot, header, page, ms: performance.now() - t };
    };
    // Rotate which goes first, so none always runs on a cold path.
    const order = [0, 1, 2].map((k) => (k + i) % 3);
    let f: Awaited<ReturnType<typeof focus>> | undefined;
    let b: Awaited<ReturnType<typeof full>> | undefined;
    let t: Awaited<ReturnType<typeof three>> | undefined;
    for (const k of order) {
      if (k === 0) f = await focus();
      else if (k === 1) b = await full();
      else t = await three();
    }
    if (!f || !b || !t || i < WARMUP) continue;
    focusMs.push(f.ms);
    fullMs.push(b.ms);
    threeMs.push(t.ms);
    bytes.focus += Buffer.byteLength(f.r.text);
    bytes.full += Buffer.byteLength(b.r.text);
    bytes.three +=
      Buffer.byteLength(t.boot.r.text) + Buffer.byteLength(t.header.r.text) + Buffer.byteLength(t.page.r.text);
    const answer = (f.r.json as FocusAnswer).focus;
    const page = t.page.r.json as { messages: unknown[]; users: unknown[] };
    const card = (t.header.r.json as { channel: unknown }).channel;
    if (
      JSON.stringify(answer.conversation) === JSON.stringify(card) &&
      JSON.stringify(answer.messages) === JSON.stringify(page.messages) &&
      JSON.stringify(answer.users) === JSON.stringify(page.users)
    )
      same++;
    else if (same === focusMs.length - 1) mismatches.push(`${p} focused boot: ${f.r.text.slice(0, 300)}`);
  }
  const runs = focusMs.length;
  const sample = await call<FocusAnswer>(url, { method: "GET", path: focusPath }, token);
  const focusBytes = Buffer.byteLength(sample.text);
  const fullBytes = Math.round(bytes.full / runs);
  const threeBytes = Math.round(bytes.three / runs);
  const config = `the typical member's channel ${channel} with ${FOCUS_MESSAGES} messages (${authors.length} authors, one mention each): GET /v1/directory/boot, GET /v1/directory/channels/:id and GET /v1/conversations/:id/history?limit=${limit}, sent at once, done when the last answers`;
  const shape = `${sample.json.focus.messages.length} messages, ${sample.json.focus.users.length} profiles, history_cursor ${sample.json.focus.history_cursor ? "set" : "null"}`;
  const notes = `${runs} interleaved rounds (focused boot, full boot, the three-call screen; order rotating), after ${WARMUP} warm-up; ${PERCENTILES}; full boot in the same rounds p50 ${median(fullMs).toFixed(2)} ms, p99 ${percentile(fullMs, 99).toFixed(2)} ms; focus (${shape}) identical to the header and history answers in ${same}/${runs}`;
  const baseline = (value: number) => ({ name: FOCUS_BASELINE, value, config });
  log(
    name,
    `focused boot: p50 ${median(focusMs).toFixed(2)} / full boot ${median(fullMs).toFixed(2)} / three calls ${median(threeMs).toFixed(2)} ms; p99 ${percentile(focusMs, 99).toFixed(2)} / ${percentile(fullMs, 99).toFixed(2)} / ${percentile(threeMs, 99).toFixed(2)} ms; ${focusBytes} B vs full boot ${fullBytes} B, three calls ${threeBytes} B, snapshot ${snapshotBytes} B; identical ${same}/${runs}`,
  );
  return [
    paired(
      { name: `${p} focused boot p50 (HTTP)`, unit: "ms", better: "lower", value: median(focusMs), runs, notes },
      baseline(median(threeMs)),
      same / runs,
    ),
    paired(
      { name: `${p} focused boot p99 (HTTP)`, unit: "ms", better: "lower", value: percentile(focusMs, 99), runs },
      baseline(percentile(threeMs, 99)),
      same / runs,
    ),
    compare(
      {
        name: `${p} focused boot payload (channel, ${sample.json.focus.messages.length} messages)`,
        unit: "bytes",
        better: "lower",
        value: focusBytes,
        notes: `${shape}; ${((focusBytes / snapshotBytes) * 100).toFixed(4)}% of the snapshot; the full boot answers ${fullBytes} B, the three-call screen ${threeBytes} B`,
      },
      { name: "full team snapshot (JSON)", value: snapshotBytes },
    ),
  ];
}

async function runAdapter(name: "d1" | "mysql", script: string): Promise<BenchResult[]> {
  const started = performance.now();
  const config = workerOptionsOf(CONFIG, outdir);
  const backend = await startBackend(name, script, {
    vars: { ...config.vars, JWT_SECRET: SECRET, PLATFORM_OPERATORS: "TPLATFORM:UOPERATOR" },
    // The focused boot's messages: their Conversation object and the Topic it
    // publishes to, as wrangler.toml binds them (exported by directory-worker.ts).
    durableObjects: {
      ...config.durableObjects,
      CONVERSATION: { className: "Conversation", useSQLite: true },
      TOPIC: { className: "Topic", useSQLite: true },
    },
    extra: process.env.BENCH_DEBUG ? { log: new Log(LogLevel.DEBUG), verbose: true } : {},
  });
  const { url } = backend;
  try {
    // --- seed ---------------------------------------------------------------
    const t0 = performance.now();
    const seeded = await post<{ plan: Record<string, unknown> }>(url, "/bench/seed/teams", {
      team: TEAM,
      partner: PARTNER,
      shape: SHAPE,
    });
    for (let from = 0; from < SHAPE.users; from += 20_000) {
      await post(url, "/bench/seed/users", { team: TEAM, shape: SHAPE, from, count: 20_000 });
    }
    for (let from = 0; from < SHAPE.channels; from += 5_000) {
      await post(url, "/bench/seed/channels", { team: TEAM, shape: SHAPE, from, count: 5_000 });
    }
    const step = QUICK ? 200 : 1000;
    await post(url, "/bench/seed/memberships", { team: TEAM, shape: SHAPE, from: 0, to: 1 });
    for (let from = 1; from < SHAPE.channels; from += step) {
      await post(url, "/bench/seed/memberships", { team: TEAM, shape: SHAPE, from, to: from + step });
    }
    await post(url, "/bench/seed/shares", { team: TEAM, partner: PARTNER, shape: SHAPE });
    const counts = await post<Record<string, number>>(url, "/bench/db-counts", { team: TEAM });
    const seedS = (performance.now() - t0) / 1000;
    log(name, `seeded in ${seedS.toFixed(1)} s: ${JSON.stringify(counts)} plan ${JSON.stringify(seeded.plan)}`);

    // --- the indexed baseline's search tables -------------------------------
    const i0 = performance.now();
    await post(url, "/bench/seed/search", { team: TEAM, step: "create" });
    for (const step of ["users", "channels"] as const) {
      let after: string | null = null;
      do {
        const r: { after: string | null } = await post(url, "/bench/seed/search", { team: TEAM, step, after });
        after = r.after;
      } while (after);
    }
    const searchCounts = await post<Record<string, number>>(url, "/bench/seed/search", { team: TEAM, step: "counts" });
    log(
      name,
      `baseline search tables built in ${((performance.now() - i0) / 1000).toFixed(1)} s: ${JSON.stringify(searchCounts)}`,
    );

    const plan = await post<BenchPlan>(url, "/bench/plan", { team: TEAM, shape: SHAPE, viewers: VIEWERS });
    const tokens = new Map<string, string>();
    for (const v of plan.viewers) tokens.set(v.id, await signToken({ team: TEAM, user: v.id }, SECRET));
    const typical = plan.viewers[0]?.id as string;
    log(
      name,
      `viewers ${plan.viewers.map((v) => `${v.id}(${v.channels.length})`).join(" ")}; median channels per member ${plan.medianChannels}`,
    );

    // --- snapshot -----------------------------------------------------------
    // The same data on both adapters: measured once a run.
    snapshotOnce ??= await post<Snapshot>(url, "/bench/snapshot-bytes", { team: TEAM });
    const snapshot = snapshotOnce;
    log(
      name,
      `full snapshot ${mb(snapshot.bytes)} (${snapshot.users} users, ${snapshot.channels} channels, ${snapshot.memberships} memberships; paged in ${(snapshot.ms / 1000).toFixed(1)} s)`,
    );

    // --- cold load: the first query on a fresh cache --------------------------
    type Breakdown = ReturnType<typeof loadBreakdown> & { evicted: boolean };
    const loads: Array<{
      wallMs: number;
      loadMs: number | null;
      cpuMs: number;
      breakdown: Breakdown;
      steps?: number | null;
      maxStepMs?: number | null;
    }> = [];
    const timeline = async (object: string) => {
      const r = await post<{ calls: SourceCall[]; instance: string; recordedBy: string[] }>(
        url,
        "/bench/source-calls",
        { team: TEAM, name: object },
      );
      if (r.calls.length === 0) log(name, `no source calls recorded by ${object}`);
      // The load ran in one instance; a different one answering now means the object was evicted since.
      const evicted = !r.recordedBy.includes(r.instance);
      if (evicted) log(name, `${object} was evicted right after its load (instance ${r.recordedBy} -> ${r.instance})`);
      return { ...loadBreakdown(r.calls), evicted };
    };
    // The first caller's boot is answered from its own rows while the load
    // goes on in steps (one per alarm); then the time until the whole team
    // is in, and the same boot asked of the loaded cache, byte for byte.
    const u0 = workerdUsage();
    const c0 = performance.now();
    const first = await call(url, { method: "GET", path: "/v1/directory/boot" }, tokens.get(typical));
    const firstMs = performance.now() - c0;
    if (first.status !== 200) throw new Error(`first query: ${first.status} ${first.text.slice(0, 500)}`);
    // Polled from meta only: stats() counts every table, which would add its own CPU to the load's.
    type Progress = Pick<CacheStats, "loaded" | "loading">;
    const atFirst = await post<Progress>(url, "/bench/load-progress", { team: TEAM });
    for (let p = atFirst; !p.loaded; p = await post<Progress>(url, "/bench/load-progress", { team: TEAM })) {
      if (performance.now() - c0 > 15 * 60_000)
        throw new Error(`cold load not done after 15 min: ${JSON.stringify(p)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const fullMs = performance.now() - c0;
    const u1 = workerdUsage();
    const stats = await post<CacheStats>(url, "/bench/stats", { team: TEAM });
    const again = await call(url, { method: "GET", path: "/v1/directory/boot" }, tokens.get(typical));
    const firstIdentical = again.status === 200 && again.text === first.text;
    if (!firstIdentical)
      log(
        name,
        `the first boot differs from the loaded cache's: ${first.text.slice(0, 300)} vs ${again.text.slice(0, 300)}`,
      );
    const cold = {
      firstMs,
      fullMs,
      phaseAtFirst: atFirst.loading?.phase ?? (atFirst.loaded ? "loaded" : "none"),
      steps: stats.loadSteps,
      maxStepMs: stats.loadMaxStepMs,
      maxStepPhase: stats.loadMaxStepPhase,
      firstIdentical,
      firstBytes: first.text.length,
    };
    loads.push({ wallMs: fullMs, loadMs: stats.loadMs, cpuMs: u1.cpuMs - u0.cpuMs, breakdown: await timeline(TEAM) });
    log(
      name,
      `cold first answer ${firstMs.toFixed(0)} ms (load in phase ${cold.phaseAtFirst}); fully loaded after ${(fullMs / 1000).toFixed(1)} s in ${stats.loadSteps} steps, largest ${stats.loadMaxStepMs} ms (${stats.loadMaxStepPhase}); first answer identical to the loaded cache's: ${firstIdentical}; cache rows ${JSON.stringify(stats.rows)}, SQLite ${mb(stats.databaseBytes)}; workerd CPU +${((u1.cpuMs - u0.cpuMs) / 1000).toFixed(1)} s, RSS ${mb(u1.rssBytes)} (peak ${mb(u1.peakRssBytes)})`,
    );
    for (let i = 1; i < LOAD_RUNS; i++) {
      const a = workerdUsage();
      const w0 = performance.now();
      const w = await post<{ ms: number; stats: CacheStats; before: string; after: string }>(url, "/bench/warm", {
        team: TEAM,
        name: `${TEAM}#load${i}`,
      });
      const wallMs = performance.now() - w0;
      if (w.before !== w.after) log(name, `the object was reset during warm(): instance ${w.before} -> ${w.after}`);
      const b = workerdUsage();
      loads.push({
        wallMs,
        loadMs: w.stats.loadMs,
        cpuMs: b.cpuMs - a.cpuMs,
        breakdown: await timeline(`${TEAM}#load${i}`),
        steps: w.stats.loadSteps,
        maxStepMs: w.stats.loadMaxStepMs,
      });
      log(
        name,
        `cold warm() of a fresh object ${(wallMs / 1000).toFixed(1)} s (load_ms ${w.stats.loadMs}); workerd CPU +${((b.cpuMs - a.cpuMs) / 1000).toFixed(1)} s, RSS ${mb(b.rssBytes)} (peak ${mb(b.peakRssBytes)})`,
      );
    }
    const afterLoads = workerdUsage();
    for (const l of loads) log(name, `load timeline: ${JSON.stringify(l.breakdown)}`);

    // --- per query ------------------------------------------------------------
    const p = `${name}:`;
    const results: BenchResult[] = [];
    const clock: Array<{ op: string; inside: number; outside: number; beforeIo: number }> = [];
    for (const query of QUERIES) {
      if (ONLY_QUERIES && !ONLY_QUERIES.includes(query)) continue;
      const q0 = performance.now();
      const list = specs(query, plan);
      await resolveCursors(url, list, tokens);
      if (EXPLAIN) await explain(url, name, query, list);
      const label = LABEL[query];
      const config = `${BASELINE_CONFIG[query]}; ${BASELINE_COMMON}`;

      // End to end over HTTP, interleaved: sample i asks both sides the same
      // question, alternating which goes first.
      const viaCache: number[] = [];
      const viaDb: number[] = [];
      const bytes = { cache: 0, direct: 0 };
      let same = 0;
      let sameJson = 0;
      let firstDiff = "";
      let jsonDiff = "";
      const ref = new Map<number, { cache: string; direct: string }>();
      for (
        let i = 0;
        i < HTTP_RUNS + WARMUP && (i < HTTP_MIN_RUNS + WARMUP || performance.now() - q0 < HTTP_BUDGET_S * 1000);
        i++
      ) {
        const k = i % list.length;
        const s = list[k] as Spec;
        const token = tokens.get(s.viewer);
        const timed = async (c: HttpCall) => {
          const t = performance.now();
          const r = await call(url, c, token);
          return { r, ms: performance.now() - t };
        };
        let rc: Awaited<ReturnType<typeof timed>>;
        let rd: Awaited<ReturnType<typeof timed>>;
        if (i % 2 === 0) {
          rc = await timed(s.cache);
          rd = await timed(s.direct);
        } else {
          rd = await timed(s.direct);
          rc = await timed(s.cache);
        }
        if (rc.r.status !== 200 || rd.r.status !== 200) {
          throw new Error(
            `${query}: cache ${rc.r.status} ${rc.r.text.slice(0, 300)} / direct ${rd.r.status} ${rd.r.text.slice(0, 300)}`,
          );
        }
        const ids = { cache: answerIds(rc.r.json).join(" "), direct: answerIds(rd.r.json).join(" ") };
        if (!ref.has(k)) ref.set(k, ids);
        if (i < WARMUP) continue;
        viaCache.push(rc.ms);
        viaDb.push(rd.ms);
        bytes.cache += Buffer.byteLength(rc.r.text);
        bytes.direct += Buffer.byteLength(rd.r.text);
        if (ids.cache === ids.direct) same++;
        else if (!firstDiff) firstDiff = `${s.cache.path}: cache [${ids.cache}] / db [${ids.direct}]`;
        if (JSON.stringify(rc.r.json) === JSON.stringify(rd.r.json)) sameJson++;
        else if (!jsonDiff) jsonDiff = `${s.cache.path}: ${firstJsonDifference(rc.r.json, rd.r.json)}`;
      }
      const runs = viaCache.length;

      // Throughput: each side alone, every answer checked against the other
      // side's answer to the same input from the interleaved runs.
      const rpsOf = async (side: "cache" | "direct") => {
        let checked = 0;
        let agree = 0;
        const rps = await requestsPerSecond(async (i) => {
          const k = i % list.length;
          const s = list[k] as Spec;
          const r = await call(url, s[side], tokens.get(s.viewer));
          if (r.status !== 200) throw new Error(`${query} ${side}: ${r.status} ${r.text.slice(0, 300)}`);
          const other = ref.get(k);
          if (other) {
            checked++;
            if (answerIds(r.json).join(" ") === (side === "cache" ? other.direct : other.cache)) agree++;
          }
        });
        return { rps, identical: checked === 0 ? Number.NaN : agree / checked };
      };
      const rpsCache = await rpsOf("cache");
      const rpsDb = await rpsOf("direct");

      // Per op inside the Worker, both sides as the app would pay them.
      const pair = await post<{
        cacheMs: number[];
        dbMs: number[];
        compared: number;
        identical: number;
        sameJson: number;
        firstDiff: string;
      }>(url, "/bench/pair-loop", {
        team: TEAM,
        query,
        blocks: Math.ceil(PAIR_RUNS / PAIR_BLOCK),
        block: PAIR_BLOCK,
        calls: list.map((s) => ({ viewer: s.viewer, args: s.loop.args, directArgs: s.directArgs })),
      });
      if (pair.firstDiff && !firstDiff) firstDiff = `in the Worker: ${pair.firstDiff}`;
      const perOpOf = (blocks: number[]) => blocks.reduce((x, y) => x + y, 0) / pair.compared;

      // The cache's own compute in the object (no RPC, no baseline: the
      // database's compute is not separable from its round trip).
      const loop = (op: string, count: number, calls = list.map((s) => s.loop)) =>
        post<{ ms: number; msBeforeIo: number; msIo: number; outsideMs: number; errors: number }>(url, "/bench/loop", {
          team: TEAM,
          viewer: typical,
          op,
          n: count,
          calls,
        });
      const inside: number[] = [];
      const outside: number[] = [];
      const beforeIo: number[] = [];
      const probe = await loop(query, 10);
      const perOp = Math.max(0.001, (probe.ms - probe.msIo) / 10);
      const loopN = Math.max(20, Math.min(LOOP_N, Math.round(LOOP_TARGET_MS / perOp)));
      for (let r = 0; r < LOOP_REPEATS; r++) {
        const full = await loop(query, loopN);
        const empty = await loop("empty", loopN);
        const zero = await loop(query, 0);
        if (full.errors > 0) throw new Error(`${query}: ${full.errors} errors in the loop`);
        inside.push((full.ms - full.msIo - (empty.ms - empty.msIo)) / loopN);
        outside.push((full.outsideMs - zero.outsideMs) / loopN);
        beforeIo.push(full.msBeforeIo);
      }
      clock.push({ op: query, inside: median(inside), outside: median(outside), beforeIo: median(beforeIo) });
      let slowest = "";
      if (median(inside) > 1) {
        const each: Array<{ ms: number; args: string }> = [];
        const seen = new Set<string>();
        for (const s of list) {
          const key = JSON.stringify(s.loop.args);
          if (seen.has(key)) continue;
          seen.add(key);
          const r = await loop(query, 3, [s.loop]);
          each.push({ ms: (r.ms - r.msIo) / 3, args: key.length > 120 ? `${key.slice(0, 120)}...` : key });
        }
        each.sort((a, b) => b.ms - a.ms);
        slowest = `; slowest inputs in the object: ${each
          .slice(0, 4)
          .map((e) => `${e.args} ${e.ms.toFixed(1)} ms`)
          .join(", ")}`;
        log(name, `${query}${slowest}`);
      }

      const httpShare = same / runs;
      const pairShare = pair.identical / pair.compared;
      if (httpShare < 1 || pairShare < 1) mismatches.push(`${p} ${label}: ${firstDiff}`);
      const baseline = (value: number) => ({ name: BASELINE, value, config });
      const httpNotes = `${runs} interleaved requests per side (order alternating), after ${WARMUP} warm-up; ${PERCENTILES}; same ids and order in ${same}/${runs}, byte-identical JSON in ${sameJson}/${runs}${jsonDiff ? ` (first other difference: ${jsonDiff})` : ""}; avg response ${Math.round(bytes.cache / runs)} B cache vs ${Math.round(bytes.direct / runs)} B DB`;
      const blockMs = (xs: number[]) =>
        `median block ${(median(xs) / PAIR_BLOCK).toFixed(2)} ms/op, slowest ${(Math.max(...xs) / PAIR_BLOCK).toFixed(2)} ms/op`;
      const pairNotes = `mean per call, timed in the Worker: ${pair.compared} calls per side in ${pair.cacheMs.length} interleaved blocks of ${PAIR_BLOCK} (order alternating; workerd's clock steps by 1 ms, so blocks, not single calls, are timed); cache = RPC into the TeamCache object + its SQLite work + the answer cloned back (${blockMs(pair.cacheMs)}), DB = the question's one round trip, ${name === "d1" ? "one D1 batch" : "statements in parallel over the PlanetScale driver to psdb-server and MariaDB"} (${blockMs(pair.dbMs)}); the clock moves only across I/O, so neither side's JavaScript in the Worker is counted; same ids and order in ${pair.identical}/${pair.compared}, byte-identical JSON in ${pair.sameJson}/${pair.compared}`;
      results.push(
        paired(
          {
            name: `${p} ${label} p50 (HTTP)`,
            unit: "ms",
            better: "lower",
            value: median(viaCache),
            runs,
            notes: httpNotes,
          },
          baseline(median(viaDb)),
          httpShare,
        ),
        paired(
          {
            name: `${p} ${label} p99 (HTTP)`,
            unit: "ms",
            better: "lower",
            value: percentile(viaCache, 99),
            runs,
            target: ">= 20x",
          },
          baseline(percentile(viaDb, 99)),
          httpShare,
        ),
        paired(
          {
            name: `${p} ${label} requests/s (${RPS_CLIENTS} clients)`,
            unit: "req/s",
            better: "higher",
            value: Math.round(rpsCache.rps),
            notes: `${RPS_CLIENTS} concurrent HTTP clients for ${RPS_SECONDS} s each side; identical: each answer against the other side's answer to the same input (DB side: ${(rpsDb.identical * 100).toFixed(1)}%)`,
          },
          baseline(Math.round(rpsDb.rps)),
          Math.min(rpsCache.identical, rpsDb.identical),
        ),
        paired(
          {
            name: `${p} ${label} per op in the Worker`,
            unit: "ms",
            better: "lower",
            value: perOpOf(pair.cacheMs),
            runs: pair.compared,
            notes: pairNotes,
          },
          baseline(perOpOf(pair.dbMs)),
          pairShare,
        ),
        {
          name: `${p} ${label} cache compute in the object`,
          unit: "µs",
          better: "lower",
          value: Math.round(median(inside) * 1000 * 10) / 10,
          runs: LOOP_REPEATS,
          notes: `no baseline (the database's compute cannot be timed apart from its round trip; compare the per-op figures instead): median of ${LOOP_REPEATS} in-object loops of ${loopN}, empty loop subtracted; the same loop timed from the Worker around its one RPC: ${(median(outside) * 1000).toFixed(1)} µs/op${slowest}`,
        },
      );
      log(
        name,
        `${query}: HTTP p50 ${median(viaCache).toFixed(2)} / ${median(viaDb).toFixed(2)} ms, p99 ${percentile(viaCache, 99).toFixed(2)} / ${percentile(viaDb, 99).toFixed(2)} ms (${runs} runs); ${Math.round(rpsCache.rps)} / ${Math.round(rpsDb.rps)} req/s; in the Worker ${perOpOf(pair.cacheMs).toFixed(2)} / ${perOpOf(pair.dbMs).toFixed(2)} ms/op; in-object ${(median(inside) * 1000).toFixed(1)} µs/op; identical HTTP ${same}/${runs}, Worker ${pair.identical}/${pair.compared}, RPS ${(rpsCache.identical * 100).toFixed(0)}%/${(rpsDb.identical * 100).toFixed(0)}%${firstDiff ? `; first difference ${firstDiff.slice(0, 600)}` : ""}; ${((performance.now() - q0) / 1000).toFixed(1)} s`,
      );
    }

    // --- boot payloads ----------------------------------------------------------
    const token = tokens.get(typical) as string;
    const full = await call<{ version: number; full: boolean; channels: unknown[] }>(
      url,
      { method: "GET", path: "/v1/directory/boot" },
      token,
    );
    const fullBytes = Buffer.byteLength(full.text);
    const directBoot = await call(url, { method: "GET", path: "/bench/direct/boot" }, token);
    // A few real changes through the admin API (published to the cache), then
    // the boot of a client that was current before them.
    // The operator (PLATFORM_OPERATORS) administers any team.
    const admin = await signToken({ team: "TPLATFORM", user: "UOPERATOR" }, SECRET);
    const since = full.json.version;
    const viewerPlan = plan.viewers[0] as BenchPlan["viewers"][number];
    const joinable = plan.publicChannels
      .map((c) => c.id)
      .filter((c) => !viewerPlan.channels.includes(c))
      .slice(-2);
    const writes: HttpCall[] = [
      {
        method: "PATCH",
        path: `/v1/admin/teams/${TEAM}/users/${typical}/profile`,
        body: { title: "Principal Engineer" },
      },
      { method: "PATCH", path: `/v1/admin/teams/${TEAM}/users/U00000021/profile`, body: { display_name: "Zoë" } },
      ...joinable.map((c) => ({
        method: "POST" as const,
        path: `/v1/admin/teams/${TEAM}/channels/${c}/members`,
        body: { user_ids: [typical] },
      })),
      {
        method: "PATCH",
        path: `/v1/admin/teams/${TEAM}/channels/${viewerPlan.channels.at(-1)}`,
        body: { topic: "New topic" },
      },
    ];
    let incremental: { bytes: number; text: string } | null = null;
    let incrementalNote = "";
    try {
      for (const w of writes) {
        const r = await call(url, w, admin);
        if (r.status >= 300) throw new Error(`${w.method} ${w.path}: ${r.status} ${r.text.slice(0, 300)}`);
      }
      const inc = await call<{ full: boolean }>(
        url,
        { method: "GET", path: `/v1/directory/boot?since=${since}` },
        token,
      );
      if (inc.status !== 200 || inc.json.full)
        throw new Error(`incremental boot: ${inc.status} ${inc.text.slice(0, 300)}`);
      incremental = { bytes: Buffer.byteLength(inc.text), text: inc.text };
      incrementalNote = `after ${writes.length} admin writes (own profile, a colleague's profile, joined ${joinable.length} channels, a channel topic): ${inc.text.slice(0, 400)}`;
    } catch (error) {
      incrementalNote = `could not measure: ${error instanceof Error ? error.message : String(error)}`;
      log(name, `incremental boot ${incrementalNote}`);
    }

    results.push(
      {
        name: `${p} cold load, first answer (${SHAPE.users} users, ${SHAPE.memberships} memberships)`,
        unit: "ms",
        better: "lower",
        value: Math.round(cold.firstMs),
        runs: 1,
        notes: `GET /v1/directory/boot on a fresh cache, over HTTP: answered from the caller's own rows read from the database (user, memberships, channels, DM members, counts) while the load went on in steps (phase ${cold.phaseAtFirst} when it answered); ${cold.firstBytes} B`,
      },
      {
        name: `${p} cold load, time to fully loaded`,
        unit: "ms",
        better: "lower",
        value: Math.round(cold.fullMs),
        runs: 1,
        notes: `from the first request until the cache reported loaded (polled every 100 ms); ${cold.steps} steps (each its own alarm invocation, pages for up to 500 ms, the by-user index and the last step on their own); load_ms inside the object ${stats.loadMs}; workerd CPU over it ${loads[0]?.cpuMs} ms (Worker + object${name === "d1" ? " + Miniflare's D1" : ""})`,
      },
      {
        name: `${p} cold load, largest single step`,
        unit: "ms",
        better: "lower",
        value: cold.maxStepMs ?? Number.NaN,
        runs: 1,
        notes: `the ${cold.maxStepPhase} step, in the object's clock (it moves with I/O, so this includes waiting for the database: an upper bound on the step's CPU, which a Durable Object's CPU limit applies to, 30 s by default); warm() loads: ${loads
          .slice(1)
          .map((l) => `${l.steps} steps, largest ${l.maxStepMs} ms`)
          .join("; ")}`,
      },
      {
        name: `${p} cold load, first answer identical to the loaded cache's`,
        unit: "%",
        better: "higher",
        value: cold.firstIdentical ? 100 : 0,
        runs: 1,
        notes:
          "the same viewer's boot asked again once the team was loaded, compared byte for byte (no writes in between)",
      },
      {
        name: `${p} cold load, warm() of a fresh object`,
        unit: "ms",
        better: "lower",
        value: Math.round(median(loads.slice(1).map((l) => l.wallMs))),
        runs: loads.length - 1,
        notes: `median; runs ${loads.map((l) => `${Math.round(l.wallMs)} ms wall / ${l.loadMs} ms load_ms / ${l.cpuMs} ms workerd CPU${l.breakdown.evicted ? " / object evicted right after" : ""}`).join("; ")}`,
      },
      {
        name: `${p} cold load: object's own work (between pages)`,
        unit: "ms",
        better: "lower",
        value: Math.round(median(loads.map((l) => l.breakdown.totalWorkMs))),
        runs: loads.length,
        notes: `median over all loads; per phase (first load) ${JSON.stringify(loads[0]?.breakdown.workMs)}; CPU-bound in the object: what a Durable Object CPU limit applies to`,
      },
      {
        name: `${p} cold load: waiting for pages from the database`,
        unit: "ms",
        better: "lower",
        value: Math.round(median(loads.map((l) => l.breakdown.totalWaitMs))),
        runs: loads.length,
        notes: `median over all loads; per phase (first load) ${JSON.stringify(loads[0]?.breakdown.waitMs)}, pages ${JSON.stringify(loads[0]?.breakdown.pages)}`,
      },
      {
        name: `${p} cold load: workerd process CPU`,
        unit: "ms",
        better: "lower",
        value: Math.round(median(loads.map((l) => l.cpuMs))),
        runs: loads.length,
        notes: `from /proc, user+system, 10 ms ticks; Worker + cache object${name === "d1" ? " + Miniflare's D1 (same process)" : " + PlanetScale driver decoding (MariaDB and psdb-server are other processes)"}`,
      },
      {
        name: `${p} loaded cache size (SQLite)`,
        unit: "bytes",
        better: "lower",
        value: stats.databaseBytes,
        notes: `rows ${JSON.stringify(stats.rows)}; workerd RSS after ${loads.length} loads ${mb(afterLoads.rssBytes)}, peak ${mb(afterLoads.peakRssBytes)}`,
      },
      compare(
        {
          name: `${p} boot payload (full, typical member)`,
          unit: "bytes",
          better: "lower",
          value: fullBytes,
          target: ">= 100x (under 1% of the snapshot)",
          notes: `${full.json.channels.length} channels; ${((fullBytes / snapshot.bytes) * 100).toFixed(4)}% of the snapshot; the ${BASELINE} boot answers ${Buffer.byteLength(directBoot.text)} B`,
        },
        { name: "full team snapshot (JSON)", value: snapshot.bytes },
      ),
    );
    if (incremental) {
      results.push(
        compare(
          {
            name: `${p} boot payload (incremental)`,
            unit: "bytes",
            better: "lower",
            value: incremental.bytes,
            notes: incrementalNote,
          },
          { name: "full team snapshot (JSON)", value: snapshot.bytes },
        ),
      );
    }
    try {
      results.push(...(await focusedBootFigures(name, url, plan, tokens, snapshot.bytes)));
    } catch (error) {
      // Like the incremental boot: a figure that could not be measured is said so, the rest still written.
      log(name, `focused boot could not be measured: ${error instanceof Error ? error.message : String(error)}`);
      mismatches.push(`${name}: focused boot not measured`);
    }
    log(name, `clock check (median per op): ${JSON.stringify(clock)}`);
    log(name, `done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return results;
  } finally {
    await backend.close();
  }
}

const t0 = performance.now();
const outdir = bundle(CONFIG, ".bench/directory");
const script = `${outdir}/directory-worker.js`;
const results: BenchResult[] = [];
for (const adapter of ["d1", "mysql"] as const) {
  if (ONLY && ONLY !== adapter) continue;
  results.push(...(await runAdapter(adapter, script)));
}
// Assigned inside runAdapter: TypeScript cannot see it here.
const snap = snapshotOnce as Snapshot | null;
if (snap) {
  const params = snap.loadParamBytes;
  const [key, worst] = Object.entries(params).sort((a, b) => b[1] - a[1])[0] ?? ["", 0];
  results.push(
    compare(
      {
        name: "largest JSON parameter bound by a cache load insert",
        unit: "bytes",
        better: "lower",
        value: worst,
        target: "> 1x (under the limit)",
        notes: `the ${key} page; all: ${JSON.stringify(params)} with pages ${JSON.stringify(snap.loadPage)}; a SQLite-backed Durable Object refuses a string over 2 MB (Miniflare does not enforce it)`,
      },
      { name: "Durable Object SQL string limit", value: 2_000_000 },
    ),
  );
}
printTable(results);
const file = writeResults(
  "directory",
  results,
  `shared, noisy; run ${Math.round((performance.now() - t0) / 1000)} s; team of ${SHAPE.users} users, ${SHAPE.channels} channels, ${SHAPE.memberships} memberships${QUICK ? " (--quick)" : ""}; D1 = Miniflare's local SQLite, MySQL = MariaDB via tools/psdb-server over HTTP; cache = the TeamCache Durable Object's SQLite in workerd; baseline = ${BASELINE}: ${BASELINE_COMMON}; ${PERCENTILES}; everything on one machine`,
);
console.log(`\nwrote ${file} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
// Different answers are a bug in one side, not a footnote: say so loudly (the
// bench still exits 0: it ran).
const short = (results as DirResult[]).filter((r) => r.identical !== undefined && r.identical < 1);
if (short.length > 0) {
  const bar = "!".repeat(78);
  console.error(`\n${bar}\nFAILURE: the cache and the ${BASELINE} gave different answers\n${bar}`);
  for (const r of short) console.error(`  identical ${(r.identical ?? 0) * 100}%  ${r.name}`);
  for (const m of mismatches) console.error(`  ${m}`);
  console.error(bar);
} else {
  console.log(`identical: 100% of compared answers (ids and order) in every figure`);
}
