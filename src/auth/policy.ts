import type { Role } from "../teams/model";

// Who may do what, as pure functions over live state. Every route, the
// real-time gateway and the queue consumers ask these; nothing decides on its
// own. The inputs are what the platform knows *now* (the team cache's row for
// the caller, the channel's privacy and membership), never what a token
// claimed when it was minted: a token names a caller and nothing more.
//
// Every function answers a Decision. A denial says whether the caller may
// learn that the thing exists ("forbidden": it is theirs to know, e.g. their
// own team) or not ("not_found": another team's data answers exactly as
// missing data does). Anything the policy was not told denies.

/** The caller as live state knows it. */
export type Principal =
  /** A platform operator: an identity listed in PLATFORM_OPERATORS (deployment config, read per request). */
  | { kind: "operator"; team: string; user: string }
  /** A user the caller's team knows: its current role and whether it is active. */
  | { kind: "member"; team: string; user: string; role: Role; active: boolean }
  /** A validly signed identity its team does not know (never created, or the team does not exist). */
  | { kind: "unknown"; team: string; user: string };

export type Denial = { ok: false; kind: "forbidden" | "not_found"; message: string };
export type Decision = { ok: true } | Denial;

const ALLOW: Decision = { ok: true };
const forbidden = (message: string): Denial => ({ ok: false, kind: "forbidden", message });
const notFound = (message: string): Denial => ({ ok: false, kind: "not_found", message });

/** Parses PLATFORM_OPERATORS: comma-separated `team:user` identities. */
export function parseOperators(raw: string | undefined): ReadonlySet<string> {
  // Every request asks, always of the same var: the last answer is kept.
  if (lastOperators && lastOperators.raw === raw) return lastOperators.set;
  const out = new Set<string>();
  for (const part of (raw ?? "").split(",")) {
    const [team, user, ...rest] = part.trim().split(":");
    if (team && user && rest.length === 0) out.add(`${team}:${user}`);
  }
  lastOperators = { raw, set: out };
  return out;
}

let lastOperators: { raw: string | undefined; set: ReadonlySet<string> } | null = null;

export function isOperator(operators: ReadonlySet<string>, team: string, user: string): boolean {
  return operators.has(`${team}:${user}`);
}

export const isAdminRole = (role: Role) => role === "owner" || role === "admin";

/** Any use of a team's data: an active member of that very team. */
export function mayUseTeam(p: Principal, teamId: string): Decision {
  if (p.team !== teamId) return notFound(`team ${teamId} not found`);
  if (p.kind !== "member" || !p.active) return forbidden("not an active member of this team");
  return ALLOW;
}

/** The platform's own routes (create teams, models, experiments, metrics). */
export function mayOperate(p: Principal): Decision {
  return p.kind === "operator" ? ALLOW : forbidden("this route is for platform operators");
}

/** A team's admin API: an operator, or an active owner or admin of that team. */
export function mayAdminister(p: Principal, teamId: string): Decision {
  if (p.kind === "operator") return ALLOW;
  const use = mayUseTeam(p, teamId);
  if (!use.ok) return use;
  if (p.kind !== "member" || !isAdminRole(p.role)) return forbidden("this route needs a team owner or admin");
  return ALLOW;
}

/**
 * Changing a user's role or active state. Admins manage members and guests;
 * owners are managed by owners only (an admin can neither create an owner
 * nor demote or deactivate one), and nobody but an operator changes their
 * own role or active state.
 */
export function mayChangeUser(
  p: Principal,
  teamId: string,
  target: { id: string; role: Role } | null,
  change: { role?: Role; deactivated?: boolean },
): Decision {
  const admin = mayAdminister(p, teamId);
  if (!admin.ok || p.kind === "operator") return admin;
  if (p.kind !== "member") return forbidden("this route needs a team owner or admin");
  const touchesAccess = change.role !== undefined || change.deactivated !== undefined;
  if (target && target.id === p.user && touchesAccess) {
    return forbidden("you cannot change your own role or active state; ask another admin");
  }
  const ownerInvolved = change.role === "owner" || target?.role === "owner";
  if (ownerInvolved && p.role !== "owner") return forbidden("only an owner may create, change or deactivate owners");
  return ALLOW;
}

