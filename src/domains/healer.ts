import type { Clock } from "../clock";
import type { Team } from "../teams/model";
import type { TeamStore } from "../teams/team-store";
import type { DomainCountStore } from "./count-store";
import type { HealPublisher, HealRequest, MutationPublisher } from "./messages";
import { type DomainCount, type DomainDelta, keyOf, TEAM_TOTAL_DOMAIN } from "./model";
import { redeliverUnapplied, relayStranded } from "./outbox";

export interface HealerDeps {
  store: TeamStore;
  counts: DomainCountStore;
  heals: HealPublisher;
  /** Where the team's unsent outbox rows are relayed before the recount (phase 0). */
  mutations: MutationPublisher;
  clock: Clock;
  /** Identifies this run in the lease row. */
  owner: string;
  pageSize?: number;
  leaseMs?: number;
  /**
   * How long a committed user write may wait in the queue before its mutation
   * is applied. A heal that saw writes this recent schedules a verification
   * heal this long after it.
   */
  settleSeconds?: number;
}

export interface HealReport {
  status: "healed";
  teamId: string;
  usersCounted: number;
  keysCompared: number;
  /** Keys whose stored count differed from the recount. */
  keysRepaired: number;
  /** Sum of |recount - stored| over all keys: how far the aggregate had drifted. */
  drift: number;
  /** Keys that moved while the heal ran. */
  racedKeys: number;
  /** Outbox rows of the team a crash (or a failed send) had left unsent, relayed in phase 0. */
  strandedMutations: number;
  /**
   * Rows sent but not applied yet (in the queue, or lost by it: those older
   * than the settle period are sent again in phase 0). Their deltas are
   * still to land on counts the recount already covers.
   */
  unappliedMutations: number;
  /**
   * A verification heal was scheduled (keys moved, user writes were recent
   * enough to be in flight, or the team's outbox held mutations not yet applied).
   */
  verifyScheduled: boolean;
  ms: { read: number; recount: number; compare: number; apply: number; total: number };
}

/**
 * `busy`: another heal holds the team's lease, until `retryAfterMs` from now
 * at the latest (it renews while it runs; a crashed one's lease runs out).
 */
export type HealOutcome =
  | HealReport
  | { status: "busy"; teamId: string; retryAfterMs: number }
  | { status: "no_team"; teamId: string };

/** The heal lost its lease (it ran longer than the lease without renewing, and another heal took it over). */
export class HealLeaseLost extends Error {
  override readonly name = "HealLeaseLost";
}

/**
 * A queued heal request is covered when a heal started after it was made:
 * healed_at is a heal's start, so that heal saw everything the request did.
 */
export function coveredByLastHeal(team: Pick<Team, "healedAt">, request: Pick<HealRequest, "requestedAt">): boolean {
  return team.healedAt !== null && team.healedAt > request.requestedAt;
}

export const DEFAULT_PAGE_SIZE = 2000;
/**
 * How long a heal's lease lasts unless renewed. Short, so a crashed heal
 * blocks its team's heals for at most this long (its retries wait that out);
 * a running heal renews it between pages, at a third of it.
 */
export const DEFAULT_LEASE_MS = 60_000;
export const DEFAULT_SETTLE_SECONDS = 30;

/**
 * When a queue should try a busy heal again: once the holder's lease has run
 * out, plus a second. A live holder renews it and the retry is busy again
 * (its heal covers the request anyway); a crashed holder's lease is gone by
 * then, so a crashed heal never outlasts the retries.
 */
export function busyRetrySeconds(retryAfterMs: number): number {
  return Math.min(Math.max(Math.ceil(retryAfterMs / 1000) + 1, 2), Math.ceil(DEFAULT_LEASE_MS / 1000) + 1);
}

