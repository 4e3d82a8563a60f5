import type { Source } from "../sources";

// The feature lists, baselines and hand-tuned rules of training/features.py,
// which is the single source of truth: names and order here are the
// manifest's (a model reads features by these names), and the parity test
// (test/node/recommend-features.test.ts) fails when the two drift apart.

/** The windows of every windowed count, in the order counts are stored: 30, 90, 365 days, all time. */
export const WINDOWS = [30, 90, 365, null] as const;
export const W30 = 0;
export const W90 = 1;
export const W365 = 2;
export const WALL = 3;
/** Values per windowed entry. */
export const NW = 4; // = WINDOWS.length, a literal so hot loops see a constant

/**
 * Whether a row of `day` counts in window w at cut T: T - span <= day < T.
 * Rows are already day < T; the lower bound is inclusive, so a row on day
 * T - 30 is in the 30-day window.
 */
export function inWindow(day: number, cut: number, w: number): boolean {
  const span = WINDOWS[w];
  if (span === undefined) throw new Error(`no window ${w}`);
  return span === null || day >= cut - span;
}

export const DAYS_CAP = 3650;
/** ld(3650): the value of a day distance to something that never happened. */
export const MISSING_DAYS_LOG = Math.log1p(DAYS_CAP);
export const CANDIDATES_PER_GENERATOR = 50;
export const HOURS = 24;

/** The candidate person's features, first in both people sources (person.ts). */
const PERSON = [
  "v_partners_log",
  "v_partners_90_log",
  "v_partners_365_log",
  "v_interactions_365_log",
  "v_active_days_90_log",
  "v_active_days_365_log",
  "v_days_since_last_log",
  "v_new_partners_90_log",
  "v_new_partners_365_log",
  "v_out_365_log",
  "v_in_365_log",
  "v_newcomer_partners_365_log",
] as const;

const NAMES = {
  channel_browser: [
    // channel
    "ch_members_log",
    "ch_active_users_90_log",
    "ch_active_users_365_log",
    "ch_new_members_90_log",
    "ch_new_members_365_log",
    "ch_commits_30_log",
    "ch_days_since_last_log",
    "ch_age_log",
    // user x channel
    "cos_user_channel",
    "cf_sum",
    "cf_max",
    "cf_recent_sum",
    "cf_cond_365",
    "sameday_365_log",
    "expected_days_365_log",
    "partners_members_log",
    "partners_active_365_log",
    "ucf_365_log",
    // user
    "u_active_days_365_log",
    "u_channels_log",
    "u_days_since_last_log",
  ],
  composer_dm: [
    ...PERSON,
    // user x person
    "shared_channels_log",
    "shared_channels_365_log",
    "adamic_adar",
    "cos_user_user",
    "common_partners_log",
    "common_partners_365_log",
    "v_days_in_u_channels_365_log",
    "v_share_in_u_channels_365",
    "role_match",
    // conversation context
    "ctx_interactions_log",
    "ctx_cos",
    "ctx_shared_channels_log",
    // user
    "u_partners_log",
    "u_active_days_365_log",
  ],
  invite: [
    ...PERSON,
    // first-day channels x person
    "fd_member_count",
    "fd_active_365_count",
    "fd_share_365",
    "fd_share_all",
    "fd_cos_mean",
    "fd_cf_365",
    "fd_days_365_log",
    // first-day partners x person
    "fdp_interactions_log",
    "fdp_common_partners_log",
    "fdp_cos_max",
    // new member
    "fd_channels",
    "fd_partners",
  ],
  leave: [
    "uc_days_30_log",
    "uc_days_90_log",
    "uc_days_365_log",
    "uc_days_all_log",
    "uc_commits_365_log",
    "uc_days_since_last_log",
    "uc_tenure_log",
    "uc_share_365",
    "ch_active_users_90_log",
    "ch_active_users_365_log",
    "ch_days_since_last_log",
    "ch_members_log",
    "u_active_days_365_log",
    "u_channels_365_log",
    "cos_user_channel",
    "partners_active_365_log",
  ],
  archive: [
    "ch_active_users_30_log",
    "ch_active_users_90_log",
    "ch_active_users_365_log",
    "ch_members_log",
    "ch_commits_90_log",
    "ch_commits_365_log",
    "ch_active_days_365_log",
    "ch_days_since_last_log",
    "ch_age_log",
    "ch_new_members_90_log",
    "ch_new_members_365_log",
  ],
  send_time: [
    "uh_share_365",
    "uh_share_90",
    "uh_share_all",
    "uh_neighbors_share_365",
    "uh_days_365_log",
    "uh_days_since_last_log",
    "team_h_share_90",
    "team_h_share_365",
    "team_h_share_all",
    "u_hour_days_365_log",
  ],
} as const satisfies Record<Source, readonly string[]>;

