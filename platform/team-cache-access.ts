import type { ErrorKind } from "../src/errors";
import type {
  Access,
  Actor,
  ChannelAccess,
  ChannelGrant,
  LiveState,
  ProfileSource,
  TopicAccess,
} from "../src/realtime/ports";
import { teamCacheOf } from "./stubs";

// The real-time side's view of the directory: the team's edge cache answers
// who may follow what (the same visibility rules as the directory), what
// each user's live role and active state are (re-checks), and supplies
// profiles for just-in-time annotation.

/** Users per actors() call to the cache: one RPC for the usual handful, pages for a whole gateway. */
const ACTOR_PAGE = 1_000;

type Denial = { ok: false; kind: ErrorKind; message: string };

/** Not found stays not found; any other refusal (forbidden, a bad cursor) is forbidden. */
function denied(r: Denial): Exclude<Access, { ok: true }> {
  return { ok: false, code: r.kind === "not_found" ? "not_found" : "forbidden", message: r.message };
}

function cacheOf(env: Env, team: string) {
  return teamCacheOf(env, team);
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
    async channelGrant(team, viewer, channelId): Promise<ChannelGrant> {
      // The viewer's card of the channel, under the same visibility rule as
      // channelAccess (one call, which also says whether it is private or
      // shared); a shared channel's host comes from channelAccess.
      const cache = cacheOf(env, team);
      const r = await cache.lookup(team, viewer, [], [channelId]);
      if (!r.ok) return denied(r);
      const card = r.value.channels.find((c) => c.id === channelId);
      if (!card) return { ok: false, code: "not_found", message: `channel ${channelId} not found` };
      if (card.is_shared) {
        const a = await cache.channelAccess(team, viewer, channelId);
        return a.ok ? { ok: true, host: a.value.host, everyMember: false } : denied(a);
      }
      return { ok: true, host: team, everyMember: !card.is_private };
    },
  };
}

export function teamCacheLiveState(env: Env): LiveState {
  return {
    async actors(team, users) {
      const out = new Map<string, Actor>();
      for (let i = 0; i < users.length; i += ACTOR_PAGE) {
        const found = await cacheOf(env, team).actors(team, users.slice(i, i + ACTOR_PAGE));
        for (const [id, actor] of Object.entries(found)) out.set(id, actor);
      }
      return out;
    },
    async visible(team, viewer, users, channels) {
      const r = await cacheOf(env, team).visible(team, viewer, users, channels);
      if (!r.ok) return denied(r);
      return { ok: true, users: new Set(r.value.users.ids), channels: new Set(r.value.channels.ids) };
    },
    async membersAmong(team, channels, users) {
      const found = await cacheOf(env, team).membersAmong(team, channels, users);
      return new Map(Object.entries(found).map(([c, list]) => [c, new Set(list)]));
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
