import { badRequest, conflict, notFound } from "../errors";
import { newId as newSlackId } from "../ids";
import { type IdempotencyRequest, type Once, recordOf, writeOnce } from "../teams/idempotency";
import {
  type Actor,
  answer,
  type Connection,
  cancel,
  codeHashOf,
  connectionView,
  disconnect,
  type Invitation,
  invite,
  newInvitationCode,
} from "./connections";
import type { ConnectionsStore, PageAfter } from "./connections-store";

// The connections use cases: an admin invites (and gets the code, once),
// lists and cancels its team's invitations; another team's admin answers a
// code; either side lists its connections and disconnects. The rules are
// src/connect/connections.ts; what two requests at once could break is the
// store's (guarded writes, one live connection per pair). Authorization (a
// live admin of the actor's team) is the caller's; every lookup here is
// scoped to the actor's team, so another team's ids answer as missing ones.
//
// Creating and answering an invitation take an Idempotency-Key (the
// *Once use cases, src/teams/idempotency.ts): the key is the actor's team's,
// its record (the answer) is written by the store in the write's own atomic
// unit, and a retry with the key answers that record instead of writing again.

export interface ConnectionsPorts {
  store: ConnectionsStore;
  now(): number;
  newId(kind: "invitation" | "connection"): string;
}

/** Ids as the platform makes them: `I…` for invitations, `K…` for connections (C is a channel's). */
export function newConnectId(kind: "invitation" | "connection"): string {
  return `${kind === "invitation" ? "I" : "K"}${newSlackId("T").slice(1)}`;
}

export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 200;

/** A page position as clients carry it: `<time>.<id>`, opaque to them. */
export function cursorOf(after: PageAfter | null): string | null {
  return after ? `${after.at}.${after.id}` : null;
}

export function parseCursor(cursor: string | undefined): PageAfter | null {
  if (cursor === undefined) return null;
  const match = /^(\d{1,15})\.([A-Za-z0-9_-]{1,40})$/.exec(cursor);
  if (!match?.[1] || !match[2]) throw badRequest("cursor: not a cursor this API returned");
  return { at: Number(match[1]), id: match[2] };
}

export interface PageRequest {
  limit?: number;
  cursor?: string;
}

export function pageLimitOf(limit: number | undefined): number {
  return Math.min(Math.max(1, Math.trunc(limit ?? PAGE_DEFAULT)), PAGE_MAX);
}

/**
 * An invitation as its own team sees it. A pending one past its expiry reads
 * as expired (its code redeems nothing); who answered is shown once answered.
 */
export function invitationView(invitation: Invitation, now: number) {
  const expired = invitation.status === "pending" && invitation.expiresAt <= now;
  return {
    id: invitation.id,
    status: expired ? "expired" : invitation.status,
    created_by: invitation.fromUser,
    created_at: invitation.createdAt,
    expires_at: invitation.expiresAt,
    answered: invitation.answeredBy,
  };
}

export type InvitationView = ReturnType<typeof invitationView>;
export type ConnectionView = ReturnType<typeof connectionView>;

export interface CreatedInvitation {
  invitation: InvitationView;
  code: string;
}

/**
 * A new invitation of the actor's team, and its code: shown this once, only
 * its hash is kept with the invitation. With an Idempotency-Key, the answer
 * (code included) is the key's record, kept with the team's other keys for
 * IDEMPOTENCY_RETENTION_MS so that a retry shows the same code again.
 */
export async function createInvitation(
  ports: ConnectionsPorts,
  by: Actor,
  idempotency?: IdempotencyRequest,
): Promise<CreatedInvitation> {
  const code = newInvitationCode();
  const now = ports.now();
  const invitation = invite(ports.newId("invitation"), by, await codeHashOf(code), now);
  const created: CreatedInvitation = { invitation: invitationView(invitation, now), code };
  await ports.store.insertInvitation(invitation, idempotency ? recordOf(idempotency, created, now) : undefined);
  return created;
}

/** createInvitation, at most once per Idempotency-Key of the actor's team. */
export function createInvitationOnce(
  ports: ConnectionsPorts,
  by: Actor,
  idempotency: IdempotencyRequest | null,
): Promise<Once<CreatedInvitation>> {
  return writeOnce(ports.store, by.team, idempotency, (idem) => createInvitation(ports, by, idem));
}

