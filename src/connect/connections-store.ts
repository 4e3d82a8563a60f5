import type { IdempotencyRecord, TeamStore } from "../teams/team-store";
import type { Connection, Invitation, InvitationStatus } from "./connections";

// Where invitations and connections are kept (storage/connections-sql.ts on
// D1 and MySQL). The store enforces what two requests at once could break,
// so the use cases never have to read-then-write unguarded: an invitation's
// status changes only from the status it was read with (compare-and-set), a
// code is redeemed at most once, and a pair of teams has at most one live
// connection (a unique key in the schema; the loser of two accepts at once
// gets `pair_taken`).
//
// The writes a client may retry with an Idempotency-Key (creating and
// answering an invitation) take the key's record (src/teams/idempotency.ts)
// and write it in their own atomic unit, for the acting team, only when the
// write itself happens: there is no moment at which the invitation, the
// answer or the connection exists without its record, or the reverse. A
// record whose key the team already used (another request with the same key
// won a race) fails the whole unit, which answers as a conflict: the caller
// then replays the winner's record (writeOnce).

/** A keyset position in a newest-first listing: the row's time, then its id. */
export interface PageAfter {
  at: number;
  id: string;
}

export interface Page<T> {
  items: T[];
  /** Where the next page starts; null when this one is the last. */
  next: PageAfter | null;
}

/** What accepting an invitation came to. */
export type AcceptOutcome =
  /** The invitation is accepted and the connection exists, both in one atomic unit. */
  | "accepted"
  /** The invitation was no longer pending (redeemed, declined or cancelled in between): nothing written. */
  | "gone"
  /** The pair already has a live connection (another accept won): nothing written. */
  | "pair_taken";

export interface ConnectionsStore extends Pick<TeamStore, "idempotencyRecord"> {
  /** With a record: both or neither; the key already recorded for the team is a conflict (DomainError). */
  insertInvitation(invitation: Invitation, record?: IdempotencyRecord): Promise<void>;
  /** The invitation whose code hashes to this, whatever its team and status; null when none. */
  invitationByCode(codeHash: string): Promise<Invitation | null>;
  /** One of the inviting team's invitations; null when that team has none of that id. */
  invitationOf(fromTeam: string, id: string): Promise<Invitation | null>;
  /** The inviting team's invitations, newest first. */
  invitations(fromTeam: string, limit: number, after: PageAfter | null): Promise<Page<Invitation>>;
  /**
   * Writes the invitation's status and answer only if it still has status
   * `previous`: false when another request changed it first. With a record
   * (of the answering team, invitation.answeredBy), it is written in the same
   * unit and only if the update happens; the key already recorded for that
   * team is a conflict (DomainError), with nothing written.
   */
  updateInvitation(invitation: Invitation, previous: InvitationStatus, record?: IdempotencyRecord): Promise<boolean>;
  /**
   * Marks the invitation accepted (only if it is still pending) and inserts
   * the connection, in one atomic unit: both or neither. With a record (of
   * the accepting team), it joins that unit, written only if the accept is;
   * the key already recorded for that team fails the unit as `pair_taken`
   * does (the caller's conflict, which then finds the winner's record).
   */
  accept(invitation: Invitation, connection: Connection, record?: IdempotencyRecord): Promise<AcceptOutcome>;
  /** The live (accepted) connection between two teams, in either direction; null when none. */
  liveConnection(teamA: string, teamB: string): Promise<Connection | null>;
  /**
   * Whether the two teams have a connection, live or ended, in either
   * direction: a partner a team may keep prefs about (they outlive a
   * disconnect, for a reconnection).
   */
  everConnected(teamA: string, teamB: string): Promise<boolean>;
  /** A connection `team` is a party to; null when there is none of that id or `team` is not a party. */
  connectionFor(team: string, id: string): Promise<Connection | null>;
  /** The connections `team` is a party to, live or ended, newest first (by when they were accepted). */
  connections(team: string, limit: number, after: PageAfter | null): Promise<Page<Connection>>;
  /** Writes the connection's end only if it is still live: false when it had ended already. */
  disconnect(connection: Connection): Promise<boolean>;
}
