import type { DomainCount, DomainDelta } from "./model";

export interface ApplyResult {
  /** Statements sent to the database (after coalescing and chunking), reads included. */
  statements: number;
  /** Of those, the relative upserts. */
  upserts: number;
  /** Rows touched by this apply whose count is now below zero. */
  negative: DomainCount[];
}

export interface DomainCountStore {
  /**
   * Relative upserts (`count = count + delta`) only, applied atomically: the
   * whole list or nothing, so a retried batch never half-applies.
   */
  applyDeltas(deltas: DomainDelta[], now: number): Promise<ApplyResult>;
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
