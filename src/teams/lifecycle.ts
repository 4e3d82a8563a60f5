import type { Clock } from "../clock";
import type { ChangeEvent } from "../directory/model";
import type { ChangePublisher, DirectorySource } from "../directory/source";
import { type Contribution, coalesce, deltasForChange } from "../domains/deltas";
import type { DomainMutationMessage, HealPublisher, MutationPublisher } from "../domains/messages";
import type { DomainDelta } from "../domains/model";
import { mutationRow, type OutboxRow, relayOutbox } from "../domains/outbox";
import { badRequest, conflict, notFound } from "../errors";
import { idFromSeed, newId } from "../ids";
import { UniqueViolation } from "../unique-violation";
import { type IdempotencyRequest, keyReused, type Once, priorResult, recordOf, writeOnce } from "./idempotency";
import { type Plan, planRank, type Role, type Team, type User } from "./model";
import type { DerivedWrites, IdempotencyRecord, LoggedVersions, TeamStore, UserWriteResult } from "./team-store";

// Admin writes to the source of truth, one atomic step per change: the user
// rows, the directory change-log rows the team caches catch up from, and the
// outbox rows holding the change's domain mutations commit together (one D1
// batch / MySQL transaction, storage/sql-store.ts). A crash at any point
// leaves all of it or none of it.
//
// After the commit, two best-effort pushes, concurrently:
// - the relay publishes the write's outbox rows to the queue and marks them
//   sent (src/domains/outbox.ts); if it fails or the process dies, the rows
//   stay unsent and the cron sweep relays them (the consumer dedupes);
// - the write's change events go to the team's cache; if that fails, the
//   cache finds the gap and catches up from the log.
// Neither failure is the caller's error: their write is durable and whatever
// derives from it is committed with it.

export interface LifecycleDeps {
  store: TeamStore;
  /** The queue the relay publishes domain mutations to. */
  mutations: MutationPublisher;
  heals: HealPublisher;
  clock: Clock;
  /** Reads a write's change events back (with `changes`: the Worker passes both). */
  directory?: Pick<DirectorySource, "changesSince">;
  /** The team caches. Without it (or `directory`), caches learn of the write from the log alone. */
  changes?: ChangePublisher;
  /** Logs swallowed failures of the pushes after a commit; the Worker passes console.error. */
  onPublishError?: (error: unknown) => void;
}

export interface NewTeamInput {
  id?: string;
  name: string;
  plan: Plan;
  claimedDomains: string[];
}

export interface NewUserInput {
  id?: string;
  email: string;
  domain: string;
  role: Role;
}

export interface UserChange {
  email?: string;
  domain?: string;
  role?: Role;
  deactivated?: boolean;
}

/** Keeps a message well under the 128 KB queue message limit (~60 bytes a delta). */
const DELTAS_PER_MESSAGE = 500;

/**
 * An import of more users than this logs one `reload` per page rather than
 * an event per user: the cache reloads once (a reload reads the latest
 * version, so it skips the later pages' reloads) instead of replaying them.
 */
export const USER_EVENTS_INLINE = 1000;

/** Events read back per changesSince call when pushing a write's events. */
const READ_BACK_PAGE = 1000;

/** CAS retries before a hot user's edit gives up with a conflict. */
const MAX_CAS_ATTEMPTS = 5;

export async function createTeam(deps: LifecycleDeps, input: NewTeamInput): Promise<Team> {
  const team: Team = {
    id: input.id ?? newId("T"),
    name: input.name,
    plan: input.plan,
    claimedDomains: [...new Set(input.claimedDomains)],
    createdAt: deps.clock.now(),
    healedAt: null,
  };
  if (!(await deps.store.createTeam(team))) throw conflict(`team ${team.id} already exists`);
  return team;
}

export async function updateTeam(
  deps: LifecycleDeps,
  teamId: string,
  patch: { name?: string; plan?: Plan; claimedDomains?: string[] },
): Promise<Team> {
  const before = await requireTeam(deps.store, teamId);
  const claimedDomains = patch.claimedDomains && [...new Set(patch.claimedDomains)];
  // A plan upgrade changes who may invite whom; recount before it matters.
  // The team is flagged for the sweep in the same statement as the upgrade,
  // so a crash before the heal request below still gets the recount.
  const upgrade = patch.plan !== undefined && planRank(patch.plan) > planRank(before.plan);
  const now = deps.clock.now();
  const team = await deps.store.updateTeam(teamId, {
    ...patch,
    claimedDomains,
    ...(upgrade ? { healNeededAt: now } : {}),
  });
  if (!team) throw notFound(`team ${teamId} not found`);
  if (upgrade) await deps.heals.requestHeal({ v: 1, teamId, reason: "plan_upgrade", requestedAt: now });
  return team;
}

