import { type ChildProcess, fork } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { signToken } from "../src/auth/tokens";
import { topicKey } from "../src/realtime/topics";
import { bundle, startBackend, workerOptionsOf } from "../tools/harness/backend";
import { type BenchResult, compare, printTable, writeResults } from "../tools/harness/results";
import { descendantPids, median, percentile, processUsage } from "./harness";
import {
  type ClientKind,
  type Command,
  type Complete,
  type ConnectReply,
  DIGEST_SEED,
  foldDigest,
  type PhaseStats,
  type Reply,
  type StormStatus,
  type Target,
} from "./realtime-client";
import { profileReport, startProfiler } from "./realtime-profile";

// npm run bench:realtime [-- --quick] [--procs N]
//   [--systems platform,party-batch,party,ws[,party-hib,platform-1]] [--phases sat,lat,storm]
//   [--sizes 1000,5000] [--storm 5000] [--in-flight 20000] [--moderate 5000] [--profile]
//   [--platform-config wrangler.toml] [--var GATEWAY_SHARDS=1 ...]
//
// Real-time fan-out, in one run on this machine, side by side:
// - platform: the real Worker bundle (wrangler.toml, with its vars: the
//   configuration users deploy) served by Miniflare on D1: clients on GET
//   /v1/rtm (gateway shards, hibernating), publishers on POST
//   /v1/channels/:id/messages (topic object → one delivery per shard);
// - partyserver (bench/realtime-party-worker.ts), served by Miniflare the
//   same way: `party-batch`, an in-memory room that coalesces frames exactly
//   as the platform does (the same `batch` messages, packed by the
//   platform's packFrames with the same limits: the fair peer, and the
//   baseline every platform figure is reported against); `party`, the same
//   room sending one message per event (partyserver out of the box);
//   `party-hib`, that room hibernating, and `party-auth`, the coalescing
//   room behind a bearer-token check (onBeforeConnect with the platform's
//   verifyToken): both connect only, as like-for-like peers of connecting;
// - a plain Node `ws` server (bench/realtime-ws-server.ts) in its own process;
// - opt-in (--systems …,platform-1): the platform's bundle again, in its own
//   Miniflare, with GATEWAY_BATCH_FRAMES=1: every frame its own WebSocket
//   message. The ablation, measured in the same run under the same neighbours.
// The same clients (bench/realtime-client.ts, in --procs child processes)
// parse every frame; every server sends the platform's frame shape, so
// message sizes match (checked: bytes per frame are reported).
//
// Publish limits. wrangler.toml allows 100 messages/s per channel and 10 per
// poster per channel (TOPIC_PUBLISH_PER_SECOND, TOPIC_PUBLISH_PER_USER_PER_SECOND);
// the platform runs with them, and its publisher posts as POSTERS members in
// turn (a channel has many posters; one would be held to 10/s) and honours a
// 429's retry_after_ms. Saturation is measured twice on the platform: as
// deployed (the channel's limit caps it), and with both limits lifted to
// 100,000/s on that one topic at run time (Topic.configure, an operator's
// lever), which is what fan-out itself can do. Every other phase stays under
// the deployed limits.
//
// Per subscriber count (1,000 and 5,000; --quick: 200 and 500), on one topic:
// 0. connect: every subscriber opens its socket (platform: with ?subscribe=, and gets
//    `subscribed`), CONNECT_REPEATS times (closing them in between), the
//    systems interleaved; the median time to connect them all.
// 1. saturation: a closed-loop publisher keeps windowFor(n) messages in
//    flight (published but not yet received by every subscriber) for SAT_SECONDS;
//    deliveries/s = event frames received by all clients / (first publish →
//    last frame received). Also the publish rate this sustained, and the
//    latency under that load. Median of SAT_REPEATS, the systems interleaved
//    (all of them stay connected through a size).
// 2. latency at a moderate rate: open loop at MODERATE_DELIVERIES/s (the
//    same absolute load for everyone, which every one of them keeps up with);
//    p50/p99 of receive time − send time over every delivery (nearest rank,
//    bench/harness.ts percentile). Median of LAT_REPEATS runs' percentiles;
//    each run lasts LAT_SECONDS, or long enough for LAT_MESSAGES messages.
// 3. reconnect storm (at STORM_SIZE): while the publisher keeps publishing at
//    the moderate rate, every client drops its socket at a random moment
//    within one second and reconnects (platform clients resubscribe with
//    since = the last seq they saw; refusals with 1013/4029 or HTTP 429/503
//    are retried after retry_after_ms). Reported: time to full recovery,
//    events lost, refused/retried attempts. See stormPhase for the exact
//    definitions.
// Loss and content. Each client counts, from the seqs it receives (SeqLedger
// in realtime-client.ts), every seq of a phase (the first after the previous
// phase's last, to the phase's last) it never got, and every duplicate:
// `lost` is their sum over clients, whatever the server did. Each client
// also digests the message indexes it got, in order; a client's stream is
// "as published" when that equals the publisher's messages in seq order, and
// `identical` (on every compared figure) is the share of clients whose
// stream was as published on both sides, in every repeat.
// Server CPU per delivery (workerd or the ws process, from /proc) is reported
// beside deliveries/s: on a shared 2-core machine the latter moves with the
// neighbours' load, the former much less. --profile writes V8 CPU profiles
// (the platform's isolate during connect, first saturation and storm; each
// partyserver's during its first saturation) to .bench/ and prints the
// heaviest functions (bench/realtime-profile.ts).

const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const PROCS = Number(opt("--procs") ?? 2);
const SIZES = (opt("--sizes") ?? (QUICK ? "200,500" : "1000,5000")).split(",").map(Number);
const STORM_SIZE = Number(opt("--storm") ?? SIZES.at(-1));
const SAT_SECONDS = QUICK ? 1 : 4;
const SAT_REPEATS = QUICK ? 1 : 3;
const LAT_SECONDS = QUICK ? 1 : 4;
/**
 * Messages per moderate run at least (the run lasts longer at low rates):
 * a delivery's p99 is set by the slowest few messages' tails, so a run of
 * four messages (5,000 subscribers at 1 msg/s for 4 s) quoted its maximum.
 */
const LAT_MESSAGES = QUICK ? 5 : 30;
const latSecondsAt = (rate: number) => Math.max(LAT_SECONDS, Math.ceil(LAT_MESSAGES / rate));
const LAT_REPEATS = QUICK ? 1 : 5;
/** Connecting every subscriber, this many times per size (the last stays connected for the phases). */
const CONNECT_REPEATS = Number(opt("--connect-repeats") ?? 5);
/**
 * Deliveries in flight end to end during saturation (published, not yet
 * received by every subscriber): the closed loop keeps this many frames
 * queued somewhere between the publisher and the clients, so the slowest
 * stage (not the round trip) sets the pace; as messages, between 4 and 64.
 */
const IN_FLIGHT_DELIVERIES = Number(opt("--in-flight") ?? (QUICK ? 10_000 : 20_000));
const windowFor = (n: number) => Math.max(4, Math.min(64, Math.ceil(IN_FLIGHT_DELIVERIES / n)));
/**
 * The moderate load, in deliveries/s (the publish rate is this / subscribers):
 * fixed in advance so every system gets the same absolute load, and low
 * enough (a quarter to a half of what each sustains here) that each keeps up.
 */
const MODERATE_DELIVERIES = Number(opt("--moderate") ?? 5_000);
const STORM_SPREAD_MS = 1000;
const STORM_TIMEOUT_MS = 90_000;
const DRAIN_TIMEOUT_MS = 30_000;
const CONNECT_CONCURRENCY = 50;
/** --phases sat,lat,storm (default: all; connecting always runs): a shorter run while developing one of them. */
const PHASES = new Set((opt("--phases") ?? "sat,lat,storm").split(","));
/** --log: the platform's console output (its workerd's logs) on stderr, for debugging a run. */
const WORKER_LOG = args.includes("--log");
/** --profile: CPU profiles of the workerd-based systems' isolates (connect, first saturation and moderate phase, storm). */
const PROFILE = args.includes("--profile");
/** Inspector ports of the workerd-based systems under --profile (one Miniflare each). */
const INSPECTOR_PORTS: Partial<Record<SystemKey, number>> = {
  platform: 9339,
  party: 9340,
  "party-hib": 9341,
  "platform-1": 9342,
  "party-batch": 9343,
  "platform-live": 9344,
  "party-auth": 9345,
};
/** --var NAME=VALUE (repeatable): overrides a platform var from wrangler.toml (experiments: GATEWAY_SHARDS=1, ...). */
const VAR_OVERRIDES: Record<string, string> = Object.fromEntries(
  args.flatMap((a, i) => {
    const kv = a === "--var" ? args[i + 1] : undefined;
    const eq = kv?.indexOf("=") ?? -1;
    return kv && eq > 0 ? [[kv.slice(0, eq), kv.slice(eq + 1)]] : [];
  }),
);
/** The platform's wrangler config: wrangler.toml, or a variant (an experiment on the gateway, say). */
const PLATFORM_CONFIG = opt("--platform-config") ?? "wrangler.toml";
/** At least 32 bytes: the Worker refuses a shorter JWT_SECRET. */
const SECRET = "bench-secret-0123456789abcdef-0123456789";
/** The bench's operator identity (PLATFORM_OPERATORS is set to it), which seeds the team. */
const OPERATOR = { team: "TRTBENCHOPS", user: "UOPERATOR" };
/** Tokens outlive the longest run (the full bench takes minutes); the platform allows at most 24 h. */
const TOKEN_TTL_SECONDS = 6 * 3600;
const TEAM = "TRTBENCH";
/**
 * Members who post, in turn (message i by poster i % POSTERS): at the deployed
 * 10 messages/s per poster per channel, 20 of them can reach the channel's
 * limit of 100/s, as a busy channel's crowd would.
 */