/**
 * The five-phase healer, after a phase 0.
 *
 * 0. relay the team's outbox rows still unsent (a crash between a user
 *    write's commit and its relay left them; the cron sweep would too, later):
 *    their user writes are in the recount and their deltas are about to land,
 *    so they are in flight like any queued mutation, and verified below;
 * 1. read the team's stored counts;
 * 2. recount active users in memory, paging through them by id;
 * 3. compare (and re-read, to see whether mutations landed meanwhile);
 * 4. compute the deltas recount - stored;
 * 5. apply the deltas with the same relative upserts the consumer uses.
 *
 * Why relative: a mutation applied between phases 1 and 5 is still in the row
 * after the heal adds its delta; an absolute SET would erase it. Why phase 1
 * comes before the recount: a user written after their page was read is not
 * in the recount, and their mutation lands after phase 1, so it survives in
 * the row; reading counts after the recount could lose it. The price is the
 * opposite error for a mutation whose user write the recount saw but whose
 * delta lands after phase 1 (it was in flight when the heal started): it is
 * counted twice. So a heal that sees keys move during phase 3, or user writes
 * recent enough to still be in flight (within `settleSeconds` of its start),
 * schedules a verification heal `settleSeconds` later, once those mutations
 * have landed; so does a heal that found outbox rows not yet applied
 * (phase 0), unsent or sent, whose user writes may be older than that: the
 * fault suite saw a message the local queue lost in a crash land, resent,
 * after a heal whose settle window had passed, counted twice for good.
 * Never lost; over-counted by
 * in-flight mutations for at most a settle period after a heal; exact once
 * writes pause for that long.
 *
 * The team's healed_at is the heal's start: counts are exact as of the
 * mutations that had landed then, which is what lets a queued heal request
 * older than that be skipped.
 *
 * Why a lease: two heals of one team computing the same delta would both
 * apply it. A single conditional UPDATE on the team row takes the lease, so
 * at most one heal per team runs at a time; a crashed heal's lease expires
 * within DEFAULT_LEASE_MS. A running heal renews it as it goes, and renews
 * it once more right before applying: a heal that lost it (stalled past its
 * lease while another took over) applies nothing (HealLeaseLost).
 */
export async function healTeam(teamId: string, deps: HealerDeps): Promise<HealOutcome> {
  const { store, counts, clock } = deps;
  const leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
  const t0 = clock.now();
  if (!(await store.acquireHealLease(teamId, deps.owner, t0, leaseMs))) {
    if (!(await store.getTeam(teamId))) return { status: "no_team", teamId };
    const until = await store.healLeaseUntil(teamId);
    return { status: "busy", teamId, retryAfterMs: Math.max(0, (until ?? t0) - t0) };
  }
  // Flagged while it runs: a heal that dies with its process (or fails) leaves
  // the team flagged, and the cron sweep asks again; a finished heal clears it.
  await store.markHealNeeded(teamId, t0);
  let renewedAt = t0;
  /** Renews the lease when a third of it has gone by (or always, with force); throws when it was lost. */
  const keepLease = async (force = false) => {
    const now = clock.now();
    if (!force && now - renewedAt < leaseMs / 3) return;
    if (!(await store.renewHealLease(teamId, deps.owner, now, leaseMs))) {
      throw new HealLeaseLost(`heal ${deps.owner} of ${teamId} lost its lease`);
    }
    renewedAt = now;
  };
  let healedAt: number | null = null;
  let verifyAt: number | null = null;
  try {
    const { stranded, unapplied } = await owedMutationsOf(teamId, deps);
    const before = await counts.readAllCounts(teamId);
    const t1 = clock.now();

    const recount = await recountActiveUsers(teamId, store, deps.pageSize ?? DEFAULT_PAGE_SIZE, keepLease);
    const t2 = clock.now();

    const after = await counts.readAllCounts(teamId);
    const raced = movedKeys(before, after);
    const deltas = diff(teamId, before, recount.counts);
    const t3 = clock.now();

    await keepLease(true);
    await counts.applyDeltas(deltas, t3);
    await counts.deleteZeroRows(teamId);
    const lastWrite = await store.lastUserWriteAt(teamId);
    const t4 = clock.now();
    healedAt = t0;

    const settleSeconds = deps.settleSeconds ?? DEFAULT_SETTLE_SECONDS;
    const verify =
      raced > 0 || stranded > 0 || unapplied > 0 || (lastWrite !== null && lastWrite >= t0 - settleSeconds * 1000);
    if (verify) {
      await deps.heals.requestHeal({ v: 1, teamId, reason: "verify", requestedAt: t4 }, settleSeconds);
      verifyAt = t4;
    }
    return {
      status: "healed",
      teamId,
      usersCounted: recount.users,
      keysCompared: new Set([...before.map(keyOf), ...recount.counts.keys()]).size,
      keysRepaired: deltas.length,
      drift: deltas.reduce((s, d) => s + Math.abs(d.delta), 0),
      racedKeys: raced,
      strandedMutations: stranded,
      unappliedMutations: unapplied,
      verifyScheduled: verify,
      ms: { read: t1 - t0, recount: t2 - t1, compare: t3 - t2, apply: t4 - t3, total: t4 - t0 },
    };
  } finally {
    await store.releaseHealLease(teamId, deps.owner, healedAt);
    // A heal owed a verification stays flagged until one finishes: if the
    // delayed request is lost (a queue that drops it, a purge), the cron
    // sweep still runs it, instead of the double count waiting a day.
    if (verifyAt !== null) await store.markHealNeeded(teamId, verifyAt);
  }
}