export async function createUser(
  deps: LifecycleDeps,
  teamId: string,
  input: NewUserInput,
  idempotency?: IdempotencyRequest,
): Promise<User> {
  const [user] = await importUsers(deps, teamId, [input], {
    cause: "user_created",
    record: idempotency ? (page) => recordOf(idempotency, page[0], deps.clock.now()) : undefined,
  });
  if (!user) throw new Error("importUsers returned no user");
  return user;
}

/** createUser, at most once per Idempotency-Key. */
export function createUserOnce(
  deps: LifecycleDeps,
  teamId: string,
  input: NewUserInput,
  idempotency: IdempotencyRequest | null,
): Promise<Once<User>> {
  return writeOnce(deps.store, teamId, idempotency, (idem) => createUser(deps, teamId, input, idem));
}

/** What an import answers (and what its key's record holds once it has landed). */
export interface ImportSummary {
  imported: number;
  pages: number;
}

/**
 * An import, all or nothing, at most once per Idempotency-Key. Its pages
 * are staged (TeamStore.stageUsers: each its own unit, invisible to every
 * reader), then landed in one unit with everything derived from them:
 * users, change log, the import's coalesced deltas (outbox) and the key's
 * record. A crash part-way leaves nothing visible; the same request retried
 * with its key stages only the pages still missing (ids a request leaves to
 * us are derived from the key, so they come out the same) and lands; a
 * retry after the landing answers its summary. Without a key the import
 * stages under a key of its own: all or nothing still, not resumable
 * (abandoned stagings are pruned by the cron sweep after a day).
 *
 * A landing can race another run of the same import (an attempt whose
 * landing outlived its time bound and committed late): the key's record is
 * inserted first in the landing unit, so the second landing fails whole on
 * it and answers the first's summary.
 */
export async function importUsersOnce(
  deps: LifecycleDeps,
  teamId: string,
  inputs: NewUserInput[],
  pageSize: number,
  idempotency: IdempotencyRequest | null,
): Promise<Once<ImportSummary>> {
  const summary: ImportSummary = { imported: inputs.length, pages: Math.ceil(inputs.length / pageSize) };
  // A space cannot occur in a client's key (printable ASCII without spaces): no collision.
  const importKey = idempotency?.key ?? `request ${newId("U")}`;
  const requestHash = idempotency?.requestHash ?? "";
  if (idempotency) {
    const prior = await priorResult<ImportSummary>(deps.store, teamId, idempotency);
    if (prior) return { value: prior, replayed: true };
  }
  await requireTeam(deps.store, teamId);
  const staged = await deps.store.stagedImport(teamId, importKey);
  if (staged && staged.requestHash !== requestHash) {
    throw keyReused();
  }
  const now = deps.clock.now();
  const all: User[] = [];
  for (const [i, u] of inputs.entries()) {
    const id = u.id ?? (idempotency ? await idFromSeed("U", `${teamId}\n${importKey}\n${i}`) : newId("U"));
    all.push(newUser(teamId, u, id, now));
  }
  rejectDuplicatesWithin(all);
  const existing = await deps.store.findExisting(
    teamId,
    all.map((u) => u.email),
    all.map((u) => u.id),
  );
  if (existing.emails.length > 0 || existing.ids.length > 0) {
    if (staged) await deps.store.dropStagedUsers(teamId, importKey);
    throw conflict("some users already exist in this team; nothing was imported", existing);
  }
  // Pages are staged whole, in order: what is staged is a prefix of `all`.
  for (let i = staged?.users ?? 0; i < all.length; i += pageSize) {
    await deps.store.stageUsers(importKey, requestHash, all.slice(i, i + pageSize), now);
  }
  const deltas = all.flatMap((u) => deltasForChange(teamId, null, contributionOf(u)));
  const log = all.length > USER_EVENTS_INLINE ? "reload" : "users";
  const derived = derive(deps, teamId, "bulk_import", deltas, log);
  if (idempotency) derived.idempotency = recordOf(idempotency, summary, deps.clock.now());
  let written: UserWriteResult;
  try {
    written = await deps.store.landStagedUsers(
      teamId,
      importKey,
      derived,
      all.map((u) => u.id),
    );
  } catch (error) {
    if (!(error instanceof UniqueViolation)) throw error;
    if (idempotency) {
      // Another run of this import landed first: its answer is ours.
      const landed = await priorResult<ImportSummary>(deps.store, teamId, idempotency);
      if (landed) {
        await deps.store.dropStagedUsers(teamId, importKey);
        return { value: landed, replayed: true };
      }
    }
    // A user written meanwhile took one of the emails or ids: nothing lands.
    await deps.store.dropStagedUsers(teamId, importKey);
    throw conflict("a user with one of these ids or emails was created meanwhile; nothing was imported");
  }
  await Promise.all([relay(deps, derived.outbox), pushChanges(deps, written.logged ? [written.logged] : [])]);
  return { value: summary, replayed: false };
}