const POSTERS = 20;
/** Both publish limits on the bench's topic when they are lifted (Topic.configure). */
const LIFTED_RATE = 100_000;

type SystemKey =
  | "platform"
  | "party-batch"
  | "party"
  | "party-hib"
  | "party-auth"
  | "ws"
  | "platform-1"
  | "platform-live";
/** A column of the report: a system, or the platform's saturation with the publish limits lifted. */
type FigureKey = SystemKey | "platform-lifted";
/**
 * The default run. platform-live (the platform's gateway holding its sockets
 * in memory), party-hib (a hibernating room) and party-auth (the coalescing
 * room checking a bearer token before the upgrade) connect only: each is a
 * like-for-like peer of a connect figure. platform-1 (the platform without
 * frame coalescing) is opt-in.
 */
const ALL_SYSTEMS: SystemKey[] = ["platform", "party-batch", "party", "ws", "platform-live", "party-hib", "party-auth"];
const SYSTEMS = (opt("--systems")?.split(",") as SystemKey[] | undefined) ?? ALL_SYSTEMS;
/** --connect-only KEYS: systems that take part in connecting only, then leave the size (default: platform-live, party-hib, party-auth). */
const CONNECT_ONLY = new Set(
  (opt("--connect-only") ?? "platform-live,party-hib,party-auth").split(",").filter(Boolean),
);
const LABEL: Record<FigureKey, string> = {
  platform: "platform",
  "platform-lifted": "platform, publish limits lifted",
  "party-batch": "partyserver (coalescing)",
  party: "partyserver",
  "party-hib": "partyserver (hibernating)",
  "party-auth": "partyserver (coalescing, token check)",
  ws: "Node ws",
  "platform-1": "platform (unbatched)",
  "platform-live": "platform (sockets in memory)",
};
/** The baseline every platform figure is compared with first: the best partyserver can do. */
const PEER: SystemKey = "party-batch";
/** Vars a platform variant runs with on top of wrangler.toml's and --var's. */
const VARIANT_VARS: Partial<Record<SystemKey, Record<string, string>>> = {
  "platform-1": { GATEWAY_BATCH_FRAMES: "1" },
  "platform-live": { GATEWAY_HIBERNATE: "false" },
};
type PlatformKey = "platform" | "platform-1" | "platform-live";
const isPlatform = (k: SystemKey): k is PlatformKey => k === "platform" || k === "platform-1" || k === "platform-live";

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const log = (msg: string) => console.error(`[realtime ${((performance.now() - T0) / 1000).toFixed(0)}s] ${msg}`);
const T0 = performance.now();

// --- client processes -------------------------------------------------------------

/** A command without its id (the pool numbers them). */
type CommandBody = Command extends infer C ? (C extends { id: number } ? Omit<C, "id"> : never) : never;

class ClientPool {
  readonly procs: ChildProcess[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** Per set: per seq, processes that reported it complete. */
  private readonly reports = new Map<string, Map<number, number>>();
  /** Per set: processes holding clients of it, and a listener for completed seqs. */
  private readonly sets = new Map<string, { procs: number; onComplete: (seq: number) => void }>();

  constructor(n: number) {
    for (let i = 0; i < n; i++) {
      // tsx's loader is in process.execArgv, which fork() passes on.
      const child = fork(new URL("./realtime-client.ts", import.meta.url).pathname, [], {
        serialization: "advanced",
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      child.on("message", (m: Reply | Complete) => this.message(m));
      child.on("exit", (code) => {
        if (code !== 0 && code !== null) log(`client process ${child.pid} exited with ${code}`);
      });
      this.procs.push(child);
    }
  }

  pids(): number[] {
    return this.procs.map((p) => p.pid).filter((p): p is number => p !== undefined);
  }

  private message(m: Reply | Complete): void {
    if (m.type === "complete") {
      const set = this.sets.get(m.set);
      if (!set) return;
      let bySeq = this.reports.get(m.set);
      if (!bySeq) {
        bySeq = new Map();
        this.reports.set(m.set, bySeq);
      }
      const n = (bySeq.get(m.seq) ?? 0) + 1;
      bySeq.set(m.seq, n);
      if (n === set.procs) set.onComplete(m.seq);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error));
  }

  call<T>(proc: number, command: CommandBody): Promise<T> {
    const id = this.nextId++;
    const child = this.procs[proc] as ChildProcess;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: (v) => resolve(v as T), reject });
      child.send({ ...command, id });
    });
  }

  /** The same command to every process holding clients of `set`. */
  each<T>(set: string, command: (proc: number) => CommandBody): Promise<T[]> {
    const n = this.sets.get(set)?.procs ?? this.procs.length;
    return Promise.all(Array.from({ length: n }, (_, i) => this.call<T>(i, command(i))));
  }

  /** Spreads the targets over the processes (round robin) and connects them all. */
  async connect(set: string, kind: ClientKind, topic: string, targets: Target[]): Promise<ConnectReply[]> {
    const shares: Target[][] = this.procs.map(() => []);
    for (const [i, t] of targets.entries()) shares[i % shares.length]?.push(t);
    const used = shares.filter((s) => s.length > 0).length;
    this.sets.set(set, { procs: used, onComplete: () => {} });
    return Promise.all(
      shares.slice(0, used).map((share, i) =>
        this.call<ConnectReply>(i, {
          cmd: "connect",
          set,
          kind,
          targets: share,
          topic,
          concurrency: CONNECT_CONCURRENCY,
        }),
      ),
    );
  }

  /**
   * Clears the set's counters in every process (each client now expects every
   * seq from `from` on); completed seqs are reported to onComplete from now on.
   */
  async reset(set: string, from: number | null, onComplete: (seq: number) => void): Promise<void> {
    const entry = this.sets.get(set);
    if (!entry) throw new Error(`unknown set ${set}`);
    await this.each(set, () => ({ cmd: "reset", set, from }));
    this.reports.delete(set);
    entry.onComplete = onComplete;
  }

  async close(set: string): Promise<void> {
    await this.each(set, () => ({ cmd: "close", set }));
    this.sets.delete(set);
    this.reports.delete(set);
  }

  async exit(): Promise<void> {
    await Promise.all(this.procs.map((_, i) => this.call(i, { cmd: "exit" }).catch(() => null)));
  }
}

// --- systems under test -----------------------------------------------------------

interface System {
  key: SystemKey;
  kind: ClientKind;
  /** Where each subscriber connects (one per subscriber). */
  targets(n: number): Promise<Target[]>;
  topic(n: number): string;
  /** Publishes message `index` (by poster index % POSTERS) with `text` as its text; resolves with its seq. */
  publish(n: number, text: string, index: number): Promise<number>;
  /** Server processes (for CPU). */
  pids(): number[];
  /** Publishes refused with 429 and retried (after retry_after_ms, waited in total): the platform's limits at work. */
  throttled: { count: number; waitMs: number };
  /** The platform: lifts the publish limits of the size's topic (or puts the deployed ones back). */
  liftLimits?(n: number, lifted: boolean): Promise<void>;
}

const channelOf = (n: number) => `CRT${n}`;
const posterOf = (index: number) => userId(index % POSTERS);

/** The platform's message event, written by the bench for the baselines (the platform builds its own). */
function eventBody(n: number, text: string, index: number): string {
  return JSON.stringify({
    type: "message",
    channel: channelOf(n),
    user: posterOf(index),
    text,
    mentions: [],
    ts: Date.now(),
  });
}

/** POSTs a message; a 429 is waited out (retry_after_ms, else Retry-After) and retried, as a client would. */
async function postForSeq(
  url: string,
  body: string,
  headers: Record<string, string>,
  throttled?: { count: number; waitMs: number },
): Promise<number> {
  for (;;) {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    const text = await res.text();
    if (res.status === 429 && throttled) {
      const details = (JSON.parse(text) as { error?: { details?: { retry_after_ms?: unknown } } }).error?.details;
      const header = Number(res.headers.get("retry-after"));
      const wait =
        typeof details?.retry_after_ms === "number"
          ? details.retry_after_ms
          : Number.isFinite(header)
            ? header * 1000
            : 1000;
      throttled.count++;
      throttled.waitMs += wait;
      await sleep(wait);
      continue;
    }
    if (!res.ok) throw new Error(`${url} -> ${res.status}: ${text.slice(0, 300)}`);
    const seq = (JSON.parse(text) as { seq?: unknown }).seq;
    if (typeof seq !== "number") throw new Error(`${url}: no seq in ${text.slice(0, 200)}`);
    return seq;
  }
}

