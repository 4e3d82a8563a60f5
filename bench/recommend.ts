import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import * as ortNode from "onnxruntime-node";
import { importDataset, loadDataset } from "../scripts/dataset-import";
import { startPlatform, wranglerVars } from "../scripts/replay-backend";
import { replayTruth } from "../scripts/replay-labels";
import { signToken } from "../src/auth/tokens";
import { dayOf } from "../src/datasets/collab";
import { linearParamsSchema } from "../src/models/linear";
import { featureMatrix, type ModelManifest, parseManifest } from "../src/models/manifest";
import type { LiveBuild, LiveSnapshotMeta } from "../src/recommend/live-features";
import { datasetRows, type FeatureEvent, type LiveRows } from "../src/recommend/live-rows";
import { bundle, bundleAssets } from "../tools/harness/backend";
import { type BenchResult, compare, printTable, writeResults } from "../tools/harness/results";
import { descendantPids, median, percentile, postJson, processUsage } from "./harness";
import { profileReport, startProfiler } from "./realtime-profile";
import { BATCH, benchRecords } from "./recommend-rows";
import type { ColdResult, LoopResult, ScoreOp } from "./recommend-worker";

// npm run bench:recommend [-- --quick] [--only scoring,bundle,endpoint] [--per-generator N] [--profile]
//
// Sections (each an exported function returning BenchResult[], so more slot in):
// - scoring: one batch of 500 candidates through the fixture models
//   (test/fixtures/models: LR, and XGBoost with 200 trees of depth 6) inside
//   workerd with onnxruntime-web (wasm, one thread; bench/recommend-worker.ts
//   served by Miniflare), side by side in the same run with onnxruntime-node
//   (native, one intra-op thread, same models and rows, in this process), the
//   models as served (LR and XGBoost graphs read into TypeScript:
//   src/models/onnx-linear.ts, onnx-trees.ts) and the plain TypeScript LR
//   (in workerd). Server-side per-batch time is a
//   loop inside the Worker minus an empty loop, native time a loop in Node;
//   the loops of all sides are interleaved, median of REPEATS. The
//   client-seen time is one HTTP request per batch.
// - bundle: gzip size of the bench Worker and of the main Worker with the
//   model runtime included, against the Workers size limits.
// - endpoint: POST /v1/recommend over HTTP against the main Worker bundle in
//   Miniflare (D1, every binding; scripts/replay-backend.ts) on the
//   rails-collab team imported at the models' training cut, for
//   channel_browser and composer_dm with limit 10: p50/p99 of sequential
//   requests cycling over active users after a warm-up pass over each of
//   them, the candidate count (the first step's `out`), and server-side CPU
//   per request (workerd's CPU time over the timed requests / requests);
//   once as deployed (REC_CANDIDATES_PER_GENERATOR from wrangler.toml) and
//   once per source with the generators widened to ~500 candidates.
//   --profile: a V8 CPU profile of each timed pass (.bench/*.cpuprofile).
//
// - live: the incremental live feature build (src/recommend/live-incremental.ts)
//   against a full build of the same ledger, rails-collab's whole history
//   plus rounds of new events; identical share of the candidates served after
//   each (liveSection).
//
// `--only <section>` (scoring, bundle, endpoint, live) runs some sections and keeps
// the other figures already in bench/results/recommend.json.

const QUICK = process.argv.includes("--quick");
/** --profile: a V8 CPU profile of the main Worker's isolate over each source's timed requests (endpoint section). */
const PROFILE = process.argv.includes("--profile");
const INSPECTOR_PORT = 9350;
const REPEATS = QUICK ? 3 : 7;
/** Each timed loop runs about this long. */
const LOOP_TARGET_MS = QUICK ? 150 : 400;
const HTTP_RUNS = QUICK ? 40 : 150;
const WARMUP = 10;
const FIXTURES = "test/fixtures/models";
const MIB = 1024 * 1024;
/** Workers script size limits, after compression (https://developers.cloudflare.com/workers/platform/limits/). */
const LIMIT_FREE_MIB = 3;
const LIMIT_PAID_MIB = 10;
/** What CI allows the default build (.ci/run): well under the free plan's limit. */
const LIMIT_DEFAULT_MIB = 1;

export interface SectionOptions {
  quick: boolean;
}

function manifestAt(dir: string): ModelManifest {
  const parsed = parseManifest(readFileSync(join(dir, "manifest.json"), "utf8"));
  if (!parsed.ok) throw new Error(`${dir}: ${parsed.message}`);
  return parsed.manifest;
}

const round = (n: number, digits = 4) => Number(n.toPrecision(digits));

// --- onnxruntime-node, in this process ---------------------------------------------

interface NativeModel {
  run(): Promise<Float32Array>;
  release(): Promise<void>;
}

