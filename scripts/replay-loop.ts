import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { signToken } from "../src/auth/tokens";
import { type CollabDataset, dayOf, historyLinesOf } from "../src/datasets/collab";
import { type BenchResult, compare, printTable, writeResults } from "../tools/harness/results";
import { importDataset, loadDataset } from "./dataset-import";
import { startPlatform } from "./replay-backend";
import { type ReplaySource, replayTruth } from "./replay-labels";
import { bestCandidates, describe, exitCodeOf, gateAndRegister, pullExport, train } from "./retrain";

// npm run loop -- [--data datasets/rails-collab] [--cut 2024-08-23] [--weeks 8]
//                 [--rounds 2] [--users N] [--limit 10] [--sources channel_browser,composer_dm] [--quick]
//
// The whole retraining cycle, end to end on the real Worker bundle served by
// Miniflare (D1, Durable Objects, the rec-logs queue and its consumer, R2):
// traffic → logs → export → train → gate → register → serve.
// 1. import the dataset at the cut into a team (scripts/dataset-import.ts),
//    and its history before the cut as raw rows into the team's feature
//    ledger (POST …/features/history), as a team's own past;
// 2. round 0: every active user (activity in the 365 days before the cut)
//    asks POST /v1/recommend per source and sends feedback: an impression for
//    every served item, a click when the dataset shows the user really joined
//    that channel / first interacted with that person in the --weeks after
//    the cut (replayed ground truth, NOT live users: labels do not depend on
//    the ranking beyond whether the item was shown in the top `limit`);
// 3. retrain, as `npm run retrain` does (scripts/retrain.ts): once the
//    rec-logs consumer has written the round's lines to R2, export the day
//    (POST /v1/admin/exports/<today>: the cron's export, asked for now: the
//    cron writes a day once it is over), pull it through the operators'
//    routes, train.py --data on the team's exported ledger with --eval-sets,
//    upload the better candidate per source, PUT its eval set and POST
//    promote: the Worker's promotion gate registers it, or refuses it with
//    its numbers; the registry's current version serves from then on, with
//    no experiment and no deploy;
// 4. rounds 1..n: the same users and labels again (retraining after each
//    round but the last: a later candidate must beat the one registered
//    before it); per round per source: the model that served, users,
//    impressions, clicks, CTR, DCG@limit of clicks.
// Writes bench/results/loop.json and training/report/loop.md.

const { values: args } = parseArgs({
  options: {
    data: { type: "string", default: "datasets/rails-collab" },
    cut: { type: "string", default: "2024-08-23" },
    weeks: { type: "string", default: "8" },
    rounds: { type: "string", default: "2" },
    users: { type: "string" },
    limit: { type: "string", default: "10" },
    sources: { type: "string", default: "channel_browser,composer_dm" },
    embeddings: { type: "string", default: "models/embeddings/rails-collab.json" },
    concurrency: { type: "string", default: "4" },
    quick: { type: "boolean", default: false },
    work: { type: "string", default: ".bench/loop" },
  },
});

const CUT = args.cut as string;
const WEEKS = Number(args.weeks);
const ROUNDS = Number(args.rounds);
const LIMIT = Number(args.limit);
const USERS_CAP = args.users ? Number(args.users) : args.quick ? 150 : Number.POSITIVE_INFINITY;
const SOURCES = (args.sources as string).split(",") as ReplaySource[];
const CONCURRENCY = Number(args.concurrency);
const WORK = resolve(args.work as string);
const TEAM = "TLOOP";
/** platform/models/experiment-store.ts EXPERIMENT_TTL_MS (10 s) plus a margin: every isolate serves a new registry version by then. */
const EXPERIMENT_PICKUP_MS = 11_000;

interface ArmStats {
  users: Set<string>;
  requests: number;
  impressions: number;
  clicks: number;
  dcg: number;
  /** Ground-truth positives of the users served in this arm (recall = clicks / positives). */
  positives: number;
  /** Answers whose model was a fallback (the arm's model could not score). */
  fallbacks: number;
  model: string;
}

interface RoundRow {
  round: number;
  source: ReplaySource;
  arm: string;
  model: string;
  users: number;
  requests: number;
  impressions: number;
  clicks: number;
  ctr: number;
  dcg: number;
  recall: number;
  fallbacks: number;
  /** The same users' CTR and DCG in round 0 (everyone on the default model): the arms' pre-period. */
  r0ctr: number;
  r0dcg: number;
}

interface RecAnswer {
  request_id: string;
  items: Array<{ id: string; rank: number }>;
  model: { name: string; version: string; fallback: unknown };
  experiment: { name: string; arm: string };
}