async function adminCall(url: string, method: string, path: string, token: string, body: string, type: string) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status}: ${text.slice(0, 500)}`);
  return text;
}

/** The platform's bundle in its own Miniflare (platform-1: the same bundle, with its variant's vars). */
async function startPlatform(
  key: PlatformKey,
  outdir: string,
  maxUsers: number,
): Promise<{ system: System; close: () => Promise<void> }> {
  const config = workerOptionsOf(PLATFORM_CONFIG, outdir);
  const overrides = { ...VAR_OVERRIDES, ...VARIANT_VARS[key] };
  log(
    `${LABEL[key]}: ${PLATFORM_CONFIG} vars ${DEPLOYED_VARS.map((k) => `${k}=${config.vars[k] ?? "(unset)"}`).join(" ")}; overridden here:${Object.entries(
      overrides,
    )
      .map(([k, v]) => ` ${k}=${v}`)
      .join("")}; Durable Objects ${Object.keys(config.durableObjects).join(", ")}`,
  );
  const before = new Set(descendantPids("workerd"));
  const backend = await startBackend("d1", `${outdir}/index.js`, {
    vars: {
      // As deployed: wrangler.toml's vars, publish limits included (the
      // saturation phases lift them on the bench's topic only, and say so).
      ...config.vars,
      PLATFORM_OPERATORS: `${OPERATOR.team}:${OPERATOR.user}`,
      JWT_SECRET: SECRET,
      ...overrides,
    },
    durableObjects: config.durableObjects,
    extra: {
      ...config.extra,
      ...(PROFILE ? { inspectorPort: INSPECTOR_PORTS[key] } : {}),
      ...(WORKER_LOG ? { log: new Log(LogLevel.INFO) } : {}),
    },
  });
  const pids = descendantPids("workerd").filter((p) => !before.has(p));
  const { url } = backend;
  // Seed through the admin API: the team, maxUsers members (one NDJSON
  // import), and one public channel per subscriber count.
  const t0 = performance.now();
  const platform = await signToken({ ...OPERATOR, ttlSeconds: TOKEN_TTL_SECONDS }, SECRET);
  await adminCall(
    url,
    "POST",
    "/v1/admin/teams",
    platform,
    JSON.stringify({ id: TEAM, name: "Realtime Bench" }),
    "application/json",
  );
  const users = Array.from({ length: maxUsers }, (_, i) => userId(i));
  const ndjson = users.map((id, i) => JSON.stringify({ id, email: `u${i + 1}@rt.example`, role: "member" })).join("\n");
  await adminCall(url, "POST", `/v1/admin/teams/${TEAM}/users/import`, platform, `${ndjson}\n`, "application/x-ndjson");
  for (const n of SIZES) {
    await adminCall(
      url,
      "POST",
      `/v1/admin/teams/${TEAM}/channels`,
      platform,
      JSON.stringify({ id: channelOf(n), name: `realtime-${n}` }),
      "application/json",
    );
  }
  log(
    `${LABEL[key]}: seeded ${maxUsers} users and ${SIZES.length} channels in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const tokens: string[] = [];
  for (const id of users) tokens.push(await signToken({ team: TEAM, user: id, ttlSeconds: TOKEN_TTL_SECONDS }, SECRET));
  const wsBase = url.replace(/^http/, "ws");
  const throttled = { count: 0, waitMs: 0 };
  const topics = await backend.mf.getDurableObjectNamespace("TOPIC");
  const limits = {
    perSecond: Number(config.vars.TOPIC_PUBLISH_PER_SECOND ?? 100),
    perUser: Number(config.vars.TOPIC_PUBLISH_PER_USER_PER_SECOND ?? 10),
  };
  return {
    system: {
      key,
      kind: "platform",
      // The token in the Authorization header, not in the URL (refused there): see Target.
      targets: async (n) => tokens.slice(0, n).map((bearer) => ({ url: `${wsBase}/v1/rtm`, bearer })),
      topic: (n) => `channel:${channelOf(n)}`,
      publish: (n, text, index) =>
        postForSeq(
          `${url}/v1/channels/${channelOf(n)}/messages`,
          JSON.stringify({ text }),
          { authorization: `Bearer ${tokens[index % POSTERS]}` },
          throttled,
        ),
      pids: () => pids,
      throttled,
      // Topic.configure on the size's channel topic (Miniflare's proxy to the
      // object): until the object restarts, or the next call.
      liftLimits: async (n, lifted) => {
        const key = topicKey(TEAM, `channel:${channelOf(n)}`);
        const stub = topics.get(topics.idFromName(key)) as unknown as {
          configure(topic: string, o: { publishPerSecond: number; publishPerUserPerSecond: number }): Promise<unknown>;
        };
        const stats = await stub.configure(
          key,
          lifted
            ? { publishPerSecond: LIFTED_RATE, publishPerUserPerSecond: LIFTED_RATE }
            : { publishPerSecond: limits.perSecond, publishPerUserPerSecond: limits.perUser },
        );
        // The answer comes back as a proxy stub: let Miniflare release it.
        (stats as { [Symbol.dispose]?: () => void } | null)?.[Symbol.dispose]?.();
      },
    },
    close: backend.close,
  };
}

const userId = (i: number) => `U${String(i + 1).padStart(8, "0")}`;
/** The platform's vars the log and the results name (as read from wrangler.toml). */
const DEPLOYED_VARS = [
  "GATEWAY_SHARDS",
  "TOPIC_LOG_SIZE",
  "GATEWAY_MAX_SOCKETS",
  "GATEWAY_ACCEPT_PER_SECOND",
  "GATEWAY_BATCH_FRAMES",
  "TOPIC_PUBLISH_PER_SECOND",
  "TOPIC_PUBLISH_PER_USER_PER_SECOND",
];

/**
 * One partyserver variant in its own Miniflare (its own workerd process):
 * workerd holds about two file descriptors per client WebSocket, and two
 * rooms of 5,000 in one process reach the 20,000 limit.
 */
const PARTIES = {
  party: { binding: "RtRoom", path: "rt-room" },
  "party-hib": { binding: "RtRoomHib", path: "rt-room-hib" },
  "party-batch": { binding: "RtRoomBatch", path: "rt-room-batch" },
  "party-auth": { binding: "RtRoomAuth", path: "rt-room-auth" },
} as const;

async function startParty(
  key: keyof typeof PARTIES,
  outdir: string,
  /** Bearer tokens for the clients (party-auth checks them; the others ignore them). */
  tokens: readonly string[],
): Promise<{ system: System; close: () => Promise<void> }> {
  const before = new Set(descendantPids("workerd"));
  const { binding, path } = PARTIES[key];
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: true,
      scriptPath: `${outdir}/realtime-party-worker.js`,
      compatibilityDate: "2026-11-01",
      compatibilityFlags: ["nodejs_compat"],
      durableObjects: { [binding]: { className: binding, useSQLite: true } },
      bindings: { JWT_SECRET: SECRET },
      ...(PROFILE ? { inspectorPort: INSPECTOR_PORTS[key] } : {}),
    }),
  );
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const pids = descendantPids("workerd").filter((p) => !before.has(p));
  const wsBase = url.replace(/^http/, "ws");
  return {
    system: {
      key,
      kind: "plain",
      targets: async (n) =>
        Array.from({ length: n }, (_, i) => ({
          url: `${wsBase}/parties/${path}/room-${n}`,
          ...(key === "party-auth" ? { bearer: tokens[i] } : {}),
        })),
      topic: (n) => `channel:${channelOf(n)}`,
      publish: (n, text, index) =>
        postForSeq(
          `${url}/parties/${path}/room-${n}?topic=${encodeURIComponent(`channel:${channelOf(n)}`)}`,
          eventBody(n, text, index),
          {},
        ),
      pids: () => pids,
      throttled: { count: 0, waitMs: 0 },
    },
    close: () => mf.dispose(),
  };
}

async function startWs(): Promise<{ system: System; close: () => Promise<void> }> {
  const child = fork(new URL("./realtime-ws-server.ts", import.meta.url).pathname, [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m: { port: number }) => resolve(m.port));
    child.once("exit", (code) => reject(new Error(`ws server exited with ${code}`)));
  });
  const base = `127.0.0.1:${port}`;
  return {
    system: {
      key: "ws",
      kind: "plain",
      targets: async (n) => Array.from({ length: n }, () => ({ url: `ws://${base}/` })),
      topic: (n) => `channel:${channelOf(n)}`,
      publish: (n, text, index) =>
        postForSeq(
          `http://${base}/publish?topic=${encodeURIComponent(`channel:${channelOf(n)}`)}`,
          eventBody(n, text, index),
          {},
        ),
      pids: () => (child.pid === undefined ? [] : [child.pid]),
      throttled: { count: 0, waitMs: 0 },
    },
    close: async () => {
      child.kill();
    },
  };
}

// --- phases -----------------------------------------------------------------------

interface Cpu {
  clients: number;
  server: number;
  publisher: number;
}

function cpuSnapshot(system: System, pool: ClientPool): Cpu {
  const sum = (pids: number[]) => pids.reduce((a, p) => a + (processUsage(p)?.cpuMs ?? 0), 0);
  return { clients: sum(pool.pids()), server: sum(system.pids()), publisher: sum([process.pid]) };
}

/** False when a server process is gone: workerd crashed (Miniflare starts a new one, with empty storage). */
function serverAlive(system: System): boolean {
  return system.pids().every((pid) => existsSync(`/proc/${pid}`));
}

/** Open file descriptors of the server processes (workerd holds about two per client WebSocket). */
function serverFds(system: System): number {
  let n = 0;
  for (const pid of system.pids()) {
    try {
      n += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // not Linux, or the process is gone (restarted)
    }
  }
  return n;
}

/** CPU used between two snapshots (ms), and as % of one core over the wall time. */
function cpuUsed(a: Cpu, b: Cpu, wallMs: number): { ms: Cpu; pct: Cpu } {
  const ms = { clients: b.clients - a.clients, server: b.server - a.server, publisher: b.publisher - a.publisher };
  const pct = (x: number) => Math.round((x / wallMs) * 100);
  return { ms, pct: { clients: pct(ms.clients), server: pct(ms.server), publisher: pct(ms.publisher) } };
}

interface PhaseResult {
  published: number;
  publishErrors: number;
  firstPublishError: string | null;
  publishMs: number;
  /** First publish → last event frame received. */
  wallMs: number;
  /** Last publish → last event frame received: how far behind the clients ended. */
  tailMs: number;
  frames: number;
  /** WebSocket messages carrying those frames (fewer than frames when batched). */
  messages: number;
  expected: number;
  bytesPerFrame: number;
  /** Counted by the clients from the seqs they received (SeqLedger): duplicates, and the phase's seqs never received. */
  dups: number;
  missing: number;
  /** Of those, noticed as gaps when a later event came, or given up by `reload` frames (with notice). */
  gapMissing: number;
  reloaded: number;
  reloads: number;
  /** Per client (in target order): 1 when it received exactly the published messages, in seq order. */
  asPublished: Uint8Array;
  /** Publishes refused with 429 and retried after retry_after_ms (the platform's limits). */
  throttled: number;
  throttledWaitMs: number;
  errorFrames: number;
  unexpectedCloses: number;
  drained: boolean;
  /** Publish request → answer (ms). */
  publishP50: number;
  publishP99: number;
  samples: Float64Array;
  /** % of one core over the phase. */
  cpu: Cpu;
  /** CPU time over the phase (ms; /proc ticks of 10 ms). */
  cpuMs: Cpu;
  stats: PhaseStats[];
}

