import { conflict, forbidden, notFound } from "../errors";

// A Slack Connect connection between two teams, with consent on both sides.
//
// How it starts, so that nobody learns anything about a team that has not
// agreed: an admin of team A creates an invitation and gets a secret code,
// shown once, which A sends to the other organization out of band (an email
// to a person there). Only the code's hash is kept. An admin of team B who
// has the code accepts it (or declines it); only then does the connection
// exist, and only then does A learn B's id and name. A never names B, so A
// can neither probe which team ids exist nor squat a connection to a team:
// a request is not addressed to anyone until its code is redeemed. A code
// redeemed by its own team, expired, used, or cancelled answers exactly like
// a code that never existed.
//
// Lifecycle of the connection itself: accepted (both sides consented), then
// disconnected by either side (which ends every shared channel of the
// connection for both: the caller's job, from the `ended` answer). One live
// connection per pair of teams; after a disconnect, a new invitation may
// connect them again.

/** How long an invitation's code may be redeemed. */
export const INVITATION_TTL_MS = 14 * 24 * 3600 * 1000;

export type InvitationStatus = "pending" | "accepted" | "declined" | "cancelled";

export interface Invitation {
  id: string;
  /** The inviting team and admin. */
  fromTeam: string;
  fromUser: string;
  /** SHA-256 of the code, hex: the code itself is never stored. */
  codeHash: string;
  status: InvitationStatus;
  createdAt: number;
  expiresAt: number;
  /** Who answered (the other team's admin), once answered. */
  answeredBy: { team: string; user: string; at: number } | null;
}

export type ConnectionStatus = "accepted" | "disconnected";

export interface Connection {
  id: string;
  /** The team that invited, and the team that accepted. */
  inviter: string;
  invitee: string;
  status: ConnectionStatus;
  /** The invitation it came from: who asked, who answered, when. */
  invitationId: string;
  requestedBy: { team: string; user: string; at: number };
  acceptedBy: { team: string; user: string; at: number };
  disconnectedBy: { team: string; user: string; at: number } | null;
}

/** Who acts: a team admin (the route checked the role from live state). */
export interface Actor {
  team: string;
  user: string;
}

/** A fresh invitation code: 160 random bits, URL-safe; only its hash is kept. */
export function newInvitationCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function codeHashOf(code: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(code)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function invite(id: string, by: Actor, codeHash: string, now: number): Invitation {
  return {
    id,
    fromTeam: by.team,
    fromUser: by.user,
    codeHash,
    status: "pending",
    createdAt: now,
    expiresAt: now + INVITATION_TTL_MS,
    answeredBy: null,
  };
}

/** The answer for every code that cannot be redeemed: the same as for one that never existed. */
const noSuchInvitation = () => notFound("no such invitation");

/**
 * The invited team's admin answers a code (the store looked it up by hash;
 * null when none). Accepting needs no live connection between the pair
 * (`existing`: the pair's current connection, if any).
 */
export function answer(
  invitation: Invitation | null,
  by: Actor,
  decision: "accept" | "decline",
  existing: Connection | null,
  connectionId: string,
  now: number,
): { invitation: Invitation; connection: Connection | null } {
  if (invitation?.status !== "pending" || invitation.expiresAt <= now) throw noSuchInvitation();
  // A team's own code, redeemed by itself: nothing to connect, and nothing learned.
  if (invitation.fromTeam === by.team) throw noSuchInvitation();
  const answered: Invitation = {
    ...invitation,
    status: decision === "accept" ? "accepted" : "declined",
    answeredBy: { team: by.team, user: by.user, at: now },
  };
  if (decision === "decline") return { invitation: answered, connection: null };
  if (existing?.status === "accepted") throw conflict("these organizations are already connected");
  const connection: Connection = {
    id: connectionId,
    inviter: invitation.fromTeam,
    invitee: by.team,
    status: "accepted",
    invitationId: invitation.id,
    requestedBy: { team: invitation.fromTeam, user: invitation.fromUser, at: invitation.createdAt },
    acceptedBy: { team: by.team, user: by.user, at: now },
    disconnectedBy: null,
  };
  return { invitation: answered, connection };
}

/** The inviting team withdraws a pending invitation (its code then redeems nothing). */
export function cancel(invitation: Invitation | null, by: Actor): Invitation {
  if (!invitation || invitation.fromTeam !== by.team) throw noSuchInvitation();
  if (invitation.status !== "pending") throw conflict(`this invitation was already ${invitation.status}`);
  return { ...invitation, status: "cancelled" };
}

/** Either side ends the connection; the caller then ends every shared channel of it, for both. */
export function disconnect(connection: Connection | null, by: Actor, now: number): Connection {
  // Only the two teams may know the connection exists.
  if (!connection || !isParty(connection, by.team)) throw notFound("no such connection");
  if (connection.status !== "accepted") throw conflict("this connection has already ended");
  return { ...connection, status: "disconnected", disconnectedBy: { team: by.team, user: by.user, at: now } };
}

export function isParty(connection: Connection, team: string): boolean {
  return connection.inviter === team || connection.invitee === team;
}

/** The other team of a connection, for one of its parties. */
export function partnerOf(connection: Connection, team: string): string {
  if (!isParty(connection, team)) throw forbidden("not a party to this connection");
  return connection.inviter === team ? connection.invitee : connection.inviter;
}

/** The connection as one of its parties sees it. */
export function connectionView(connection: Connection, team: string) {
  return {
    id: connection.id,
    partner: partnerOf(connection, team),
    status: connection.status,
    invited_by_us: connection.inviter === team,
    requested: { team: connection.requestedBy.team, user: connection.requestedBy.user, at: connection.requestedBy.at },
    accepted: { team: connection.acceptedBy.team, user: connection.acceptedBy.user, at: connection.acceptedBy.at },
    disconnected: connection.disconnectedBy,
  };
}