async function nativeModel(dir: string, matrix: Float32Array): Promise<NativeModel> {
  const manifest = manifestAt(dir);
  // One intra-op thread: the same budget the wasm build has, and the fair native baseline on a 2-core box.
  const session = await ortNode.InferenceSession.create(readFileSync(join(dir, "model.onnx")), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
  });
  const width = manifest.features.length;
  return {
    async run() {
      const out = await session.run({
        [manifest.input]: new ortNode.Tensor("float32", matrix, [matrix.length / width, width]),
      });
      return out[manifest.output.name]?.data as Float32Array;
    },
    release: () => session.release(),
  };
}

/**
 * Something timed in loops: `loop(n)` runs it n times and returns the loop's
 * ms with an empty loop of n already subtracted.
 */
interface Timed {
  loop(n: number): Promise<number>;
}

/** Loop size for about LOOP_TARGET_MS a loop; the calibration runs double as warm-up (JIT, wasm tiers). */
async function calibrate(t: Timed): Promise<number> {
  let n = 5;
  for (let i = 0; i < 8; i++) {
    const ms = await t.loop(n);
    if (ms >= LOOP_TARGET_MS / 2 && i > 0) break;
    // Below a few ms the timer's own jitter dominates: grow tenfold instead of extrapolating.
    n = Math.min(100_000, ms < 5 ? n * 10 : Math.max(n, Math.ceil((LOOP_TARGET_MS * n) / ms)));
  }
  return n;
}

/**
 * ms per op of each, median of REPEATS loops. The repeats are interleaved
 * (a loop of each, then again) so that a noisy neighbour on a shared machine
 * hits every side alike, which keeps the ratios steadier than the values.
 */
async function perOp<K extends string>(sides: Record<K, Timed>): Promise<Record<K, { perOp: number; n: number }>> {
  const keys = Object.keys(sides) as K[];
  const ns = {} as Record<K, number>;
  for (const k of keys) ns[k] = await calibrate(sides[k]);
  const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < REPEATS; r++) {
    for (const k of keys) samples[k].push((await sides[k].loop(ns[k])) / ns[k]);
  }
  return Object.fromEntries(keys.map((k) => [k, { perOp: median(samples[k]), n: ns[k] }])) as Record<
    K,
    { perOp: number; n: number }
  >;
}

/** `fn` in this process. */
function nodeTimed(fn: () => Promise<unknown>): Timed {
  return {
    async loop(n) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await fn();
      const t1 = performance.now();
      for (let i = 0; i < n; i++) await Promise.resolve();
      return t1 - t0 - (performance.now() - t1);
    },
  };
}

// --- the bench Worker in Miniflare -----------------------------------------------

interface BenchWorker {
  url: string;
  close(): Promise<void>;
}

async function startBenchWorker(outdir: string): Promise<BenchWorker> {
  const extra = bundleAssets(outdir);
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: [{ type: "ESModule", path: join(outdir, "recommend-worker.js") }, ...extra],
      modulesRoot: outdir,
      compatibilityDate: "2026-11-01",
      compatibilityFlags: ["nodejs_compat"],
      cf: false, // no fetch of Request.cf from the network
      log: new Log(LogLevel.WARN),
    }),
  );
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, close: () => mf.dispose() };
}

/** An op inside the bench Worker, timed there (see LoopResult); `stood` notes a loop during which workerd's clock stood still. */
function workerTimed(url: string, op: ScoreOp, stood: { any: boolean }): Timed {
  const run = (o: ScoreOp, n: number) => postJson<LoopResult>(`${url}/bench/loop`, { op: o, n });
  return {
    async loop(n) {
      const full = await run(op, n);
      const empty = await run("empty", n);
      stood.any ||= full.msBeforeIo < 0.5 * (full.ms - full.msIo);
      return full.ms - full.msIo - (empty.ms - empty.msIo);
    },
  };
}

/** Client-seen ms for one batch over HTTP: p50 and p99 of sequential requests. */
async function httpTimes(url: string, op: ScoreOp): Promise<{ p50: number; p99: number; runs: number }> {
  const once = async () => {
    const t0 = performance.now();
    await postJson<{ scores: number[] }>(`${url}/bench/score`, { op });
    return performance.now() - t0;
  };
  for (let i = 0; i < WARMUP; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < HTTP_RUNS; i++) times.push(await once());
  return { p50: percentile(times, 50), p99: percentile(times, 99), runs: HTTP_RUNS };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs((a[i] as number) - (b[i] as number)));
  return w;
};

// --- sections ------------------------------------------------------------------------

