import type { RecDeps } from "../src/recommend/ports";

// The recommenders' ports over the Worker's bindings: candidates and features
// from the team's RecStore, what the user may see from the team's edge cache.

export function recDepsFor(env: Env): RecDeps {
  const cache = (team: string) => env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(team));
  return {
    store: {
      async candidates(req) {
        const store = env.REC_STORE.get(env.REC_STORE.idFromName(req.team));
        return store.candidates(req.team, req.source, req.user, req.context);
      },
    },
    directory: {
      async channels(team, viewer, ids) {
        if (ids.length === 0) return [];
        const r = await cache(team).lookup(team, viewer, [], ids);
        if (!r.ok) throw new Error(`directory lookup failed: ${r.message}`);
        return r.value.channels.map((ch) => ({
          id: ch.id,
          name: ch.name,
          is_private: ch.is_private,
          is_archived: ch.is_archived,
          is_member: ch.is_member,
        }));
      },
      async users(team, viewer, ids) {
        if (ids.length === 0) return [];
        const r = await cache(team).lookup(team, viewer, ids, []);
        if (!r.ok) throw new Error(`directory lookup failed: ${r.message}`);
        return r.value.users.map((u) => ({ id: u.id, deleted: u.deleted, is_bot: u.is_bot }));
      },
    },
  };
}
