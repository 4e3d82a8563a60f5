import type { OutboxRow, OutboxStore } from "../domains/outbox";
import type { Plan, Role, Team, User } from "./model";

// Port for the source of truth. Adapters: storage/sql-store.ts over D1 or
// MySQL/PlanetScale. Every method is one statement or one atomic batch.

export interface TeamPatch {
  name?: string;
  plan?: Plan;
  claimedDomains?: string[];
  /** Flags the team for the sweep's heal in the same statement (a plan upgrade: the recount must not be lost to a crash). */
  healNeededAt?: number;
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

/**
 * What a user write derives, committed in the same atomic unit as its user
 * rows: the directory change log the team caches catch up from, and the
 * queue messages (outbox rows) the relay will publish. A crash therefore
 * leaves all of it or none of it.
 */
export interface DerivedWrites {
  /**
   * `users`: one `user` event per written user. `reload`: one `reload`
   * event for the whole write (a page of an import too big to replay user by
   * user; the cache reloads instead).
   */
  log: "users" | "reload";
  outbox: OutboxRow[];
  /** Time of the change-log rows. */
  at: number;
  /** The request's Idempotency-Key record, kept with the change it made (src/teams/idempotency.ts). */
  idempotency?: IdempotencyRecord;
}

/** What an Idempotency-Key names: the request it came with (hash) and the result it got (JSON). */
export interface IdempotencyRecord {
  key: string;
  requestHash: string;
  result: string;
  at: number;
}

/** Directory versions a write logged: its events are those in (after, upTo]. */
export interface LoggedVersions {
  teamId: string;
  after: number;
  upTo: number;
}

export interface UserWriteResult {
  /** null when the write was made without DerivedWrites (seeding). */
  logged: LoggedVersions | null;
}

export interface TeamStore extends OutboxStore {
  /** Returns false when the id is taken. */
  createTeam(team: Team): Promise<boolean>;
  getTeam(teamId: string): Promise<Team | null>;
  updateTeam(teamId: string, patch: TeamPatch): Promise<Team | null>;

  getUser(teamId: string, userId: string): Promise<(User & { version: number }) | null>;
  /** The team and one of its users in a single round trip (classification). */
  getTeamAndUser(teamId: string, userId: string): Promise<{ team: Team; user: User } | null>;
  /** Which of these addresses or ids already exist in the team. */
  findExisting(teamId: string, emails: string[], ids: string[]): Promise<{ emails: string[]; ids: string[] }>;
  /**
   * Inserts users of one team atomically, with what they derive: all rows or
   * none (a duplicate id or email throws UniqueViolation and writes nothing).
   * Without `derived` only the users rows are written: for seeding a
   * database, never for a change a cache or a count must see.
   */
  insertUsers(users: User[], derived?: DerivedWrites): Promise<UserWriteResult>;
  /**
   * Compare-and-set on the user's version, so two concurrent edits of one user
   * cannot both derive their deltas from the same "before" state; `derived`
   * is written in the same unit and only if the swap happens. Returns null
   * when the version moved (nothing was written; the caller re-reads and
   * retries).
   */
  updateUser(
    teamId: string,
    userId: string,
    version: number,
    patch: UserPatch,
    now: number,
    derived?: DerivedWrites,
  ): Promise<UserWriteResult | null>;
  /** Keyset page of active users ordered by id (recount input). */
  listActiveUsers(teamId: string, afterId: string | null, limit: number): Promise<ActiveUserRow[]>;

  /** Latest updated_at of any user of the team (null if none): how recently a mutation may still be in flight. */
  lastUserWriteAt(teamId: string): Promise<number | null>;

  /** Single-statement lease so two heals of one team never overlap. */
  acquireHealLease(teamId: string, owner: string, now: number, ttlMs: number): Promise<boolean>;
  /** Extends the lease to now + ttlMs if `owner` still holds it (unexpired); false when it does not. */
  renewHealLease(teamId: string, owner: string, now: number, ttlMs: number): Promise<boolean>;
  /** When the current lease runs out (null: no lease). */
  healLeaseUntil(teamId: string): Promise<number | null>;
  releaseHealLease(teamId: string, owner: string, healedAt: number | null): Promise<void>;
  /** The record a write with this Idempotency-Key left, if any. */
  idempotencyRecord(teamId: string, key: string): Promise<IdempotencyRecord | null>;
  /** Deletes up to `limit` records older than `before`; how many. */
  pruneIdempotencyKeys(before: number, limit: number): Promise<number>;
  /** Flags the team for the sweep's heal (a recount is due). */
  markHealNeeded(teamId: string, now: number): Promise<void>;

  /**
   * An import's staged users, not landed yet (invisible to every reader):
   * how many, and the hash of the request that staged them; null if none.
   */
  stagedImport(teamId: string, importKey: string): Promise<{ users: number; requestHash: string } | null>;
  /** Stages a page of an import in one unit; a user already staged under the key (a repeat of the page) is skipped. */
  stageUsers(importKey: string, requestHash: string, users: User[], at: number): Promise<void>;
  /**
   * Lands an import in one unit: `derived.idempotency` (inserted first, so a
   * second landing of the key fails whole on it with UniqueViolation), every
   * staged user into users, the staged rows deleted, the change-log rows
   * (`derived.log`; "users" logs `userIds`) and the outbox rows. A user that
   * collides with one written meanwhile also fails it whole.
   */
  landStagedUsers(
    teamId: string,
    importKey: string,
    derived: DerivedWrites,
    userIds: readonly string[],
  ): Promise<UserWriteResult>;
  /** Drops an import's staged users (a landing that failed for good). */
  dropStagedUsers(teamId: string, importKey: string): Promise<void>;
  /** Deletes up to `limit` staged users older than `before` (abandoned imports); how many. */
  pruneStagedUsers(before: number, limit: number): Promise<number>;
  /** Teams whose last heal is older than `staleBefore`, never healed, or marked. */
  teamsNeedingHeal(staleBefore: number, limit: number): Promise<string[]>;
}
