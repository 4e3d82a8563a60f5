import {
  cosinePair,
  type FeatureValues,
  ldAge,
  ldSince,
  log,
  memberChannels,
  membersAmong,
  type PreparedSubject,
  partnersOf,
} from "./common";
import { NW, W30, W90, W365, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// leave: the channels a user has been active in within 365 days, ranked by
// how likely the user is to have gone quiet there (features.py, leave). A
// user the snapshot does not know has no candidates. Features of a channel
// the user was never active in (a caller may ask) are those of a pair
// without rows.

export function prepareLeave(t: FeatureTables, subject: string | null): PreparedSubject {
  const u = subject === null ? -1 : t.user(subject);
  const T = t.cut;
  // the user's membership entries by channel
  const entry = new Map<number, number>();
  if (u >= 0)
    for (let e = t.mm.ptr[u] as number; e < (t.mm.ptr[u + 1] as number); e++) entry.set(t.mm.col[e] as number, e);
  const partnersActive = membersAmong(t, partnersOf(t, u), W365);
  const uw = (a: Float64Array, w: number) => (u >= 0 ? (a[u * NW + w] as number) : 0);
  const totalCommits365 = uw(t.uCommits, W365);
  const uActive = log(uw(t.uDays, W365));
  const uChannels365 = log(uw(t.uChannels, W365));
  return {
    candidates() {
      return memberChannels(t, u, W365).map((c) => ({ id: t.channelIds[c] as string, from: ["member_365"] }));
    },
    features(items) {
      return items.map((id): FeatureValues => {
        const c = t.channel(id);
        const e = c >= 0 ? (entry.get(c) ?? -1) : -1;
        const m = (a: Float64Array, w: number) => (e >= 0 ? (a[e * NW + w] as number) : 0);
        const ch = (a: Float64Array, w: number) => (c >= 0 ? (a[c * NW + w] as number) : 0);
        const commits365 = m(t.mCommits, W365);
        return {
          uc_days_30_log: log(m(t.mDays, W30)),
          uc_days_90_log: log(m(t.mDays, W90)),
          uc_days_365_log: log(m(t.mDays, W365)),
          uc_days_all_log: log(m(t.mDays, WALL)),
          uc_commits_365_log: log(commits365),
          uc_days_since_last_log: ldSince(T, e >= 0 ? (t.mLast[e] as number) : Number.NaN),
          uc_tenure_log: ldAge(T, e >= 0 ? (t.mFirst[e] as number) : Number.NaN),
          uc_share_365: totalCommits365 > 0 ? commits365 / totalCommits365 : 0,
          ch_active_users_90_log: log(ch(t.chUsers, W90)),
          ch_active_users_365_log: log(ch(t.chUsers, W365)),
          ch_days_since_last_log: ldSince(T, c >= 0 ? (t.chLast[c] as number) : Number.NaN),
          ch_members_log: log(ch(t.chUsers, WALL)),
          u_active_days_365_log: uActive,
          u_channels_365_log: uChannels365,
          cos_user_channel: cosinePair(t.chanVec, t.chanNorm, c, t.userVec, t.userNorm, u, t.dims),
          partners_active_365_log: log(c >= 0 ? (partnersActive[c] as number) : 0),
        };
      });
    },
  };
}
