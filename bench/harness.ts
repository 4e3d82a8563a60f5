import { readdirSync, readFileSync } from "node:fs";

// Measuring helpers of every `npm run bench:<area>`: percentile maths, the
// CPU and memory of the processes a bench starts, and a JSON POST. Building
// and serving the Worker is tools/harness/backend.ts; the results file is
// tools/harness/results.ts.

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export const median = (values: number[]) => percentile(values, 50);

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
