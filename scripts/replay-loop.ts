import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { signToken } from "../src/auth/tokens";
import { dayOf } from "../src/datasets/collab";
import { type BenchResult, compare, printTable, writeResults } from "../tools/harness/results";
import { importDataset, loadDataset } from "./dataset-import";
import { startPlatform } from "./replay-backend";
import { type ReplaySource, replayTruth } from "./replay-labels";

// npm run loop -- [--data datasets/rails-collab] [--cut 2024-08-23] [--weeks 8]
//                 [--rounds 2] [--users N] [--limit 10] [--sources channel_browser,composer_dm] [--quick]
//
// The recommend → feedback → rec-logs → retrain → experiment loop, end to end
// on the real Worker bundle served by Miniflare (D1, Durable Objects, the
// rec-logs queue and its consumer, R2):
// 1. import the dataset at the cut into a team (scripts/dataset-import.ts);
// 2. round 0: every active user (activity in the 365 days before the cut)
//    asks POST /v1/recommend per source and sends feedback: an impression for
//    every served item, a click when the dataset shows the user really joined
//    that channel / first interacted with that person in the --weeks after
//    the cut (replayed ground truth, NOT live users: labels do not depend on
//    the ranking beyond whether the item was shown in the top `limit`);
// 3. wait for the rec-logs consumer to write to R2, download the objects,
//    train on them (training/train.py --logs, the raw served + feedback format),
//    upload the better of lr / xgboost through the admin API as a new version,
//    and set the source's experiment to default model vs retrained, 50/50;
// 4. rounds 1..n: the same users and labels again (retraining on all logs
//    after each round but the last); per arm per round: users, impressions,
//    clicks, CTR, DCG@limit of clicks.
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
/** platform/models/experiment-store.ts EXPERIMENT_TTL_MS (10 s) plus a margin: serving picks a new experiment up by then. */
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
    `NOTE: the embedding vectors (${args.embeddings}) are from the ${embeddingsCut} training cut, later than ${CUT}: the features see some of the future; so does the bundled default model (trained up to its own cut). Both arms get the same features.`,
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

    // The default experiment (one arm, the bundled model) before we change anything.
    const defaults = new Map<ReplaySource, string>();
    for (const s of SOURCES) {
      const e = await request<{ experiment: { arms: Array<{ model: string }> } }>(
        `${url}/v1/admin/recommend/experiments/${s}`,
        { headers: adminHeaders },
      );
      defaults.set(s, e.experiment.arms[0]?.model ?? "hand_tuned");
    }
    const experimentName = (s: ReplaySource) => `loop-${s}`;
    /** round 0 per source and user: impressions, clicks, dcg (the arms' pre-period). */
    const r0 = new Map<string, { impressions: number; clicks: number; dcg: number }>();
    let expectedServed = 0;
    let expectedFeedback = 0;

    const serveRound = async (r: number) => {
      const stats = new Map<string, ArmStats>();
      let wrongExperiment = 0;
      for (const source of SOURCES) {
        const positives = truth.positives[source];
        await mapLimit(users, CONCURRENCY, async (u) => {
          const headers = { authorization: `Bearer ${tokens.get(u)}`, "content-type": "application/json" };
          const ans = await request<RecAnswer>(`${url}/v1/recommend`, {
            method: "POST",
            headers,
            body: JSON.stringify({ source, limit: LIMIT }),
          });
          expectedServed++;
          if (r > 0 && ans.experiment.name !== experimentName(source)) wrongExperiment++;
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
      if (wrongExperiment) log(`warning: ${wrongExperiment} answers in round ${r} came from an older experiment`);
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
      tl = performance.now();
      const out = join(WORK, `train-after-${afterRound}`);
      execFileSync(
        "/usr/bin/python3",
        [
          "training/train.py",
          "--logs",
          logsDir,
          "--out",
          out,
          "--manifests",
          "models",
          "--quiet",
          ...(args.quick ? ["--quick"] : []),
        ],
        { stdio: "inherit" },
      );
      lap(`train after round ${afterRound}`, tl);
      const metrics = JSON.parse(readFileSync(join(out, "logs_metrics.json"), "utf8")) as {
        raw?: Record<string, number>;
        sources: Record<string, Record<string, unknown>>;
      };
      tl = performance.now();
      for (const s of SOURCES) {
        const m = metrics.sources[s];
        if (!m) {
          log(`${s}: no logs to train on`);
          continue;
        }
        const score = (k: string) => {
          const e = m[k] as { ndcg10?: number | null; auc?: number | null; skipped?: string } | undefined;
          if (!e || e.skipped) return Number.NEGATIVE_INFINITY;
          return e.ndcg10 ?? e.auc ?? 0;
        };
        const kind = score("xgboost") >= score("lr") ? "xgboost" : "lr";
        if (score(kind) === Number.NEGATIVE_INFINITY) {
          log(`${s}: nothing trainable (one class); the experiment is left as is`);
          continue;
        }
        const dir = join(out, "models", s, kind);
        const manifestText = readFileSync(join(dir, "manifest.json"), "utf8");
        const manifest = JSON.parse(manifestText) as { name: string; version: string };
        const base = `${url}/v1/admin/models/${s}/${manifest.name}/${manifest.version}`;
        await request(
          `${base}/manifest.json`,
          { method: "PUT", headers: { ...adminHeaders, "content-type": "application/json" }, body: manifestText },
          [201],
        );
        await request(
          `${base}/model.onnx`,
          {
            method: "PUT",
            headers: { ...adminHeaders, "content-type": "application/octet-stream" },
            body: readFileSync(join(dir, "model.onnx")),
          },
          [201],
        );
        const retrained = `${manifest.name}@${manifest.version}`;
        await request(`${url}/v1/admin/recommend/experiments/${s}`, {
          method: "PUT",
          headers: { ...adminHeaders, "content-type": "application/json" },
          body: JSON.stringify({
            name: experimentName(s),
            arms: [
              { name: "default", weight: 1, model: defaults.get(s) },
              { name: "retrained", weight: 1, model: retrained },
            ],
          }),
        });
        const entry = { afterRound, source: s, kind, model: retrained, metrics: { lr: m.lr, xgboost: m.xgboost } };
        training.push({ ...entry, rows: m.rows, requests: m.requests, clicks: m.clicks });
        log(
          `${s}: trained on ${m.rows} served items (${m.requests} requests, ${m.clicks} clicks); uploaded ${retrained} (${kind}; held-out ${JSON.stringify(m[kind])}); experiment ${experimentName(s)}: default ${defaults.get(s)} vs retrained, 50/50`,
        );
      }
      if (metrics.raw) log(`join: ${JSON.stringify(metrics.raw)}`);
      await new Promise((res) => setTimeout(res, EXPERIMENT_PICKUP_MS));
      lap(`upload after round ${afterRound}`, tl);
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

  const caveat = `clicks are REPLAYED ground truth from the dataset (a served item counts as clicked when the user really joined that channel / first interacted with that person in the ${WEEKS} weeks after ${CUT}), not live users; embeddings from the ${embeddingsCut} training cut (later than ${CUT}); the default arm's bundled model was trained on data up to its own cut, so it has seen part of this window`;
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
    for (let k = 1; k <= ROUNDS; k++) {
      const def = rows.find((r) => r.source === source && r.round === k && r.arm === "default");
      const re = rows.find((r) => r.source === source && r.round === k && r.arm === "retrained");
      if (!def || !re) continue;
      const note = (r: RoundRow) =>
        `${r.arm} (${r.model}): ${r.users} users, ${r.impressions} impressions, ${r.clicks} clicks; the same users in round 0 (default model): CTR ${round4(r.r0ctr)}, DCG ${round4(r.r0dcg)}`;
      results.push(
        compare(
          {
            name: `${source} round ${k} CTR, retrained arm`,
            unit: "ratio",
            better: "higher",
            value: round4(re.ctr),
            notes: `${note(re)}; ${note(def)}`,
          },
          { name: "default arm CTR", value: round4(def.ctr) },
        ),
        compare(
          {
            name: `${source} round ${k} DCG@${LIMIT} of clicks per request, retrained arm`,
            unit: "dcg",
            better: "higher",
            value: round4(re.dcg),
            notes: `round 0, same users: retrained arm's users ${round4(re.r0dcg)}, default arm's users ${round4(def.r0dcg)}`,
          },
          { name: "default arm", value: round4(def.dcg) },
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
    "# Replay loop: serve → feedback → rec-logs → retrain → A/B",
    "",
    `Generated by \`npm run loop -- --cut ${CUT} --weeks ${WEEKS} --rounds ${ROUNDS}${Number.isFinite(USERS_CAP) ? ` --users ${USERS_CAP}` : ""}${args.quick ? " --quick" : ""}\` on ${new Date().toISOString().slice(0, 10)} (the real Worker bundle in Miniflare, D1, rec-logs queue → R2).`,
    "",
    `**What the clicks are:** ${caveat}. Every served item gets an impression; users are split 50/50 between the arms by the experiment's hash from round 1 on; the retrained arm's model is trained on the platform's own raw R2 logs (training/logs.py joins served and feedback lines).`,
    "",
    `Users served: ${served} of ${active} active (activity in the 365 days before the cut). DCG@${LIMIT} is per request, Σ 1/log2(rank+1) over clicked items; recall = clicks / ground-truth positives of the arm's users. The arms hold different users, so the round-0 columns give each arm's users' figures when everyone was on the default model (the pre-period to compare against).`,
    "",
    `| source | round | arm | model | users | impressions | clicks | CTR | DCG@${LIMIT} | recall | round-0 CTR, same users | round-0 DCG, same users |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.source} | ${r.round} | ${r.arm} | \`${r.model}\` | ${r.users} | ${r.impressions} | ${r.clicks} | ${(r.ctr * 100).toFixed(2)}% | ${r.dcg.toFixed(4)} | ${(r.recall * 100).toFixed(1)}% | ${(r.r0ctr * 100).toFixed(2)}% | ${r.r0dcg.toFixed(4)} |`,
    ),
    "",
    "Retrained models (held-out metrics on the logs' test requests, crc32(request_id) % 5 == 0):",
    "",
    ...training.map(
      (t) =>
        `- after round ${t.afterRound}, ${t.source}: \`${t.model}\` from ${t.rows} served items / ${t.requests} requests / ${t.clicks} clicks; lr ${JSON.stringify(t.metrics && (t.metrics as Record<string, unknown>).lr)}, xgboost ${JSON.stringify(t.metrics && (t.metrics as Record<string, unknown>).xgboost)}`,
    ),
    "",
    `Run times (s): ${Object.entries(phase)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}.`,
    "",
    "Caveats: one replay of one dataset slice, small click counts (no confidence intervals); the retrained model only sees items some earlier ranking put in the top " +
      `${LIMIT} (selection bias), and rounds ≥ 1 replay the same labels, so a gain here is an offline signal, not an online result.`,
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
