import type { Clock } from "../clock";
import type { DomainCountStore } from "../domains/count-store";
import type { HealPublisher, HealReason } from "../domains/messages";
import { TEAM_TOTAL_DOMAIN } from "../domains/model";
import { badRequest, forbidden } from "../errors";
import type { TeamStore } from "../teams/team-store";
import {
  type Classification,
  classifyDomains,
  type Flow,
  type Reason,
  type RoleCounts,
  uniqueDomains,
} from "./classify";
import type { ClassifyPolicy } from "./classify-policy";
import { parseEmail } from "./email";

export interface ClassifyDeps {
  store: TeamStore;
  counts: DomainCountStore;
  heals: HealPublisher;
  clock: Clock;
  policy: ClassifyPolicy;
  /** A team whose last heal is older than this gets one queued. */
  staleAfterMs: number;
}

export interface InviteClassification {
  email: string;
  domain: string;
  classification: Classification;
  reason: Reason;
  flow: Flow;
  /** The domain's role-weighted share of the team's active users (0..1). */
  share: number;
}

export interface ClassifyResult {
  results: InviteClassification[];
  /** Set when this request queued a heal (first classification, staleness). */
  healQueued: HealReason | null;
}

/** A sane bound: an invite dialog, not a bulk job. */
export const MAX_EMAILS_PER_REQUEST = 500;

/**
 * Database work is two round trips whatever the number of addresses: the team
 * and inviter in one, every requested domain's counts plus the team totals in
 * the other (the approach this replaces paid one query per domain).
 */
export async function classifyInvites(
  deps: ClassifyDeps,
  teamId: string,
  inviterId: string,
  rawEmails: readonly unknown[],
): Promise<ClassifyResult> {
  if (rawEmails.length === 0) throw badRequest("emails must not be empty");
  if (rawEmails.length > MAX_EMAILS_PER_REQUEST) {
    throw badRequest(`at most ${MAX_EMAILS_PER_REQUEST} emails per request`);
  }
  const parsed = rawEmails.map((raw, index) => ({ raw, index, result: parseEmail(raw) }));
  const invalid = parsed.flatMap((p) =>
    // Echo strings (bounded), name other types: never a client's structure back.
    p.result.ok ? [] : [{ index: p.index, value: echo(p.raw), reason: p.result.reason }],
  );
  if (invalid.length > 0) {
    throw badRequest(`${invalid.length} invalid email address(es)`, { invalid });
  }
  const emails = parsed.map((p) => {
    if (!p.result.ok) throw new Error("unreachable: invalid emails were rejected above");
    return { email: p.result.email, domain: p.result.domain };
  });

  const found = await deps.store.getTeamAndUser(teamId, inviterId);
  if (!found || found.user.deactivated) {
    throw forbidden("the inviter is not an active member of this team");
  }
  const { team, user } = found;
  const domains = uniqueDomains(emails);
  const rows = await deps.counts.readCounts(teamId, domains);

  const domainCounts = new Map<string, RoleCounts>();
  let totals = zeroCounts();
  for (const row of rows) {
    if (row.domain === TEAM_TOTAL_DOMAIN) {
      totals = { ...totals, [row.role]: row.count };
      continue;
    }
    const c = domainCounts.get(row.domain) ?? zeroCounts();
    domainCounts.set(row.domain, { ...c, [row.role]: row.count });
  }
  const decisions = classifyDomains(
    domains,
    {
      claimedDomains: new Set(team.claimedDomains),
      inviter: { role: user.role, domain: user.domain },
      domainCounts,
      totals,
    },
    deps.policy,
  );

  const now = deps.clock.now();
  const healReason: HealReason | null =
    team.healedAt === null ? "first_classification" : now - team.healedAt > deps.staleAfterMs ? "stale" : null;
  if (healReason) await deps.heals.requestHeal({ v: 1, teamId, reason: healReason, requestedAt: now });

  return {
    results: emails.map(({ email, domain }) => {
      const d = decisions.get(domain);
      if (!d) throw new Error(`no decision for ${domain}`);
      return { email, domain, classification: d.classification, reason: d.reason, flow: d.flow, share: d.share };
    }),
    healQueued: healReason,
  };
}

function zeroCounts(): RoleCounts {
  return { owner: 0, admin: 0, member: 0, guest: 0 };
}

function echo(raw: unknown): string {
  return typeof raw === "string"
    ? raw.slice(0, 320)
    : `(${raw === null ? "null" : Array.isArray(raw) ? "array" : typeof raw})`;
}
