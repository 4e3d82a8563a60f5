import type { Access, ChannelAccess, ProfileSource, TopicAccess } from "../../src/realtime/ports";

// The real-time side's view of the directory: the team's edge cache answers
// who may follow what (the same visibility rules as the directory) and
// supplies profiles for just-in-time annotation.

type Denial = { ok: false; status: number; message: string };

function denied(r: Denial): Exclude<Access, { ok: true }> {
  return { ok: false, code: r.status === 404 ? "not_found" : "forbidden", message: r.message };
}

function cacheOf(env: Env, team: string) {
  return env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(team));
}

export function teamCacheAccess(env: Env): TopicAccess {
  return {
    async channel(team, viewer, channelId): Promise<ChannelAccess> {
      const r = await cacheOf(env, team).channelAccess(team, viewer, channelId);
      return r.ok ? { ok: true, host: r.value.host } : denied(r);
    },
    async team(team, viewer): Promise<Access> {
      const r = await cacheOf(env, team).lookup(team, viewer, [], []);
      return r.ok ? { ok: true } : denied(r);
    },
  };
}

export function teamCacheProfiles(env: Env): ProfileSource {
  return {
    async profiles(team, viewers, users) {
      const { profiles, hidden } = await cacheOf(env, team).profiles(team, viewers, users);
      return { profiles: profiles.map((p) => ({ ...p })), hidden };
    },
  };
}
