import { type FeatureValues, ldSince, log, type PreparedSubject } from "./common";
import { HOURS, NW, W90, W365, WALL } from "./spec";
import type { FeatureTables } from "./tables";

// send_time: the local hour to send a user a reminder (features.py,
// send_time). Candidates are the 24 hours "0".."23". A user the snapshot
// does not know gets the team's hour shares and zeros for their own.

/** Shares of a 24-value row (0 when the row sums to 0). */
function shares(row: Float64Array): Float64Array {
  let tot = 0;
  for (const x of row) tot += x;
  return tot > 0 ? row.map((x) => x / tot) : new Float64Array(HOURS);
}

export function prepareSendTime(t: FeatureTables, subject: string | null): PreparedSubject {
  const u = subject === null ? -1 : t.user(subject);
  const T = t.cut;
  const commits = [0, 1, 2, 3].map(() => new Float64Array(HOURS));
  const days365 = new Float64Array(HOURS);
  const last = new Float64Array(HOURS).fill(Number.NaN);
  if (u >= 0) {
    for (let e = t.hh.ptr[u] as number; e < (t.hh.ptr[u + 1] as number); e++) {
      const h = t.hh.col[e] as number;
      for (let w = 0; w < NW; w++) (commits[w] as Float64Array)[h] = t.hCommits[e * NW + w] as number;
      days365[h] = t.hDays[e * NW + W365] as number;
      last[h] = t.hLast[e] as number;
    }
  }
  const share = commits.map(shares);
  const team = [0, 1, 2, 3].map((w) => shares(t.teamHour.subarray(w * HOURS, (w + 1) * HOURS)));
  const s365 = share[W365] as Float64Array;
  const hourDays = log(u >= 0 ? (t.uHourDays[u * NW + W365] as number) : 0);
  return {
    candidates() {
      return Array.from({ length: HOURS }, (_, h) => ({ id: String(h), from: ["hours"] }));
    },
    features(items) {
      return items.map((id): FeatureValues => {
        const h = Number(id);
        if (!Number.isInteger(h) || h < 0 || h >= HOURS)
          throw new Error(`send_time item is not an hour 0..23: "${id}"`);
        const at = (a: Float64Array | undefined, i: number) => (a as Float64Array)[i] as number;
        return {
          uh_share_365: at(s365, h),
          uh_share_90: at(share[W90], h),
          uh_share_all: at(share[WALL], h),
          // (share[h - 1] + share[h + 1]) / 2, around the clock
          uh_neighbors_share_365: (at(s365, (h + HOURS - 1) % HOURS) + at(s365, (h + 1) % HOURS)) / 2.0,
          uh_days_365_log: log(at(days365, h)),
          uh_days_since_last_log: ldSince(T, at(last, h)),
          team_h_share_90: at(team[W90], h),
          team_h_share_365: at(team[W365], h),
          team_h_share_all: at(team[WALL], h),
          u_hour_days_365_log: hourDays,
        };
      });
    },
  };
}