/** Scoring one batch of 500: ort-web and the as-served TypeScript scorers in workerd vs ort-node native, plus plain TypeScript LR. */
export async function scoringSection(_options: SectionOptions): Promise<BenchResult[]> {
  const outdir = bundle("bench/wrangler.recommend.toml", ".bench/recommend");
  const worker = await startBenchWorker(outdir);
  const lrDir = join(FIXTURES, "lr");
  const xgbDir = join(FIXTURES, "xgboost");
  const matrix = featureMatrix(manifestAt(lrDir), benchRecords());
  const native = { lr: await nativeModel(lrDir, matrix), xgboost: await nativeModel(xgbDir, matrix) };
  try {
    // First use in the fresh isolate, before anything else touches the runtime.
    const cold = await postJson<ColdResult>(`${worker.url}/bench/cold`, {});

    // The same rows must give the same scores everywhere.
    const agree = async (op: ScoreOp, reference: Float32Array) =>
      maxDiff((await postJson<{ scores: number[] }>(`${worker.url}/bench/score`, { op })).scores, reference);
    const nativeLr = await native.lr.run();
    const nativeXgb = await native.xgboost.run();
    const diffs = {
      lr: await agree("ort-lr", nativeLr),
      servedLr: await agree("lr", nativeLr),
      xgboost: await agree("ort-xgboost", nativeXgb),
      servedXgb: await agree("xgboost", nativeXgb),
      tsLr: await agree("ts-lr", nativeLr),
    };
    for (const [k, d] of Object.entries(diffs)) {
      if (!(d <= 1e-5)) console.warn(`warning: ${k} scores differ from onnxruntime-node by ${d}`);
    }
    linearParamsSchema.parse(JSON.parse(readFileSync(join(lrDir, "linear.json"), "utf8")));

    const stood = { any: false };
    const t = await perOp({
      webLr: workerTimed(worker.url, "ort-lr", stood),
      servedLr: workerTimed(worker.url, "lr", stood),
      nodeLr: nodeTimed(native.lr.run),
      webXgb: workerTimed(worker.url, "ort-xgboost", stood),
      servedXgb: workerTimed(worker.url, "xgboost", stood),
      nodeXgb: nodeTimed(native.xgboost.run),
      tsLr: workerTimed(worker.url, "ts-lr", stood),
      assemble: workerTimed(worker.url, "assemble", stood),
    });
    const web = {
      lr: t.webLr,
      servedLr: t.servedLr,
      xgboost: t.webXgb,
      servedXgb: t.servedXgb,
      tsLr: t.tsLr,
      assemble: t.assemble,
    };
    const node = { lr: t.nodeLr, xgboost: t.nodeXgb };
    const http = { lr: await httpTimes(worker.url, "ort-lr"), xgboost: await httpTimes(worker.url, "ort-xgboost") };

    const loopNote = (n: number, nodeN?: number) =>
      `median of ${REPEATS} loops of ${n} batches inside the Worker, empty loop subtracted${nodeN ? `; native: ${REPEATS} loops of ${nodeN} in Node, onnxruntime-node 1.30 with 1 intra-op thread` : ""}; loops of all sides interleaved`;
    const target = ">= 0.77 (within 1.3x of native)";
    /** One scorer in workerd against onnxruntime-node on the same model and rows. */
    const vsNative = (
      name: string,
      web: { perOp: number; n: number },
      native: { perOp: number; n: number },
      diff: number,
      detail = "",
    ) =>
      compare(
        {
          name,
          unit: "ms",
          better: "lower",
          value: round(web.perOp),
          target,
          runs: REPEATS,
          notes: `${detail}${loopNote(web.n, native.n)}; max |workerd − native| ${diff.toExponential(1)}`,
        },
        { name: "onnxruntime-node (native)", value: round(native.perOp) },
      );
    return [
      vsNative(
        `LR score, batch ${BATCH} (as served: the ONNX graph read into TypeScript, in workerd)`,
        web.servedLr,
        node.lr,
        diffs.servedLr,
        "onnxScorer's default for a LinearRegressor → Sigmoid graph (src/models/onnx-linear.ts: coefficients read from model.onnx, scored in float64); ",
      ),
      vsNative(`LR score, batch ${BATCH} (ort-web in workerd)`, web.lr, node.lr, diffs.lr),
      vsNative(
        `XGBoost 200 trees score, batch ${BATCH} (as served: trees read into TypeScript, in workerd)`,
        web.servedXgb,
        node.xgboost,
        diffs.servedXgb,
        "onnxScorer's default for a TreeEnsembleRegressor graph (src/models/onnx-trees.ts: trees read from model.onnx, padded to complete trees, float32 sums as onnxruntime); ",
      ),
      vsNative(
        `XGBoost 200 trees score, batch ${BATCH} (ort-web in workerd)`,
        web.xgboost,
        node.xgboost,
        diffs.xgboost,
      ),
      compare(
        {
          name: `LR score, batch ${BATCH}: ort-web vs plain TS (both in workerd)`,
          unit: "ms",
          better: "lower",
          value: round(web.lr.perOp),
          runs: REPEATS,
          notes: `plain TS LR (src/models/linear.ts, float64): ${loopNote(web.tsLr.n)}; max |TS − native| ${diffs.tsLr.toExponential(1)}`,
        },
        { name: "plain TypeScript LR", value: round(web.tsLr.perOp) },
      ),
      {
        name: `feature assembly, batch ${BATCH} (featureMatrix in workerd)`,
        unit: "ms",
        better: "lower",
        value: round(web.assemble.perOp),
        runs: REPEATS,
        notes: `${loopNote(web.assemble.n)}; 10 features by name, ~3% missing`,
      },
      {
        name: `client-seen LR batch ${BATCH} p50 (HTTP to Miniflare)`,
        unit: "ms",
        better: "lower",
        value: round(http.lr.p50),
        runs: http.lr.runs,
        notes: `p99 ${round(http.lr.p99)} ms; one POST per batch, ${BATCH} scores back as JSON, sequential, ${WARMUP} warm-up`,
      },
      {
        name: `client-seen XGBoost batch ${BATCH} p50 (HTTP to Miniflare)`,
        unit: "ms",
        better: "lower",
        value: round(http.xgboost.p50),
        runs: http.xgboost.runs,
        notes: `p99 ${round(http.xgboost.p99)} ms; one POST per batch, ${BATCH} scores back as JSON, sequential, ${WARMUP} warm-up`,
      },
      {
        name: "cold start: ort-web runtime (first use in an isolate)",
        unit: "ms",
        better: "lower",
        value: round(cold.runtimeMs),
        runs: 1,
        notes: `then the first session: LR ${round(cold.lrSessionMs)} ms, XGBoost ${round(cold.xgboostSessionMs)} ms (as served, the XGBoost graph read into TypeScript instead: ${round(cold.treesReadMs)} ms, no runtime); later calls reuse them (runtime starts ${cold.runtimeStarts}, sessions ${cold.sessionsCreated})${stood.any ? "; workerd's clock stood still inside a loop: figures come from the timer trick" : ""}`,
      },
    ];
  } finally {
    await native.lr.release();
    await native.xgboost.release();
    await worker.close();
  }
}

