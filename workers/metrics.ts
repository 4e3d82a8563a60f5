import type { Context, Next } from "hono";
import { metricsObject } from "../platform/stubs";
import { platformRegistry } from "../src/metrics/platform-metrics";
import type { AppEnv } from "./http";

// This isolate's counters, flushed to the Metrics object in the background
// (ctx.waitUntil) at most once a FLUSH_MS, and always before /metrics is
// rendered, so a scrape includes the scraping isolate's latest counts.

const FLUSH_MS = 1_000;

export const metrics = platformRegistry();
let lastFlush = 0;

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

/** Counts every request by route pattern (never the raw path: ids would explode the series), source and status. */
export async function countRequests(c: Context<AppEnv>, next: Next): Promise<void> {
  const start = performance.now();
  await next();
  const route = c.req.routePath || "unmatched";
  const source = c.get("recSource") ?? "";
  const status = String(c.res.status);
  const labels = { route, source };
  metrics.inc("http_requests_total", { ...labels, status });
  if (c.res.status >= 400) metrics.inc("http_request_errors_total", { ...labels, code: c.get("errorCode") ?? status });
  metrics.observe("http_request_duration_ms", labels, performance.now() - start);
  if (Date.now() - lastFlush >= FLUSH_MS) {
    try {
      c.executionCtx.waitUntil(flushMetrics(c.env));
    } catch {
      // no execution context (unit tests calling the app directly): flush on the next request
    }
  }
}

export async function renderMetrics(env: Env): Promise<string> {
  await flushMetrics(env);
  return metricsObject(env).render();
}
