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
  // Feature health (src/recommend/feature-health.ts): counted by the rec-logs consumer from served answers.
  {
    name: "rec_feature_values_total",
    type: "counter",
    help: "Served feature values (not null) by source and feature.",
  },
  {
    name: "rec_feature_missing_total",
    type: "counter",
    help: "Served items without a value for the feature (the model's default applied), by source and feature.",
  },
  { name: "rec_feature_sum", type: "gauge", merge: "sum", help: "Sum of the served values, by source and feature." },
  { name: "rec_feature_min", type: "gauge", merge: "min", help: "Smallest served value, by source and feature." },
  { name: "rec_feature_max", type: "gauge", merge: "max", help: "Largest served value, by source and feature." },
  {
    name: "rec_feature_drift",
    type: "gauge",
    merge: "last",
    help: "|served mean - training mean| / training std, against the bundled model's feature_stats.",
  },
  {
    name: "rec_feature_alert",
    type: "gauge",
    merge: "last",
    help: "1 when drift exceeds REC_FEATURE_DRIFT_THRESHOLD (0.5) or the missing rate the training one + 0.2.",
  },
];

export function platformRegistry(): Registry {
  return new Registry(PLATFORM_METRICS);
}
