import { readFileSync } from "node:fs";
import { formatNumber } from "./number-format";

// The fault-suite table (docs/storage.md), rendered from test/faults/results.json
// (written by `npm run test:faults`) between <!-- faults --> and
// <!-- /faults -->, the way bench:report renders the benchmark tables.

interface WriteLoad {
  kills?: number;
  restart_ms?: number[];
  writes: number;
  all_replayed_identically: number;
  retried_writes: number;
  retried_answered: { replayed: number; fresh: number };
  counts_converged_ms: number;
  cron_ticks: number;
  self_healed?: boolean;
  cache_matched_ms: number;
}

interface FaultFigures {
  platform_killed_mid_write?: WriteLoad;
  platform_killed_mid_import?: {
    users: number;
    staged_at_kill: number;
    visible_at_kill: number;
    resume_ms: number;
    resumed_answer: { imported: number };
    counts_converged_ms: number;
    cache_matched_ms: number;
  };
  platform_killed_mid_heal?: {
    attempts: Array<{ midHeal: boolean; driftAtKill: number; flaggedAtKill?: boolean }>;
    healed_after_restart_ms?: number;
    cron_ticks?: number;
  };
  database_killed_mid_write?: WriteLoad & {
    outage_ms: number;
    refusals: number;
    refusal_statuses: Record<string, number>;
    refusal_ms: { p50: number; p99: number; max: number };
  };
}

export interface FaultResults {
  date: string;
  node: string;
  adapters: { d1?: FaultFigures; mysql?: FaultFigures };
}

/** Under a second in whole ms, else seconds to three digits. */
const s = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${formatNumber(ms / 1000)} s`);
const n = (x: number) => formatNumber(x);

function writeLoad(w: WriteLoad): string {
  const retried = `${w.retried_writes} retried (${w.retried_answered.replayed} had committed, ${w.retried_answered.fresh} had not)`;
  const heal = w.self_healed ? "; the platform healed the team itself (a count had gone below zero)" : "";
  return `${w.all_replayed_identically} of ${w.writes} writes replayed identically; ${retried}; none lost or doubled; counts = recount in ${s(w.counts_converged_ms)} (${w.cron_ticks} cron ticks)${heal}; cache = database in ${s(w.cache_matched_ms)}`;
}

function cells(f: FaultFigures | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!f) return out;
  if (f.platform_killed_mid_write) out.write = writeLoad(f.platform_killed_mid_write);
  const i = f.platform_killed_mid_import;
  if (i) {
    out.import = `killed with ${n(i.staged_at_kill)} of ${n(i.users)} users staged and ${n(i.visible_at_kill)} visible; the retry with the key staged the rest, landed and answered \`imported: ${i.resumed_answer.imported}\` in ${s(i.resume_ms)}; each user once; counts = recount in ${s(i.counts_converged_ms)}; cache in ${s(i.cache_matched_ms)}`;
  }
  const h = f.platform_killed_mid_heal;
  if (h) {
    const hit = h.attempts.find((a) => a.midHeal);
    out.heal = hit
      ? `killed while the heal held its lease (${hit.driftAtKill} keys still off${hit.flaggedAtKill ? ", team flagged" : ""}); healed by the cron sweep ${s(h.healed_after_restart_ms ?? 0)} after the restart`
      : "no kill landed mid-heal";
  }
  const d = f.database_killed_mid_write;
  if (d) {
    const statuses = Object.entries(d.refusal_statuses)
      .map(([k, v]) => `${v} × ${k}`)
      .join(", ");
    out.db = `down ${s(d.outage_ms)}: ${d.refusals} refusals (${statuses}, with \`Retry-After\`), p50 ${s(d.refusal_ms.p50)}, p99 ${s(d.refusal_ms.p99)}; ${writeLoad(d)}`;
  }
  return out;
}

/** The table: one row per fault, one column per database. */
export function renderFaults(results: FaultResults): string {
  const d1 = cells(results.adapters.d1);
  const mysql = cells(results.adapters.mysql);
  const rows: Array<[string, string]> = [
    ["write", "platform killed twice mid-write (300 writes, 6 writers)"],
    ["import", "platform killed mid-import"],
    ["heal", "platform killed mid-heal"],
    ["db", "database server killed mid-write"],
  ];
  const cell = (x: string | undefined) => (x ?? "—").replace(/\|/g, "\\|");
  return [
    `_From \`test/faults/results.json\`, ${results.date.slice(0, 10)} (Node ${results.node}; repair knobs shortened to 5 s)._`,
    "",
    "| fault | D1 | MySQL (PlanetScale driver) |",
    "| --- | --- | --- |",
    ...rows.map(
      ([k, label]) =>
        `| ${label} | ${cell(k === "db" ? "(D1 lives in the platform process)" : d1[k])} | ${cell(mysql[k])} |`,
    ),
  ].join("\n");
}

export function readFaultResults(path = "test/faults/results.json"): FaultResults | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as FaultResults;
  } catch {
    return null;
  }
}

/** A page with the faults table rendered between its markers (unchanged without them). */
export function renderFaultsInto(readme: string, results: FaultResults | null): string {
  const open = "<!-- faults -->";
  const close = "<!-- /faults -->";
  const start = readme.indexOf(open);
  const end = readme.indexOf(close);
  if (!results || start < 0 || end < start) return readme;
  return `${readme.slice(0, start + open.length)}\n${renderFaults(results)}\n${readme.slice(end)}`;
}
