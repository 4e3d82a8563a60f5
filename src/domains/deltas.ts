import type { Role } from "../teams/model";
import { type DomainDelta, keyOf, TEAM_TOTAL_DOMAIN } from "./model";

/** What a user contributes to the aggregate: nothing unless active. */
export interface Contribution {
  domain: string;
  role: Role;
  active: boolean;
}

/**
 * Any lifecycle event (join, email change, role change, deactivation, bulk
 * import) is "remove what the user contributed before, add what they
 * contribute now". A role change is therefore a decrement of the old role's row
 * and an increment of the new one, and a no-op change produces nothing.
 */
export function deltasForChange(
  teamId: string,
  before: Contribution | null,
  after: Contribution | null,
): DomainDelta[] {
  const out: DomainDelta[] = [];
  if (before?.active) out.push(...contribution(teamId, before, -1));
  if (after?.active) out.push(...contribution(teamId, after, +1));
  return coalesce(out);
}

function contribution(teamId: string, c: Contribution, sign: 1 | -1): DomainDelta[] {
  return [
    { teamId, domain: c.domain, role: c.role, delta: sign },
    { teamId, domain: TEAM_TOTAL_DOMAIN, role: c.role, delta: sign },
  ];
}

/**
 * Sums deltas per key and drops the ones that cancel out, so a batch costs one
 * row per distinct key however many events touched it. Order of first
 * appearance is kept so statements are deterministic.
 */
export function coalesce(deltas: Iterable<DomainDelta>): DomainDelta[] {
  const byKey = new Map<string, DomainDelta>();
  for (const d of deltas) {
    const k = keyOf(d);
    const seen = byKey.get(k);
    if (seen) seen.delta += d.delta;
    else byKey.set(k, { ...d });
  }
  return [...byKey.values()].filter((d) => d.delta !== 0);
}