const log = (line: string) => console.log(`[loop ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function mapLimit<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

async function request<T>(url: string, init: RequestInit, ok: number[] = [200]): Promise<T> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (!ok.includes(res.status)) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : null) as T;
}

const round4 = (n: number) => Math.round(n * 10_000) / 10_000;

/**
 * The dataset's rows before the cut as the team's history (raw rows into its
 * feature ledger: POST …/features/history), in pages of NDJSON streamed as
 * one request: what the scheduled export reads back as the team's dataset.
 */
async function uploadHistory(
  url: string,
  headers: Record<string, string>,
  ds: CollabDataset,
  cut: number,
): Promise<{ lines: number }> {
  const lines = historyLinesOf(ds, cut).map((l) => JSON.stringify(l));
  await request(
    `${url}/v1/admin/teams/${TEAM}/features/history`,
    {
      method: "POST",
      headers: { ...headers, "content-type": "application/x-ndjson" },
      body: `${lines.join("\n")}\n`,
    },
    [201],
  );
  return { lines: lines.length };
}

async function main() {
  const t0 = performance.now();
  const phase: Record<string, number> = {};
  const lap = (name: string, since: number) => {
    phase[name] = Math.round((performance.now() - since) / 100) / 10;
  };
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });

  const ds = loadDataset(args.data as string);
  const truth = replayTruth(ds, dayOf(CUT), WEEKS);
  const users = truth.activeUsers.slice(0, USERS_CAP);
  const embeddingsCut = (JSON.parse(readFileSync(args.embeddings as string, "utf8")) as { cut?: string }).cut ?? "?";
  log(
    `${ds.name} at ${CUT}: ${truth.activeUsers.length} active users (365 days before the cut), serving ${users.length}; labels: the ${WEEKS} weeks after the cut`,
  );
  for (const s of SOURCES) {
    const n = users.filter((u) => truth.positives[s].has(u)).length;
    log(`  ${s}: ${n} of the served users have at least one ground-truth positive`);
  }
  log(
    `NOTE: the embedding vectors (${args.embeddings}) are from the ${embeddingsCut} training cut, later than ${CUT}: the features see some of the future; so does the bundled default model (trained up to its own cut). Every round and model gets the same features.`,
  );

  let t = performance.now();
  const platform = await startPlatform({ outdir: join(WORK, "build"), recLogsBatchTimeout: 1 });
  const { url, secret } = platform;
  lap("start", t);
  const rows: RoundRow[] = [];
  const training: Array<Record<string, unknown>> = [];
  try {
    t = performance.now();
    const summary = await importDataset({
      url,
      secret,
      data: args.data as string,
      team: TEAM,
      cut: CUT,
      embeddings: args.embeddings as string,
    });
    lap("import", t);
    log(
      `imported ${summary.users} users, ${summary.channels} channels, ${summary.memberships} memberships, ${summary.featureRows} feature rows in ${phase.import} s`,
    );
    const platformToken = await signToken({ team: "TPLATFORM", user: "UOPERATOR", ttlSeconds: 6 * 3600 }, secret);
    const tokens = new Map<string, string>();
    for (const u of users) tokens.set(u, await signToken({ team: TEAM, user: u, ttlSeconds: 6 * 3600 }, secret));
    const adminHeaders = { authorization: `Bearer ${platformToken}` };

    t = performance.now();
    const history = await uploadHistory(url, adminHeaders, ds, dayOf(CUT));
    lap("history", t);
    log(`history before the cut into ${TEAM}'s feature ledger: ${history.lines} rows in ${phase.history} s`);

    /** What the registry says serves the source now (its current version, else the bundled default). */
    const servingOf = async (s: ReplaySource) => {
      const r = await request<{ current: string | null; serving: { model: string; origin: string } }>(
        `${url}/v1/admin/models/${s}/registry`,
        { headers: adminHeaders },
      );
      return r.serving;
    };
    for (const s of SOURCES) {
      const sv = await servingOf(s);
      log(`registry ${s}: serving ${sv.model} (${sv.origin})`);
    }
    /** round 0 per source and user: impressions, clicks, dcg (the arms' pre-period). */
    const r0 = new Map<string, { impressions: number; clicks: number; dcg: number }>();
    let expectedServed = 0;
    let expectedFeedback = 0;

    const serveRound = async (r: number) => {
      const stats = new Map<string, ArmStats>();
      let notRegistry = 0;
      for (const source of SOURCES) {
        const positives = truth.positives[source];
        const expected = (await servingOf(source)).model;
        await mapLimit(users, CONCURRENCY, async (u) => {
          const headers = { authorization: `Bearer ${tokens.get(u)}`, "content-type": "application/json" };
          const ans = await request<RecAnswer>(`${url}/v1/recommend`, {
            method: "POST",
            headers,
            body: JSON.stringify({ source, limit: LIMIT }),
          });
          expectedServed++;
          if (`${ans.model.name}@${ans.model.version}` !== expected) notRegistry++;
          const key = `${source}\u0000${ans.experiment.arm}`;
          let st = stats.get(key);
          if (!st) {
            st = {
              users: new Set(),
              requests: 0,
              impressions: 0,
              clicks: 0,
              dcg: 0,
              positives: 0,
              fallbacks: 0,
              model: `${ans.model.name}@${ans.model.version}`,
            };
            stats.set(key, st);
          }
          const truthOf = positives.get(u);
          st.users.add(u);
          st.requests++;
          st.positives += truthOf?.size ?? 0;
          if (ans.model.fallback) st.fallbacks++;
          if (ans.items.length === 0) return;
          const events: Array<{ item: string; action: "impression" | "click" }> = [];
          const mine = { impressions: 0, clicks: 0, dcg: 0 };
          for (const it of ans.items) {
            events.push({ item: it.id, action: "impression" });
            mine.impressions++;
            if (truthOf?.has(it.id)) {
              events.push({ item: it.id, action: "click" });
              mine.clicks++;
              mine.dcg += 1 / Math.log2(it.rank + 1);
            }
          }
          st.impressions += mine.impressions;
          st.clicks += mine.clicks;
          st.dcg += mine.dcg;
          if (r === 0) r0.set(`${source}\u0000${u}`, mine);
          await request(
            `${url}/v1/recommend/feedback`,
            { method: "POST", headers, body: JSON.stringify({ request_id: ans.request_id, events }) },
            [202],
          );
          expectedFeedback += events.length;
        });
      }
      for (const [key, st] of stats) {
        const [source, arm] = key.split("\u0000") as [ReplaySource, string];
        const pre = { impressions: 0, clicks: 0, dcg: 0 };
        for (const u of st.users) {
          const p = r0.get(`${source}\u0000${u}`);
          if (!p) continue;
          pre.impressions += p.impressions;
          pre.clicks += p.clicks;
          pre.dcg += p.dcg;
        }
        rows.push({
          round: r,
          source,
          arm,
          model: st.model,
          users: st.users.size,
          requests: st.requests,
          impressions: st.impressions,
          clicks: st.clicks,
          ctr: st.impressions ? st.clicks / st.impressions : 0,
          dcg: st.requests ? st.dcg / st.requests : 0,
          recall: st.positives ? st.clicks / st.positives : 0,
          fallbacks: st.fallbacks,
          r0ctr: pre.impressions ? pre.clicks / pre.impressions : 0,
          r0dcg: st.users.size ? pre.dcg / st.users.size : 0,
        });
      }
      if (notRegistry) log(`warning: ${notRegistry} answers in round ${r} were not scored by the registry's model`);
    };

    /** Waits until R2 holds every served and feedback line sent so far; writes the objects under dir. */
    const collectLogs = async (dir: string) => {
      const bucket = await platform.mf.getR2Bucket("REC_LOG_STORE");
      const deadline = Date.now() + 120_000;
      for (;;) {
        const keys: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await bucket.list({ prefix: "rec-logs/", cursor });
          keys.push(...page.objects.map((o) => o.key));
          cursor = page.truncated ? page.cursor : undefined;
        } while (cursor);
        const ids = { served: new Set<string>(), feedback: new Set<string>() };
        const bodies = new Map<string, string>();
        for (const k of keys) {
          const text = (await (await bucket.get(k))?.text()) ?? "";
          bodies.set(k, text);
          for (const line of text.split("\n")) {
            if (!line) continue;
            const m = JSON.parse(line) as { message_id: string; kind: "served" | "feedback" };
            ids[m.kind].add(m.message_id);
          }
        }
        if ((ids.served.size >= expectedServed && ids.feedback.size >= expectedFeedback) || Date.now() > deadline) {
          rmSync(dir, { recursive: true, force: true });
          for (const [k, body] of bodies) {
            mkdirSync(dirname(join(dir, k)), { recursive: true });
            writeFileSync(join(dir, k), body);
          }
          return { objects: keys.length, served: ids.served.size, feedback: ids.feedback.size };
        }
        await new Promise((res) => setTimeout(res, 500));
      }
    };

    const retrain = async (afterRound: number) => {
      let tl = performance.now();
      const logsDir = join(WORK, `logs-after-${afterRound}`);
      const got = await collectLogs(logsDir);
      lap(`logs after round ${afterRound}`, tl);
      log(
        `R2 rec-logs: ${got.objects} objects, ${got.served}/${expectedServed} served and ${got.feedback}/${expectedFeedback} feedback lines (${phase[`logs after round ${afterRound}`]} s)`,
      );
      // The export the cron writes once a day is over, asked for now (the loop cannot wait for midnight).
      tl = performance.now();
      const window = new Date().toISOString().slice(0, 10);
      const exported = await request<{ teams: Array<{ team: string; rec_logs: unknown; dataset: unknown }> }>(
        `${url}/v1/admin/exports/${window}`,
        { method: "POST", headers: adminHeaders },
        [201],
      );
      const mine = exported.teams.find((x) => x.team === TEAM);
      const pulled = await pullExport({
        url,
        token: platformToken,
        dir: join(WORK, `export-after-${afterRound}`),
        window,
        team: TEAM,
      });
      lap(`export after round ${afterRound}`, tl);
      log(
        `export ${window} (POST /v1/admin/exports/${window}, pulled to ${pulled.path}): rec logs ${JSON.stringify(mine?.rec_logs)}, ledger ${JSON.stringify(mine?.dataset)}`,
      );
      tl = performance.now();
      const out = join(WORK, `train-after-${afterRound}`);
      train({
        data: pulled.path,
        out,
        version: `loop-${window}-r${afterRound}`,
        sources: SOURCES,
        quick: args.quick as boolean,
        // An eval set of every subject of a big team outgrows the Worker's 24 MiB (EVAL_SET_MAX_BYTES).
        maxSubjects: args.quick ? 100 : 400,
      });
      lap(`train after round ${afterRound}`, tl);
      log(`train.py --data ${pulled.path} --eval-sets: ${phase[`train after round ${afterRound}`]} s`);
      tl = performance.now();
      const candidates = bestCandidates(out, SOURCES);
      const decisions = await gateAndRegister({
        url,
        token: platformToken,
        models: join(out, "models"),
        evalSets: join(out, "eval-sets"),
        candidates,
      });
      lap(`gate after round ${afterRound}`, tl);
      for (const d of decisions) {
        log(describe(d));
        const sv = await servingOf(d.source as ReplaySource);
        log(`registry ${d.source}: serving ${sv.model} (${sv.origin})`);
        training.push({
          afterRound,
          source: d.source,
          model: d.model,
          status: d.status,
          line: describe(d),
          serving: sv.model,
        });
      }
      log(`retrain exit code: ${exitCodeOf(decisions)} (0 promoted, 2 refused, 1 error)`);
      await new Promise((res) => setTimeout(res, EXPERIMENT_PICKUP_MS));
    };

    for (let r = 0; r <= ROUNDS; r++) {
      t = performance.now();
      await serveRound(r);
      lap(`round ${r}`, t);
      log(`round ${r} served in ${phase[`round ${r}`]} s`);
      if (r < ROUNDS) await retrain(r);
    }
  } finally {
    await platform.close();
  }
  phase.total = Math.round((performance.now() - t0) / 100) / 10;
  report(rows, training, phase, users.length, truth.activeUsers.length, embeddingsCut);
}

