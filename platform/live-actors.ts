import { ReadRounds } from "../src/auth/read-rounds";
import type { Role } from "../src/teams/model";
import { metrics } from "./metrics";
import { teamCacheOf } from "./stubs";

// The caller's live state (role, active) from its team's cache, read in
// rounds per team within this isolate (src/auth/read-rounds.ts): every
// request reads it once (workers/auth.ts principalOf), and a socket storm is
// thousands of such reads at once, each otherwise its own call to the same
// object. Answers are never older than the request that asks.

export interface LiveActor {
  role: Role;
  active: boolean;
}

/** Users per call: the team cache answers them with one indexed query. */
const MAX_BATCH = 256;
/** A round not answered by then is left to its leader; its riders read alone. */
const DEADLINE_MS = 2000;
/** Teams with reads kept per isolate before idle ones are let go. */
const MAX_TEAMS = 1000;

const byNamespace = new WeakMap<Env["TEAM_CACHE"], Map<string, ReadRounds<string, LiveActor>>>();

/** The user's role and active state in the team right now, or null when the team has no such user. */
export async function liveActor(env: Pick<Env, "TEAM_CACHE">, team: string, user: string): Promise<LiveActor | null> {
  metrics.inc("live_actor_reads_total");
  return (await roundsOf(env, team).get(user)) ?? null;
}

function roundsOf(env: Pick<Env, "TEAM_CACHE">, team: string): ReadRounds<string, LiveActor> {
  let teams = byNamespace.get(env.TEAM_CACHE);
  if (!teams) {
    teams = new Map();
    byNamespace.set(env.TEAM_CACHE, teams);
  }
  let rounds = teams.get(team);
  if (!rounds) {
    if (teams.size >= MAX_TEAMS) for (const [t, r] of teams) if (r.idle) teams.delete(t);
    rounds = new ReadRounds<string, LiveActor>(
      async (users) => {
        metrics.inc("live_actor_calls_total");
        return new Map(Object.entries(await teamCacheOf(env, team).actors(team, users)));
      },
      { maxBatch: MAX_BATCH, deadlineMs: DEADLINE_MS },
    );
    teams.set(team, rounds);
  }
  return rounds;
}