export type FeatureName<S extends Source> = (typeof NAMES)[S][number];

export function featureNames(source: Source): readonly string[] {
  return NAMES[source];
}

/**
 * A feature's default: the value of "never happened", which a model gets when
 * a value cannot be computed. Day distances default to ld(3650), everything
 * else to 0 (features.py `_d`).
 */
export function featureDefault(name: string): number {
  return name.includes("days_since") ? MISSING_DAYS_LOG : 0;
}

export function featureDefaults(source: Source): Array<{ name: string; default: number }> {
  return NAMES[source].map((name) => ({ name, default: featureDefault(name) }));
}

/** Hand-tuned rules: score = Σ weight · feature. Fixed, never fitted. */
export const HAND_TUNED: { readonly [S in Source]: Readonly<Partial<Record<FeatureName<S>, number>>> } = {
  channel_browser: { ch_active_users_90_log: 1.0, ucf_365_log: 0.5, partners_active_365_log: 0.5 },
  composer_dm: {
    v_partners_90_log: 1.0,
    v_days_in_u_channels_365_log: 0.5,
    ctx_interactions_log: 0.5,
    common_partners_log: 0.5,
  },
  invite: { v_partners_90_log: 1.0, fd_days_365_log: 0.5, fdp_interactions_log: 0.5 },
  leave: { uc_days_since_last_log: 1.0, uc_days_365_log: -1.0, ch_active_users_90_log: -0.5 },
  archive: { ch_days_since_last_log: 1.0, ch_active_users_365_log: -1.0, ch_commits_90_log: -0.5 },
  send_time: { uh_share_365: 1.0, uh_neighbors_share_365: 0.5, team_h_share_365: 0.1 },
};

export type BaselineName = "popularity" | "recent_popularity";

/** Baselines: score = sign · feature. */
export const BASELINES: {
  readonly [S in Source]: Readonly<Record<BaselineName, readonly [FeatureName<S>, number]>>;
} = {
  channel_browser: { popularity: ["ch_members_log", 1.0], recent_popularity: ["ch_active_users_90_log", 1.0] },
  composer_dm: { popularity: ["v_partners_log", 1.0], recent_popularity: ["v_partners_90_log", 1.0] },
  invite: { popularity: ["v_partners_log", 1.0], recent_popularity: ["v_partners_90_log", 1.0] },
  leave: { popularity: ["ch_members_log", -1.0], recent_popularity: ["ch_active_users_90_log", -1.0] },
  archive: { popularity: ["ch_members_log", -1.0], recent_popularity: ["ch_active_users_90_log", -1.0] },
  send_time: { popularity: ["team_h_share_all", 1.0], recent_popularity: ["team_h_share_90", 1.0] },
};

/** The hand-tuned score of one feature record (a missing feature takes its default). */
export function handTunedScore(source: Source, record: Readonly<Record<string, number>>): number {
  let s = 0;
  for (const [name, weight] of Object.entries(HAND_TUNED[source]) as Array<[string, number]>) {
    s += weight * (record[name] ?? featureDefault(name));
  }
  return s;
}

export function baselineScore(source: Source, model: BaselineName, record: Readonly<Record<string, number>>): number {
  const [name, sign] = BASELINES[source][model];
  return sign * (record[name] ?? featureDefault(name));
}
