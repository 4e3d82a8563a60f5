import { isRole } from "../teams/model";
import type { DomainDelta } from "./model";

// Queue message shapes. Versioned so a deploy can drain old messages.

export interface DomainMutationMessage {
  v: 1;
  /**
   * Unique per logical mutation: the id of its outbox row. The consumer
   * applies each id once (applied_mutations), so a relay or a queue that
   * delivers a message twice cannot count it twice.
   */
  id: string;
  teamId: string;
  cause: "user_created" | "user_updated" | "user_deactivated" | "bulk_import";
  deltas: Array<Pick<DomainDelta, "domain" | "role" | "delta">>;
  at: number;
}

export type HealReason = "negative_count" | "first_classification" | "plan_upgrade" | "stale" | "admin" | "verify";

export interface HealRequest {
  v: 1;
  teamId: string;
  reason: HealReason;
  requestedAt: number;
}

/** Ports the domain logic publishes through (Queues in the Worker). */
export interface MutationPublisher {
  publish(messages: DomainMutationMessage[]): Promise<void>;
}

export interface HealPublisher {
  requestHeal(request: HealRequest, delaySeconds?: number): Promise<void>;
}

/** A body read from the queue or the outbox: checked before use, since it may be from another deploy. */
export function isMutationMessage(b: unknown): b is DomainMutationMessage {
  if (!b || typeof b !== "object") return false;
  const m = b as Partial<DomainMutationMessage>;
  return (
    m.v === 1 &&
    typeof m.id === "string" &&
    typeof m.teamId === "string" &&
    Array.isArray(m.deltas) &&
    m.deltas.every((d) => d && typeof d.domain === "string" && isRole(d.role) && Number.isInteger(d.delta))
  );
}