/** Tracks the publishes of one phase and which seqs every subscriber has received. */
class Publisher {
  sent = 0;
  ok = 0;
  /** POST → answer, per successful publish (ms). */
  readonly rtts: number[] = [];
  errors = 0;
  firstError: string | null = null;
  readonly completed = new Set<number>();
  readonly sends: Array<{ at: number; seq: Promise<number | null> }> = [];
  /** (seq, message index) of every successful publish. */
  readonly published: Array<[number, number]> = [];
  private readonly throttled0: { count: number; waitMs: number };
  private waiters: Array<() => void> = [];
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly system: System,
    private readonly n: number,
  ) {
    this.throttled0 = { ...system.throttled };
  }

  /** Publishes refused (429) and retried during this phase, and the waits they were told to take. */
  get throttled(): { count: number; waitMs: number } {
    const t = this.system.throttled;
    return { count: t.count - this.throttled0.count, waitMs: t.waitMs - this.throttled0.waitMs };
  }

  /** The last seq published this phase (null: none). */
  get final(): number | null {
    let max: number | null = null;
    for (const [seq] of this.published) if (max === null || seq > max) max = seq;
    return max;
  }

  /** The digest a client computes when it received exactly what was published, in seq order (foldDigest). */
  expectedDigest(): { digest: number; count: number } {
    let digest = DIGEST_SEED;
    for (const [, index] of [...this.published].sort((a, b) => a[0] - b[0])) digest = foldDigest(digest, index);
    return { digest, count: this.published.length };
  }

  onComplete = (seq: number): void => {
    this.completed.add(seq);
    this.wake();
  };

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  publish(): void {
    const at = now();
    const index = this.sent++;
    // The text: the send time (latency) and the message's index (the clients' digest).
    const seq = this.system.publish(this.n, `${at.toFixed(3)} ${index}`, index).then(
      (s) => {
        this.ok++;
        this.rtts.push(now() - at);
        this.published.push([s, index]);
        return s;
      },
      (error: unknown) => {
        this.errors++;
        this.firstError ??= error instanceof Error ? error.message : String(error);
        this.wake();
        return null;
      },
    );
    this.sends.push({ at, seq });
    this.inflight.add(seq);
    void seq.finally(() => this.inflight.delete(seq));
  }

  /** Published but not yet received by everyone (failed publishes excluded). */
  get outstanding(): number {
    return this.sent - this.errors - this.completed.size;
  }

  /** Resolves at the next completion, or after ms. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async settled(): Promise<void> {
    await Promise.all([...this.inflight]);
  }

  /** Waits until every successful publish is received by everyone, or the timeout. */
  async drain(timeoutMs: number): Promise<boolean> {
    await this.settled();
    const deadline = now() + timeoutMs;
    while (this.outstanding > 0 && now() < deadline) await this.next(100);
    return this.outstanding <= 0;
  }
}

type Load =
  | { kind: "closed"; window: number; seconds: number; atLeast?: number }
  | { kind: "rate"; perSecond: number; seconds: number };

/** Per client set: the last seq published to its topic, so the next phase expects every seq after it. */
const lastPublished = new Map<string, number>();

async function merge(pool: ClientPool, set: string, pub: Publisher): Promise<PhaseStats[]> {
  const final = pub.final;
  if (final !== null) lastPublished.set(set, Math.max(final, lastPublished.get(set) ?? 0));
  return pool.each<PhaseStats>(set, () => ({ cmd: "collect", set, final }));
}

/** Per client, in target order (targets were dealt round robin over the processes): its stream as published? */
function asPublished(stats: PhaseStats[], pub: Publisher): Uint8Array {
  const { digest, count } = pub.expectedDigest();
  const n = stats.reduce((a, s) => a + s.digests.length, 0);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const s = stats[i % stats.length] as PhaseStats;
    const j = Math.floor(i / stats.length);
    out[i] = s.digests[j] === digest && s.counts[j] === count ? 1 : 0;
  }
  return out;
}

function summarize(
  stats: PhaseStats[],
  pub: Publisher,
  n: number,
  t0: number,
  publishEnd: number,
  drained: boolean,
  cpu: { ms: Cpu; pct: Cpu },
): PhaseResult {
  const total = (f: (s: PhaseStats) => number) => stats.reduce((a, s) => a + f(s), 0);
  const frames = total((s) => s.frames);
  const lastRecv = Math.max(...stats.map((s) => s.lastRecvAt));
  const samples = new Float64Array(total((s) => s.samples.length));
  let off = 0;
  for (const s of stats) {
    samples.set(s.samples, off);
    off += s.samples.length;
  }
  return {
    published: pub.ok,
    publishErrors: pub.errors,
    firstPublishError: pub.firstError,
    publishMs: publishEnd - t0,
    wallMs: (lastRecv > 0 ? lastRecv : publishEnd) - t0,
    tailMs: lastRecv > 0 ? lastRecv - publishEnd : 0,
    frames,
    messages: total((s) => s.messages),
    expected: pub.ok * n,
    bytesPerFrame: frames === 0 ? 0 : Math.round(total((s) => s.bytes) / frames),
    dups: total((s) => s.dups),
    missing: total((s) => s.missing),
    gapMissing: total((s) => s.gapMissing),
    reloaded: total((s) => s.reloaded),
    reloads: total((s) => s.reloads),
    asPublished: asPublished(stats, pub),
    throttled: pub.throttled.count,
    throttledWaitMs: pub.throttled.waitMs,
    errorFrames: total((s) => s.errorFrames),
    unexpectedCloses: total((s) => s.unexpectedCloses),
    drained,
    publishP50: percentile(pub.rtts, 50),
    publishP99: percentile(pub.rtts, 99),
    samples,
    cpu: cpu.pct,
    cpuMs: cpu.ms,
    stats,
  };
}

/** Runs fn with a system's isolate profiled (under --profile, for workerd-based systems), then writes and summarizes the profile. */
async function profiled<T>(system: System, label: string, on: boolean, fn: () => Promise<T>): Promise<T> {
  const port = INSPECTOR_PORTS[system.key];
  if (!on || !PROFILE || port === undefined) return fn();
  const profiler = await startProfiler(port, "");
  const out = await fn();
  const cpuProfile = await profiler.stop();
  log(profileReport(label, `.bench/realtime-${label}.cpuprofile`, cpuProfile));
  return out;
}

/** A phase's start: the clients of `n` subscribers reset to report to a fresh publisher, CPU and clock read. */
async function startPhase(system: System, pool: ClientPool, n: number) {
  const set = `${system.key}:${n}`;
  const pub = new Publisher(system, n);
  const last = lastPublished.get(set);
  await pool.reset(set, last === undefined ? null : last + 1, pub.onComplete);
  return { set, pub, c0: cpuSnapshot(system, pool), t0: now() };
}

async function loadPhase(system: System, pool: ClientPool, n: number, load: Load): Promise<PhaseResult> {
  const { set, pub, c0, t0 } = await startPhase(system, pool, n);
  const end = t0 + load.seconds * 1000;
  if (load.kind === "closed") {
    while (now() < end || pub.sent < (load.atLeast ?? 0)) {
      if (pub.outstanding < load.window) pub.publish();
      else await pub.next(Math.max(1, end - now()));
    }
  } else {
    for (let i = 0; ; i++) {
      const at = t0 + (i * 1000) / load.perSecond;
      if (at >= end) break;
      await sleep(at - now());
      pub.publish();
    }
  }
  const publishEnd = now();
  const drained = await pub.drain(DRAIN_TIMEOUT_MS);
  const stats = await merge(pool, set, pub);
  const wall = Math.max(...stats.map((s) => s.lastRecvAt), publishEnd) - t0;
  return summarize(stats, pub, n, t0, publishEnd, drained, cpuUsed(c0, cpuSnapshot(system, pool), wall));
}

interface StormResult {
  phase: PhaseResult;
  /** Storm start → every client reconnected (platform: `subscribed`). */
  allResumedMs: number;
  /** Storm start → every client has every event up to the first one published after the last reconnect. */
  recoveryMs: number;
  markSeq: number;
  markReceivers: number;
  failedClients: number;
  attempts: number;
  overloaded: number;
  rateLimited: number;
  httpRefused: number;
  connectErrors: number;
  timeouts: number;
  retryWaitMs: number;
  firstError: string | null;
  lost: number;
  /** Most file descriptors the server processes held during the storm. */
  maxFds: number;
  /** The server process died during the storm (its figures are then not comparable). */
  crashed: boolean;
}

/**
 * The reconnect storm. Definitions:
 * - storm start S: the moment the first client may drop (clients drop at
 *   S + uniform(0, 1 s));
 * - all resumed R: the latest moment a client became ready again after S
 *   (platform: got `subscribed` for its resubscribe with since; baselines:
 *   the socket opened);
 * - the mark M: the first message whose publish was sent after R;
 * - time to full recovery: from S until every client has received M (on the
 *   platform, events reach a client in seq order with no gap, so having M
 *   means having everything before it, or having been told `reload`);
 * - events lost: Σ over clients of the events published during the phase
 *   that the client never received (the publisher runs from before S until
 *   M is everywhere, then drains).
 */
