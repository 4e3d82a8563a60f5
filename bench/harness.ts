import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import mysql from "mysql2/promise";
import { applyMysqlMigrations } from "../scripts/mysql-migrate";
import { planetscaleDriver } from "../storage/planetscale-driver";
import { startPsdbServer } from "../tools/psdb-server/server";

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

/**
 * A dry-run build is the main module plus the .wasm (onnxruntime-web) and
 * .onnx (bundled models) files it imports by relative name; Miniflare needs
 * them listed.
 */
export function bundleAssets(outdir: string): Array<{ type: "CompiledWasm" | "Data"; path: string }> {
  return readdirSync(outdir).flatMap((f): Array<{ type: "CompiledWasm" | "Data"; path: string }> => {
    if (f.endsWith(".wasm")) return [{ type: "CompiledWasm", path: join(outdir, f) }];
    if (f.endsWith(".onnx")) return [{ type: "Data", path: join(outdir, f) }];
    return [];
  });
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

export interface BackendOptions {
  /** Worker vars and secrets (STORAGE and DATABASE_URL are set here). */
  vars: Record<string, string>;
  durableObjects?: Record<string, { className: string; useSQLite: boolean }>;
  /** Extra Miniflare options (logging while debugging a bench). */
  extra?: Record<string, unknown>;
}

export interface Backend {
  url: string;
  mf: Miniflare;
  close(): Promise<void>;
}

/**
 * The bundle served by Miniflare on one storage adapter, migrated: D1 (its
 * local SQLite), or MySQL through the real PlanetScale driver and
 * tools/psdb-server on a fresh MariaDB database dropped by close().
 */
export async function startBackend(adapter: "d1" | "mysql", script: string, options: BackendOptions): Promise<Backend> {
  const cleanup: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const fn of cleanup) await fn().catch((e) => console.error("cleanup:", e));
  };
  try {
    let storage: Record<string, string> = { STORAGE: "d1" };
    if (adapter === "mysql") {
      const database = `edge_bench_${Date.now()}`;
      const conn = { host: "127.0.0.1", port: 3306, user: "root", password: "" };
      const admin = await mysql.createConnection(conn);
      await admin.query(`CREATE DATABASE \`${database}\``);
      cleanup.push(async () => {
        await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
        await admin.end();
      });
      const server = await startPsdbServer({ mysql: { ...conn, database }, poolSize: 8 });
      cleanup.unshift(server.close);
      await applyMysqlMigrations(planetscaleDriver({ url: server.url }));
      storage = { STORAGE: "planetscale", DATABASE_URL: server.url };
    }
    const mf = new Miniflare(
      convertV4MiniflareOptions({
        modules: [{ type: "ESModule", path: script }, ...bundleAssets(dirname(script))],
        modulesRoot: dirname(script),
        compatibilityDate: "2026-11-01",
        compatibilityFlags: ["nodejs_compat"],
        bindings: { ...options.vars, ...storage },
        d1Databases: ["DB"],
        ...(options.durableObjects ? { durableObjects: options.durableObjects } : {}),
        queueProducers: { DOMAIN_MUTATIONS: "domain-mutations", HEALS: "heals" },
        ...options.extra,
      }),
    );
    cleanup.unshift(() => mf.dispose());
    const url = (await mf.ready).toString().replace(/\/$/, "");
    if (adapter === "d1") {
      const db = await mf.getD1Database("DB");
      for (const file of readdirSync("migrations/d1")
        .filter((f) => f.endsWith(".sql"))
        .sort()) {
        for (const sql of readFileSync(`migrations/d1/${file}`, "utf8").split("--> statement-breakpoint")) {
          if (sql.trim()) await db.prepare(sql).run();
        }
      }
    }
    return { url, mf, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** POST JSON, fail loudly on a non-2xx answer, parse the JSON reply. */
export async function postJson<T>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} -> ${res.status}: ${text.slice(0, 800)}`);
  return JSON.parse(text) as T;
}
