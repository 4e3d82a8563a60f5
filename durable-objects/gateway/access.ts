import type { Access, TopicAccess } from "../../src/realtime/ports";

/** Topic access answered by the team's edge cache (the same visibility rules as the directory). */
export function teamCacheAccess(env: Env): TopicAccess {
  const cache = (team: string) => env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(team));
  const toAccess = (r: { ok: true } | { ok: false; status: number; message: string }): Access =>
    r.ok ? { ok: true } : { ok: false, code: r.status === 404 ? "not_found" : "forbidden", message: r.message };
  return {
    async channel(team, viewer, channelId) {
      return toAccess(await cache(team).channel(team, viewer, channelId));
    },
    async team(team, viewer) {
      return toAccess(await cache(team).lookup(team, viewer, [], []));
    },
  };
}
