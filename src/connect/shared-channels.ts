import { isAdminRole } from "../auth/policy";
import { conflict, forbidden, notFound } from "../errors";
import type { Role } from "../teams/model";
import { type Connection, isParty, partnerOf } from "./connections";
import type { AutoApprovalValue } from "./prefs/auto-approval";
import { type ChannelCreationValue, mayCreateShared } from "./prefs/channel-creation";

// A shared-channel invitation: the host team asks its partner, over their
// live connection, to join one of its channels. It takes effect only when
// the partner accepts (one of its admins, or its auto-approval pref for
// that host); until then the host learns nothing about the partner's
// members, and the partner sees only the channel's id and name.
//
// Lifecycle: pending, then accepted, declined (by the partner) or cancelled
// (by the host); an accepted one is ended by either side, or by the
// connection's disconnect, which ends every one of its channels. At most one
// invitation per channel and partner is open (pending or accepted) at a time.
//
// The status is the source of truth, the directory's share its consequence:
// `applied` says whether the directory reflects the status yet (an accepted
// invitation shared, an ended one unshared). A status change and
// `applied = false` are one atomic write; the share follows, then
// `applied = true`. A crash in between leaves a row the cron sweep finishes.

export type SharedChannelStatus = "pending" | "accepted" | "declined" | "cancelled" | "ended";

export interface SharedChannelInvite {
  id: string;
  connectionId: string;
  hostTeam: string;
  guestTeam: string;
  /** The host's channel, named as it was when invited. */
  channel: { id: string; name: string };
  status: SharedChannelStatus;
  createdBy: { user: string; at: number };
  /** The partner's answer; `user` null when its auto-approval pref answered. */
  answeredBy: { user: string | null; at: number; auto: boolean } | null;
  /** Who ended an accepted one; `user` null when the platform did (the connection ended, or the share failed). */
  endedBy: { team: string; user: string | null; at: number } | null;
  /** Whether the directory reflects the status (see above). */
  applied: boolean;
  updatedAt: number;
}

/** A channel as an invitation may name it (the host's directory). */
export interface ChannelToShare {
  id: string;
  name: string;
  isPrivate: boolean;
  isArchived: boolean;
}

/** Who acts, with the role the route read from live state. */
export interface SharingActor {
  team: string;
  user: string;
  role: Role;
}

const noSuchInvite = () => notFound("no such shared-channel invitation");

/**
 * The host's member asks the partner to join `channel`. The connection must
 * be live and the caller's; the host's `channel_creation` pref toward that
 * partner says who of the host may; a private channel is shared by its
 * members or an admin, never by someone who cannot see it.
 */
export function inviteToChannel(
  id: string,
  by: SharingActor,
  connection: Connection | null,
  channel: ChannelToShare | null,
  isChannelMember: boolean,
  creation: ChannelCreationValue,
  now: number,
): SharedChannelInvite {
  // Only the two teams may know a connection exists: any other id is missing.
  if (!connection || !isParty(connection, by.team)) throw notFound("no such connection");
  if (connection.status !== "accepted") throw conflict("this connection has ended");
  const admin = by.role === "owner" || by.role === "admin";
  if (!channel || (channel.isPrivate && !isChannelMember && !admin)) throw notFound("no such channel");
  if (channel.isArchived) throw conflict("an archived channel cannot be shared");
  if (!mayCreateShared(creation, by.role)) {
    throw forbidden(`your team's prefs do not let a ${by.role} share channels with this partner (channel_creation)`);
  }
  return {
    id,
    connectionId: connection.id,
    hostTeam: by.team,
    guestTeam: partnerOf(connection, by.team),
    channel: { id: channel.id, name: channel.name },
    status: "pending",
    createdBy: { user: by.user, at: now },
    answeredBy: null,
    endedBy: null,
    applied: true,
    updatedAt: now,
  };
}

/** Whether the partner's auto-approval pref (toward the host) accepts an invitation sent by `inviter`. */
export function autoApproves(pref: AutoApprovalValue, inviter: string): boolean {
  return pref.mode === "all" || (pref.mode === "listed" && pref.users.includes(inviter));
}