async function stormPhase(system: System, pool: ClientPool, n: number, perSecond: number): Promise<StormResult> {
  const { set, pub, c0, t0 } = await startPhase(system, pool, n);
  const stormAt = t0 + 500;
  await pool.each(set, () => ({ cmd: "storm", set, at: stormAt, spreadMs: STORM_SPREAD_MS }));
  let resumedAt = 0;
  let failed = 0;
  let mark: { index: number; seq: number | null } | null = null;
  let polled = 0;
  let maxFds = serverFds(system);
  for (let i = 0; ; i++) {
    const at = t0 + (i * 1000) / perSecond;
    // Sleeps in slices, sampling the server's descriptors meanwhile.
    while (now() < at) {
      await sleep(Math.min(100, at - now()));
      maxFds = Math.max(maxFds, serverFds(system));
    }
    pub.publish();
    if (now() > t0 + STORM_TIMEOUT_MS) break;
    if (resumedAt === 0 && now() > stormAt + STORM_SPREAD_MS && now() - polled > 100) {
      polled = now();
      const status = await pool.each<StormStatus>(set, () => ({ cmd: "stormStatus", set }));
      const resumed = status.reduce((a, s) => a + s.resumed, 0);
      failed = status.reduce((a, s) => a + s.failed, 0);
      if (resumed + failed >= n) resumedAt = Math.max(...status.map((s) => s.lastResumedAt));
      continue;
    }
    if (resumedAt > 0 && mark === null) {
      const index = pub.sends.findIndex((s) => s.at > resumedAt);
      if (index >= 0) mark = { index, seq: await (pub.sends[index] as { seq: Promise<number | null> }).seq };
    }
    if (mark?.seq != null && pub.completed.has(mark.seq)) break;
    if (mark !== null && mark.seq == null) break;
  }
  const publishEnd = now();
  // Everything published reached every client that was going to get it: the
  // last publish is complete (or, for a baseline that lost it... it is not).
  await pub.settled();
  const lastSeq = await pub.sends.at(-1)?.seq;
  const deadline = now() + DRAIN_TIMEOUT_MS;
  while (lastSeq != null && !pub.completed.has(lastSeq) && now() < deadline) await pub.next(100);
  await sleep(300);
  const stats = await merge(pool, set, pub);
  const wall = Math.max(...stats.map((s) => s.lastRecvAt), publishEnd) - t0;
  const phase = summarize(
    stats,
    pub,
    n,
    t0,
    publishEnd,
    lastSeq != null && pub.completed.has(lastSeq),
    cpuUsed(c0, cpuSnapshot(system, pool), wall),
  );
  let recoveryMs = Number.NaN;
  let markReceivers = 0;
  if (mark?.seq != null) {
    const markSeq = mark.seq;
    const at = await pool.each<{ count: number; maxAt: number }>(set, () => ({ cmd: "seqStats", set, seq: markSeq }));
    markReceivers = at.reduce((a, s) => a + s.count, 0);
    recoveryMs = Math.max(...at.map((s) => s.maxAt)) - stormAt;
  }
  const r = (f: (s: PhaseStats) => number) => stats.reduce((a, s) => a + f(s), 0);
  return {
    phase,
    allResumedMs: resumedAt > 0 ? resumedAt - stormAt : Number.NaN,
    recoveryMs,
    markSeq: mark?.seq ?? Number.NaN,
    markReceivers,
    failedClients: failed,
    attempts: r((s) => s.reconnect.attempts),
    overloaded: r((s) => s.reconnect.overloaded),
    rateLimited: r((s) => s.reconnect.rateLimited),
    httpRefused: r((s) => s.reconnect.httpRefused),
    connectErrors: r((s) => s.reconnect.errors),
    timeouts: r((s) => s.reconnect.timeouts),
    retryWaitMs: r((s) => s.reconnect.retryWaitMs),
    firstError: stats.map((s) => s.reconnect.firstError).find((e) => e !== null) ?? null,
    lost: phase.missing,
    maxFds,
    crashed: !serverAlive(system),
  };
}

// --- run ----------------------------------------------------------------------------

function fdLimit(): string {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    return line?.replace(/\s+/g, " ").replace("Max open files ", "") ?? "unknown";
  } catch {
    return "unknown";
  }
}

