import type { Plan, Role, Team, User } from "./model";

// Port for the source of truth. Adapters: storage/sql-store.ts over D1 or
// MySQL/PlanetScale. Every method is one statement or one atomic batch.

export interface TeamPatch {
  name?: string;
  plan?: Plan;
  claimedDomains?: string[];
}

export interface UserPatch {
  email?: string;
  domain?: string;
  role?: Role;
  deactivated?: boolean;
}

/** The minimum a recount needs per user. */
export interface ActiveUserRow {
  id: string;
  domain: string;
  role: Role;
}

export interface TeamStore {
  /** Returns false when the id is taken. */
  createTeam(team: Team): Promise<boolean>;
  getTeam(teamId: string): Promise<Team | null>;
  updateTeam(teamId: string, patch: TeamPatch): Promise<Team | null>;

  getUser(teamId: string, userId: string): Promise<(User & { version: number }) | null>;
  /** The team and one of its users in a single round trip (classification). */
  getTeamAndUser(teamId: string, userId: string): Promise<{ team: Team; user: User } | null>;
  /** Which of these addresses or ids already exist in the team. */
  findExisting(teamId: string, emails: string[], ids: string[]): Promise<{ emails: string[]; ids: string[] }>;
  /** Inserts atomically: all rows or none (a duplicate id or email throws UniqueViolation). */
  insertUsers(users: User[]): Promise<void>;
  /**
   * Compare-and-set on the user's version, so two concurrent edits of one user
   * cannot both derive their deltas from the same "before" state. Returns false
   * when the version moved (the caller re-reads and retries).
   */
  updateUser(teamId: string, userId: string, version: number, patch: UserPatch, now: number): Promise<boolean>;
  /** Keyset page of active users ordered by id (recount input). */
  listActiveUsers(teamId: string, afterId: string | null, limit: number): Promise<ActiveUserRow[]>;

  /** Latest updated_at of any user of the team (null if none): how recently a mutation may still be in flight. */
  lastUserWriteAt(teamId: string): Promise<number | null>;

  /** Single-statement lease so two heals of one team never overlap. */
  acquireHealLease(teamId: string, owner: string, now: number, ttlMs: number): Promise<boolean>;
  releaseHealLease(teamId: string, owner: string, healedAt: number | null): Promise<void>;
  /** When a mutation could not be enqueued: the sweep will heal the team. */
  markHealNeeded(teamId: string, now: number): Promise<void>;
  /** Teams whose last heal is older than `staleBefore`, never healed, or marked. */
  teamsNeedingHeal(staleBefore: number, limit: number): Promise<string[]>;
}
