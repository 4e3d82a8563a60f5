import type { Clock } from "../clock";
import type { DomainCountStore } from "../domains/count-store";
import type { HealPublisher } from "../domains/messages";
import type { DomainCount } from "../domains/model";
import { notFound } from "../errors";
import { requireTeam } from "./lifecycle";
import type { Team, User } from "./model";
import type { TeamStore } from "./team-store";

// The admin API's reads of a team (routes/admin.ts) and its heal request;
// the writes are in lifecycle.ts.

export function getTeam(deps: { store: Pick<TeamStore, "getTeam"> }, teamId: string): Promise<Team> {
  return requireTeam(deps.store, teamId);
}

/** The user, or not_found. */
export async function getUser(
  deps: { store: Pick<TeamStore, "getUser"> },
  teamId: string,
  userId: string,
): Promise<User> {
  const user = await deps.store.getUser(teamId, userId);
  if (!user) throw notFound(`user ${userId} not found in team ${teamId}`);
  return user;
}

/** Every domain count row of the team. */
export function domainCounts(
  deps: { counts: Pick<DomainCountStore, "readAllCounts"> },
  teamId: string,
): Promise<DomainCount[]> {
  return deps.counts.readAllCounts(teamId);
}

/**
 * Queues a recount of the team's domain counts. Flagged first: a request the
 * queue loses is asked again by the cron sweep.
 */
export async function requestHeal(
  deps: { store: Pick<TeamStore, "getTeam" | "markHealNeeded">; heals: HealPublisher; clock: Clock },
  teamId: string,
): Promise<void> {
  await requireTeam(deps.store, teamId);
  const now = deps.clock.now();
  await deps.store.markHealNeeded(teamId, now);
  await deps.heals.requestHeal({ v: 1, teamId, reason: "admin", requestedAt: now });
}
