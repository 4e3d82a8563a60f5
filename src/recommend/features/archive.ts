import { type FeatureValues, ldAge, ldSince, log, type PreparedSubject } from "./common";
import { NW, W30, W90, W365, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// archive: the team's channels alive within 365 days, ranked by how likely
// they have gone quiet for everyone (features.py, archive). There is no
// subject: the ranking is the team's.

export function prepareArchive(t: FeatureTables): PreparedSubject {
  const T = t.cut;
  return {
    candidates() {
      const out = [];
      for (let c = 0; c < t.C; c++)
        if (t.aliveChannel[c]) out.push({ id: t.channelIds[c] as string, from: ["alive_365"] });
      return out;
    },
    features(items) {
      return items.map((id): FeatureValues => {
        const c = t.channel(id);
        const w = (a: Float64Array, win: number) => (c >= 0 ? (a[c * NW + win] as number) : 0);
        return {
          ch_active_users_30_log: log(w(t.chUsers, W30)),
          ch_active_users_90_log: log(w(t.chUsers, W90)),
          ch_active_users_365_log: log(w(t.chUsers, W365)),
          ch_members_log: log(w(t.chUsers, WALL)),
          ch_commits_90_log: log(w(t.chCommits, W90)),
          ch_commits_365_log: log(w(t.chCommits, W365)),
          ch_active_days_365_log: log(w(t.chDays, W365)),
          ch_days_since_last_log: ldSince(T, c >= 0 ? (t.chLast[c] as number) : Number.NaN),
          ch_age_log: ldAge(T, c >= 0 ? (t.chFirst[c] as number) : Number.NaN),
          ch_new_members_90_log: log(w(t.chNewMembers, W90)),
          ch_new_members_365_log: log(w(t.chNewMembers, W365)),
        };
      });
    },
  };
}
