import { writeFileSync } from "node:fs";
import WebSocket from "ws";

// `npm run bench:realtime -- --profile`: a V8 CPU profile of the platform's
// isolate (the Worker and every Durable Object of the bundle share it in
// workerd) during one saturation phase, through Miniflare's inspector proxy
// and the Chrome DevTools protocol. Written as a .cpuprofile (open it in
// Chrome DevTools or speedscope) and summarized: self and inclusive time of
// the heaviest functions, so "where does a fan-out spend its time" has an
// answer with evidence.

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface Profiler {
  stop(): Promise<CpuProfile>;
}

/** Connects to the first target of the inspector proxy whose title or URL mentions `worker` and starts sampling. */
export async function startProfiler(inspectorPort: number, worker: string, intervalUs = 200): Promise<Profiler> {
  const res = await fetch(`http://127.0.0.1:${inspectorPort}/json`);
  const targets = (await res.json()) as Array<{
    id: string;
    title?: string;
    url?: string;
    webSocketDebuggerUrl?: string;
  }>;
  const target =
    targets.find((t) => `${t.title ?? ""} ${t.url ?? ""} ${t.id}`.includes(worker)) ??
    targets.find((t) => t.webSocketDebuggerUrl);
  if (!target?.webSocketDebuggerUrl) {
    throw new Error(`no inspector target for ${worker}: ${JSON.stringify(targets).slice(0, 500)}`);
  }
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.on("message", (data: Buffer) => {
    const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(m.error.message));
    else p.resolve(m.result);
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: intervalUs });
  await call("Profiler.start");
  return {
    async stop() {
      const result = (await call("Profiler.stop")) as { profile: CpuProfile };
      ws.close();
      return result.profile;
    },
  };
}

export interface ProfileLine {
  fn: string;
  selfMs: number;
  totalMs: number;
  selfPct: number;
  totalPct: number;
}

/** The heaviest functions by self time and by inclusive time (a function counted once per stack). */
export function summarizeProfile(
  profile: CpuProfile,
  top = 25,
): { totalMs: number; bySelf: ProfileLine[]; byTotal: ProfileLine[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n: ProfileNode) => {
    const file = n.callFrame.url.split("/").pop() ?? "";
    return `${n.callFrame.functionName || "(anonymous)"}${file ? ` ${file}:${n.callFrame.lineNumber + 1}` : ""}`;
  };
  // Sample time: the time since the previous sample, capped at a few
  // sampling intervals. In workerd the sampler sees this isolate only while
  // its JS runs: time spent elsewhere (socket I/O, other isolates, another
  // process getting the CPU) shows up as one long delta before the next
  // sample, which would otherwise be charged to whatever frame that sample
  // lands in (a 0.5 s "exec" that is really 0.5 s of not running). That time
  // is reported on its own line instead.
  const samples = profile.samples ?? [];
  const deltas = (profile.timeDeltas ?? []).slice(1);
  const totalUs = profile.endTime - profile.startTime;
  const sorted = [...deltas].sort((a, b) => a - b);
  const interval = sorted[Math.floor(sorted.length / 2)] ?? (samples.length > 0 ? totalUs / samples.length : 0);
  const cap = interval * 4;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let unsampled = 0;
  samples.forEach((id, i) => {
    const delta = deltas[i] ?? interval;
    const us = Math.min(delta, cap);
    unsampled += delta - us;
    const leaf = byId.get(id);
    if (!leaf) return;
    self.set(keyOf(leaf), (self.get(keyOf(leaf)) ?? 0) + us);
    const seen = new Set<string>();
    for (let n: ProfileNode | undefined = leaf; n; n = byId.get(parent.get(n.id) ?? -1)) {
      const k = keyOf(n);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  });
  const GAP = "(not sampled: outside this isolate's JS)";
  self.set(GAP, unsampled);
  total.set(GAP, unsampled);
  const line = (fn: string): ProfileLine => ({
    fn,
    selfMs: Math.round((self.get(fn) ?? 0) / 100) / 10,
    totalMs: Math.round((total.get(fn) ?? 0) / 100) / 10,
    selfPct: Math.round(((self.get(fn) ?? 0) / totalUs) * 1000) / 10,
    totalPct: Math.round(((total.get(fn) ?? 0) / totalUs) * 1000) / 10,
  });
  const heaviest = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn]) => line(fn));
  return { totalMs: Math.round(totalUs / 1000), bySelf: heaviest(self), byTotal: heaviest(total) };
}

export function writeProfile(file: string, profile: CpuProfile): void {
  writeFileSync(file, JSON.stringify(profile));
}

/** Writes the profile to `file` and answers its summary as text (heaviest functions by self and inclusive time). */
export function profileReport(label: string, file: string, profile: CpuProfile, top = 25): string {
  writeProfile(file, profile);
  const summary = summarizeProfile(profile, top);
  const fmt = (l: ProfileLine) =>
    `  ${String(l.selfMs).padStart(8)} ms self ${String(l.selfPct).padStart(5)}%  ${String(l.totalMs).padStart(8)} ms total ${String(l.totalPct).padStart(5)}%  ${l.fn}`;
  return `profile ${label} (${summary.totalMs} ms sampled), written to ${file}\nby self time:\n${summary.bySelf.map(fmt).join("\n")}\nby inclusive time:\n${summary.byTotal.map(fmt).join("\n")}`;
}
