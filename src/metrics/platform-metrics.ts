import { LATENCY_BUCKETS_MS, type MetricHelp, Registry } from "./registry";

// Every metric the platform exports on GET /metrics.

export const PLATFORM_METRICS: readonly MetricHelp[] = [
  { name: "http_requests_total", type: "counter", help: "Requests by route, recommend source and status." },
  { name: "http_request_errors_total", type: "counter", help: "4xx/5xx answers by route, source and error code." },
  {
    name: "http_request_duration_ms",
    type: "histogram",
    help: "Request latency in ms as the Worker sees it (workerd's clock advances on I/O only).",
    buckets: LATENCY_BUCKETS_MS,
  },
  {
    name: "rec_model_scoring_ms",
    type: "histogram",
    help: "Model scoring time per request by source and model.",
    buckets: LATENCY_BUCKETS_MS,
  },
  {
    name: "rec_model_load_failures_total",
    type: "counter",
    help: "Models that failed to load (the request fell back to the hand-tuned model).",
  },
  { name: "rec_served_items_total", type: "counter", help: "Items served by source and experiment arm." },
  {
    name: "rec_feedback_total",
    type: "counter",
    help: "Impressions, clicks and dismissals by source, arm and action.",
  },
  { name: "rec_degraded_total", type: "counter", help: "Answers with an optional step skipped, by source and step." },
  { name: "live_actor_reads_total", type: "counter", help: "Callers' live state (role, active) read by requests." },
  {
    name: "live_actor_calls_total",
    type: "counter",
    help: "Team cache calls made for those reads (fewer than reads: reads coalesced in rounds).",
  },
];

export function platformRegistry(): Registry {
  return new Registry(PLATFORM_METRICS);
}
