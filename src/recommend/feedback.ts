import type { Clock } from "../clock";
import { DomainError } from "../errors";
import type { FEEDBACK_ACTIONS, RecLogMessage } from "./logs";
import type { RecLogSink, RecMetrics, ServedLog } from "./ports";

// POST /v1/recommend/feedback as a use case: feedback names one of the
// user's own answers (another user's, or an unknown or expired one, is not
// found: ids are not confirmed to strangers) and only items it served; each
// event goes to the rec-logs queue for training.

export interface FeedbackPorts {
  served: ServedLog;
  logs: RecLogSink;
  metrics: RecMetrics;
  clock: Clock;
}

export interface FeedbackRequest {
  team: string;
  user: string;
  requestId: string;
  events: ReadonlyArray<{ item: string; action: (typeof FEEDBACK_ACTIONS)[number] }>;
  /** Told the answer's source as soon as it is known (the request's metrics labels). */
  onSource?: (source: string) => void;
}

/** Records the events; answers how many. */
export async function recordFeedback(ports: FeedbackPorts, request: FeedbackRequest): Promise<number> {
  const { team, user, requestId, events } = request;
  const check = await ports.served.check(
    team,
    requestId,
    user,
    events.map((e) => e.item),
  );
  if (!check.ok) {
    throw new DomainError(check.code === "not_found" ? "not_found" : "invalid", check.code, check.message);
  }
  const { source, arm } = check.request;
  request.onSource?.(source);
  const ts = ports.clock.now();
  const messages: RecLogMessage[] = events.map((e) => ({
    kind: "feedback",
    request_id: requestId,
    team,
    user,
    source,
    arm,
    item: e.item,
    action: e.action,
    ts,
  }));
  await ports.logs.sendBatch(messages);
  for (const e of events) ports.metrics.inc("rec_feedback_total", { source, arm, action: e.action });
  return messages.length;
}