export async function listInvitations(
  ports: ConnectionsPorts,
  team: string,
  page: PageRequest = {},
): Promise<{ invitations: InvitationView[]; next_cursor: string | null }> {
  const { items, next } = await ports.store.invitations(team, pageLimitOf(page.limit), parseCursor(page.cursor));
  const now = ports.now();
  return { invitations: items.map((i) => invitationView(i, now)), next_cursor: cursorOf(next) };
}

/** The actor's team withdraws its pending invitation; another team's id answers as a missing one. */
export async function cancelInvitation(ports: ConnectionsPorts, by: Actor, id: string): Promise<InvitationView> {
  const cancelled = cancel(await ports.store.invitationOf(by.team, id), by);
  if (!(await ports.store.updateInvitation(cancelled, "pending"))) {
    throw conflict("this invitation was answered or cancelled meanwhile");
  }
  return invitationView(cancelled, ports.now());
}

/**
 * The actor's team answers a code. Every code that cannot be redeemed
 * (unknown, expired, used, cancelled, the team's own, or redeemed by another
 * request a moment ago) is not_found, as one that never existed. Accepting
 * answers the connection as the actor's team sees it.
 */
export interface InvitationAnswer {
  decision: "accepted" | "declined";
  connection: ConnectionView | null;
}

export async function answerInvitation(
  ports: ConnectionsPorts,
  by: Actor,
  code: string,
  decision: "accept" | "decline",
  idempotency?: IdempotencyRequest,
): Promise<InvitationAnswer> {
  const invitation = await ports.store.invitationByCode(await codeHashOf(code));
  const now = ports.now();
  const redeemable = invitation?.status === "pending" && invitation.expiresAt > now && invitation.fromTeam !== by.team;
  // The pair's live connection is read only for a code that can be redeemed:
  // otherwise the answer is not_found whatever it is.
  const existing =
    redeemable && decision === "accept" ? await ports.store.liveConnection(invitation.fromTeam, by.team) : null;
  const answered = answer(invitation, by, decision, existing, ports.newId("connection"), now);
  const gone = () => notFound("no such invitation");
  // The key's record (the actor's team's) is written only with the answer itself: an
  // answer that fails (not_found, a conflict) records nothing, so its retry is judged anew.
  const record = (result: InvitationAnswer) => (idempotency ? recordOf(idempotency, result, now) : undefined);
  if (!answered.connection) {
    const declined: InvitationAnswer = { decision: "declined", connection: null };
    if (!(await ports.store.updateInvitation(answered.invitation, "pending", record(declined)))) throw gone();
    return declined;
  }
  const accepted: InvitationAnswer = { decision: "accepted", connection: connectionView(answered.connection, by.team) };
  const outcome = await ports.store.accept(answered.invitation, answered.connection, record(accepted));
  if (outcome === "gone") throw gone();
  if (outcome === "pair_taken") throw conflict("these organizations are already connected");
  return accepted;
}

/**
 * answerInvitation, at most once per Idempotency-Key of the actor's team: a
 * retry answers the first answer (the same connection), not the not_found a
 * second redemption of the code would get.
 */
export function answerInvitationOnce(
  ports: ConnectionsPorts,
  by: Actor,
  code: string,
  decision: "accept" | "decline",
  idempotency: IdempotencyRequest | null,
): Promise<Once<InvitationAnswer>> {
  return writeOnce(ports.store, by.team, idempotency, (idem) => answerInvitation(ports, by, code, decision, idem));
}

export async function listConnections(
  ports: ConnectionsPorts,
  team: string,
  page: PageRequest = {},
): Promise<{ connections: ConnectionView[]; next_cursor: string | null }> {
  const { items, next } = await ports.store.connections(team, pageLimitOf(page.limit), parseCursor(page.cursor));
  return { connections: items.map((c) => connectionView(c, team)), next_cursor: cursorOf(next) };
}

/**
 * Either party ends the connection. The answer is the ended connection. The
 * store closes its shared-channel invitations in the same unit; the
 * channels themselves leave both teams next (disconnectWithChannels,
 * ./shared-channels-service.ts).
 */
export async function disconnectConnection(ports: ConnectionsPorts, by: Actor, id: string): Promise<ConnectionView> {
  const ended: Connection = disconnect(await ports.store.connectionFor(by.team, id), by, ports.now());
  if (!(await ports.store.disconnect(ended))) throw conflict("this connection has already ended");
  return connectionView(ended, by.team);
}