/** Bytes of a wrangler dry-run build: raw, gzip of each module (as uploaded), and wrangler's own figure. */
interface BuildSize {
  rawMiB: number;
  gzipMiB: number;
  wrangler: string;
}

function buildSize(args: string[], outdir: string): BuildSize {
  const abs = resolve(outdir);
  rmSync(abs, { recursive: true, force: true });
  const out = execFileSync("npx", ["wrangler", "deploy", "--dry-run", ...args, "--outdir", abs], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  let raw = 0;
  let gz = 0;
  for (const f of readdirSync(abs)) {
    if (f.endsWith(".map") || f === "README.md") continue;
    const p = join(abs, f);
    if (!statSync(p).isFile()) continue;
    const bytes = readFileSync(p);
    raw += bytes.length;
    gz += gzipSync(bytes).length;
  }
  return {
    rawMiB: raw / MIB,
    gzipMiB: gz / MIB,
    wrangler: /Total Upload: ([^\n]+)/.exec(out)?.[1]?.trim() ?? "?",
  };
}

/** Gzip sizes against the Workers limits: the bench Worker, the main Worker, and the main Worker with the runtime. */
export async function bundleSection(_options: SectionOptions): Promise<BenchResult[]> {
  const wasmGzip = gzipSync(readFileSync("node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm")).length / MIB;
  const r = (n: number) => Math.round(n * 100) / 100;
  const sizeNote = (s: BuildSize) =>
    `${r(s.rawMiB)} MiB raw; wrangler: ${s.wrangler}; the ort wasm alone gzips to ${r(wasmGzip)} MiB`;
  const results: BenchResult[] = [];

  const benchWorker = buildSize(["--config", "bench/wrangler.recommend.toml"], ".bench/recommend-size");
  results.push(
    compare(
      {
        name: "bench Worker (runtime + fixture models), gzip",
        unit: "MiB",
        better: "lower",
        value: r(benchWorker.gzipMiB),
        target: `< ${LIMIT_PAID_MIB} MiB (paid plan)`,
        notes: sizeNote(benchWorker),
      },
      { name: "Workers paid-plan limit", value: LIMIT_PAID_MIB },
    ),
  );

  // The two builds of the main Worker (docs/deploy.md, "Builds"): the default
  // one scores every shipped model in TypeScript and carries no runtime; the
  // ONNX build (wrangler.onnx.toml) adds onnxruntime-web for graphs the
  // TypeScript readers do not cover. A build that fails is reported, not fatal.
  try {
    const lean = buildSize(["--config", "wrangler.toml"], ".bench/recommend-main");
    const onnx = buildSize(["--config", "wrangler.onnx.toml"], ".bench/recommend-main-ort");
    results.push(
      compare(
        {
          name: "main Worker (default build, TypeScript scoring), gzip",
          unit: "MiB",
          better: "lower",
          value: r(lean.gzipMiB),
          target: `< ${LIMIT_DEFAULT_MIB} MiB (CI fails above it)`,
          notes: `${r(lean.rawMiB)} MiB raw; wrangler: ${lean.wrangler}; no onnxruntime-web`,
        },
        { name: "the 1 MiB budget CI enforces", value: LIMIT_DEFAULT_MIB },
      ),
      compare(
        {
          name: "main Worker (ONNX build, + onnxruntime-web), gzip",
          unit: "MiB",
          better: "lower",
          value: r(onnx.gzipMiB),
          target: `< ${LIMIT_PAID_MIB} MiB (paid plan)`,
          notes: sizeNote(onnx),
        },
        { name: "Workers paid-plan limit", value: LIMIT_PAID_MIB },
      ),
      compare(
        {
          name: "main Worker (ONNX build) against the free plan, gzip",
          unit: "MiB",
          better: "lower",
          value: r(onnx.gzipMiB),
          target: `< ${LIMIT_FREE_MIB} MiB (free plan)`,
          notes: "ratio < 1: the ONNX build does not fit the free plan; the default build does",
        },
        { name: "Workers free-plan limit", value: LIMIT_FREE_MIB },
      ),
    );
  } catch (e) {
    console.warn(`main Worker build failed, its size is not reported: ${e instanceof Error ? e.message : e}`);
  }
  return results;
}

// --- endpoint ------------------------------------------------------------------------

const ENDPOINT_TEAM = "TBENCHREC";
const ENDPOINT_DATA = "datasets/rails-collab";
const ENDPOINT_EMBEDDINGS = "models/embeddings/rails-collab.json";
const ENDPOINT_SOURCES = ["channel_browser", "composer_dm"] as const;
const ENDPOINT_LIMIT = 10;
/**
 * Candidates per generator for the widened load, aiming at 500 candidates
 * per request on rails-collab: channel_browser reaches a median of ~535 at
 * 300; composer_dm's candidates are people with recent activity, which caps
 * it near a median of ~360 (max ~500) whatever k. --per-generator N sets both.
 */
const WIDE_PER_GENERATOR: Record<(typeof ENDPOINT_SOURCES)[number], number> = process.argv.includes("--per-generator")
  ? {
      channel_browser: Number(process.argv[process.argv.indexOf("--per-generator") + 1]),
      composer_dm: Number(process.argv[process.argv.indexOf("--per-generator") + 1]),
    }
  : { channel_browser: 300, composer_dm: 600 };

interface RecommendAnswer {
  items: unknown[];
  model: { name: string; version: string; fallback: unknown };
  steps: Array<{ step: string; ms: number; out: number }>;
}

/**
 * POST /v1/recommend over HTTP on the main Worker bundle with the rails-collab
 * team: as deployed (REC_CANDIDATES_PER_GENERATOR as in wrangler.toml), and
 * with generators widened toward 500 candidates per request (the issue's load).
 */
export async function endpointSection(options: SectionOptions): Promise<BenchResult[]> {
  const deployed = Number(wranglerVars().REC_CANDIDATES_PER_GENERATOR ?? 50);
  const results: BenchResult[] = [];
  results.push(...(await endpointAt(deployed, false, ENDPOINT_SOURCES, options)));
  for (const source of ENDPOINT_SOURCES) {
    results.push(...(await endpointAt(WIDE_PER_GENERATOR[source], true, [source], options)));
  }
  return results;
}

async function endpointAt(
  k: number,
  wide: boolean,
  sources: ReadonlyArray<(typeof ENDPOINT_SOURCES)[number]>,
  options: SectionOptions,
): Promise<BenchResult[]> {
  const viewers = options.quick ? 40 : 100;
  const runs = options.quick ? 150 : 500;
  const platform = await startPlatform({
    outdir: ".bench/recommend-platform",
    vars: { REC_CANDIDATES_PER_GENERATOR: String(k) },
    ...(PROFILE ? { inspectorPort: INSPECTOR_PORT } : {}),
  });
  try {
    const ds = loadDataset(ENDPOINT_DATA);
    // The models' and embeddings' training cut: the team as the shipped models saw it.
    const cut = (JSON.parse(readFileSync(ENDPOINT_EMBEDDINGS, "utf8")) as { cut: string }).cut;
    const t0 = performance.now();
    const imported = await importDataset({
      url: platform.url,
      secret: platform.secret,
      data: ENDPOINT_DATA,
      team: ENDPOINT_TEAM,
      cut,
      embeddings: ENDPOINT_EMBEDDINGS,
    });
    const importS = (performance.now() - t0) / 1000;
    const users = replayTruth(ds, dayOf(cut), 1).activeUsers.slice(0, viewers);
    const tokens = await Promise.all(
      users.map((u) => signToken({ team: ENDPOINT_TEAM, user: u, ttlSeconds: 3600 }, platform.secret)),
    );
    const workerd = () => descendantPids("workerd");
    const cpuMs = () => workerd().reduce((sum, pid) => sum + (processUsage(pid)?.cpuMs ?? 0), 0);
    const results: BenchResult[] = [];
    for (const source of sources) {
      const once = async (i: number) => {
        const t = performance.now();
        const res = await fetch(`${platform.url}/v1/recommend`, {
          method: "POST",
          headers: { authorization: `Bearer ${tokens[i % tokens.length]}`, "content-type": "application/json" },
          body: JSON.stringify({ source, limit: ENDPOINT_LIMIT }),
        });
        const text = await res.text();
        const ms = performance.now() - t;
        if (!res.ok) throw new Error(`${source}: ${res.status} ${text.slice(0, 300)}`);
        return { ms, answer: JSON.parse(text) as RecommendAnswer };
      };
      // Warm-up: every viewer once (their first answer loads the team's caches and the model).
      const cold: number[] = [];
      for (let i = 0; i < users.length; i++) cold.push((await once(i)).ms);
      const times: number[] = [];
      const candidates: number[] = [];
      const stepMs: number[] = [];
      let fallbacks = 0;
      let model = "";
      const profiler = PROFILE ? await startProfiler(INSPECTOR_PORT, "") : null;
      const cpu0 = cpuMs();
      for (let i = 0; i < runs; i++) {
        const { ms, answer } = await once(i);
        times.push(ms);
        candidates.push(answer.steps[0]?.out ?? 0);
        stepMs.push(answer.steps.reduce((sum, s) => sum + s.ms, 0));
        if (answer.model.fallback) fallbacks++;
        model = `${answer.model.name}@${answer.model.version}`;
      }
      const cpuPerReq = (cpuMs() - cpu0) / runs;
      if (profiler) {
        const label = `recommend-${source}-k${k}`;
        console.log(profileReport(label, `.bench/${label}.cpuprofile`, await profiler.stop(), 40));
      }
      const p50 = percentile(times, 50);
      const p99 = percentile(times, 99);
      const load = wide ? `widened generators (k=${k})` : `as deployed (k=${k})`;
      const common = `REC_CANDIDATES_PER_GENERATOR=${k}${wide ? "" : " (wrangler.toml)"}; ${runs} sequential POSTs cycling over ${users.length} active users of the rails-collab team at ${cut} (${imported.users} users, ${imported.channels} channels, ${imported.memberships} memberships; import ${round(importS, 3)} s), limit ${ENDPOINT_LIMIT}, model ${model}${fallbacks ? ` (${fallbacks} fallbacks)` : ""}; candidates (first step's out) median ${median(candidates)}, max ${Math.max(...candidates)}; after a warm-up of one request per user (first request p50 ${round(percentile(cold, 50))} ms, max ${round(Math.max(...cold))} ms)`;
      results.push(
        {
          name: `POST /v1/recommend ${source} p50, ${load} (HTTP to Miniflare, main Worker)`,
          unit: "ms",
          better: "lower",
          value: round(p50),
          runs,
          notes: common,
        },
        compare(
          {
            name: `POST /v1/recommend ${source} p99, ${load} (HTTP to Miniflare, main Worker)`,
            unit: "ms",
            better: "lower",
            value: round(p99),
            target: "< 20 ms (ratio > 1)",
            runs,
            notes: common,
          },
          { name: "target", value: 20 },
        ),
        {
          name: `POST /v1/recommend ${source} server CPU per request, ${load} (workerd)`,
          unit: "ms",
          better: "lower",
          value: round(cpuPerReq),
          runs,
          notes: `workerd processes' CPU time (user + system, /proc, 10 ms ticks) over the ${runs} timed requests, divided by ${runs}; includes HTTP handling, the Durable Object calls and the queue send; the answer's own steps sum to median ${round(median(stepMs))} ms by workerd's clock (which advances only on I/O, so compute shows as ~0)`,
        },
      );
    }
    return results;
  } finally {
    await platform.close();
  }
}

// --- live: an incremental live build against a full one --------------------------

/** The RecStore methods the live section calls over Miniflare's proxy (durable-objects/rec-store). */
interface LiveStoreRpc {
  beginHistory(): Promise<string>;
  appendHistory(upload: string, rows: LiveRows): Promise<void>;
  publishHistory(team: string, upload: string): Promise<{ rows: number }>;
  ingestEvents(team: string, events: FeatureEvent[]): Promise<{ added: number }>;
  rebuildNow(team: string, build: LiveBuild): Promise<{ live: LiveSnapshotMeta | null }>;
  candidates(team: string, source: string, subject: string, context: Record<string, unknown>): Promise<unknown>;
}

const LIVE_TEAM = "TBENCHLIVE";
const LIVE_EVENTS_PER_ROUND = 20;
const LIVE_SUBJECTS = 30;
const LIVE_SOURCES = ["channel_browser", "composer_dm"] as const;

/**
 * The whole rails-collab history as the team's ledger (uploaded as rows),
 * then rounds of 20 new events on the ledger's last day (messages with a
 * mention, and joins, by people active in the last 90 days): each round
 * builds what the events changed, reads the candidates and features of 30
 * subjects for channel_browser and composer_dm, then builds the same ledger
 * in full (what every alarm did before) and reads them again. Both builds are
 * timed from Node around the RecStore call (Miniflare's proxy; workerd's own
 * clock does not move during compute), so each includes the same RPC and
 * imported-snapshot check.
 */
export async function liveSection(options: SectionOptions): Promise<BenchResult[]> {
  const platform = await startPlatform({
    outdir: ".bench/recommend-platform",
    vars: { REC_LIVE_REBUILD_SECONDS: String(24 * 3600) },
  });
  try {
    const results: BenchResult[] = [];
    // The history as it is, and three times as long (the same people, earlier
    // copies shifted back 7,000 days): how each build grows with the history's length.
    for (const copies of options.quick ? [1] : [1, 3]) results.push(...(await liveAt(platform, copies, options)));
    return results;
  } finally {
    await platform.close();
  }
}

/** The rows `copies` times over: the dataset, and earlier copies of it 7,000 days apart (same ids). */
function inTime(rows: LiveRows, copies: number): LiveRows {
  const out: LiveRows = { activity: [], interactions: [], hours: [] };
  for (let k = 0; k < copies; k++) {
    const back = k * 7_000;
    out.activity.push(...rows.activity.map((r) => ({ ...r, day: r.day - back })));
    out.interactions.push(...rows.interactions.map((r) => ({ ...r, day: r.day - back })));
    out.hours.push(...rows.hours.map((r) => ({ ...r, day: r.day - back })));
  }
  return out;
}

async function liveAt(
  platform: Awaited<ReturnType<typeof startPlatform>>,
  copies: number,
  options: SectionOptions,
): Promise<BenchResult[]> {
  const rounds = options.quick ? 3 : 9;
  const team = `${LIVE_TEAM}${copies}`;
  const scale = copies === 1 ? "" : `, history x${copies} in time`;
  {
    const ds = loadDataset(ENDPOINT_DATA);
    const ns = await platform.mf.getDurableObjectNamespace("REC_STORE");
    const rec = ns.get(ns.idFromName(team)) as unknown as LiveStoreRpc;
    const rows = inTime(datasetRows(ds), copies);
    const ledgerRows = rows.activity.length + rows.interactions.length + rows.hours.length;
    const upload = await rec.beginHistory();
    const PAGE = 20_000;
    for (let i = 0; i < Math.max(rows.activity.length, rows.interactions.length, rows.hours.length); i += PAGE) {
      await rec.appendHistory(upload, {
        activity: rows.activity.slice(i, i + PAGE),
        interactions: rows.interactions.slice(i, i + PAGE),
        hours: rows.hours.slice(i, i + PAGE),
      });
    }
    const t0 = performance.now();
    await rec.publishHistory(team, upload);
    const publishMs = performance.now() - t0;
    const last = rows.activity.reduce((m, r) => Math.max(m, r.day), Number.NEGATIVE_INFINITY);
    // People active in the last 90 days, where: who posts and whom they mention.
    const recent = rows.activity.filter((r) => r.day > last - 90);
    const byChannel = new Map<string, string[]>();
    for (const r of recent) byChannel.set(r.channel, [...(byChannel.get(r.channel) ?? []), r.user]);
    const channels = [...byChannel.keys()];
    let seed = 11;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const pick = <T>(list: readonly T[]): T => list[rand(list.length)] as T;
    const ts = last * 86_400_000 + 12 * 3_600_000;
    const subjects = [...new Set(recent.map((r) => r.user))].slice(0, LIVE_SUBJECTS);
    /** Every subject's candidates for each source; the time of the first call (it loads the new snapshot's tables) and of the others. */
    const answers = async () => {
      const out: string[] = [];
      const ms: number[] = [];
      for (const source of LIVE_SOURCES) {
        for (const s of subjects) {
          const t = performance.now();
          out.push(JSON.stringify(await rec.candidates(team, source, s, {})));
          ms.push(performance.now() - t);
        }
      }
      return { out, first: ms[0] ?? 0, rest: ms.slice(1) };
    };
    const changedMs: number[] = [];
    const fullMs: number[] = [];
    const firstReadMs: number[] = [];
    const restReadMs: number[] = [];
    let same = 0;
    let compared = 0;
    let fellBack = 0;
    let featureRows = 0;
    for (let round = 0; round < rounds; round++) {
      const events: FeatureEvent[] = [];
      for (let k = 0; k < LIVE_EVENTS_PER_ROUND; k++) {
        const channel = pick(channels);
        const members = byChannel.get(channel) ?? [];
        const user = pick(members);
        const base = { v: 1 as const, id: `bench:${round}:${k}`, team: team, user, ts: ts + round * 1000 + k };
        events.push(
          k % 5 === 4
            ? { ...base, type: "join", channel: pick(channels) }
            : { ...base, type: "message", channel, mentions: [pick(members)].filter((m) => m !== user) },
        );
      }
      await rec.ingestEvents(team, events);
      let t = performance.now();
      const changed = await rec.rebuildNow(team, "changed");
      changedMs.push(performance.now() - t);
      if (changed.live?.build !== "changed") fellBack++;
      const a = await answers();
      firstReadMs.push(a.first);
      restReadMs.push(...a.rest);
      t = performance.now();
      const full = await rec.rebuildNow(team, "full");
      fullMs.push(performance.now() - t);
      featureRows = full.live?.rows ?? 0;
      const b = await answers();
      for (let i = 0; i < a.out.length; i++) {
        compared++;
        if (a.out[i] === b.out[i]) same++;
      }
    }
    const config = `the same ledger and events, built from scratch: every ledger row read, the snapshot built and all ${featureRows} feature rows rewritten (what each alarm did before; POST …/features/rebuild?build=full)`;
    const notes = `rails-collab's whole history${copies === 1 ? "" : ` and ${copies - 1} earlier copies of it (7,000 days apart, the same people)`} uploaded as the team's ledger (${ledgerRows} rows; its first build ${round(publishMs / 1000, 3)} s), ${featureRows} feature rows; ${rounds} rounds of ${LIVE_EVENTS_PER_ROUND} events on the ledger's last day (messages with a mention and joins by people active in its last 90 days); time from Node around the RecStore call over Miniflare's proxy; fell back to a full build ${fellBack} times; identical: candidates and features of ${subjects.length} subjects x ${LIVE_SOURCES.join(", ")} after each build, ${compared} pairs`;
    const median_ = (xs: number[]) => round(median(xs));
    const { ratio } = compare(
      { name: "", unit: "ms", better: "lower", value: median_(changedMs) },
      { name: "", value: median_(fullMs) },
    );
    const live: BenchResult & { baseline: { name: string; value: number; config: string }; identical: number } = {
      name: `live feature build after ${LIVE_EVENTS_PER_ROUND} events, rows they changed (p50)${scale}`,
      unit: "ms",
      better: "lower",
      value: median_(changedMs),
      runs: rounds,
      baseline: { name: "full build", value: median_(fullMs), config },
      identical: Math.round((same / Math.max(1, compared)) * 10_000) / 10_000,
      ...(ratio === undefined ? {} : { ratio }),
      notes,
    };
    return [
      live,
      {
        name: `first candidates call after a live build (loads the new snapshot's tables) (p50)${scale}`,
        unit: "ms",
        better: "lower",
        value: median_(firstReadMs),
        runs: rounds,
        notes: `a build of either kind is a new snapshot id, so the next call reads all ${featureRows} feature rows and builds the in-memory tables (features/tables.ts) again; the other calls of the round: median ${median_(restReadMs)} ms (${restReadMs.length} calls)`,
      },
    ];
  }
}

export const sections: Array<(o: SectionOptions) => Promise<BenchResult[]>> = [
  scoringSection,
  bundleSection,
  endpointSection,
  liveSection,
];

/** `--only a,b`: those sections (by name without "Section"); all when absent. */
function chosenSections(): Array<(o: SectionOptions) => Promise<BenchResult[]>> {
  const at = process.argv.indexOf("--only");
  if (at < 0) return sections;
  const names = (process.argv[at + 1] ?? "").split(",");
  return sections.filter((s) => names.includes(s.name.replace(/Section$/, "")));
}

async function main() {
  const options = { quick: QUICK };
  const results: BenchResult[] = [];
  let failed = 0;
  const chosen = chosenSections();
  for (const section of chosen) {
    try {
      results.push(...(await section(options)));
    } catch (e) {
      failed++;
      console.error(`${section.name} could not run:`, e);
    }
  }
  if (failed === chosen.length) process.exit(1);
  if (chosen.length < sections.length) {
    // Keep the figures of the sections not run this time.
    try {
      const previous = JSON.parse(readFileSync("bench/results/recommend.json", "utf8")) as { results: BenchResult[] };
      const fresh = new Set(results.map((r) => r.name));
      results.unshift(...previous.results.filter((r) => !fresh.has(r.name)));
    } catch {
      // no earlier results
    }
  }
  const file = writeResults(
    "recommend",
    results,
    `shared, noisy; ${QUICK ? "--quick" : "full"} run; fixture models from training/fixture_models.py`,
  );
  printTable(results);
  console.log(`\n${file}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
