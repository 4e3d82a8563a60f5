import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fetchFresh, operatorToken, uploadModels } from "./models-upload";

// npm run retrain -- [--url URL | --from DIR] [--window YYYY-MM-DD] [--team T]
//                    [--sources channel_browser,composer_dm] [--quick] [--max-subjects N] [--work .retrain]
//
// One command from a day's export to a registered model:
// 1. pull: the scheduled export (src/recommend/export.ts) of a window from a
//    running Worker (GET /v1/admin/exports…, operators only), or a local
//    copy laid out as the bucket's exports/<window>/ (--from DIR: manifest.json,
//    <team>/<file>); by default the newest complete window and the team with
//    the most ledger rows;
// 2. train: training/train.py --data <the team's dataset> --eval-sets: per
//    source, lr and xgboost on the team's own history and live traffic, and
//    the held-out rankings of its evaluation cuts;
// 3. gate and register: the better candidate is uploaded (models:upload's
//    uploadModels), the eval set PUT, then POST …/promote: the Worker runs
//    the promotion gate against what serves now and the baselines, and
//    registers the model when it passes; serving picks it up with no deploy.
//
// Env: WORKER_URL (else --url, else http://127.0.0.1:8787); ADMIN_TOKEN (an
// operator's bearer token), else JWT_SECRET or .dev.vars to sign one
// (--operator team:user).
// Exit: 0 every gated source promoted; 2 the gate refused at least one (nothing
// changed for it); 1 an error (nothing to train on, a failed request, training).

export const EXIT = { promoted: 0, error: 1, refused: 2 } as const;

export interface Decision {
  source: string;
  model: string;
  status: "promoted" | "refused" | "error";
  /** The gate's numbers (promoted: evidence; refused: the 409's details), or the error. */
  detail: unknown;
}

export function exitCodeOf(decisions: readonly Decision[]): number {
  if (decisions.length === 0 || decisions.some((d) => d.status === "error")) return EXIT.error;
  return decisions.some((d) => d.status === "refused") ? EXIT.refused : EXIT.promoted;
}

interface ExportManifest {
  window: string;
  complete: boolean;
  teams: Array<{ team: string; files: string[]; dataset: { activity: number } }>;
}