/** changeUser, at most once per Idempotency-Key. */
export function changeUserOnce(
  deps: LifecycleDeps,
  teamId: string,
  userId: string,
  change: UserChange,
  idempotency: IdempotencyRequest | null,
): Promise<Once<User>> {
  return writeOnce(deps.store, teamId, idempotency, (idem) => changeUser(deps, teamId, userId, change, idem));
}

export interface ImportOptions {
  /** Users per atomic insert (and per published mutation). */
  pageSize?: number;
  cause?: DomainMutationMessage["cause"];
  /** The Idempotency-Key record the write commits with (createUser's result). */
  record?: (page: User[]) => IdempotencyRecord;
}

/**
 * Inserts users in atomic pages; each page commits with its change-log rows
 * and its coalesced deltas (outbox rows), which are relayed right after.
 * Conflicts with existing users, and repeats inside the request, are found
 * before anything is written, so a bad request changes nothing. Only a
 * concurrent writer racing for the same email can stop an import part-way;
 * the conflict then says how many users were imported (whole pages, each
 * with all it derives). The caches get the import's events once, at the end.
 */
export async function importUsers(
  deps: LifecycleDeps,
  teamId: string,
  inputs: NewUserInput[],
  options: ImportOptions = {},
): Promise<User[]> {
  const { pageSize = 1000, cause = "bulk_import" } = options;
  await requireTeam(deps.store, teamId);
  const now = deps.clock.now();
  const users = inputs.map((u) => newUser(teamId, u, u.id ?? newId("U"), now));
  rejectDuplicatesWithin(users);
  const existing = await deps.store.findExisting(
    teamId,
    users.map((u) => u.email),
    users.map((u) => u.id),
  );
  if (existing.emails.length > 0 || existing.ids.length > 0) {
    throw conflict("some users already exist in this team", existing);
  }
  const log = users.length > USER_EVENTS_INLINE ? "reload" : "users";
  const logged: LoggedVersions[] = [];
  // A page's relay runs while the next page commits (relay never rejects).
  let relaying = Promise.resolve();
  try {
    for (let i = 0; i < users.length; i += pageSize) {
      const page = users.slice(i, i + pageSize);
      const deltas = page.flatMap((u) => deltasForChange(teamId, null, contributionOf(u)));
      const derived = derive(deps, teamId, cause, deltas, log);
      if (options.record) derived.idempotency = options.record(page);
      let written: UserWriteResult;
      try {
        written = await deps.store.insertUsers(page, derived);
      } catch (error) {
        if (error instanceof UniqueViolation) {
          throw conflict("a user with one of these ids or emails was created concurrently", { imported: i });
        }
        throw error;
      }
      if (written.logged) logged.push(written.logged);
      await relaying;
      relaying = relay(deps, derived.outbox);
    }
  } finally {
    // Also after a conflict part-way: the pages that committed are the caches' to see.
    await Promise.all([relaying, pushChanges(deps, logged)]);
  }
  return users;
}

/**
 * Email change, role change, deactivation (and reactivation). The delta is
 * derived from the row the compare-and-set replaced, so concurrent edits of
 * one user each publish the change they actually made.
 */
