import type { DomainDelta } from "./model";

// Queue message shapes. Versioned so a deploy can drain old messages.

export interface DomainMutationMessage {
  v: 1;
  /** Unique per logical mutation, so a batch can drop redeliveries of it. */
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
