import type { Candidate, Fetcher, Filter, RecRequest, Reranker } from "./pipeline";
import type { RecDeps } from "./ports";

// The reusable steps recommenders are assembled from.

/** Candidates and their features from the team's feature snapshot (candidate generation is per source there). */
export const snapshotCandidates: Fetcher<RecDeps> = {
  kind: "fetch",
  name: "snapshot-candidates",
  // A team without a feature snapshot yet answers an empty list that says why
  // (degraded), rather than failing.
  optional: true,
  run: (req, deps) => deps.store.candidates(req),
};

/**
 * Channels the user may see and that are not archived; with `member`, only
 * those the user is (true) or is not (false) in. One directory lookup. Never
 * optional: without it an answer could name a private channel to a non-member.
 */
export function visibleChannels(member?: boolean): Filter<RecDeps> {
  return {
    kind: "filter",
    name: member === undefined ? "visible-channels" : member ? "visible-member-channels" : "visible-new-channels",
    async run(req, candidates, deps) {
      const seen = new Map(
        (
          await deps.directory.channels(
            req.team,
            req.user,
            candidates.map((c) => c.id),
          )
        ).map((c) => [c.id, c]),
      );
      return candidates.filter((c) => {
        const ch = seen.get(c.id);
        return ch !== undefined && !ch.is_archived && (member === undefined || ch.is_member === member);
      });
    },
  };
}

/** Active, visible, human people other than the user. Never optional. */
export const activePeople: Filter<RecDeps> = {
  kind: "filter",
  name: "active-people",
  async run(req, candidates, deps) {
    const ids = candidates.map((c) => c.id).filter((id) => id !== req.user);
    const seen = new Map((await deps.directory.users(req.team, req.user, ids)).map((u) => [u.id, u]));
    return candidates.filter((c) => {
      const u = seen.get(c.id);
      return c.id !== req.user && u !== undefined && !u.deleted && !u.is_bot;
    });
  },
};

/** People already in the conversation are not suggested again (composer). */
export const notInConversation: Filter<RecDeps> = {
  kind: "filter",
  name: "not-in-conversation",
  async run(req, candidates) {
    const members = new Set(conversationMembers(req));
    return candidates.filter((c) => !members.has(c.id));
  },
};

/**
 * Diversity: channel names here are paths (`activerecord-lib-…`), and the top
 * of a list made of one subtree is a poor page. At most `perPrefix` channels
 * sharing a first name segment in a row; the others move down, none is lost.
 */
export function prefixDiversity(perPrefix: number): Reranker<RecDeps> {
  return {
    kind: "rerank",
    name: `diversity-${perPrefix}`,
    optional: true,
    async run(req, candidates, deps) {
      const seen = await deps.directory.channels(
        req.team,
        req.user,
        candidates.slice(0, req.limit * 3).map((c) => c.id),
      );
      const names = new Map(seen.map((c) => [c.id, c.name]));
      const prefixOf = (c: Candidate) => (names.get(c.id) ?? c.id).split("-")[0] ?? "";
      const out: Candidate[] = [];
      const held: Candidate[] = [];
      const count = new Map<string, number>();
      for (const c of candidates) {
        const p = prefixOf(c);
        if ((count.get(p) ?? 0) < perPrefix) {
          out.push(c);
          count.set(p, (count.get(p) ?? 0) + 1);
        } else held.push(c);
      }
      return [...out, ...held];
    },
  };
}

export function conversationMembers(req: RecRequest): string[] {
  const members = req.context.members;
  return Array.isArray(members) ? members.filter((m): m is string => typeof m === "string") : [];
}
