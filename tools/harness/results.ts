import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";

// Measured figures and the results file they go to, bench/results/<area>.json
// (bench/README.md renders its tables from these files): written by every
// `npm run bench:<area>` and by the replay loop (scripts/replay-loop.ts).

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
