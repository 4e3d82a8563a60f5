import { signToken } from "../src/auth/tokens";
import { bundle, startBackend, workerOptionsOf } from "../tools/harness/backend";
import { type BenchResult, compare, printTable, writeResults } from "../tools/harness/results";
import { median, percentile, postJson } from "./harness";

// npm run bench:classify [-- --quick] [--only d1|mysql]
//
// On a team of 100,000 users, per storage adapter (D1 as Miniflare runs it,
// MySQL through the real PlanetScale driver and tools/psdb-server on MariaDB):
// - classify latency (10 emails over 5 domains), p50/p99 over HTTP and
//   server-side per operation, vs one query per domain (the baseline);
// - mutation throughput through the consumer (events/s, statements per event)
//   vs a consumer that writes each delta on its own;
// - time to heal the team; its recount phase vs one SQL GROUP BY.

const QUICK = process.argv.includes("--quick");
const ONLY = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const USERS = QUICK ? 20_000 : 100_000;
const HTTP_RUNS = QUICK ? 100 : 400;
const LOOP_RUNS = QUICK ? 100 : 300;
const EVENTS = QUICK ? 5_000 : 20_000;
const NAIVE_EVENTS = QUICK ? 1_000 : 4_000;
const HEAL_RUNS = 3;
const LOOP_REPEATS = 5;
const SECRET = "bench-secret-0123456789abcdef-0123456789";
const TEAM = "TBENCH";
const INVITER = "U00000001";
const EMAILS = ["bigcorp.example", "partner.example", "d5.example", "d100.example", "gmail.com"].flatMap((d) => [
  `first@${d}`,
  `second@${d}`,
]);

/** The bench Worker's config: its vars and Durable Objects are read from it (workerOptionsOf), not copied here. */
const CONFIG = "bench/wrangler.bench.toml";

const post = postJson;

