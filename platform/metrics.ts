import { platformRegistry } from "../src/metrics/platform-metrics";
import { FEATURE_METRICS, tallyServedFeatures } from "../src/recommend/feature-health";
import { SOURCE_NAMES } from "../src/recommend/sources";
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

const SOURCES: ReadonlySet<string> = new Set(SOURCE_NAMES);

/**
 * Feature health: folds the feature values of the served answers among these
 * log lines into this isolate's counters (values, nulls, sum, min, max per
 * source and feature). The Metrics object derives drift and alerts from them.
 */
export function countServedFeatures(lines: Iterable<string>): void {
  for (const t of tallyServedFeatures(lines, SOURCES)) {
    const labels = { source: t.source, feature: t.feature };
    metrics.inc(FEATURE_METRICS.values, labels, t.values);
    metrics.inc(FEATURE_METRICS.missing, labels, t.missing);
    if (t.values === 0) continue;
    metrics.gauge(FEATURE_METRICS.sum, labels, t.sum);
    metrics.gauge(FEATURE_METRICS.min, labels, t.min);
    metrics.gauge(FEATURE_METRICS.max, labels, t.max);
  }
}