/**
 * Sharing a channel into another team, or adding another team's users to
 * one: operators only, for now. A team admin doing it alone would act without
 * the other team's consent, and the answer would reveal whether that team or
 * its users exist. Connections with consent on both sides (Slack Connect)
 * replace this rule.
 */
export function mayShareAcrossTeams(p: Principal): Decision {
  return p.kind === "operator"
    ? ALLOW
    : forbidden("sharing with another team needs a connection both teams accepted; ask a platform operator");
}

/**
 * Slack Connect: inviting, answering a code, listing and ending the team's
 * connections. An active owner or admin of that very team, and nobody else:
 * a connection is one organization's consent, which no operator gives for it.
 */
export function mayManageConnections(p: Principal, teamId: string): Decision {
  if (p.kind === "operator") return forbidden("connections are made by the team's own owners and admins");
  const use = mayUseTeam(p, teamId);
  if (!use.ok) return use;
  if (p.kind !== "member" || !isAdminRole(p.role)) return forbidden("connections need a team owner or admin");
  return ALLOW;
}

/**
 * Shared channels over a connection: an active member of the team (the use
 * case then applies the team's channel_creation pref and who may answer or
 * end one); never an operator, who gives no team's consent.
 */
export function mayShareChannels(p: Principal, teamId: string): Decision {
  if (p.kind === "operator") return forbidden("shared channels are made by the team's own members");
  return mayUseTeam(p, teamId);
}

/** Asking on behalf of `subject` (recommendations for a teammate): yourself, or as an admin of the team. */
export function mayActFor(p: Principal, teamId: string, subject: string): Decision {
  const use = mayUseTeam(p, teamId);
  if (!use.ok) return use;
  if (subject === p.user) return ALLOW;
  if (p.kind === "member" && isAdminRole(p.role)) return ALLOW;
  return forbidden("only a team owner or admin may ask on behalf of someone else");
}

// --- seeing the directory ----------------------------------------------------
// The team cache answers bulk questions in SQL (queries.ts: channelVisible,
// userVisible); these are the same rules for one thing at a time, used by the
// real-time side and checked against the SQL by the tests.

export interface Viewer {
  role: Role;
  active: boolean;
}

/** A channel is visible to active non-guests when public, and to members only when private (guests: members only). */
export function maySeeChannel(v: Viewer, ch: { isPrivate: boolean; viewerIsMember: boolean }): boolean {
  if (!v.active) return false;
  if (ch.viewerIsMember) return true;
  return v.role !== "guest" && !ch.isPrivate;
}

/** A user is visible to active non-guests; a guest sees itself and the people it shares a channel with. */
export function maySeeUser(v: Viewer, u: { isSelf: boolean; sharesChannel: boolean }): boolean {
  if (!v.active) return false;
  return v.role !== "guest" || u.isSelf || u.sharesChannel;
}

// --- real time ---------------------------------------------------------------
// The WebSocket side asks the same questions, of live state read when the
// socket opens and again whenever a change may take something away (the
// gateway's re-checks): a socket never keeps what its user lost.

/** Opening a WebSocket, and keeping it open: an active member of that team now (operators have no sockets). */
export function mayConnect(p: Principal, teamId: string): Decision {
  return mayUseTeam(p, teamId);
}

/**
 * Whether team-wide real-time events (every user's profile changes, every
 * public channel's changes) may reach this viewer unfiltered: active
 * non-guests, who see the whole team. A guest gets only the events about the
 * users and channels it may see (maySeeUser, maySeeChannel).
 */
export function seesWholeTeam(v: Viewer): boolean {
  return v.active && v.role !== "guest";
}
