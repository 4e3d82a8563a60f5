import type { Context, Next } from "hono";
import { flushDue, flushMetrics, metrics } from "../platform/metrics";
import type { AppEnv } from "./http";

// The Worker's request counter, into this isolate's counters
// (platform/metrics.ts), which it flushes in the background when due.

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
  if (flushDue()) {
    try {
      c.executionCtx.waitUntil(flushMetrics(c.env));
    } catch {
      // no execution context (unit tests calling the app directly): flush on the next request
    }
  }
}