export async function changeUser(
  deps: LifecycleDeps,
  teamId: string,
  userId: string,
  change: UserChange,
  idempotency?: IdempotencyRequest,
): Promise<User> {
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    const current = await deps.store.getUser(teamId, userId);
    if (!current) throw notFound(`user ${userId} not found in team ${teamId}`);
    const next: User = {
      ...current,
      email: change.email ?? current.email,
      domain: change.domain ?? current.domain,
      role: change.role ?? current.role,
      deactivated: change.deactivated ?? current.deactivated,
    };
    const now = deps.clock.now();
    const cause = change.deactivated === true && !current.deactivated ? "user_deactivated" : "user_updated";
    const deltas = deltasForChange(teamId, contributionOf(current), contributionOf(next));
    const derived = derive(deps, teamId, cause, deltas, "users");
    if (idempotency) derived.idempotency = recordOf(idempotency, { ...next, updatedAt: now }, now);
    let written: UserWriteResult | null;
    try {
      written = await deps.store.updateUser(teamId, userId, current.version, change, now, derived);
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw conflict(`email ${change.email} is already used in team ${teamId}`);
      }
      throw error;
    }
    if (!written) continue;
    await Promise.all([relay(deps, derived.outbox), pushChanges(deps, written.logged ? [written.logged] : [])]);
    return { ...next, updatedAt: now };
  }
  throw conflict(`user ${userId} is being changed concurrently; retry`);
}

function contributionOf(u: User): Contribution {
  return { domain: u.domain, role: u.role, active: !u.deactivated };
}

/** The team, or not_found. */
export async function requireTeam(store: Pick<TeamStore, "getTeam">, teamId: string): Promise<Team> {
  const team = await store.getTeam(teamId);
  if (!team) throw notFound(`team ${teamId} not found`);
  return team;
}

/** A new, active user of `teamId` from an admin's input. */
function newUser(teamId: string, u: NewUserInput, id: string, now: number): User {
  return {
    teamId,
    id,
    email: u.email,
    domain: u.domain,
    role: u.role,
    deactivated: false,
    createdAt: now,
    updatedAt: now,
  };
}

function rejectDuplicatesWithin(users: User[]): void {
  const emails = new Set<string>();
  const ids = new Set<string>();
  const dupEmails: string[] = [];
  const dupIds: string[] = [];
  for (const u of users) {
    if (emails.has(u.email)) dupEmails.push(u.email);
    if (ids.has(u.id)) dupIds.push(u.id);
    emails.add(u.email);
    ids.add(u.id);
  }
  if (dupEmails.length > 0 || dupIds.length > 0) {
    throw badRequest("the request repeats an email or id", { emails: dupEmails, ids: dupIds });
  }
}

/** The change log mode and the outbox rows (the coalesced deltas as messages) of one write. */
function derive(
  deps: LifecycleDeps,
  teamId: string,
  cause: DomainMutationMessage["cause"],
  deltas: DomainDelta[],
  log: DerivedWrites["log"],
): DerivedWrites {
  const merged = coalesce(deltas);
  const at = deps.clock.now();
  const outbox: OutboxRow[] = [];
  for (let i = 0; i < merged.length; i += DELTAS_PER_MESSAGE) {
    const message: DomainMutationMessage = {
      v: 1,
      // The outbox row's id too: stable across relays, so the consumer can tell a repeat.
      id: crypto.randomUUID(),
      teamId,
      cause,
      deltas: merged.slice(i, i + DELTAS_PER_MESSAGE).map(({ domain, role, delta }) => ({ domain, role, delta })),
      at,
    };
    outbox.push(mutationRow(message, at));
  }
  return { log, outbox, at };
}

/** Publishes a committed write's outbox rows now; on failure they wait for the sweep (STRANDED_AFTER_MS). */
async function relay(deps: LifecycleDeps, rows: OutboxRow[]): Promise<void> {
  const { failed } = await relayOutbox(rows, { outbox: deps.store, mutations: deps.mutations, clock: deps.clock });
  for (const error of failed) deps.onPublishError?.(error);
}

/** Pushes committed writes' change events to the team caches, in version order; on failure the caches catch up from the log. */
async function pushChanges(deps: LifecycleDeps, logged: LoggedVersions[]): Promise<void> {
  const { directory, changes } = deps;
  if (!directory || !changes || logged.length === 0) return;
  try {
    const byTeam = new Map<string, ChangeEvent[]>();
    for (const { teamId, after, upTo } of logged) {
      const events = byTeam.get(teamId) ?? [];
      byTeam.set(teamId, events);
      for (let since = after; since < upTo; ) {
        const page = await directory.changesSince(teamId, since, Math.min(READ_BACK_PAGE, upTo - since));
        events.push(...page.filter((e) => e.version <= upTo));
        const last = page.at(-1)?.version;
        if (last === undefined || page.length < Math.min(READ_BACK_PAGE, upTo - since)) break;
        since = last;
      }
    }
    for (const [teamId, events] of byTeam) {
      await changes.publish(
        teamId,
        events.sort((a, b) => a.version - b.version),
      );
    }
  } catch (error) {
    deps.onPublishError?.(error);
  }
}
