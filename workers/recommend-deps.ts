import { VISIBLE, type VisibleSet } from "../durable-objects/team-cache/queries";
import { recStoreOf, teamCacheOf } from "../platform/stubs";
import { fromBlock } from "../src/recommend/candidate-block";
import type { ChannelView, RecDeps, UserView } from "../src/recommend/ports";

// The recommenders' ports over the Worker's bindings: candidates and features
// from the team's RecStore, what the user may see from the team's edge cache.
// Built once per request: what the directory answered is remembered for the
// rest of the request, so a reranker asking again about channels a filter
// already checked costs no second round trip (and sees the same answer).

export function recDepsFor(env: Env): RecDeps {
  const cache = (team: string) => teamCacheOf(env, team);
  // Per team and viewer, per id: the view, or null when the viewer may not see it.
  const channels = new Map<string, Map<string, ChannelView | null>>();
  const users = new Map<string, Map<string, UserView | null>>();
  const memoOf = <V>(memo: Map<string, Map<string, V | null>>, team: string, viewer: string) => {
    const key = `${team} ${viewer}`;
    let m = memo.get(key);
    if (!m) {
      m = new Map();
      memo.set(key, m);
    }
    return m;
  };
  /** The views of `ids` the viewer may see, asking the cache only about ids this request has not asked about. */
  const lookup = async <V>(
    known: Map<string, V | null>,
    ids: string[],
    fetch: (missing: string[]) => Promise<void>,
  ): Promise<V[]> => {
    const missing = ids.filter((id) => !known.has(id));
    if (missing.length > 0) await fetch(missing);
    const out: V[] = [];
    for (const id of ids) {
      const v = known.get(id);
      if (v) out.push(v);
    }
    return out;
  };
  const ask = async (team: string, viewer: string, userIds: string[], channelIds: string[]): Promise<VisibleSet> => {
    const r = await cache(team).visible(team, viewer, userIds, channelIds);
    if (!r.ok) throw new Error(`directory lookup failed: ${r.message}`);
    return r.value;
  };

  return {
    store: {
      async candidates(req) {
        const store = recStoreOf(env, req.team);
        return fromBlock(await store.candidates(req.team, req.source, req.user, req.context));
      },
    },
    directory: {
      channels(team, viewer, ids) {
        const known = memoOf(channels, team, viewer);
        return lookup(known, ids, async (missing) => {
          const seen = (await ask(team, viewer, [], missing)).channels;
          for (const id of missing) known.set(id, null);
          for (let i = 0; i < seen.ids.length; i++) {
            const id = seen.ids[i] as string;
            const flags = seen.flags[i] ?? 0;
            known.set(id, {
              id,
              name: seen.names[i] ?? "",
              is_private: (flags & VISIBLE.private) !== 0,
              is_archived: (flags & VISIBLE.archived) !== 0,
              is_member: (flags & VISIBLE.member) !== 0,
            });
          }
        });
      },
      users(team, viewer, ids) {
        const known = memoOf(users, team, viewer);
        return lookup(known, ids, async (missing) => {
          const seen = (await ask(team, viewer, missing, [])).users;
          for (const id of missing) known.set(id, null);
          for (let i = 0; i < seen.ids.length; i++) {
            const id = seen.ids[i] as string;
            const flags = seen.flags[i] ?? 0;
            known.set(id, { id, deleted: (flags & VISIBLE.deleted) !== 0, is_bot: (flags & VISIBLE.bot) !== 0 });
          }
        });
      },
    },
  };
}