const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
const fmtMs = (x: number) => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 2 : 0)} ms` : "n/a");

interface ConnectRun {
  ms: number;
  failed: number;
  attempts: number;
  firstError: string | null;
  openMs: number[];
  readyMs: number[];
  cpu: { ms: Cpu; pct: Cpu };
}

interface SizeSummary {
  sat: Map<FigureKey, PhaseResult[]>;
  lat: Map<FigureKey, PhaseResult[]>;
  connect: Map<FigureKey, ConnectRun[]>;
  moderateRate: number;
  storm: Map<FigureKey, StormResult>;
}

const deliveriesPerSecond = (p: PhaseResult) => (p.frames / p.wallMs) * 1000;
/** Server CPU per delivery (µs): what a delivery costs whatever share of the machine the server got. */
const serverUs = (p: PhaseResult) => (p.frames === 0 ? Number.NaN : (p.cpuMs.server * 1000) / p.frames);
const clientUs = (p: PhaseResult) => (p.frames === 0 ? Number.NaN : (p.cpuMs.clients * 1000) / p.frames);
const publishRate = (p: PhaseResult) => (p.published / p.publishMs) * 1000;
/** Event frames per WebSocket message: how much coalescing happened (1: none). */
const perMessage = (p: PhaseResult) => (p.messages === 0 ? Number.NaN : p.frames / p.messages);
const p50 = (p: PhaseResult) => percentile([...p.samples], 50);
const p99 = (p: PhaseResult) => percentile([...p.samples], 99);
/** Share of clients whose stream was exactly what was published. */
const asPublishedShare = (p: PhaseResult) =>
  p.asPublished.length === 0 ? Number.NaN : p.asPublished.reduce((a, x) => a + x, 0) / p.asPublished.length;

/**
 * `identical` of a comparison: over the repeats (paired in order) and the
 * clients (paired by target index), the share of pairs whose stream was as
 * published on both sides: the same events, in seq order, none twice.
 */
function identicalShare(a: PhaseResult[], b: PhaseResult[]): number {
  let same = 0;
  let total = 0;
  for (let r = 0; r < Math.min(a.length, b.length); r++) {
    const x = (a[r] as PhaseResult).asPublished;
    const y = (b[r] as PhaseResult).asPublished;
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      total++;
      if (x[i] === 1 && y[i] === 1) same++;
    }
  }
  return total === 0 ? Number.NaN : round(same / total, 4);
}

async function connectOnce(system: System, pool: ClientPool, n: number, label: string, profile: boolean) {
  const set = `${system.key}:${n}`;
  const targets = await system.targets(n);
  const cpu0 = cpuSnapshot(system, pool);
  const replies = await profiled(system, label, profile, () =>
    pool.connect(set, system.kind, system.topic(n), targets),
  );
  const ms = Math.max(...replies.map((r) => r.ms));
  const run: ConnectRun = {
    ms,
    failed: replies.reduce((a, r) => a + r.failed, 0),
    attempts: replies.reduce((a, r) => a + r.attempts, 0),
    firstError: replies.map((r) => r.firstError).find((e) => e !== null) ?? null,
    openMs: replies.flatMap((r) => r.openMs),
    readyMs: replies.flatMap((r) => r.readyMs),
    cpu: cpuUsed(cpu0, cpuSnapshot(system, pool), ms),
  };
  log(
    `${LABEL[system.key]}: ${n - run.failed}/${n} subscribers connected in ${(ms / 1000).toFixed(2)} s (${run.attempts} attempts${run.firstError ? `; first error: ${run.firstError}` : ""}); per client: upgrade p50 ${fmtMs(percentile(run.openMs, 50))} p99 ${fmtMs(percentile(run.openMs, 99))}, open → ready p50 ${fmtMs(percentile(run.readyMs, 50))} p99 ${fmtMs(percentile(run.readyMs, 99))}; server CPU ${Math.round((run.cpu.ms.server * 1000) / n)} µs per connect (${run.cpu.pct.server}% of a core), clients ${run.cpu.pct.clients}%; server holds ${serverFds(system)} file descriptors; client processes RSS ${clientRss(pool)}`,
  );
  return run;
}

async function runSize(n: number, systems: System[], pool: ClientPool): Promise<SizeSummary> {
  const summary: SizeSummary = {
    sat: new Map(),
    lat: new Map(),
    connect: new Map(),
    moderateRate: round(MODERATE_DELIVERIES / n, 2),
    storm: new Map(),
  };
  const add = <T>(m: Map<FigureKey, T[]>, k: FigureKey, v: T) => m.set(k, [...(m.get(k) ?? []), v]);
  // Each repeat starts with the next system (repeat r with the r-th), so no
  // system always runs first (coldest) or right after the same neighbour.
  const inTurn = <T>(list: readonly T[], rep: number): T[] => {
    const k = list.length === 0 ? 0 : rep % list.length;
    return [...list.slice(k), ...list.slice(0, k)];
  };
  // Connecting, CONNECT_REPEATS times, the systems interleaved; every
  // system's subscribers then stay connected through the size (each server
  // in its own process, under its fd limit), so the repeats of every phase
  // can interleave the systems too: load from other tenants of this shared
  // machine then hits them alike instead of whichever ran during a busy minute.
  let live: System[] = [...systems];
  for (let rep = 0; rep < CONNECT_REPEATS; rep++) {
    for (const system of inTurn(live, rep)) {
      const set = `${system.key}:${n}`;
      const run = await connectOnce(system, pool, n, `${system.key}-${n}-connect`, rep === 0 && isPlatform(system.key));
      add(summary.connect, system.key, run);
      if (run.failed > 0) {
        log(`${LABEL[system.key]}: ${run.failed} of ${n} clients could not connect; left out at this size`);
        await pool.close(set);
        live = live.filter((x) => x !== system);
        continue;
      }
      if (rep < CONNECT_REPEATS - 1) {
        await pool.close(set);
        // The server takes the closes before the next connect.
        await sleep(QUICK ? 200 : 500);
      }
    }
  }
  // Connect-only systems leave the size here: their figure is the connect.
  for (const system of live.filter((x) => CONNECT_ONLY.has(x.key))) await pool.close(`${system.key}:${n}`);
  live = live.filter((x) => !CONNECT_ONLY.has(x.key));
  for (const system of live) {
    // Warm-up: the first messages create the topic/room state, JIT the paths,
    // and (platform) send every poster's profile once (just-in-time
    // annotation), which later phases would otherwise pay for.
    await loadPhase(system, pool, n, { kind: "closed", window: 4, seconds: QUICK ? 0.3 : 0.6, atLeast: 2 * POSTERS });
  }
  const stillUp = (system: System) => {
    if (serverAlive(system)) return true;
    log(`${LABEL[system.key]}: the server process died; no more phases for it`);
    live = live.filter((x) => x !== system);
    return false;
  };
  const satLog = (key: FigureKey, rep: number, p: PhaseResult) =>
    log(
      `${n} subs, saturation #${rep + 1}, ${LABEL[key]}: ${Math.round(deliveriesPerSecond(p))} deliveries/s, ${publishRate(p).toFixed(1)} msg/s published${p.throttled ? ` (${p.throttled} publishes refused 429 and retried)` : ""}, p50 ${fmtMs(p50(p))} p99 ${fmtMs(p99(p))} (publish answered p50 ${fmtMs(p.publishP50)} p99 ${fmtMs(p.publishP99)}); lost ${p.missing}, dups ${p.dups}, as published ${round(asPublishedShare(p) * 100, 1)}%${p.drained ? "" : " (NOT drained)"}; ${p.bytesPerFrame} B/frame, ${perMessage(p).toFixed(2)} events/message; CPU % clients ${p.cpu.clients} server ${p.cpu.server} publisher ${p.cpu.publisher}; CPU per delivery server ${serverUs(p).toFixed(1)} µs, clients ${clientUs(p).toFixed(1)} µs${p.publishErrors ? `; ${p.publishErrors} publish errors: ${p.firstPublishError}` : ""}`,
    );
  for (let rep = 0; PHASES.has("sat") && rep < SAT_REPEATS; rep++) {
    for (const system of inTurn(live, rep)) {
      const load: Load = { kind: "closed", window: windowFor(n), seconds: SAT_SECONDS };
      const p = await profiled(system, `${system.key}-${n}-saturation`, rep === 0, () =>
        loadPhase(system, pool, n, load),
      );
      if (!stillUp(system)) continue;
      add(summary.sat, system.key, p);
      satLog(system.key, rep, p);
      if (system.key === "platform" && system.liftLimits) {
        // The same, with the topic's publish limits lifted: what fan-out itself does.
        await system.liftLimits(n, true);
        const q = await loadPhase(system, pool, n, load).finally(() => system.liftLimits?.(n, false));
        if (!stillUp(system)) continue;
        add(summary.sat, "platform-lifted", q);
        satLog("platform-lifted", rep, q);
      }
    }
  }
  for (let rep = 0; PHASES.has("lat") && rep < LAT_REPEATS; rep++) {
    for (const system of inTurn(live, rep)) {
      const p = await profiled(system, `${system.key}-${n}-moderate`, rep === 0, () =>
        loadPhase(system, pool, n, {
          kind: "rate",
          perSecond: summary.moderateRate,
          seconds: latSecondsAt(summary.moderateRate),
        }),
      );
      if (!stillUp(system)) continue;
      add(summary.lat, system.key, p);
      log(
        `${n} subs, ${summary.moderateRate} msg/s #${rep + 1}, ${LABEL[system.key]}: p50 ${fmtMs(p50(p))} p99 ${fmtMs(p99(p))} max ${fmtMs(percentile([...p.samples], 100))} over ${p.samples.length} deliveries (publish answered p50 ${fmtMs(p.publishP50)} p99 ${fmtMs(p.publishP99)}); ${Math.round(deliveriesPerSecond(p))} deliveries/s; last frame ${fmtMs(p.tailMs)} after the last publish; lost ${p.missing}, dups ${p.dups}, as published ${round(asPublishedShare(p) * 100, 1)}%${p.throttled ? `, ${p.throttled} publishes refused 429` : ""}${p.drained ? "" : " (NOT drained)"}; CPU % clients ${p.cpu.clients} server ${p.cpu.server}`,
      );
    }
  }
  if (n === STORM_SIZE && PHASES.has("storm")) {
    for (const system of [...live]) {
      const s = await profiled(system, `${system.key}-${n}-storm`, isPlatform(system.key), () =>
        stormPhase(system, pool, n, summary.moderateRate),
      );
      summary.storm.set(system.key, s);
      if (s.crashed) log(`${LABEL[system.key]}: the server process died during the storm; its storm figures are void`);
      log(
        `${n} subs, storm, ${LABEL[system.key]}: all reconnected ${fmtMs(s.allResumedMs)}, full recovery ${fmtMs(s.recoveryMs)} (mark seq ${s.markSeq} received by ${s.markReceivers}/${n}); lost ${s.lost} events (of which noticed as gaps ${s.phase.gapMissing}, given up by reload ${s.phase.reloaded}; dups ${s.phase.dups}); ${s.attempts} connection attempts, refused ${s.overloaded} overloaded / ${s.rateLimited} rate-limited / ${s.httpRefused} HTTP 429-503, ${s.connectErrors} errors (${s.timeouts} handshake timeouts)${s.firstError ? ` (first: ${s.firstError})` : ""}, ${s.failedClients} gave up; ${s.phase.published} published${s.phase.throttled ? ` (${s.phase.throttled} refused 429 and retried)` : ""}${s.phase.publishErrors ? `, ${s.phase.publishErrors} publish errors (${s.phase.firstPublishError})` : ""}; CPU % clients ${s.phase.cpu.clients} server ${s.phase.cpu.server}; server fds at most ${s.maxFds}`,
      );
    }
  }
  for (const system of live) await pool.close(`${system.key}:${n}`);
  // Let the servers take the closes before the next size connects.
  await sleep(QUICK ? 300 : 2000);
  return summary;
}

function clientRss(pool: ClientPool): string {
  const mb = pool.pids().map((p) => Math.round((processUsage(p)?.rssBytes ?? 0) / 1024 / 1024));
  return `${mb.join(" + ")} MB`;
}

type RealtimeResult = BenchResult & {
  baseline?: { name: string; value: number; config?: string };
  identical?: number;
};

/** How each baseline was set up (baseline.config). */
const CONFIG: Partial<Record<FigureKey, string>> = {
  "party-batch": `partyserver ${"<version>"} in-memory room (hibernate: false) in its own Miniflare; frames coalesced like the platform's: events arriving while a round is sent go out in the next, packed by the platform's packFrames (64 frames, ~128 KiB), a lone event bare; POST answered once sent`,
  party: "partyserver in-memory room in its own Miniflare, one WebSocket message per event",
  "party-hib": "partyserver hibernating room in its own Miniflare, one WebSocket message per event",
  "party-auth":
    "the coalescing partyserver room behind onBeforeConnect checking the client's bearer token with the platform's verifyToken (HS256, same secret and claims) in its own Miniflare; no live-state read, no handshake subscribe",
  ws: "ws in its own Node process, one Buffer per event sent to every socket",
  "platform-1": "the platform's bundle with GATEWAY_BATCH_FRAMES=1 in its own Miniflare",
  "platform-live":
    "the platform's bundle with GATEWAY_HIBERNATE=false (gateway sockets held in memory, not hibernatable) in its own Miniflare",
};
const configOf = (k: FigureKey) => CONFIG[k]?.replace("<version>", partyVersion());