/**
 * Phase 0: the team's outbox rows whose deltas are still to land. Unsent
 * rows (a crash, a failed send) are relayed now; sent rows not applied yet
 * are counted, and those sent longer than the settle period ago (lost by the
 * queue, most likely) are sent again, so the verification finds them landed.
 * Any of either means this heal's recount runs ahead of the counts, and a
 * verification follows.
 */
async function owedMutationsOf(teamId: string, deps: HealerDeps): Promise<{ stranded: number; unapplied: number }> {
  const relay = { outbox: deps.store, mutations: deps.mutations, clock: deps.clock };
  let stranded = 0;
  try {
    const { found, failed } = await relayStranded(relay, { teamId, minAgeMs: 0 });
    for (const error of failed) console.error(`heal of ${teamId}: relaying an unsent mutation failed`, error);
    stranded = found;
  } catch (error) {
    // Could not even read the outbox: assume something is in flight.
    console.error(`heal of ${teamId}: reading its unsent mutations failed`, error);
    stranded = 1;
  }
  try {
    const settleMs = (deps.settleSeconds ?? DEFAULT_SETTLE_SECONDS) * 1000;
    const resent = await redeliverUnapplied(relay, { teamId, olderThanMs: settleMs });
    for (const error of resent.failed) console.error(`heal of ${teamId}: sending a lost mutation again failed`, error);
    const owed = await deps.store.unappliedOutbox({ sentBefore: deps.clock.now() + 1, limit: 1_000, teamId });
    return { stranded, unapplied: owed.length };
  } catch (error) {
    console.error(`heal of ${teamId}: reading its unapplied mutations failed`, error);
    return { stranded, unapplied: 1 };
  }
}

interface Recount {
  users: number;
  /** keyOf(key) -> expected count, team totals included. */
  counts: Map<string, { domain: string; role: DomainCount["role"]; count: number }>;
}

async function recountActiveUsers(
  teamId: string,
  store: TeamStore,
  pageSize: number,
  betweenPages: () => Promise<void>,
): Promise<Recount> {
  const counts: Recount["counts"] = new Map();
  const bump = (domain: string, role: DomainCount["role"]) => {
    const k = keyOf({ teamId, domain, role });
    const seen = counts.get(k);
    if (seen) seen.count += 1;
    else counts.set(k, { domain, role, count: 1 });
  };
  let users = 0;
  let after: string | null = null;
  for (;;) {
    await betweenPages();
    const page = await store.listActiveUsers(teamId, after, pageSize);
    for (const u of page) {
      bump(u.domain, u.role);
      bump(TEAM_TOTAL_DOMAIN, u.role);
    }
    users += page.length;
    if (page.length < pageSize) break;
    after = page[page.length - 1]?.id ?? null;
  }
  return { users, counts };
}

function diff(teamId: string, stored: DomainCount[], recount: Recount["counts"]): DomainDelta[] {
  const deltas: DomainDelta[] = [];
  const storedByKey = new Map(stored.map((c) => [keyOf(c), c]));
  for (const [k, want] of recount) {
    const have = storedByKey.get(k)?.count ?? 0;
    if (have !== want.count) deltas.push({ teamId, domain: want.domain, role: want.role, delta: want.count - have });
  }
  for (const [k, have] of storedByKey) {
    if (!recount.has(k) && have.count !== 0)
      deltas.push({ teamId, domain: have.domain, role: have.role, delta: -have.count });
  }
  return deltas;
}

function movedKeys(before: DomainCount[], after: DomainCount[]): number {
  const was = new Map(before.map((c) => [keyOf(c), c.count]));
  let moved = 0;
  for (const c of after) if ((was.get(keyOf(c)) ?? 0) !== c.count) moved++;
  return moved;
}