function report(
  rows: RoundRow[],
  training: Array<Record<string, unknown>>,
  phase: Record<string, number>,
  served: number,
  active: number,
  embeddingsCut: string,
) {
  rows.sort((a, b) => a.source.localeCompare(b.source) || a.round - b.round || a.arm.localeCompare(b.arm));
  const head = [
    "source",
    "round",
    "arm",
    "model",
    "users",
    "impr",
    "clicks",
    "CTR",
    `DCG@${LIMIT}`,
    "recall",
    "fallbk",
    "r0 CTR same users",
    `r0 DCG same users`,
  ];
  const table = rows.map((r) => [
    r.source,
    String(r.round),
    r.arm,
    r.model,
    String(r.users),
    String(r.impressions),
    String(r.clicks),
    `${(r.ctr * 100).toFixed(2)}%`,
    r.dcg.toFixed(4),
    `${(r.recall * 100).toFixed(1)}%`,
    String(r.fallbacks),
    `${(r.r0ctr * 100).toFixed(2)}%`,
    r.r0dcg.toFixed(4),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
  console.log();
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of table) console.log(line(r));

  const caveat = `clicks are REPLAYED ground truth from the dataset (a served item counts as clicked when the user really joined that channel / first interacted with that person in the ${WEEKS} weeks after ${CUT}), not live users; embeddings from the ${embeddingsCut} training cut (later than ${CUT}); the bundled default model was trained on data up to its own cut, so it has seen part of this window (and the labels of the export's evaluation cuts: the gate errs on keeping it)`;
  const results: BenchResult[] = [];
  for (const r of rows.filter((x) => x.round === 0)) {
    results.push({
      name: `${r.source} round 0 CTR (${r.arm}: ${r.model})`,
      unit: "ratio",
      better: "higher",
      value: round4(r.ctr),
      notes: `${r.users} users, ${r.impressions} impressions, ${r.clicks} clicks, DCG@${LIMIT} ${round4(r.dcg)}, recall ${round4(r.recall)}`,
    });
  }
  for (const source of new Set(rows.map((r) => r.source))) {
    const first = rows.find((r) => r.source === source && r.round === 0);
    for (let k = 1; k <= ROUNDS; k++) {
      const now = rows.find((r) => r.source === source && r.round === k);
      if (!first || !now) continue;
      // Every round serves the same users (what the registry names serves them all): round 0 is the baseline.
      results.push(
        compare(
          {
            name: `${source} round ${k} CTR (${now.model})`,
            unit: "ratio",
            better: "higher",
            value: round4(now.ctr),
            notes: `${now.users} users, ${now.impressions} impressions, ${now.clicks} clicks, ${now.fallbacks} fallbacks`,
          },
          { name: `round 0 (${first.model})`, value: round4(first.ctr) },
        ),
        compare(
          {
            name: `${source} round ${k} DCG@${LIMIT} of clicks per request (${now.model})`,
            unit: "dcg",
            better: "higher",
            value: round4(now.dcg),
          },
          { name: `round 0 (${first.model})`, value: round4(first.dcg) },
        ),
      );
    }
  }
  const file = writeResults(
    "loop",
    results,
    `shared, noisy; ${served} of ${active} active users; ${ROUNDS} rounds; limit ${LIMIT}; ${caveat}; run times (s): ${JSON.stringify(phase)}`,
  );
  console.log();
  printTable(results);
  console.log(`\n${file}`);

  const md = [
    "# Replay loop: traffic → logs → export → train → gate → register → serve",
    "",
    `Generated by \`npm run loop -- --cut ${CUT} --weeks ${WEEKS} --rounds ${ROUNDS}${Number.isFinite(USERS_CAP) ? ` --users ${USERS_CAP}` : ""}${args.quick ? " --quick" : ""}\` on ${new Date().toISOString().slice(0, 10)} (the real Worker bundle in Miniflare, D1, rec-logs queue → R2).`,
    "",
    `**What the clicks are:** ${caveat}. Every served item gets an impression. After each round but the last the day is exported (POST /v1/admin/exports/<today>), pulled and trained on (train.py --data on the team's exported ledger, --eval-sets), and the better candidate per source goes through the Worker's promotion gate: registered (it serves every user from the next round on) or refused (what served keeps serving).`,
    "",
    `Users served: ${served} of ${active} active (activity in the 365 days before the cut). DCG@${LIMIT} is per request, Σ 1/log2(rank+1) over clicked items; recall = clicks / ground-truth positives of the users served. Every round serves the same users, so round 0 (the bundled default) is the baseline of the later rounds.`,
    "",
    `| source | round | arm | model | users | impressions | clicks | CTR | DCG@${LIMIT} | recall | round-0 CTR, same users | round-0 DCG, same users |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.source} | ${r.round} | ${r.arm} | \`${r.model}\` | ${r.users} | ${r.impressions} | ${r.clicks} | ${(r.ctr * 100).toFixed(2)}% | ${r.dcg.toFixed(4)} | ${(r.recall * 100).toFixed(1)}% | ${(r.r0ctr * 100).toFixed(2)}% | ${r.r0dcg.toFixed(4)} |`,
    ),
    "",
    "The promotion gate's decisions (the Worker's, on the eval set train.py wrote from the export):",
    "",
    ...training.map((t) => `- after round ${t.afterRound}: ${t.line}; serving then: \`${t.serving}\``),
    "",
    `Run times (s): ${Object.entries(phase)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}.`,
    "",
    "Caveats: one replay of one dataset slice, small click counts (no confidence intervals); rounds ≥ 1 replay the same labels, so a gain here is an offline signal, not an online result.",
    "",
  ].join("\n");
  mkdirSync("training/report", { recursive: true });
  writeFileSync("training/report/loop.md", md);
  console.log("training/report/loop.md");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
