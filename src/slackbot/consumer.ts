import { isSlackEventMessage } from "./events";
import { type AnswerOutcome, type AnswerPorts, answerEvent } from "./service";

// The slack-events consumer's policy over answerEvent: what to do with each
// delivery. A 429's Retry-After is the retry's delay; other transient
// failures (5xx, network) back off exponentially; a permanent failure, or the
// last allowed try, goes to the dead-letter queue with its reason (the
// queue's own dead-lettering after max_retries carries none). Never dropped:
// every failure ends retried or dead-lettered, and logged as one JSON line.

/** The part of a queue message the policy uses (Cloudflare's Message). */
export interface Delivery {
  id: string;
  body: unknown;
  attempts: number;
  ack(): void;
  retry(options?: { delaySeconds: number }): void;
}

export interface DeadLetters {
  send(body: unknown): Promise<void>;
}

/** Back-off of a transient failure's retry: 2, 4, 8 … seconds, at most 5 minutes. */
export function backoffSeconds(attempts: number): number {
  return Math.min(2 ** Math.max(1, attempts), 300);
}

export async function consumeSlackEvents(
  deliveries: readonly Delivery[],
  ports: AnswerPorts,
  dead: DeadLetters,
  maxRetries: number,
): Promise<void> {
  // Independent events: answered side by side (each waits on the Web API).
  await Promise.all(deliveries.map((m) => consumeOne(m, ports, dead, maxRetries)));
}

async function consumeOne(m: Delivery, ports: AnswerPorts, dead: DeadLetters, maxRetries: number): Promise<void> {
  if (!isSlackEventMessage(m.body)) {
    console.error(JSON.stringify({ consumer: "slack-events", status: "malformed", message: m.id }));
    m.ack();
    return;
  }
  const message = m.body;
  let outcome: AnswerOutcome;
  try {
    outcome = await answerEvent(ports, message);
  } catch (error) {
    // The database or the model failed: nothing was posted, so a retry is safe.
    const reason = `error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`.slice(0, 300);
    outcome = { status: "failed", attempts: m.attempts, kind: "transient", reason };
  }
  const log = { consumer: "slack-events", event: message.eventId, workspace: message.teamId, attempt: m.attempts };
  switch (outcome.status) {
    case "ignored":
    case "duplicate":
    case "replied":
      if (outcome.status !== "ignored") console.log(JSON.stringify({ ...log, ...outcome }));
      m.ack();
      return;
    case "busy":
      // Another delivery is answering it now; look again once its claim could have gone stale.
      m.retry({ delaySeconds: Math.max(1, Math.ceil(ports.claimMs / 1000)) });
      return;
    case "failed": {
      const last = m.attempts > maxRetries;
      if (outcome.kind === "permanent" || last) {
        const reason =
          last && outcome.kind !== "permanent"
            ? `gave up after ${m.attempts} tries: ${outcome.reason}`
            : outcome.reason;
        console.error(JSON.stringify({ ...log, status: "dead_lettered", failure: outcome.kind, reason }));
        try {
          await dead.send({ reason, failure: outcome.kind, attempts: m.attempts, message });
          await ports.events.finish(message.eventId, "dead", reason, ports.now());
          m.ack();
        } catch (error) {
          console.error(JSON.stringify({ ...log, status: "dead_letter_failed", error: String(error).slice(0, 200) }));
          m.retry({ delaySeconds: backoffSeconds(m.attempts) });
        }
        return;
      }
      const delaySeconds = outcome.kind === "rate_limited" ? outcome.retryAfterSeconds : backoffSeconds(m.attempts);
      console.error(
        JSON.stringify({ ...log, status: "retry", failure: outcome.kind, reason: outcome.reason, delaySeconds }),
      );
      m.retry({ delaySeconds });
      return;
    }
  }
}