async function getOk(url: string, token: string): Promise<Response> {
  const res = await fetchFresh(url, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${(await res.text()).slice(0, 300)}`);
  return res;
}

function chooseTeam(manifest: ExportManifest, team?: string): ExportManifest["teams"][number] {
  const entry = team
    ? manifest.teams.find((t) => t.team === team)
    : [...manifest.teams].sort((a, b) => b.dataset.activity - a.dataset.activity)[0];
  if (!entry) throw new Error(`the export of ${manifest.window} has ${team ? `no team ${team}` : "no team"}`);
  return entry;
}

/**
 * Fetches one team's files of a window's export into `dir` (the newest
 * complete window unless one is named). Answers the window, the team and the
 * folder holding its files.
 */
export async function pullExport(o: {
  url: string;
  token: string;
  dir: string;
  window?: string;
  team?: string;
}): Promise<{ window: string; team: string; path: string; manifest: ExportManifest }> {
  const base = `${o.url.replace(/\/$/, "")}/v1/admin/exports`;
  let window = o.window;
  if (!window) {
    const { exports } = (await (await getOk(base, o.token)).json()) as {
      exports: Array<{ window: string; complete: boolean }>;
    };
    window = exports.find((e) => e.complete)?.window;
    if (!window) throw new Error("no complete export yet (the cron writes yesterday's after midnight UTC)");
  }
  const manifest = (await (await getOk(`${base}/${window}`, o.token)).json()) as ExportManifest;
  const entry = chooseTeam(manifest, o.team);
  const path = join(o.dir, window, entry.team);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(o.dir, window, "manifest.json"), JSON.stringify(manifest, null, 1));
  for (const file of entry.files) {
    const res = await getOk(`${base}/${window}/${encodeURIComponent(entry.team)}/${file}`, o.token);
    writeFileSync(join(path, file), new Uint8Array(await res.arrayBuffer()));
  }
  return { window, team: entry.team, path, manifest };
}

/** A local copy of exports/<window>/ (manifest.json and <team>/<files>). */
export function localExport(dir: string, team?: string) {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as ExportManifest;
  const entry = chooseTeam(manifest, team);
  return { window: manifest.window, team: entry.team, path: join(dir, entry.team), manifest };
}

/** The better kind of each source by the run's mean NDCG@10 over its cuts (lr on a tie). */
export function bestCandidates(trainOut: string, sources?: string[]): Array<{ source: string; kind: string }> {
  const metrics = JSON.parse(readFileSync(join(trainOut, "metrics.json"), "utf8")) as {
    sources: Record<string, Record<string, { ndcg10: number }>>;
  };
  const out: Array<{ source: string; kind: string }> = [];
  for (const [source, m] of Object.entries(metrics.sources)) {
    if (sources && !sources.includes(source)) continue;
    const kinds = ["lr", "xgboost"].filter((k) => existsSync(join(trainOut, "models", source, k, "model.onnx")));
    if (kinds.length === 0) continue;
    kinds.sort((a, b) => (m[b]?.ndcg10 ?? -1) - (m[a]?.ndcg10 ?? -1) || (a === "lr" ? -1 : 1));
    out.push({ source, kind: kinds[0] as string });
  }
  return out;
}

/**
 * Uploads each candidate, PUTs its source's eval set and asks the Worker to
 * promote it. The gate's refusal (409 gate_refused) is a decision, anything
 * else that fails an error.
 */
export async function gateAndRegister(o: {
  url: string;
  token: string;
  /** Model folders as training writes them: <models>/<source>/<kind>/{manifest.json,model.onnx}. */
  models: string;
  /** <evalSets>/<source>.eval-set.ndjson */
  evalSets: string;
  candidates: ReadonlyArray<{ source: string; kind: string }>;
}): Promise<Decision[]> {
  const base = o.url.replace(/\/$/, "");
  const headers = { authorization: `Bearer ${o.token}` };
  const decisions: Decision[] = [];
  for (const { source, kind } of o.candidates) {
    const manifest = JSON.parse(readFileSync(join(o.models, source, kind, "manifest.json"), "utf8")) as {
      name: string;
      version: string;
    };
    const model = `${manifest.name}@${manifest.version}`;
    const fail = (detail: unknown) => decisions.push({ source, model, status: "error", detail });
    try {
      const [uploaded] = await uploadModels({ url: base, root: o.models, token: o.token, only: [`${source}/${kind}`] });
      if (uploaded?.status !== "uploaded") {
        fail(`upload refused: ${uploaded?.detail ?? "no model folder"}`);
        continue;
      }
      const evalSet = await fetchFresh(`${base}/v1/admin/models/${source}/eval-set`, {
        method: "PUT",
        headers: { ...headers, "content-type": "application/x-ndjson" },
        body: readFileSync(join(o.evalSets, `${source}.eval-set.ndjson`)),
      });
      if (!evalSet.ok) {
        fail(`eval set refused: ${evalSet.status} ${(await evalSet.text()).slice(0, 300)}`);
        continue;
      }
      const res = await fetchFresh(`${base}/v1/admin/models/${source}/promote`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({ model }),
      });
      const body = (await res.json().catch(() => null)) as {
        evidence?: unknown;
        error?: { code: string; message: string; details?: unknown };
      } | null;
      if (res.status === 200) decisions.push({ source, model, status: "promoted", detail: body?.evidence });
      else if (res.status === 409 && body?.error?.code === "gate_refused") {
        decisions.push({ source, model, status: "refused", detail: body.error.details });
      } else fail(`promote: ${res.status} ${JSON.stringify(body?.error ?? body).slice(0, 300)}`);
    } catch (error) {
      // fetch's "fetch failed" says nothing by itself: the cause names the socket error.
      const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : "";
      fail(error instanceof Error ? `${error.message}${cause}` : String(error));
    }
  }
  return decisions;
}

interface Evidence {
  serving?: string;
  ndcg10?: Record<string, { mean: number }>;
  gate?: {
    comparisons?: Record<string, { improvement: number; required: number | null; passes: boolean }>;
    failed?: string[];
    reason?: string;
  };
}

/** One line per decision: the model, its mean NDCG@10, D against each reference and what was required. */
export function describe(d: Decision): string {
  if (d.status === "error") return `ERROR    ${d.source} ${d.model}: ${String(d.detail)}`;
  const e = (d.detail ?? {}) as Evidence;
  const parts = Object.entries(e.gate?.comparisons ?? {}).map(
    ([name, c]) =>
      `${name}: D ${c.improvement >= 0 ? "+" : ""}${c.improvement.toFixed(4)} ${c.passes ? ">" : "≤"} ${c.required?.toFixed(4) ?? "n/a"}`,
  );
  const mean = e.ndcg10?.candidate?.mean;
  const vs = `NDCG@10 ${mean?.toFixed(4) ?? "?"} vs serving ${e.serving ?? "?"} ${e.ndcg10?.serving?.mean?.toFixed(4) ?? "?"}`;
  const failed = e.gate?.failed?.length ? `; not cleared: ${e.gate.failed.join(", ")}` : "";
  return `${d.status === "promoted" ? "PROMOTED" : "REFUSED "} ${d.source} ${d.model}: ${vs}; ${parts.join("; ")}${failed}`;
}

/** training/train.py on one team's exported dataset: candidates in OUT/models, eval sets in OUT/eval-sets. */
export function train(o: {
  data: string;
  out: string;
  version: string;
  sources?: string[];
  quick: boolean;
  /** Subjects per cut and source (train.py: all; quick 150). Fewer keep an eval set under the Worker's 24 MiB. */
  maxSubjects?: number;
}) {
  rmSync(o.out, { recursive: true, force: true });
  execFileSync(
    "nice",
    [
      "-n",
      "10",
      "/usr/bin/python3",
      "training/train.py",
      "--data",
      o.data,
      "--out",
      o.out,
      "--register",
      join(o.out, "local-registry"),
      "--eval-sets",
      join(o.out, "eval-sets"),
      "--version",
      o.version,
      "--quiet",
      ...(o.sources ? ["--sources", o.sources.join(",")] : []),
      ...(o.quick ? ["--quick"] : []),
      ...(o.maxSubjects ? ["--max-subjects", String(o.maxSubjects)] : []),
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      from: { type: "string" },
      window: { type: "string" },
      team: { type: "string" },
      sources: { type: "string" },
      quick: { type: "boolean", default: false },
      "max-subjects": { type: "string" },
      work: { type: "string", default: ".retrain" },
      operator: { type: "string", default: "TPLATFORM:UOPERATOR" },
    },
  });
  const url = values.url ?? process.env.WORKER_URL ?? "http://127.0.0.1:8787";
  const work = resolve(values.work);
  const token = await operatorToken(values.operator, 3600);
  const sources = values.sources?.split(",");
  const pulled = values.from
    ? localExport(values.from, values.team)
    : await pullExport({ url, token, dir: join(work, "exports"), window: values.window, team: values.team });
  const rows = pulled.manifest.teams.find((t) => t.team === pulled.team)?.dataset;
  console.log(
    `export ${pulled.window} (${pulled.manifest.complete ? "complete" : "partial"}), team ${pulled.team}: ${JSON.stringify(rows)}`,
  );
  const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
  const version = `retrain-${pulled.team}-${pulled.window}-${stamp}`;
  const out = join(work, "train");
  const t0 = performance.now();
  const maxSubjects = values["max-subjects"] ? Number(values["max-subjects"]) : undefined;
  train({
    data: pulled.path,
    out,
    version,
    quick: values.quick,
    ...(sources ? { sources } : {}),
    ...(maxSubjects ? { maxSubjects } : {}),
  });
  console.log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${out}`);
  const candidates = bestCandidates(out, sources);
  const decisions = await gateAndRegister({
    url,
    token,
    models: join(out, "models"),
    evalSets: join(out, "eval-sets"),
    candidates,
  });
  for (const d of decisions) console.log(describe(d));
  writeFileSync(join(work, "decisions.json"), JSON.stringify(decisions, null, 1));
  const code = exitCodeOf(decisions);
  console.log(`exit ${code} (${Object.entries(EXIT).find(([, v]) => v === code)?.[0]})`);
  return code;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(EXIT.error);
    },
  );
}
