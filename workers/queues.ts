import { depsFor, slackAnswerPortsFor, slackDeadLetters } from "../platform/deps";
import { liveFeatureStore } from "../platform/live-features-deps";
import { countServedFeatures, flushMetrics } from "../platform/metrics";
import { recLogWriter } from "../platform/rec-log-store";
import { busyRetrySeconds, coveredByLastHeal, healTeam } from "../src/domains/healer";
import { type DomainMutationMessage, type HealRequest, isMutationMessage } from "../src/domains/messages";
import { applyMutationBatch } from "../src/domains/mutation-consumer";
import { consumeFeatureEvents } from "../src/recommend/live-features";
import { logObjects, parseRecLogBody, type RecLogEnvelope } from "../src/recommend/logs";
import { consumeSlackEvents } from "../src/slackbot/consumer";
import type { Background } from "../storage/guarded-driver";

// Queue consumers. Bodies are checked before use: a malformed message can
// never succeed, so it is acknowledged and logged instead of retried into the
// dead-letter queue.

/** Back-off after a failed heal; a busy one waits for the holder's lease instead (busyRetrySeconds). */
const FAILED_RETRY_SECONDS = 15;

export async function handleQueue(batch: MessageBatch<unknown>, env: Env, background?: Background): Promise<void> {
  if (batch.queue.startsWith("domain-mutations")) return consumeMutations(batch, env, background);
  if (batch.queue.startsWith("heals")) return consumeHeals(batch, env, background);
  if (batch.queue.startsWith("rec-logs")) return consumeRecLogs(batch, env);
  if (batch.queue.startsWith("feature-events")) return consumeFeatureEventBatch(batch, env);
  if (batch.queue.startsWith("slack-events")) {
    const maxRetries = Number(env.SLACK_EVENTS_MAX_RETRIES || "6");
    return consumeSlackEvents(batch.messages, slackAnswerPortsFor(env, background), slackDeadLetters(env), maxRetries);
  }
  console.error(`no consumer for queue ${batch.queue}; retrying`);
  batch.retryAll();
}

async function consumeMutations(batch: MessageBatch<unknown>, env: Env, background?: Background): Promise<void> {
  const valid: DomainMutationMessage[] = [];
  for (const m of batch.messages) {
    if (isMutationMessage(m.body)) valid.push(m.body);
    else console.error("dropping malformed domain mutation", m.id);
  }
  const deps = depsFor(env, background);
  // One atomic apply for the whole batch, with the ids it applies: on failure
  // nothing was written, and a message delivered again (this batch retried,
  // or the outbox relay publishing twice) is skipped by id.
  const outcome = await applyMutationBatch(valid, deps);
  console.log(JSON.stringify({ consumer: "domain-mutations", ...outcome }));
  batch.ackAll();
}

async function consumeHeals(batch: MessageBatch<unknown>, env: Env, background?: Background): Promise<void> {
  const deps = depsFor(env, background);
  for (const m of batch.messages) {
    const request = m.body;
    if (!isHealRequest(request)) {
      console.error("dropping malformed heal request", m.id);
      m.ack();
      continue;
    }
    try {
      const team = await deps.store.getTeam(request.teamId);
      if (!team || coveredByLastHeal(team, request)) {
        m.ack();
        continue;
      }
      // Named, not spread: spreading deps would build every port (depsFor).
      const { store, counts, heals, mutations, clock, settleSeconds, healLeaseMs: leaseMs } = deps;
      const healer = { store, counts, heals, mutations, clock, settleSeconds, leaseMs, owner: `${m.id}` };
      const outcome = await healTeam(request.teamId, healer);
      console.log(JSON.stringify({ consumer: "heals", reason: request.reason, ...outcome }));
      if (outcome.status === "busy") m.retry({ delaySeconds: busyRetrySeconds(outcome.retryAfterMs) });
      else m.ack();
    } catch (error) {
      console.error("heal failed", request.teamId, error);
      m.retry({ delaySeconds: FAILED_RETRY_SECONDS });
    }
  }
}

function isHealRequest(b: unknown): b is HealRequest {
  if (!b || typeof b !== "object") return false;
  const r = b as Partial<HealRequest>;
  return r.v === 1 && typeof r.teamId === "string" && typeof r.requestedAt === "number";
}

/** Answers whose features are counted between yields (see consumeRecLogs). */
const FEATURE_TALLY_SLICE = 10;

/** Served answers and feedback to the log store, one NDJSON object per source, day and batch. */
async function consumeRecLogs(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const valid: Array<{ id: string; body: RecLogEnvelope }> = [];
  for (const m of batch.messages) {
    const parsed = parseRecLogBody(m.body);
    if (parsed) valid.push({ id: m.id, body: parsed });
    else console.error("dropping malformed rec-log message", m.id);
  }
  // All or nothing: a failed put retries the whole batch, which rewrites the same objects.
  const write = recLogWriter(env);
  await Promise.all(logObjects(valid).map((o) => write(o.key, o.body)));
  // Counted once written, so a failed put (the batch retried) is not counted twice; a
  // batch redelivered after a write that succeeded is (metrics are approximate; the
  // readout, which reads the logs, is not).
  // Parsed a few answers at a time with a yield between (a batch of 100 answers of 50
  // items is ~9 ms of JSON.parse): locally the consumer shares the thread with requests.
  for (let at = 0; at < valid.length; at += FEATURE_TALLY_SLICE) {
    countServedFeatures(valid.slice(at, at + FEATURE_TALLY_SLICE).map((m) => m.body.line));
    await scheduler.wait(0);
  }
  batch.ackAll();
  // A consumer's isolate may serve no request to flush on: flush its counts now.
  await flushMetrics(env);
}

/**
 * The platform's own events into each team's activity ledger (live
 * features), routed by the event's team; bad bodies dropped with a log,
 * a team whose store failed retried (events count once by id).
 */
async function consumeFeatureEventBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const outcome = await consumeFeatureEvents(
    batch.messages.map((m) => ({ id: m.id, body: m.body })),
    liveFeatureStore(env),
  );
  const retry = new Set(outcome.retry);
  for (const m of batch.messages) {
    if (retry.has(m.id)) m.retry();
    else m.ack();
  }
  const { added, duplicates, dropped } = outcome;
  console.log(JSON.stringify({ consumer: "feature-events", added, duplicates, dropped, retried: retry.size }));
}
