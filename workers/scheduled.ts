import { depsFor } from "./deps";

/** Teams queued for a heal per cron tick; the next tick takes the rest. */
const SWEEP_LIMIT = 500;

/** The staleness sweep: teams not healed for a while, or marked after a failed publish. */
export async function sweepStaleTeams(env: Env): Promise<number> {
  const deps = depsFor(env);
  const now = deps.clock.now();
  const due = await deps.store.teamsNeedingHeal(now - deps.staleAfterMs, SWEEP_LIMIT);
  for (const teamId of due) await deps.heals.requestHeal({ v: 1, teamId, reason: "stale", requestedAt: now });
  return due.length;
}
