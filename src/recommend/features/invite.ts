import {
  cosinePair,
  type FeatureValues,
  log,
  type PreparedSubject,
  topK,
  topKOrdered,
  unionCandidates,
} from "./common";
import { interactionsWith, partnersWeighted, personFeatures } from "./person";
import { CANDIDATES_PER_GENERATOR, NW, W365, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// invite: people a new member will work with (features.py `_invite_vectors`).
// The new member has no rows before the cut by definition; what is known
// about them comes from the caller: the channels they were active in on
// their first day and the people they interacted with that day (offline:
// features.py `NewMember`; online: their current channels and partners from
// the directory).
//
// * First-day channels unknown to the snapshot (created after the cut) still
//   count in fd_channels and in the mean of fd_cos_mean, and add nothing
//   else: offline they are channels without rows before the cut.
// * First-day partners unknown to the snapshot, or known only by local
//   hours, are dropped: offline they are only "existing people" (activity or
//   interaction before the cut).
// * The subject is never their own candidate (offline it cannot be one: a
//   new member is not alive before the cut).

export interface InviteContext {
  firstDayChannels?: readonly string[];
  firstDayPartners?: readonly string[];
}

export function prepareInvite(t: FeatureTables, subject: string | null, ctx: InviteContext = {}): PreparedSubject {
  const U = t.U;
  const n = subject === null ? -1 : t.user(subject);
  const channelIds = [...new Set(ctx.firstDayChannels ?? [])];
  const F = channelIds
    .map((id) => t.channel(id))
    .filter((c) => c >= 0)
    .sort((a, b) => a - b);
  const nF = channelIds.length;
  const I = [...new Set(ctx.firstDayPartners ?? [])]
    .filter((id) => id !== subject)
    .map((id) => t.user(id))
    .filter((x) => x >= 0 && t.existingPeople[x] === 1)
    .sort((a, b) => a - b);

  // first-day partners x person
  const fdpInteractions = interactionsWith(t, I);
  const partnerCounts = new Float64Array(U); // Σ_x P[x, ·]
  for (const x of I) {
    for (let e = t.pp.ptr[x] as number; e < (t.pp.ptr[x + 1] as number); e++) {
      if ((t.pCount[e * NW + WALL] as number) > 0)
        partnerCounts[t.pp.col[e] as number] = (partnerCounts[t.pp.col[e] as number] as number) + 1;
    }
  }
  const fdpCommon = partnersWeighted(t, partnerCounts, WALL);
  const fdpCosMax = (v: number): number => {
    if (I.length === 0) return 0;
    let best = Number.NEGATIVE_INFINITY;
    for (const x of I) best = Math.max(best, cosinePair(t.userVec, t.userNorm, v, t.userVec, t.userNorm, x, t.dims));
    return best;
  };
  // Σ_f cos(v, f) / |F|, summed in F order as features.py does
  const cosMeanOf = (v: number): number => {
    if (nF === 0) return 0;
    let s = 0;
    for (const f of F) s += cosinePair(t.userVec, t.userNorm, v, t.chanVec, t.chanNorm, f, t.dims);
    return s / nF;
  };

  // first-day channels x person
  const memberCount = new Float64Array(U);
  const active365 = new Float64Array(U);
  const days365 = new Float64Array(U);
  const share365 = new Float64Array(U);
  const shareAll = new Float64Array(U);
  const cf365 = new Float64Array(U);
  if (nF > 0) {
    for (const f of F) {
      const tot365 = t.chCommits[f * NW + W365] as number;
      const totAll = t.chCommits[f * NW + WALL] as number;
      const inv365 = tot365 > 0 ? 1.0 / tot365 : 0;
      const invAll = totAll > 0 ? 1.0 / totAll : 0;
      for (let e = t.cm.ptr[f] as number; e < (t.cm.ptr[f + 1] as number); e++) {
        const m = t.cmEntry[e] as number;
        const v = t.cm.col[e] as number;
        if ((t.mDays[m * NW + WALL] as number) > 0) memberCount[v] = (memberCount[v] as number) + 1;
        const d = t.mDays[m * NW + W365] as number;
        if (d > 0) active365[v] = (active365[v] as number) + 1;
        days365[v] = (days365[v] as number) + d;
        share365[v] = (share365[v] as number) + (t.mCommits[m * NW + W365] as number) * inv365;
        shareAll[v] = (shareAll[v] as number) + (t.mCommits[m * NW + WALL] as number) * invAll;
      }
    }
    // fd_cf_365 = B365 · Σ_f sim[f, ·]
    const simF = new Float64Array(t.C);
    for (const f of F) {
      for (let e = t.co.ptr[f] as number; e < (t.co.ptr[f + 1] as number); e++)
        simF[t.co.col[e] as number] = (simF[t.co.col[e] as number] as number) + (t.coSim[e] as number);
    }
    for (let v = 0; v < U; v++) {
      let s = 0;
      for (let e = t.mm.ptr[v] as number; e < (t.mm.ptr[v + 1] as number); e++) {
        if ((t.mDays[e * NW + W365] as number) > 0) s += simF[t.mm.col[e] as number] as number;
      }
      cf365[v] = s;
    }
  }

  return {
    candidates(k = CANDIDATES_PER_GENERATOR) {
      // the generator's cosines, for the alive people only (the universe)
      const cosMean = new Float64Array(U);
      for (const v of t.aliveList) cosMean[v] = cosMeanOf(v);
      const universe = new Uint8Array(U);
      universe.set(t.alivePeople);
      for (const x of I) universe[x] = 0;
      if (n >= 0) universe[n] = 0;
      return unionCandidates(t.userIds, [
        ["first_day_partners", topK(fdpInteractions, universe, k)],
        ["popular_90", topKOrdered(t.usersByPartners90, universe, k)],
        ["first_day_share", topK(share365, universe, k)],
        ["embedding", topK(cosMean, universe, k)],
        ["co_membership", topK(cf365, universe, k)],
      ]);
    },
    features(items) {
      return items.map((id): FeatureValues => {
        const v = t.user(id);
        const x = (a: Float64Array) => (v >= 0 ? (a[v] as number) : 0);
        return Object.assign(personFeatures(t, v), {
          fd_member_count: x(memberCount),
          fd_active_365_count: x(active365),
          fd_share_365: x(share365),
          fd_share_all: x(shareAll),
          fd_cos_mean: cosMeanOf(v),
          fd_cf_365: x(cf365),
          fd_days_365_log: log(x(days365)),
          fdp_interactions_log: log(x(fdpInteractions)),
          fdp_common_partners_log: log(x(fdpCommon)),
          fdp_cos_max: fdpCosMax(v),
          fd_channels: nF,
          fd_partners: I.length,
        });
      });
    },
  };
}
