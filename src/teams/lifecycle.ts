import type { Clock } from "../clock";
import { type Contribution, coalesce, deltasForChange } from "../domains/deltas";
import type { DomainMutationMessage, HealPublisher, MutationPublisher } from "../domains/messages";
import type { DomainDelta } from "../domains/model";
import { AppError, conflict, notFound } from "../errors";
import { newId } from "../ids";
import { UniqueViolation } from "../unique-violation";
import { type Plan, planRank, type Role, type Team, type User } from "./model";
import type { TeamStore } from "./team-store";

// Admin writes to the source of truth. Each one commits the user rows first
// and then publishes the matching domain mutation. A publish that fails after
// the commit is not an error for the caller (their write is durable): the team
// is marked so the staleness sweep heals it.

export interface LifecycleDeps {
  store: TeamStore;
  mutations: MutationPublisher;
  heals: HealPublisher;
  clock: Clock;
  /** Logs swallowed publish failures; the Worker passes console.error. */
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

/** CAS retries before a hot user's edit gives up with 409. */
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
  const team = await deps.store.updateTeam(teamId, { ...patch, claimedDomains });
  if (!team) throw notFound(`team ${teamId} not found`);
  // A plan upgrade changes who may invite whom; recount before it matters.
  if (patch.plan && planRank(patch.plan) > planRank(before.plan)) {
    await deps.heals.requestHeal({ v: 1, teamId, reason: "plan_upgrade", requestedAt: deps.clock.now() });
  }
  return team;
}

export async function createUser(deps: LifecycleDeps, teamId: string, input: NewUserInput): Promise<User> {
  const [user] = await importUsers(deps, teamId, [input], { cause: "user_created" });
  if (!user) throw new Error("importUsers returned no user");
  return user;
}

export interface ImportOptions {
  /** Users per atomic insert (and per published mutation). */
  pageSize?: number;
  cause?: DomainMutationMessage["cause"];
}

/**
 * Inserts users in atomic pages and publishes each page's coalesced deltas.
 * Conflicts with existing users, and repeats inside the request, are found
 * before anything is written, so a bad request changes nothing. Only a
 * concurrent writer racing for the same email can stop an import part-way;
 * the 409 then says how many users were imported.
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
  const users: User[] = inputs.map((u) => ({
    teamId,
    id: u.id ?? newId("U"),
    email: u.email,
    domain: u.domain,
    role: u.role,
    deactivated: false,
    createdAt: now,
    updatedAt: now,
  }));
  rejectDuplicatesWithin(users);
  const existing = await deps.store.findExisting(
    teamId,
    users.map((u) => u.email),
    users.map((u) => u.id),
  );
  if (existing.emails.length > 0 || existing.ids.length > 0) {
    throw conflict("some users already exist in this team", existing);
  }
  for (let i = 0; i < users.length; i += pageSize) {
    const page = users.slice(i, i + pageSize);
    try {
      await deps.store.insertUsers(page);
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw conflict("a user with one of these ids or emails was created concurrently", { imported: i });
      }
      throw error;
    }
    const deltas = page.flatMap((u) => deltasForChange(teamId, null, contributionOf(u)));
    await publish(deps, teamId, cause, deltas);
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
    let swapped: boolean;
    try {
      swapped = await deps.store.updateUser(teamId, userId, current.version, change, now);
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw conflict(`email ${change.email} is already used in team ${teamId}`);
      }
      throw error;
    }
    if (!swapped) continue;
    const deltas = deltasForChange(teamId, contributionOf(current), contributionOf(next));
    const cause = change.deactivated === true && !current.deactivated ? "user_deactivated" : "user_updated";
    await publish(deps, teamId, cause, deltas);
    return { ...next, updatedAt: now };
  }
  throw new AppError(409, "conflict", `user ${userId} is being changed concurrently; retry`);
}

function contributionOf(u: User): Contribution {
  return { domain: u.domain, role: u.role, active: !u.deactivated };
}

async function requireTeam(store: TeamStore, teamId: string): Promise<Team> {
  const team = await store.getTeam(teamId);
  if (!team) throw notFound(`team ${teamId} not found`);
  return team;
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
    throw new AppError(400, "bad_request", "the request repeats an email or id", { emails: dupEmails, ids: dupIds });
  }
}

async function publish(
  deps: LifecycleDeps,
  teamId: string,
  cause: DomainMutationMessage["cause"],
  deltas: DomainDelta[],
): Promise<void> {
  const merged = coalesce(deltas);
  if (merged.length === 0) return;
  const at = deps.clock.now();
  const messages: DomainMutationMessage[] = [];
  for (let i = 0; i < merged.length; i += DELTAS_PER_MESSAGE) {
    messages.push({
      v: 1,
      id: crypto.randomUUID(),
      teamId,
      cause,
      deltas: merged.slice(i, i + DELTAS_PER_MESSAGE).map(({ domain, role, delta }) => ({ domain, role, delta })),
      at,
    });
  }
  try {
    await deps.mutations.publish(messages);
  } catch (error) {
    deps.onPublishError?.(error);
    await deps.store.markHealNeeded(teamId, deps.clock.now());
  }
}
