import type { Clock } from "../clock";
import { UniqueViolation } from "../unique-violation";
import type { DomainCountStore, MutationKey } from "./count-store";
import { coalesce } from "./deltas";
import type { DomainMutationMessage, HealPublisher } from "./messages";
import type { DomainDelta } from "./model";

export interface MutationConsumerDeps {
  counts: DomainCountStore;
  heals: HealPublisher;
  clock: Clock;
}

export interface BatchOutcome {
  /** Distinct mutations this batch applied. */
  events: number;
  /** Deliveries skipped: repeats inside the batch, and mutations an earlier batch applied. */
  duplicates: number;
  /** Rows written after coalescing. */
  keys: number;
  statements: number;
  /** Of those, relative upserts (one per chunk of keys, not one per key). */
  upserts: number;
  /** Teams that saw a count below zero and were sent to the healer. */
  healsRequested: string[];
}

/** Attempts when a concurrent batch applied one of this batch's mutations between our check and our write. */
const MAX_APPLY_ATTEMPTS = 3;

/** How long applied ids are remembered: well beyond the queue's retention (4 days) and the outbox sweep's delay. */
export const APPLIED_RETENTION_MS = 7 * 24 * 3600_000;

const keyOf = (k: MutationKey) => `${k.teamId}\u0000${k.id}`;

/**
 * Applies a queue batch as relative upserts, each mutation exactly once.
 *
 * Deltas commute, so batches may arrive in any order and interleave with
 * heals. Deliveries do not come exactly once: the queue redelivers (at least
 * once), and the outbox relay publishes a message again when it crashed
 * between sending and marking it sent. So every mutation carries a stable id
 * (its outbox row's), and the batch skips the ids already recorded in
 * applied_mutations; it records the ids it applies in the same atomic unit
 * as their upserts. Either the counts moved and the ids are recorded, or
 * neither: a retried batch re-checks and applies only what is missing. Two
 * batches racing with one id: the second unit fails on the id's primary key,
 * writes nothing, and is retried here against fresh state.
 *
 * Why at the consumer, and not by marking outbox rows sent before sending
 * them: mark-before-send turns the same crash into a lost mutation, which
 * only a full recount of the team repairs, and it does nothing about the
 * queue's own redeliveries. The price here is one indexed read and one
 * insert per batch, not per message.
 *
 * A count below zero means drift or, after a crash, mutations applied out of
 * order (a deactivation's before the creation's stranded one): the team is
 * sent to the healer, and the apply's own unit has already flagged it for the
 * cron sweep in case that request is lost.
 */
export async function applyMutationBatch(
  messages: readonly DomainMutationMessage[],
  deps: MutationConsumerDeps,
): Promise<BatchOutcome> {
  const distinct = new Map<string, DomainMutationMessage>();
  for (const m of messages) if (!distinct.has(keyOf(m))) distinct.set(keyOf(m), m);
  for (let attempt = 1; ; attempt++) {
    const keys = [...distinct.values()].map(({ teamId, id }) => ({ teamId, id }));
    const done = new Set((await deps.counts.appliedMutations(keys)).map(keyOf));
    const fresh = [...distinct.values()].filter((m) => !done.has(keyOf(m)));
    const deltas: DomainDelta[] = [];
    for (const m of fresh) {
      for (const d of m.deltas) deltas.push({ teamId: m.teamId, domain: d.domain, role: d.role, delta: d.delta });
    }
    const merged = coalesce(deltas);
    const now = deps.clock.now();
    try {
      const applied =
        fresh.length === 0
          ? { statements: 0, upserts: 0, negative: [] }
          : await deps.counts.applyDeltas(
              merged,
              now,
              fresh.map(({ teamId, id }) => ({ teamId, id })),
            );
      const teams = [...new Set(applied.negative.map((n) => n.teamId))];
      for (const teamId of teams) {
        await deps.heals.requestHeal({ v: 1, teamId, reason: "negative_count", requestedAt: now });
      }
      return {
        events: fresh.length,
        duplicates: messages.length - fresh.length,
        keys: merged.length,
        statements: applied.statements + (keys.length > 0 ? 1 : 0),
        upserts: applied.upserts,
        healsRequested: teams,
      };
    } catch (error) {
      if (!(error instanceof UniqueViolation) || attempt >= MAX_APPLY_ATTEMPTS) throw error;
    }
  }
}
