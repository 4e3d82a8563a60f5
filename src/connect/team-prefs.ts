import { notFound } from "../errors";
import { newId as newSlackId } from "../ids";
import type { Actor } from "./connections";
import type { ConnectionsStore } from "./connections-store";
import type { PrefEffect } from "./prefs/pref";
import type { PrefProblem, Resolved } from "./prefs/registry";
import { changePrefs, effectivePrefs, orgEffectivePrefs, type PrefsPorts } from "./prefs-service";
import { ORG_LEVEL, type PrefAuditEntry } from "./prefs-store";

// The connect prefs as a team's admins use them through the API: the org
// level, the level of one partner, and the audit. The team is always the
// actor's own. A partner is named only if the team has, or had, a
// connection with it; any other id (another team's partner, a team that
// does not exist, the team itself, the org level's "0") is not_found with
// the same message, so prefs cannot tell which team ids exist. Authorization
// (a live admin of the team) is the caller's, as in prefs-service.ts.

export interface TeamPrefsPorts extends PrefsPorts {
  connections: Pick<ConnectionsStore, "everConnected">;
  /**
   * A change widened auto-approval: the team's pending shared-channel
   * invitations from that partner (every partner, for the org level) are
   * answered again by the prefs now in force
   * (shared-channels-service.ts reviewPendingInvites).
   */
  reviewInvitations(team: string, host: string | null): Promise<void>;
  /**
   * Tells the team's owners and admins, live, what changed (the prefs
   * classes' `event` effects, on the team topic as admin-only events:
   * src/realtime/team-filter.ts). After the commit: a failure is logged and
   * the change stands (the audit has it; a client reads the prefs again).
   */
  announce(team: string, event: PrefChangedEvent): Promise<void>;
}

/** A prefs change as the team's admins hear of it on the team topic. */
export interface PrefChangedEvent {
  /** The class's event type (`connect_pref_changed`). */
  type: string;
  /** The pref and level, and whatever else the class's event carries. */
  [field: string]: unknown;
  /** The partner whose level changed; null for the org level. */
  partner: string | null;
  actor: string;
  at: number;
}

/** Audit line ids: `A…`, the platform's alphabet (unique per team: the audit's key is (team, id)). */
export function newAuditId(): string {
  return `A${newSlackId("T").slice(1)}`;
}

export const AUDIT_DEFAULT = 50;
export const AUDIT_MAX = 200;

export interface OrgPrefsView {
  /** Every pref: the org level's value (source "org"), else the default (source "default"). */
  prefs: Record<string, Resolved>;
  /** What of a stored level could not be read (that pref fell through to the level below): the team's own data. */
  problems: PrefProblem[];
}

export interface PartnerPrefsView {
  partner: string;
  /** Every pref as it applies to the partner: source "partner", "org" or "default". */
  prefs: Record<string, Resolved>;
  problems: PrefProblem[];
}

export interface AuditLineView {
  id: string;
  level: "org" | "partner";
  /** The partner whose level changed; null for the org level. */
  partner: string | null;
  pref: string;
  /** The admin who changed it. */
  actor: string;
  at: number;
  /** The value at that level before and after; null: not set there. */
  before: unknown;
  after: unknown;
}

/** not_found for every partner the team cannot name, whatever the reason: one answer for all. */
async function requirePartner(ports: Pick<TeamPrefsPorts, "connections">, team: string, partner: string) {
  // "0" is the org level's key in storage: never a partner, or a partner
  // route would read and write the org level.
  const nameable = partner !== ORG_LEVEL && partner !== team && (await ports.connections.everConnected(team, partner));
  if (!nameable) throw notFound("no such partner");
}

export function orgPrefs(ports: Pick<TeamPrefsPorts, "store">, team: string): Promise<OrgPrefsView> {
  return orgEffectivePrefs(ports, team);
}

export async function partnerPrefs(
  ports: Pick<TeamPrefsPorts, "store" | "connections">,
  team: string,
  partner: string,
): Promise<PartnerPrefsView> {
  await requirePartner(ports, team, partner);
  return { partner, ...(await effectivePrefs(ports, team, partner)) };
}

/** What a change causes beyond its write, carried out before it is answered. */
async function carryOut(ports: TeamPrefsPorts, by: Actor, partner: string | null, effects: PrefEffect[]) {
  const team = by.team;
  // refilter_profiles needs nothing more here: the write itself cleared the
  // team's prefs cache, which the team cache's profile filtering reads
  // (src/connect/prefs-cache.ts cachedLevelsStore).
  if (effects.some((e) => e.kind === "review_invitations")) await ports.reviewInvitations(team, partner);
  const at = ports.now();
  for (const e of effects) {
    if (e.kind !== "event") continue;
    const event: PrefChangedEvent = { ...e.data, type: e.type, partner, actor: by.user, at };
    await ports.announce(team, event).catch((error: unknown) => {
      console.error(`connect prefs of ${team}: the ${e.type} event was not published`, error);
    });
  }
}

/**
 * Changes the org level (`{ pref: value }` sets, `{ pref: null }` clears):
 * validated whole (any wrong pref: invalid, naming each, nothing written),
 * retried over another admin's concurrent write by changePrefs (conflict
 * only if the level kept changing). Answers the prefs changed and the
 * level's effective values after the write.
 */
export async function changeOrgPrefs(
  ports: TeamPrefsPorts,
  by: Actor,
  patch: Record<string, unknown>,
): Promise<{ changed: string[] } & OrgPrefsView> {
  const { changed, effects } = await changePrefs(ports, {
    teamId: by.team,
    targetTeamId: ORG_LEVEL,
    actor: by.user,
    patch,
  });
  await carryOut(ports, by, null, effects);
  return { changed, ...(await orgEffectivePrefs(ports, by.team)) };
}

/** Changes the level of one partner the team may name (as changeOrgPrefs); null clears back to the org level. */
export async function changePartnerPrefs(
  ports: TeamPrefsPorts,
  by: Actor,
  partner: string,
  patch: Record<string, unknown>,
): Promise<{ changed: string[] } & PartnerPrefsView> {
  await requirePartner(ports, by.team, partner);
  const { changed, effects } = await changePrefs(ports, {
    teamId: by.team,
    targetTeamId: partner,
    actor: by.user,
    patch,
  });
  await carryOut(ports, by, partner, effects);
  return { changed, partner, ...(await effectivePrefs(ports, by.team, partner)) };
}

/** A stored before/after (JSON text) as a value; text that does not parse is shown as it is rather than lost. */
function storedValue(json: string | null): unknown {
  if (json === null) return null;
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
}

function auditLineView(a: PrefAuditEntry): AuditLineView {
  const org = a.targetTeamId === ORG_LEVEL;
  return {
    id: a.id,
    level: org ? "org" : "partner",
    partner: org ? null : a.targetTeamId,
    pref: a.prefKey,
    actor: a.actor,
    at: a.at,
    before: storedValue(a.before),
    after: storedValue(a.after),
  };
}

/** The team's newest audit lines first, every level: who changed which pref, when, from what to what. */
export async function prefsAudit(
  ports: Pick<TeamPrefsPorts, "store">,
  team: string,
  limit: number = AUDIT_DEFAULT,
): Promise<{ audit: AuditLineView[] }> {
  const bounded = Math.min(Math.max(1, Math.trunc(limit)), AUDIT_MAX);
  return { audit: (await ports.store.audit(team, bounded)).map(auditLineView) };
}