/** The partner answers (an admin of it; `by.user` null for its auto-approval). */
export function answerInvite(
  invite: SharedChannelInvite | null,
  by: { team: string; user: string | null },
  decision: "accept" | "decline",
  now: number,
): SharedChannelInvite {
  // The host cannot answer its own invitation, and learns nothing by trying.
  if (!invite || invite.guestTeam !== by.team) throw noSuchInvite();
  if (invite.status !== "pending") throw conflict(`this invitation was already ${invite.status}`);
  const answeredBy = { user: by.user, at: now, auto: by.user === null };
  if (decision === "decline") return { ...invite, status: "declined", answeredBy, updatedAt: now };
  return { ...invite, status: "accepted", answeredBy, applied: false, updatedAt: now };
}

/**
 * Withdrawn or ended by one side: the host cancels a pending invitation (an
 * admin, or the member who sent it); an admin of either side ends an
 * accepted one (the channel leaves the partner).
 */
export function withdrawInvite(invite: SharedChannelInvite | null, by: SharingActor, now: number): SharedChannelInvite {
  if (!invite || (invite.hostTeam !== by.team && invite.guestTeam !== by.team)) throw noSuchInvite();
  const admin = by.role === "owner" || by.role === "admin";
  if (invite.status === "pending") {
    if (invite.hostTeam !== by.team) throw forbidden("the partner declines a pending invitation (POST …/answer)");
    if (!admin && invite.createdBy.user !== by.user) throw forbidden("only an admin or its sender may cancel it");
    return { ...invite, status: "cancelled", updatedAt: now };
  }
  if (invite.status !== "accepted") throw conflict(`this invitation was already ${invite.status}`);
  if (!admin) throw forbidden("ending a shared channel needs a team owner or admin");
  return {
    ...invite,
    status: "ended",
    endedBy: { team: by.team, user: by.user, at: now },
    applied: false,
    updatedAt: now,
  };
}

/**
 * Who of the partner may put its people into an accepted shared channel:
 * its admins, anyone of theirs; a full member, only itself and only into a
 * public channel (a private one is its admins' to fill). The host's side
 * manages its own members through the directory's admin routes.
 */
export function mayJoin(
  invite: SharedChannelInvite | null,
  by: SharingActor,
  userIds: readonly string[],
  isPrivate: boolean,
): SharedChannelInvite {
  const ours = partnersInvite(invite, by);
  inEffect(ours);
  if (isAdminRole(by.role)) return ours;
  if (by.role === "guest") throw forbidden("guests cannot join shared channels");
  if (isPrivate || userIds.some((u) => u !== by.user)) {
    throw forbidden("members may add only themselves, and only to a public shared channel");
  }
  return ours;
}

/**
 * Who of the partner may take one of its people out of an accepted shared
 * channel: anyone itself (a private channel and a guest too), its admins
 * anyone of theirs.
 */
export function mayLeave(invite: SharedChannelInvite | null, by: SharingActor, userId: string): SharedChannelInvite {
  const ours = partnersInvite(invite, by);
  if (!isAdminRole(by.role) && userId !== by.user) throw forbidden("members may remove only themselves");
  return inEffect(ours);
}

/** The invitation, if `by`'s team is the partner it invites; anything else is not found. */
function partnersInvite(invite: SharedChannelInvite | null, by: SharingActor): SharedChannelInvite {
  if (!invite || invite.guestTeam !== by.team) throw noSuchInvite();
  return invite;
}

/** The invitation, if its channel is shared now (accepted, and carried out). */
function inEffect(invite: SharedChannelInvite): SharedChannelInvite {
  if (invite.status !== "accepted" || !invite.applied) {
    throw conflict(`this channel is not shared with you (${invite.status})`);
  }
  return invite;
}

/** The invitation as one of its teams sees it. */
export function sharedChannelView(invite: SharedChannelInvite, team: string) {
  const hosted = invite.hostTeam === team;
  return {
    id: invite.id,
    connection: invite.connectionId,
    partner: hosted ? invite.guestTeam : invite.hostTeam,
    hosted_by_us: hosted,
    channel: invite.channel,
    status: invite.status,
    created: { team: invite.hostTeam, user: invite.createdBy.user, at: invite.createdBy.at },
    answered: invite.answeredBy && { team: invite.guestTeam, ...invite.answeredBy },
    ended: invite.endedBy,
    /** False while the channel's share or unshare is still being carried out. */
    in_effect: invite.applied,
  };
}
