import type { DomainCount, DomainDelta } from "./model";

export interface ApplyResult {
  /** Statements sent to the database (after coalescing and chunking), reads included. */
  statements: number;
  /** Of those, the relative upserts. */
  upserts: number;
  /** Rows touched by this apply whose count is now below zero. */
  negative: DomainCount[];
}

/** A domain mutation message by its id (ids are unique per team; the team leads every key). */
export interface MutationKey {
  teamId: string;
  id: string;
}

export interface DomainCountStore {
  /**
   * Relative upserts (`count = count + delta`) only, applied atomically: the
   * whole list or nothing, so a retried batch never half-applies. With
   * `applied`, the same unit records those mutation ids as applied; an id
   * recorded already (a concurrent batch applied it) fails the whole unit with
   * UniqueViolation, so no mutation is ever counted twice. A team with a
   * count driven below zero is flagged for a heal in the same unit.
   */
  applyDeltas(deltas: DomainDelta[], now: number, applied?: readonly MutationKey[]): Promise<ApplyResult>;
  /** Which of these mutations were applied already (one round trip). */
  appliedMutations(keys: readonly MutationKey[]): Promise<MutationKey[]>;
  /** Forgets up to `limit` applied ids recorded before `appliedBefore` (housekeeping); returns how many. */
  pruneAppliedMutations(appliedBefore: number, limit: number): Promise<number>;
  /**
   * Counts for these domains plus the team-total rows, in one round trip
   * whatever the number of domains.
   */
  readCounts(teamId: string, domains: string[]): Promise<DomainCount[]>;
  /** Every row of the team (healer phase 1). */
  readAllCounts(teamId: string): Promise<DomainCount[]>;
  /** Housekeeping after a heal; a concurrent upsert simply re-creates a row. */
  deleteZeroRows(teamId: string): Promise<void>;
}
