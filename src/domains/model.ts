import type { Role } from "../teams/model";

// The `domains` aggregate: active users per (team, domain, role), signed so
// that drift from lost or duplicated mutations shows up as a negative count.

/**
 * A row with this domain holds the team's per-role totals. It is kept by the
 * same relative upserts as every other row, so a classification reads domain
 * rows and totals in one statement, and "every invariant in one statement"
 * still holds. "*" can never be a real e-mail domain.
 */
export const TEAM_TOTAL_DOMAIN = "*";

export interface DomainKey {
  teamId: string;
  domain: string;
  role: Role;
}

export interface DomainDelta extends DomainKey {
  delta: number;
}

export interface DomainCount extends DomainKey {
  count: number;
}

export function keyOf(k: DomainKey): string {
  return `${k.teamId}\u0000${k.domain}\u0000${k.role}`;
}
