import type { Clock } from "../clock";
import type { DomainCountStore } from "./count-store";
import { coalesce } from "./deltas";
import type { DomainMutationMessage, HealPublisher } from "./messages";
import type { DomainDelta } from "./model";

export interface MutationConsumerDeps {
  counts: DomainCountStore;
  heals: HealPublisher;
  clock: Clock;
}

export interface BatchOutcome {
  /** Distinct mutations in the batch (redeliveries inside it dropped). */
  events: number;
  /** Rows written after coalescing. */
  keys: number;
  statements: number;
  /** Of those, relative upserts (one per chunk of keys, not one per key). */
  upserts: number;
  /** Teams that saw a count below zero and were sent to the healer. */
  healsRequested: string[];
}

/**
 * Applies a queue batch as relative upserts. Deltas commute, so batches may
 * arrive in any order and interleave with heals; a redelivered batch
 * double-counts, which is exactly the drift the healer exists to repair (and
 * a negative count is how it usually shows).
 */
export async function applyMutationBatch(
  messages: readonly DomainMutationMessage[],
  deps: MutationConsumerDeps,
): Promise<BatchOutcome> {
  const seen = new Set<string>();
  const deltas: DomainDelta[] = [];
  for (const m of messages) {
    if (seen.has(m.id)) continue;
    seen.add(m.id);
    for (const d of m.deltas) deltas.push({ teamId: m.teamId, domain: d.domain, role: d.role, delta: d.delta });
  }
  const merged = coalesce(deltas);
  const now = deps.clock.now();
  const { statements, upserts, negative } = await deps.counts.applyDeltas(merged, now);
  const teams = [...new Set(negative.map((n) => n.teamId))];
  for (const teamId of teams) {
    await deps.heals.requestHeal({ v: 1, teamId, reason: "negative_count", requestedAt: now });
  }
  return { events: seen.size, keys: merged.length, statements, upserts, healsRequested: teams };
}