async function runAdapter(name: "d1" | "mysql", script: string): Promise<BenchResult[]> {
  const config = workerOptionsOf(CONFIG, outdir);
  const backend = await startBackend(name, script, {
    vars: { ...config.vars, JWT_SECRET: SECRET, PLATFORM_OPERATORS: "TPLATFORM:UOPERATOR" },
    durableObjects: config.durableObjects,
  });
  const { url } = backend;
  try {
    const t0 = performance.now();
    const step = 10_000;
    for (let from = 0; from < USERS; from += step) {
      await post(`${url}/bench/setup`, { team: TEAM, users: Math.min(step, USERS - from), from });
    }
    console.error(`[${name}] built team of ${USERS} users in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const token = await signToken({ team: TEAM, user: INVITER }, SECRET);
    const auth = { authorization: `Bearer ${token}` };
    const batched: number[] = [];
    const perDomain: number[] = [];
    for (let i = 0; i < HTTP_RUNS + 20; i++) {
      const a = performance.now();
      await post(`${url}/v1/invites/classify`, { emails: EMAILS }, auth);
      const b = performance.now();
      await post(`${url}/bench/classify-per-domain`, { team: TEAM, user: INVITER, emails: EMAILS });
      const c = performance.now();
      if (i >= 20) {
        batched.push(b - a);
        perDomain.push(c - b);
      }
    }
    // Server-side cost per operation: a loop of LOOP_RUNS minus an empty loop,
    // repeated LOOP_REPEATS times, median of the per-op figures.
    const loop = async (strategy: string) => {
      const out = await post<{ ms: number; n: number }>(`${url}/bench/classify-loop`, {
        team: TEAM,
        user: INVITER,
        emails: EMAILS,
        n: LOOP_RUNS,
        strategy,
      });
      return out.ms / out.n;
    };
    const perOp = async (strategy: string) => {
      const xs: number[] = [];
      for (let i = 0; i < LOOP_REPEATS; i++) xs.push((await loop(strategy)) - (await loop("empty")));
      return median(xs);
    };
    const serverBatched = await perOp("batched");
    const serverPerDomain = await perOp("per-domain");

    type MutationRun = { ms: number; statements: number; upserts: number; keys: number; events: number };
    const mutations = (mode: "coalesced" | "batched" | "naive", events: number) =>
      post<MutationRun>(`${url}/bench/mutations`, { team: TEAM, events, batch: 100, mode, users: USERS });
    const coalesced = await mutations("coalesced", EVENTS);
    const batchedOnly = await mutations("batched", EVENTS);
    const naive = await mutations("naive", NAIVE_EVENTS);
    const rate = (r: MutationRun) => Math.round(r.events / (r.ms / 1000));

    const heals: Array<{ ms: { total: number; recount: number }; drift: number; usersCounted: number }> = [];
    const sqlRecounts: number[] = [];
    for (let i = 0; i < HEAL_RUNS; i++) {
      heals.push(await post(`${url}/bench/heal`, { team: TEAM }));
      sqlRecounts.push((await post<{ ms: number }>(`${url}/bench/recount-sql`, { team: TEAM })).ms);
    }
    console.error(`[${name}] first heal repaired drift ${heals[0]?.drift} over ${heals[0]?.usersCounted} users`);

    const p = `${name}:`;
    return [
      compare(
        { name: `${p} classify p50 (HTTP)`, unit: "ms", better: "lower", value: median(batched), runs: batched.length },
        { name: "one query per domain", value: median(perDomain) },
      ),
      compare(
        {
          name: `${p} classify p99 (HTTP)`,
          unit: "ms",
          better: "lower",
          value: percentile(batched, 99),
          runs: batched.length,
        },
        { name: "one query per domain", value: percentile(perDomain, 99) },
      ),
      compare(
        {
          name: `${p} classify server-side per op`,
          unit: "ms",
          better: "lower",
          value: serverBatched,
          runs: LOOP_REPEATS,
          notes: `median of ${LOOP_REPEATS} loops of ${LOOP_RUNS}, empty loop subtracted`,
        },
        { name: "one query per domain", value: serverPerDomain },
      ),
      // Batching and coalescing, each alone and together: batching puts a
      // batch of 100 events in one statement; coalescing then merges their
      // deltas per (team, domain, role) before writing.
      compare(
        {
          name: `${p} consumer throughput, batching alone`,
          unit: "events/s",
          better: "higher",
          value: rate(batchedOnly),
          runs: batchedOnly.events,
          notes: `batches of 100 events, every delta its own row in one statement (${(batchedOnly.keys / batchedOnly.events).toFixed(2)} rows/event)`,
        },
        { name: "one upsert per delta", value: rate(naive) },
      ),
      compare(
        {
          name: `${p} consumer throughput, coalescing alone`,
          unit: "events/s",
          better: "higher",
          value: rate(coalesced),
          runs: coalesced.events,
          notes: `the same batches merged per key first (${(coalesced.keys / coalesced.events).toFixed(2)} rows/event)`,
        },
        { name: "batched, not coalesced", value: rate(batchedOnly) },
      ),
      compare(
        {
          name: `${p} consumer throughput, both (as deployed)`,
          unit: "events/s",
          better: "higher",
          value: rate(coalesced),
          runs: coalesced.events,
          notes: `batches of 100 events; ${(coalesced.keys / coalesced.events).toFixed(2)} rows/event after coalescing; ${(coalesced.statements / coalesced.events).toFixed(3)} statements/event incl. negative-count reads`,
        },
        { name: "one upsert per delta", value: rate(naive) },
      ),
      compare(
        {
          name: `${p} upsert statements per event`,
          unit: "statements",
          better: "lower",
          value: coalesced.upserts / coalesced.events,
          runs: coalesced.events,
        },
        { name: "one upsert per delta", value: naive.upserts / naive.events },
      ),
      compare(
        {
          name: `${p} rows written per event`,
          unit: "rows",
          better: "lower",
          value: coalesced.keys / coalesced.events,
          runs: coalesced.events,
          notes: "coalesced per (team, domain, role) within a batch",
        },
        { name: "one upsert per delta", value: naive.keys / naive.events },
      ),
      {
        name: `${p} heal ${USERS} users (total)`,
        unit: "ms",
        better: "lower",
        value: median(heals.map((h) => h.ms.total)),
        runs: HEAL_RUNS,
        notes: `first run repaired drift ${heals[0]?.drift}`,
      },
      compare(
        {
          name: `${p} heal recount phase (paged, in memory)`,
          unit: "ms",
          better: "lower",
          value: median(heals.map((h) => h.ms.recount)),
          runs: HEAL_RUNS,
        },
        { name: "one SQL GROUP BY", value: median(sqlRecounts) },
      ),
    ];
  } finally {
    await backend.close();
  }
}

const outdir = bundle(CONFIG, ".bench/classify");
const script = `${outdir}/classify-worker.js`;
const results: BenchResult[] = [];
for (const adapter of ["d1", "mysql"] as const) {
  if (ONLY && ONLY !== adapter) continue;
  results.push(...(await runAdapter(adapter, script)));
}
printTable(results);
const file = writeResults(
  "classify",
  results,
  `shared, noisy; team of ${USERS} users${QUICK ? " (--quick)" : ""}; D1 = Miniflare's local SQLite, MySQL = MariaDB via tools/psdb-server over HTTP`,
);
console.log(`\nwrote ${file}`);