function resultsOf(n: number, s: SizeSummary, present: FigureKey[]): RealtimeResult[] {
  const out: RealtimeResult[] = [];
  if (!present.includes("platform")) return out;
  const has = (k: FigureKey) => present.includes(k) && ((s.sat.get(k)?.length ?? 0) > 0 || s.connect.has(k));
  const sat = (k: FigureKey) => s.sat.get(k) ?? [];
  const lat = (k: FigureKey) => s.lat.get(k) ?? [];
  const med = (list: PhaseResult[], f: (p: PhaseResult) => number) => median(list.map(f));
  const cpuNote = (list: PhaseResult[]) =>
    `CPU (% of a core, median) clients ${med(list, (p) => p.cpu.clients)}, server ${med(list, (p) => p.cpu.server)}`;
  const others = (
    list: (k: FigureKey) => PhaseResult[],
    f: (p: PhaseResult) => number,
    unit: string,
    mine: FigureKey,
  ) =>
    present
      .filter((k) => k !== mine && list(k).length > 0)
      .map((k) => `${LABEL[k]} ${round(med(list(k), f), 2)} ${unit} (${cpuNote(list(k))})`)
      .join("; ");
  const lossNote = (list: PhaseResult[]) =>
    `lost ${list.reduce((a, p) => a + p.missing, 0)}, dups ${list.reduce((a, p) => a + p.dups, 0)}, as published ${round(median(list.map(asPublishedShare)) * 100, 2)}%`;
  const base = has(PEER) ? PEER : present.find((k) => k !== "platform" && k !== "platform-lifted");
  const versus = (
    r: Omit<RealtimeResult, "ratio" | "baseline" | "identical">,
    k: FigureKey,
    value: number,
    identical?: number,
  ): RealtimeResult => {
    const c = compare(r, { name: LABEL[k], value });
    const config = configOf(k);
    return {
      ...c,
      baseline: { ...(c.baseline as { name: string; value: number }), ...(config ? { config } : {}) },
      ...(identical === undefined || Number.isNaN(identical) ? {} : { identical }),
    };
  };
  const dps = (k: FigureKey) => Math.round(med(sat(k), deliveriesPerSecond));
  // Saturation, as deployed and with the limits lifted, against every baseline.
  for (const mine of ["platform", "platform-lifted"] as const) {
    if (sat(mine).length === 0) continue;
    const list = sat(mine);
    const how =
      mine === "platform"
        ? "publish limits as deployed (wrangler.toml: 100 msg/s per channel, 10 per poster)"
        : "publish limits lifted (100,000/s on the topic)";
    const notes = `${how}; closed loop, ${windowFor(n)} messages in flight end to end, ${SAT_SECONDS} s, median of ${list.length}; ${POSTERS} posters in turn; platform published ${round(med(list, publishRate), 1)} msg/s (${list.reduce((a, p) => a + p.throttled, 0)} publishes refused 429 and retried), ${list[0]?.bytesPerFrame ?? 0} B/frame, ${round(med(list, perMessage), 2)} events per WebSocket message, ${cpuNote(list)}, ${lossNote(list)}; ${others(sat, publishRate, "msg/s", mine)}; events per message: ${present
      .filter((k) => sat(k).length > 0)
      .map((k) => `${LABEL[k]} ${round(med(sat(k), perMessage), 2)}`)
      .join(", ")}`;
    // As deployed, the channel's limit is what is measured: compared with the fair peer only.
    const against = mine === "platform" ? [PEER] : ([PEER, "party", "party-hib", "ws", "platform-1"] as const);
    for (const k of against) {
      if (!has(k) || sat(k).length === 0) continue;
      out.push(
        versus(
          {
            name: `fan-out deliveries/s, ${n} subscribers, saturated, ${mine === "platform" ? "limits as deployed" : "limits lifted"} (vs ${LABEL[k]})`,
            unit: "deliveries/s",
            better: "higher",
            value: dps(mine),
            runs: list.length,
            target: k === PEER && mine === "platform-lifted" ? ">= 1x (at least partyserver, coalescing)" : undefined,
            notes,
          },
          k,
          dps(k),
          identicalShare(list, sat(k)),
        ),
      );
    }
  }
  const lifted = sat("platform-lifted").length > 0 ? "platform-lifted" : "platform";
  if (base && sat(base).length > 0 && sat(lifted).length > 0) {
    const mine = sat(lifted);
    out.push(
      versus(
        {
          name: `server CPU per delivery, ${n} subscribers, saturated`,
          unit: "µs",
          better: "lower",
          value: round(med(mine, serverUs), 1),
          runs: mine.length,
          notes: `${LABEL[lifted]}; server process CPU (workerd: Worker + every object; ws: the Node server) / event frames delivered, during the saturation phases: what a delivery costs whatever share of the 2 shared cores the server got; ${others(sat, serverUs, "µs", lifted)}; client CPU per delivery (same client code for all): ${present
            .filter((k) => sat(k).length > 0)
            .map((k) => `${LABEL[k]} ${round(med(sat(k), clientUs), 1)} µs`)
            .join(", ")}`,
        },
        base,
        round(med(sat(base), serverUs), 1),
      ),
    );
    for (const [label, f] of [
      ["p50", p50],
      ["p99", p99],
    ] as const) {
      out.push(
        versus(
          {
            name: `end-to-end latency ${label}, ${n} subscribers, saturated`,
            unit: "ms",
            better: "lower",
            value: round(med(mine, f), 2),
            runs: mine.length,
            notes: `${LABEL[lifted]}; same closed-loop load as deliveries/s (queueing included), each run's percentile over its ${Math.min(...mine.map((p) => p.samples.length))}+ deliveries, median of the runs; ${others(sat, f, "ms", lifted)}`,
          },
          base,
          round(med(sat(base), f), 2),
          identicalShare(mine, sat(base)),
        ),
      );
    }
  }
  // Latency at a moderate rate (as deployed: under every limit).
  for (const k of [base, ...(base === PEER && has("party") ? (["party"] as const) : [])]) {
    if (!k || lat(k).length === 0 || lat("platform").length === 0) continue;
    for (const [label, f] of [
      ["p50", p50],
      ["p99", p99],
    ] as const) {
      if (k !== base && label === "p50") continue;
      out.push(
        versus(
          {
            name: `end-to-end latency ${label}, ${n} subscribers, ${s.moderateRate} msg/s (${Math.round(s.moderateRate * n)} deliveries/s)${k === base ? "" : ` (vs ${LABEL[k]})`}`,
            unit: "ms",
            better: "lower",
            value: round(med(lat("platform"), f), 2),
            runs: lat("platform").length,
            target: label === "p99" ? ">= 1x (at least partyserver)" : undefined,
            notes: `open loop at a fixed ${MODERATE_DELIVERIES} deliveries/s, ${latSecondsAt(s.moderateRate)} s (${Math.round(latSecondsAt(s.moderateRate) * s.moderateRate)} messages); each run's percentile over its ${Math.min(...lat("platform").map((p) => p.samples.length))}+ deliveries (nearest rank), median of ${lat("platform").length} runs (each repeat starting with the next system); the same messages (same index, same order) on every system; platform ${cpuNote(lat("platform"))}, ${lossNote(lat("platform"))}; ${others(lat, f, "ms", "platform")}; ${label} by run: ${present
              .filter((x) => lat(x).length > 0)
              .map(
                (x) =>
                  `${LABEL[x]} ${lat(x)
                    .map((p) => round(f(p), 1))
                    .join(", ")}`,
              )
              .join("; ")}`,
          },
          k,
          round(med(lat(k), f), 2),
          identicalShare(lat("platform"), lat(k)),
        ),
      );
    }
  }
  // Connecting.
  const conn = s.connect.get("platform") ?? [];
  const connMs = (k: FigureKey) => median((s.connect.get(k) ?? []).map((r) => r.ms));
  const connNote = (k: FigureKey) => {
    const runs = s.connect.get(k) ?? [];
    const last = runs.at(-1);
    return `${LABEL[k]} ${Math.round(connMs(k))} ms (runs ${runs.map((r) => Math.round(r.ms)).join(", ")}; server CPU ${Math.round(median(runs.map((r) => (r.cpu.ms.server * 1000) / n)))} µs per connect; last run's upgrade p50/p99 ${round(percentile(last?.openMs ?? [], 50), 1)}/${round(percentile(last?.openMs ?? [], 99), 1)} ms, open → ready p50/p99 ${round(percentile(last?.readyMs ?? [], 50), 1)}/${round(percentile(last?.readyMs ?? [], 99), 1)} ms)`;
  };
  const connectNotes = `time to connect all ${n}, ${CONNECT_CONCURRENCY} handshakes in flight per client process, ${PROCS} processes, median of ${conn.length} (the sockets closed in between, the systems interleaved); ${present
    .filter((x) => s.connect.has(x))
    .map(connNote)
    .join("; ")}`;
  // Like for like: the platform's gateway holding its sockets in memory
  // against the in-memory coalescing room, and the platform as deployed
  // (hibernating) against the hibernating room.
  const pairs: Array<[FigureKey, FigureKey, string]> = [
    ["platform-live", PEER, "gateway sockets in memory (GATEWAY_HIBERNATE=false)"],
    ["platform", "party-hib", "hibernating, as deployed"],
    ["platform", "party-auth", "as deployed, against a room that checks the same token"],
  ];
  for (const [mine, k, how] of pairs) {
    const runs = s.connect.get(mine) ?? [];
    if (runs.length === 0 || !s.connect.has(k)) continue;
    out.push(
      versus(
        {
          name: `connect ${n} subscribers, ${how} (vs ${LABEL[k]})`,
          unit: "ms",
          better: "lower",
          value: Math.round(connMs(mine)),
          runs: runs.length,
          target: ">= 1x (at least partyserver)",
          notes: connectNotes,
        },
        k,
        Math.round(connMs(k)),
      ),
    );
  }
  for (const k of [base, ...(base === PEER && has("party") ? (["party"] as const) : [])]) {
    if (!k || conn.length === 0 || !s.connect.has(k)) continue;
    out.push(
      versus(
        {
          name: `connect ${n} subscribers (platform: until subscribed, subscribing in the handshake)${k === base ? "" : ` (vs ${LABEL[k]})`}`,
          unit: "ms",
          better: "lower",
          value: Math.round(connMs("platform")),
          runs: conn.length,
          target: ">= 1x (at least partyserver)",
          notes: connectNotes,
        },
        k,
        Math.round(connMs(k)),
      ),
    );
  }
  // The reconnect storm.
  const storm = s.storm.get("platform");
  const baseStorm = base ? s.storm.get(base) : undefined;
  if (storm && base && baseStorm) {
    const stormNote = (k: FigureKey) => {
      const x = s.storm.get(k);
      if (!x) return "";
      if (x.crashed)
        return `${LABEL[k]}: the server process died (fds at most ${x.maxFds}; ${x.timeouts} handshake timeouts)`;
      return `${LABEL[k]}: all reconnected ${fmtMs(x.allResumedMs)}, recovery ${fmtMs(x.recoveryMs)}, lost ${x.lost} of ${x.phase.expected} (gaps ${x.phase.gapMissing}, reloaded ${x.phase.reloaded}, dups ${x.phase.dups}), ${x.attempts} attempts (${x.overloaded} overloaded, ${x.rateLimited} rate-limited, ${x.httpRefused} HTTP-refused, ${x.connectErrors} errors of which ${x.timeouts} handshake timeouts, ${x.failedClients} gave up), server fds at most ${x.maxFds}`;
    };
    const allNotes = present.map(stormNote).filter(Boolean).join("; ");
    out.push(
      versus(
        {
          name: `reconnect storm, ${n} subscribers: time to full recovery`,
          unit: "ms",
          better: "lower",
          value: Math.round(storm.recoveryMs),
          runs: 1,
          notes: `all clients drop within ${STORM_SPREAD_MS} ms while ${s.moderateRate} msg/s are published; recovery = storm start → every client has the first event published after the last reconnect (platform: in seq order, so with everything before it). ${allNotes}`,
        },
        base,
        Math.round(baseStorm.recoveryMs),
      ),
    );
    out.push({
      name: `reconnect storm, ${n} subscribers: events lost`,
      unit: "events",
      better: "lower",
      value: storm.lost,
      baseline: { name: `${LABEL[base]} (no resume)`, value: baseStorm.lost, config: configOf(base) },
      target: "0",
      runs: 1,
      notes: `Σ over clients of the phase's seqs the client never received, counted by each client from the seqs it got (SeqLedger, bench/realtime-client.ts; test/node/realtime-bench-loss.test.ts shows a dropped and a duplicated event counted); platform: noticed as gaps ${storm.phase.gapMissing}, given up by reload ${storm.phase.reloaded}, duplicates ${storm.phase.dups}, of ${storm.phase.expected} expected deliveries; ${present
        .filter((k) => k !== "platform" && s.storm.has(k))
        .map((k) => `${LABEL[k]} lost ${s.storm.get(k)?.lost ?? "n/a"} (dups ${s.storm.get(k)?.phase.dups ?? "n/a"})`)
        .join("; ")}`,
    });
    out.push({
      name: `reconnect storm, ${n} subscribers: connection attempts refused/retried`,
      unit: "attempts",
      better: "lower",
      value: storm.overloaded + storm.rateLimited + storm.httpRefused + storm.connectErrors,
      runs: 1,
      notes: `${storm.attempts} attempts for ${n} reconnects: ${storm.overloaded} closed 1013 overloaded, ${storm.rateLimited} closed 4029 rate_limited, ${storm.httpRefused} HTTP 429/503, ${storm.connectErrors} other errors (${storm.timeouts} upgrades unanswered in 30 s)${storm.firstError ? ` (first: ${storm.firstError})` : ""}; retry_after_ms honoured in total ${storm.retryWaitMs} ms; ${storm.failedClients} clients gave up`,
    });
  }
  return out;
}

