// The source-of-truth shapes for teams and users. Storage adapters map rows to
// these; nothing here knows about a database.

export const ROLES = ["owner", "admin", "member", "guest"] as const;
export type Role = (typeof ROLES)[number];

export const PLANS = ["free", "pro", "business", "enterprise"] as const;
export type Plan = (typeof PLANS)[number];

export interface Team {
  id: string;
  name: string;
  plan: Plan;
  /** Lower-case domains the team's admins claimed; always internal. */
  claimedDomains: string[];
  createdAt: number;
  /** When a heal last finished (ms since epoch), null if never. */
  healedAt: number | null;
}

export interface User {
  teamId: string;
  id: string;
  /** Normalized (trimmed, lower-case) address. */
  email: string;
  /** The part after "@", stored so recounts never re-parse addresses. */
  domain: string;
  role: Role;
  deactivated: boolean;
  createdAt: number;
  updatedAt: number;
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

export function planRank(plan: Plan): number {
  return PLANS.indexOf(plan);
}
