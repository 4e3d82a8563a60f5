// Decides whether invitees from a domain are internal (full workspace members)
// or external (Slack Connect). Rules, first match wins:
//   1. public mailbox provider  -> external  (nothing else can override this)
//   2. domain claimed by team   -> internal
//   3. same domain as inviter   -> internal  (unless the inviter is a guest)
//   4. role-weighted share of the team's active users >= threshold -> internal
// Everything here is pure; the caller gathers the counts.

import type { Role } from "../teams/model";
import type { ClassifyPolicy } from "./classify-policy";
import { isPublicProvider } from "./public-providers";

export type Classification = "internal" | "external";
export type Reason = "claimed_domain" | "inviter_domain" | "team_share" | "public_provider" | "below_threshold";
export type Flow = "workspace_invite" | "slack_connect";

export interface RoleCounts {
  owner: number;
  admin: number;
  member: number;
  guest: number;
}

export interface TeamContext {
  /** Lower-case domains the team claimed in settings. */
  claimedDomains: ReadonlySet<string>;
  inviter: { role: Role; domain: string };
  /** Active users per role for each requested domain (absent = 0). Lower-case keys. */
  domainCounts: ReadonlyMap<string, RoleCounts>;
  /** Active users per role in the whole team. */
  totals: RoleCounts;
}

export interface DomainDecision {
  domain: string;
  classification: Classification;
  reason: Reason;
  flow: Flow;
  /** Role-weighted share of the team's active users, in [0, 1]. */
  share: number;
}

const FLOW: Readonly<Record<Classification, Flow>> = {
  internal: "workspace_invite",
  external: "slack_connect",
};

// Weighted sums of non-dyadic weights (say 0.1) can land a hair below a
// threshold they mathematically equal; "exactly at threshold is internal"
// must not depend on floating-point rounding.
const SHARE_TOLERANCE = 1e-12;

/** Counts are signed so drift is visible upstream; here it must not subtract. */
function nonNegative(count: number): number {
  // biome-ignore lint/complexity/useMathMinMax: Math.max would pass NaN through.
  return count > 0 ? count : 0;
}

function weightedSum(counts: RoleCounts, weights: Record<Role, number>): number {
  return (
    nonNegative(counts.owner) * weights.owner +
    nonNegative(counts.admin) * weights.admin +
    nonNegative(counts.member) * weights.member +
    nonNegative(counts.guest) * weights.guest
  );
}

function normalizeDomain(domain: string): string {
  return domain.trim().toLowerCase();
}

function decide(domain: string, reason: Reason, share: number): DomainDecision {
  const classification: Classification =
    reason === "public_provider" || reason === "below_threshold" ? "external" : "internal";
  return { domain, classification, reason, flow: FLOW[classification], share };
}

/**
 * The domain's role-weighted fraction of the team, clamped to [0, 1] (a
 * drifted aggregate can briefly count more domain users than team users).
 */
export function weightedShare(
  counts: RoleCounts | undefined,
  totals: RoleCounts,
  weights: Record<Role, number>,
): number {
  if (counts === undefined) return 0;
  const total = weightedSum(totals, weights);
  if (!(total > 0)) return 0;
  return Math.min(1, weightedSum(counts, weights) / total);
}

export function classifyDomain(domain: string, ctx: TeamContext, policy: ClassifyPolicy): DomainDecision {
  const d = normalizeDomain(domain);
  const share = weightedShare(ctx.domainCounts.get(d), ctx.totals, policy.weights);
  // Checked first: a team claiming gmail.com must not make every gmail user
  // an insider, and neither may a gmail-using inviter or a gmail-heavy team.
  if (isPublicProvider(d)) return decide(d, "public_provider", share);
  if (ctx.claimedDomains.has(d)) return decide(d, "claimed_domain", share);
  // Guests are often outsiders themselves, so their domain proves nothing.
  if (ctx.inviter.role !== "guest" && normalizeDomain(ctx.inviter.domain) === d) {
    return decide(d, "inviter_domain", share);
  }
  if (share >= policy.threshold - SHARE_TOLERANCE) return decide(d, "team_share", share);
  return decide(d, "below_threshold", share);
}

/** Keyed by the normalized (lower-case) domain; duplicates are classified once. */
export function classifyDomains(
  domains: Iterable<string>,
  ctx: TeamContext,
  policy: ClassifyPolicy,
): Map<string, DomainDecision> {
  const decisions = new Map<string, DomainDecision>();
  for (const domain of domains) {
    const d = normalizeDomain(domain);
    if (!decisions.has(d)) decisions.set(d, classifyDomain(d, ctx, policy));
  }
  return decisions;
}

/** Lower-cased, deduplicated, in first-seen order. */
export function uniqueDomains(emails: Iterable<{ domain: string }>): string[] {
  const seen = new Set<string>();
  for (const { domain } of emails) seen.add(normalizeDomain(domain));
  return [...seen];
}
