import type { Context, Next } from "hono";
import { flushDue, flushMetrics, metrics } from "../platform/metrics";
import type { AppEnv } from "./http";

// The Worker's request counter, two ways:
// - into this isolate's counters (platform/metrics.ts), flushed in the
//   background when due to the Metrics object that renders /metrics;
// - one Workers Analytics Engine data point per request (REQUEST_METRICS),
//   written by the isolate that served it and queried with SQL from the
//   account: nothing passes through one object, whatever the traffic.

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
  const ms = performance.now() - start;
  metrics.observe("http_request_duration_ms", labels, ms);
  const dataset = c.env.REQUEST_METRICS as AnalyticsEngineDataset | undefined;
  if (dataset) {
    try {
      dataset.writeDataPoint(requestDataPoint({ route, source, status, code: c.get("errorCode") ?? "", ms }));
    } catch (error) {
      // Never worth failing a request over: the counters above still have it.
      console.error("analytics engine write failed", error);
    }
  }
  if (flushDue()) {
    try {
      c.executionCtx.waitUntil(flushMetrics(c.env));
    } catch {
      // no execution context (unit tests calling the app directly): flush on the next request
    }
  }
}

/**
 * A request as an Analytics Engine data point: blob1 route pattern, blob2
 * status, blob3 error code ("" when none), blob4 recommend source; double1
 * duration in ms; indexed (sampled) by route. Query it with the SQL API, e.g.
 * `SELECT blob1 AS route, quantileWeighted(0.99)(double1, _sample_interval)
 * FROM edge_collab_requests GROUP BY route`.
 */
export function requestDataPoint(r: {
  route: string;
  source: string;
  status: string;
  code: string;
  ms: number;
}): AnalyticsEngineDataPoint {
  return { indexes: [r.route.slice(0, 96)], blobs: [r.route, r.status, r.code, r.source], doubles: [r.ms] };
}