/** Every system side by side, for reading (the JSON has the ratios against each baseline). */
function printSideBySide(sizes: Array<[number, SizeSummary]>, present: FigureKey[]): void {
  const rows: string[][] = [];
  for (const [n, s] of sizes) {
    const med = (k: FigureKey, list: Map<FigureKey, PhaseResult[]>, f: (p: PhaseResult) => number) => {
      const l = list.get(k) ?? [];
      return l.length === 0 ? Number.NaN : median(l.map(f));
    };
    const row = (label: string, f: (k: FigureKey) => string) => rows.push([label, ...present.map(f)]);
    const num = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "—");
    row(`${n}: deliveries/s (saturated)`, (k) => num(med(k, s.sat, deliveriesPerSecond)));
    row(`${n}: publish msg/s (saturated)`, (k) => num(med(k, s.sat, publishRate), 1));
    row(`${n}: events per WebSocket message (sat.)`, (k) => num(med(k, s.sat, perMessage), 2));
    row(`${n}: p50 / p99 ms (saturated)`, (k) => `${num(med(k, s.sat, p50), 1)} / ${num(med(k, s.sat, p99), 1)}`);
    row(
      `${n}: p50 / p99 ms (${s.moderateRate} msg/s)`,
      (k) => `${num(med(k, s.lat, p50), 1)} / ${num(med(k, s.lat, p99), 1)}`,
    );
    row(
      `${n}: CPU % clients / server (sat.)`,
      (k) => `${num(med(k, s.sat, (p) => p.cpu.clients))} / ${num(med(k, s.sat, (p) => p.cpu.server))}`,
    );
    row(
      `${n}: CPU µs/delivery server / clients`,
      (k) => `${num(med(k, s.sat, serverUs), 1)} / ${num(med(k, s.sat, clientUs), 1)}`,
    );
    row(`${n}: lost / dups (sat. + moderate)`, (k) => {
      const all = [...(s.sat.get(k) ?? []), ...(s.lat.get(k) ?? [])];
      return all.length === 0
        ? "—"
        : `${all.reduce((a, p) => a + p.missing, 0)} / ${all.reduce((a, p) => a + p.dups, 0)}`;
    });
    row(`${n}: connect all (s, median)`, (k) => {
      const runs = s.connect.get(k) ?? [];
      return runs.length === 0 ? "—" : num(median(runs.map((r) => r.ms)) / 1000, 2);
    });
    if (s.storm.size > 0) {
      row(`${n}: storm: all reconnected / recovered (s)`, (k) => {
        const x = s.storm.get(k);
        return x ? `${(x.allResumedMs / 1000).toFixed(2)} / ${(x.recoveryMs / 1000).toFixed(2)}` : "—";
      });
      row(`${n}: storm: events lost / dups`, (k) => {
        const x = s.storm.get(k);
        return x ? (x.crashed ? "server died" : `${x.lost} / ${x.phase.dups}`) : "—";
      });
      row(`${n}: storm: attempts (refused+errors)`, (k) => {
        const x = s.storm.get(k);
        return x ? `${x.attempts} (${x.overloaded + x.rateLimited + x.httpRefused + x.connectErrors})` : "—";
      });
    }
  }
  const head = ["figure", ...present.map((k) => LABEL[k])];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
  console.log("");
}

async function main(): Promise<void> {
  const need = Math.ceil((Math.max(...SIZES) * SYSTEMS.length) / PROCS) + 100;
  log(
    `fd limit (soft hard): ${fdLimit()}; each client process holds up to ~${need} sockets, each Miniflare workerd up to ${Math.max(...SIZES) * 2}`,
  );
  const closers: Array<() => Promise<void>> = [];
  const pool = new ClientPool(PROCS);
  let deployed = "";
  try {
    const systems: System[] = [];
    if (SYSTEMS.some(isPlatform)) {
      const outdir = bundle(PLATFORM_CONFIG, ".bench/realtime-platform");
      const vars = workerOptionsOf(PLATFORM_CONFIG, outdir).vars;
      deployed = DEPLOYED_VARS.map((k) => `${k}=${vars[k] ?? "(unset)"}`).join(" ");
      for (const key of ["platform", "platform-1", "platform-live"] as const) {
        if (!SYSTEMS.includes(key)) continue;
        const p = await startPlatform(key, outdir, Math.max(...SIZES));
        closers.push(p.close);
        systems.push(p.system);
      }
    }
    const parties = (["party-batch", "party", "party-hib", "party-auth"] as const).filter((k) => SYSTEMS.includes(k));
    if (parties.length > 0) {
      const outdir = bundle("bench/wrangler.realtime-party.toml", ".bench/realtime-party");
      // The same kind of token the platform's clients send (same secret, team, users, lifetime).
      const tokens: string[] = [];
      if (parties.includes("party-auth")) {
        for (let i = 0; i < Math.max(...SIZES); i++) {
          tokens.push(await signToken({ team: TEAM, user: userId(i), ttlSeconds: TOKEN_TTL_SECONDS }, SECRET));
        }
      }
      for (const key of parties) {
        const p = await startParty(key, outdir, tokens);
        closers.push(p.close);
        systems.push(p.system);
      }
    }
    if (SYSTEMS.includes("ws")) {
      const w = await startWs();
      closers.push(w.close);
      systems.push(w.system);
    }
    const present: FigureKey[] = systems.flatMap((s) =>
      s.key === "platform" && PHASES.has("sat") ? ["platform", "platform-lifted"] : [s.key],
    );
    const sizes: Array<[number, SizeSummary]> = [];
    for (const n of SIZES) sizes.push([n, await runSize(n, systems, pool)]);
    const results = sizes.flatMap(([n, s]) => resultsOf(n, s, present));
    console.log("");
    printSideBySide(sizes, present);
    printTable(results);
    const file = writeResults(
      "realtime",
      results,
      `shared, noisy; everything on one machine (${PROCS} client processes, the publisher, the servers); platform = the ${PLATFORM_CONFIG} bundle in Miniflare on D1 with its vars as deployed (${deployed})${Object.entries(
        VAR_OVERRIDES,
      )
        .map(([k, v]) => `, ${k}=${v} (--var)`)
        .join(
          "",
        )}, ${POSTERS} members posting in turn; "limits lifted" = the same platform's saturation with the bench topic's publish limits set to ${LIFTED_RATE}/s by Topic.configure for that phase${present.includes("platform-1") ? `; ${LABEL["platform-1"]} = the same bundle in its own Miniflare with GATEWAY_BATCH_FRAMES=1 (every frame its own WebSocket message)` : ""}; partyserver ${partyVersion()} in Miniflare (coalescing: the platform's packFrames and limits); ws ${wsVersion()} in its own Node process; one topic per subscriber count; latency = client receive clock − publisher send clock (same machine), percentiles by nearest rank; loss counted by each client from the seqs it received; fd limit ${fdLimit()}${QUICK ? " (--quick)" : ""}`,
    );
    console.log(`\nwrote ${file} in ${((performance.now() - T0) / 1000).toFixed(0)} s`);
  } finally {
    await pool.exit();
    for (const close of closers.reverse()) await close().catch((e) => console.error("cleanup:", e));
  }
}

function partyVersion(): string {
  return (JSON.parse(readFileSync("node_modules/partyserver/package.json", "utf8")) as { version: string }).version;
}
function wsVersion(): string {
  return (JSON.parse(readFileSync("node_modules/ws/package.json", "utf8")) as { version: string }).version;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
