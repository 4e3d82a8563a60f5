import {
  cosinePair,
  cosineRows,
  type FeatureValues,
  log,
  memberChannels,
  type PreparedSubject,
  partnersOf,
  topK,
  topKOrdered,
  unionCandidates,
} from "./common";
import { interactionsWith, partnerRow, partnersWeighted, personFeatures, sharedChannelsWith } from "./person";
import { CANDIDATES_PER_GENERATOR, NW, W365, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// composer_dm: people to add to a conversation (features.py `_dm_vectors`).
//
// The conversation context. Offline, the context is one person: the
// subject's most recent past interaction partner (`contextPartner`). Online
// the caller may pass the conversation's other members instead; then
//   ctx_interactions = Σ over members of their all-time interactions with v,
//   ctx_shared_channels = Σ over members of channels shared with v,
//   ctx_cos = the largest cosine of v with a member,
// the same sum/sum/max rule as invite's first-day partners (fdp_*), so a
// one-member conversation gives exactly the offline values. A member the
// snapshot does not know counts as a person without rows (adds 0; cosine 0).
// Members are never candidates. An empty member list means no context (all
// ctx_* take their "never happened" values, as offline for a subject without
// partners); an absent list means the offline default.

/**
 * The subject's most recent past interaction partner, or -1 (features.py
 * `context_partner`): largest last-interaction day, then larger all-time
 * count, then smaller id.
 */
export function contextPartner(t: FeatureTables, u: number): number {
  let best = -1;
  let bestLast = 0;
  let bestCount = 0;
  if (u < 0) return best;
  for (let e = t.pp.ptr[u] as number; e < (t.pp.ptr[u + 1] as number); e++) {
    const count = t.pCount[e * NW + WALL] as number;
    if (!(count > 0)) continue;
    const last = t.pLast[e] as number;
    // columns ascend, so on a full tie the earlier (smaller) one stays
    if (best < 0 || last > bestLast || (last === bestLast && count > bestCount)) {
      best = t.pp.col[e] as number;
      bestLast = last;
      bestCount = count;
    }
  }
  return best;
}

export interface ComposerContext {
  /** The conversation's other members (ids); absent = the offline default context partner. */
  conversation?: readonly string[];
}

export function prepareComposerDm(
  t: FeatureTables,
  subject: string | null,
  ctx: ComposerContext = {},
): PreparedSubject {
  const u = subject === null ? -1 : t.user(subject);
  const U = t.U;
  const at = (a: Float64Array, i: number, w: number) => (i >= 0 ? (a[i * NW + w] as number) : 0);

  // the context: known members (indices) and whether some member is unknown
  let members: number[];
  let unknownMember = false;
  const excluded: number[] = [];
  if (ctx.conversation === undefined) {
    const x = contextPartner(t, u);
    members = x >= 0 ? [x] : [];
  } else {
    const set = new Set<number>();
    for (const id of ctx.conversation) {
      if (id === subject) continue;
      const x = t.user(id);
      if (x >= 0) set.add(x);
      else unknownMember = true;
    }
    members = [...set].sort((a, b) => a - b);
    excluded.push(...members);
  }

  // cosines for the generator: only the alive people can be candidates; items get theirs one by one
  const cos = new Float64Array(U);
  if (u >= 0) {
    cosineRows(t.userVec, t.userNorm, t.dims, t.userVec, u * t.dims, t.userNorm[u] as number, cos, t.aliveList);
  }

  // channel overlaps with the subject: all time (with Adamic-Adar) and 365 days
  const shared = new Float64Array(U);
  const adamicAdar = new Float64Array(U);
  for (const c of memberChannels(t, u, WALL)) {
    const weight = t.aaWeight[c] as number;
    for (let e = t.cm.ptr[c] as number; e < (t.cm.ptr[c + 1] as number); e++) {
      if (!((t.mDays[(t.cmEntry[e] as number) * NW + WALL] as number) > 0)) continue;
      const v = t.cm.col[e] as number;
      shared[v] = (shared[v] as number) + 1;
      adamicAdar[v] = (adamicAdar[v] as number) + weight;
    }
  }
  const shared365 = new Float64Array(U);
  const daysInU = new Float64Array(U);
  const shareInU = new Float64Array(U);
  for (const c of memberChannels(t, u, W365)) {
    const inv = t.invChCommits365[c] as number;
    for (let e = t.cm.ptr[c] as number; e < (t.cm.ptr[c + 1] as number); e++) {
      const m = t.cmEntry[e] as number;
      const v = t.cm.col[e] as number;
      const days = t.mDays[m * NW + W365] as number;
      if (days > 0) shared365[v] = (shared365[v] as number) + 1;
      daysInU[v] = (daysInU[v] as number) + days;
      shareInU[v] = (shareInU[v] as number) + (t.mCommits[m * NW + W365] as number) * inv;
    }
  }
  const commonPartners = partnersWeighted(t, partnerRow(t, u, WALL), WALL);
  const commonPartners365 = partnersWeighted(t, partnerRow(t, u, W365), W365);

  const ctxInteractions = interactionsWith(t, members);
  const ctxShared = sharedChannelsWith(t, members);
  const ctxCos = (v: number): number => {
    if (members.length === 0) return 0;
    let best = unknownMember ? 0 : Number.NEGATIVE_INFINITY;
    for (const x of members)
      best = Math.max(best, cosinePair(t.userVec, t.userNorm, v, t.userVec, t.userNorm, x, t.dims));
    return best;
  };

  const uShare = u >= 0 ? (t.uOutShare[u] as number) : 0.5;
  const uPartners = log(at(t.uPartners, u, WALL));
  const uActive = log(at(t.uDays, u, W365));
  return {
    candidates(k = CANDIDATES_PER_GENERATOR) {
      const universe = new Uint8Array(U);
      universe.set(t.alivePeople);
      if (u >= 0) universe[u] = 0;
      for (const p of partnersOf(t, u)) universe[p] = 0;
      for (const x of excluded) universe[x] = 0;
      return unionCandidates(t.userIds, [
        ["popular_90", topKOrdered(t.usersByPartners90, universe, k)],
        ["active_90", topKOrdered(t.usersByDays90, universe, k)],
        ["embedding", topK(cos, universe, k)],
        ["adamic_adar", topK(adamicAdar, universe, k)],
        ["common_partners", topK(commonPartners, universe, k)],
        ["context", topK(ctxInteractions, universe, k)],
      ]);
    },
    features(items) {
      return items.map((id): FeatureValues => {
        const v = t.user(id);
        const x = (a: Float64Array) => (v >= 0 ? (a[v] as number) : 0);
        const vShare = v >= 0 ? (t.uOutShare[v] as number) : 0.5;
        return Object.assign(personFeatures(t, v), {
          shared_channels_log: log(x(shared)),
          shared_channels_365_log: log(x(shared365)),
          adamic_adar: x(adamicAdar),
          cos_user_user: cosinePair(t.userVec, t.userNorm, v, t.userVec, t.userNorm, u, t.dims),
          common_partners_log: log(x(commonPartners)),
          common_partners_365_log: log(x(commonPartners365)),
          v_days_in_u_channels_365_log: log(x(daysInU)),
          v_share_in_u_channels_365: x(shareInU),
          role_match: (1 - uShare) * vShare + uShare * (1 - vShare),
          ctx_interactions_log: log(x(ctxInteractions)),
          ctx_cos: ctxCos(v),
          ctx_shared_channels_log: log(x(ctxShared)),
          u_partners_log: uPartners,
          u_active_days_365_log: uActive,
        });
      });
    },
  };
}
