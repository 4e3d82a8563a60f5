// Tunables for internal/external classification, read from deployment vars.
// Parsing throws on anything malformed: a typo here silently changes who gets
// a workspace invite versus a Slack Connect invite, so it must fail deploys.

import { ROLES, type Role } from "../teams/model";

export interface ClassifyPolicy {
  /** Minimum role-weighted share of the team, in (0, 1]. */
  threshold: number;
  /** How much one active user of each role counts towards a domain's share. */
  weights: Record<Role, number>;
}

export interface PolicyVars {
  CLASSIFY_THRESHOLD?: string;
  CLASSIFY_WEIGHTS?: string;
}

// Guests carry little weight because guest accounts are handed to contractors
// and partners; a domain made up of guests is not the team's own.
export const DEFAULT_POLICY: ClassifyPolicy = Object.freeze({
  threshold: 0.1,
  weights: Object.freeze({ owner: 3, admin: 2, member: 1, guest: 0.25 }),
});

// Plain decimals only: Number() alone would accept "", "0x1f" and "Infinity".
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

function isRoleName(name: string): name is Role {
  return (ROLES as readonly string[]).includes(name);
}

/** Null for anything that is not a plain, finite, non-negative decimal. */
function parseDecimal(text: string): number | null {
  if (!DECIMAL.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** Unset and blank both mean "use the default", as dashboards often store "". */
function present(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

function parseThreshold(text: string): number {
  const threshold = parseDecimal(text);
  if (threshold === null || threshold <= 0 || threshold > 1) {
    throw new Error(`CLASSIFY_THRESHOLD must be a number in (0, 1], got "${text}"`);
  }
  return threshold;
}

function parseWeights(text: string, defaults: Record<Role, number>): Record<Role, number> {
  const weights = { ...defaults };
  const seen = new Set<Role>();
  for (const entry of text.split(",")) {
    const trimmed = entry.trim();
    const eq = trimmed.indexOf("=");
    if (eq === -1) {
      throw new Error(`CLASSIFY_WEIGHTS entry "${trimmed}" must look like role=number`);
    }
    const name = trimmed.slice(0, eq).trim();
    if (!isRoleName(name)) {
      throw new Error(`CLASSIFY_WEIGHTS has unknown role "${name}" (expected one of ${ROLES.join(", ")})`);
    }
    if (seen.has(name)) throw new Error(`CLASSIFY_WEIGHTS sets "${name}" more than once`);
    seen.add(name);
    const valueText = trimmed.slice(eq + 1).trim();
    const weight = parseDecimal(valueText);
    if (weight === null) {
      throw new Error(`CLASSIFY_WEIGHTS ${name} must be a finite number >= 0, got "${valueText}"`);
    }
    weights[name] = weight;
  }
  // With every weight at zero no domain could ever reach the threshold, which
  // quietly turns every invite external; that is never what an operator meant.
  if (ROLES.every((role) => weights[role] === 0)) {
    throw new Error("CLASSIFY_WEIGHTS must give at least one role a positive weight");
  }
  return weights;
}

export function parsePolicy(vars: PolicyVars): ClassifyPolicy {
  const threshold = present(vars.CLASSIFY_THRESHOLD);
  const weights = present(vars.CLASSIFY_WEIGHTS);
  return {
    threshold: threshold === undefined ? DEFAULT_POLICY.threshold : parseThreshold(threshold),
    weights: weights === undefined ? { ...DEFAULT_POLICY.weights } : parseWeights(weights, DEFAULT_POLICY.weights),
  };
}
