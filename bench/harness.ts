import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { resolve } from "node:path";

// Shared by every `npm run bench:<area>`: build the Worker bundle the way a
// deploy would, percentile maths, and the results file of ../shared/BENCH.md.

export interface BenchResult {
  name: string;
  unit: string;
  better: "lower" | "higher";
  value: number;
  baseline?: { name: string; value: number };
  ratio?: number;
  target?: string;
  runs?: number;
  notes?: string;
}

/** Builds with wrangler; returns the absolute outdir (wrangler resolves it against the config's folder otherwise). */
export function bundle(config: string, outdir: string): string {
  const abs = resolve(outdir);
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--config", config, "--outdir", abs], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  return abs;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export const median = (values: number[]) => percentile(values, 50);

/** ratio > 1 means we beat the baseline, whichever direction is better. */
export function compare(
  r: Omit<BenchResult, "ratio" | "baseline">,
  baseline: { name: string; value: number },
): BenchResult {
  const ratio = r.better === "lower" ? baseline.value / r.value : r.value / baseline.value;
  return { ...r, baseline, ratio: Math.round(ratio * 100) / 100 };
}

export function writeResults(area: string, results: BenchResult[], notes: string): string {
  const wranglerVersion = JSON.parse(readFileSync("node_modules/wrangler/package.json", "utf8")).version as string;
  const file = `bench/results/${area}.json`;
  mkdirSync("bench/results", { recursive: true });
  const doc = {
    area,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, wrangler: wranglerVersion, notes },
    results,
  };
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  return file;
}

export function printTable(results: BenchResult[]): void {
  const fmt = (n: number | undefined) => (n === undefined ? "" : n >= 100 ? n.toFixed(0) : n.toPrecision(3));
  const rows = results.map((r) => [
    r.name,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline ? `${fmt(r.baseline.value)} ${r.unit} (${r.baseline.name})` : "",
    r.ratio === undefined ? "" : `${r.ratio}x`,
  ]);
  const head = ["figure", "value", "baseline (same run)", "ratio"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

/** Pids of processes whose command name is `name` below `root` (default: this process). Linux /proc only; [] elsewhere. */
export function descendantPids(name: string, root = process.pid): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      comm.set(Number(e), stat.slice(stat.indexOf("(") + 1, close));
      parent.set(Number(e), Number(stat.slice(close + 2).split(" ")[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  const below = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === root) return true;
    return false;
  };
  return [...comm].filter(([pid, c]) => c === name && below(pid)).map(([pid]) => pid);
}

/** CPU time (user + system) and resident memory of a process, from /proc; null when it cannot be read. */
export function processUsage(pid: number): { cpuMs: number; rssBytes: number; peakRssBytes: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    return { cpuMs: ticks * 10, rssBytes: kb("VmRSS"), peakRssBytes: kb("VmHWM") };
  } catch {
    return null;
  }
}
