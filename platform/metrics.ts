import { platformRegistry } from "../src/metrics/platform-metrics";
import { metricsObject } from "./stubs";

// This isolate's counters (requests, recommendations, model loads), flushed
// to the Metrics object in the background at most once a FLUSH_MS, and
// always before /metrics is rendered, so a scrape includes the scraping
// isolate's latest counts. The Worker's request counter is in
// workers/metrics.ts; the recommend adapters count here too.

export const FLUSH_MS = 1_000;

export const metrics = platformRegistry();
let lastFlush = 0;

/** Whether a flush is due (the last one is FLUSH_MS old). */
export function flushDue(now = Date.now()): boolean {
  return now - lastFlush >= FLUSH_MS;
}

export async function flushMetrics(env: Env): Promise<void> {
  lastFlush = Date.now();
  // A deployment (or bench) without the Metrics object keeps counting locally.
  if (!(env as Partial<Env>).METRICS) return;
  const snapshot = metrics.take();
  if (Object.keys(snapshot.series).length === 0) return;
  try {
    await metricsObject(env).merge(snapshot);
  } catch (error) {
    // Counts from this window are lost; the series stay consistent.
    console.error("metrics flush failed", error);
  }
}

export async function renderMetrics(env: Env): Promise<string> {
  await flushMetrics(env);
  return metricsObject(env).render();
}
