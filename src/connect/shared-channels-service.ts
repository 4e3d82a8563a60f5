import { conflict, DomainError } from "../errors";
import { newId as newSlackId } from "../ids";
import { type Actor, isParty, partnerOf } from "./connections";
import {
  type ConnectionsPorts,
  type ConnectionView,
  cursorOf,
  disconnectConnection,
  type PageRequest,
  pageLimitOf,
  parseCursor,
} from "./connections-service";
import type { ConnectionsStore } from "./connections-store";
import { type AutoApprovalValue, autoApproval } from "./prefs/auto-approval";
import { type ChannelCreationValue, channelCreation } from "./prefs/channel-creation";
import { fileUploads, uploadRefusal } from "./prefs/file-uploads";
import type { PrefClass } from "./prefs/pref";
import { effectiveValue, type PrefsPorts } from "./prefs-service";
import {
  answerInvite,
  autoApproves,
  inviteToChannel,
  mayJoin,
  mayLeave,
  type SharedChannelInvite,
  type SharingActor,
  sharedChannelView,
  withdrawInvite,
} from "./shared-channels";
import type { SharedChannelsStore } from "./shared-channels-store";

// The shared-channel use cases: a member of the host team (as its
// channel_creation pref allows) invites the partner of a live connection to
// one of its channels; the partner's admin accepts or declines, unless its
// auto_approval pref toward the host answers at once; either side ends an
// accepted one; a disconnect ends them all. The rules are
// ./shared-channels.ts. Every lookup is scoped to the actor's team, so
// another team's ids answer as missing ones. Authorization (a live member,
// or admin, of the actor's team) is the caller's.
//
// The directory follows the status (share on accept, unshare on end) after
// the status is written with `applied = false`, then the row is marked
// applied; `finishPending` (the cron sweep) finishes whatever a crash left
// in between, so a status is never contradicted by the directory for good.

/** The directory's writes (src/directory/admin.ts), each publishing its events. */
export interface ChannelSharing {
  share(hostTeam: string, channelId: string, guestTeam: string): Promise<void>;
  unshare(hostTeam: string, channelId: string, guestTeam: string): Promise<void>;
  /** Adds users of `usersTeam` to the host's channel: the ids added, and how many were members already. */
  addMembers(
    hostTeam: string,
    channelId: string,
    userIds: string[],
    usersTeam: string,
  ): Promise<{ added: string[]; unchanged: number }>;
  /** Whether the user was a member (and is no more). */
  removeMember(hostTeam: string, channelId: string, userId: string): Promise<boolean>;
}

export interface SharedChannelsPorts {
  store: SharedChannelsStore;
  connections: Pick<ConnectionsStore, "connectionFor">;
  prefs: Pick<PrefsPorts, "store">;
  sharing: ChannelSharing;
  now(): number;
  newId(): string;
}

/** Shared-channel invitation ids: `H…` (the host's ask), the platform's alphabet. */
export function newSharedChannelId(): string {
  return `H${newSlackId("T").slice(1)}`;
}

/** How long a changed invitation may wait before the sweep takes it for one a crash left half done. */
export const SWEEP_GRACE_MS = 10_000;
/** Invitations the sweep finishes per run. */
export const SWEEP_BATCH = 100;

export type SharedChannelView = ReturnType<typeof sharedChannelView>;

function prefOf<T>(ports: SharedChannelsPorts, team: string, partner: string, cls: PrefClass<T>): Promise<T> {
  return effectiveValue(ports.prefs, team, partner, cls);
}

/**
 * Makes the directory match the invitation's status, then marks it applied.
 * A share the directory refuses (the partner already has a channel with
 * this id) ends the invitation instead: the platform ended it, and the
 * refusal is the caller's answer.
 */
async function apply(ports: SharedChannelsPorts, invite: SharedChannelInvite): Promise<SharedChannelInvite> {
  if (invite.applied) return invite;
  const { hostTeam, guestTeam } = invite;
  if (invite.status === "accepted") {
    try {
      await ports.sharing.share(hostTeam, invite.channel.id, guestTeam);
    } catch (error) {
      if (!(error instanceof DomainError) || error.kind !== "conflict") throw error;
      const now = ports.now();
      const ended: SharedChannelInvite = {
        ...invite,
        status: "ended",
        endedBy: { team: hostTeam, user: null, at: now },
        applied: true,
        updatedAt: now,
      };
      await ports.store.update(ended, "accepted");
      throw conflict(`the partner already has a channel with id ${invite.channel.id}; the invitation was ended`);
    }
    // An end (or a disconnect) may have been written while this share ran, and
    // its unshare may have run before this share: read the status again after
    // sharing. Ended now: undo the share here. Still accepted: any end comes
    // later, and its own unshare runs after this share.
    const now = await ports.store.inviteFor(hostTeam, invite.id);
    if (now && now.status !== "accepted") {
      await unshareUnlessReopened(ports, now);
      return now;
    }
  } else if (invite.status === "ended") {
    await unshareUnlessReopened(ports, invite);
  }
  await ports.store.markApplied(invite.id, invite.status);
  return { ...invite, applied: true };
}

/**
 * Unshares an ended invitation's channel, unless a newer invitation of it to
 * the same partner was accepted since. Read again after the unshare, as an
 * accept's share is after its own: a newer accept whose share ran before
 * this unshare is shared again here (sharing twice is a no-op).
 */
async function unshareUnlessReopened(ports: SharedChannelsPorts, invite: SharedChannelInvite): Promise<void> {
  const { hostTeam, guestTeam } = invite;
  const reopened = async () =>
    (await ports.store.openInvite(hostTeam, invite.channel.id, guestTeam))?.status === "accepted";
  if (await reopened()) return;
  await ports.sharing.unshare(hostTeam, invite.channel.id, guestTeam);
  if (await reopened()) await ports.sharing.share(hostTeam, invite.channel.id, guestTeam);
}

/** The host's member invites the connection's partner to one of the host's channels. */
export async function inviteChannel(
  ports: SharedChannelsPorts,
  by: SharingActor,
  connectionId: string,
  channelId: string,
): Promise<SharedChannelView> {
  const connection = await ports.connections.connectionFor(by.team, connectionId);
  const channel = connection ? await ports.store.channelOf(by.team, channelId) : null;
  const member = channel?.isPrivate ? (await ports.store.memberTeamOf(by.team, channelId, by.user)) === by.team : false;
  // The pref is read only for a connection the team is a party to (inviteToChannel refuses the rest).
  const creation: ChannelCreationValue =
    connection && isParty(connection, by.team)
      ? await prefOf(ports, by.team, partnerOf(connection, by.team), channelCreation)
      : channelCreation.defaultValue;
  const invite = inviteToChannel(ports.newId(), by, connection, channel, member, creation, ports.now());
  const outcome = await ports.store.insert(invite);
  if (outcome === "connection_ended") throw conflict("this connection has ended");
  if (outcome === "already_open") {
    const open = await ports.store.openInvite(invite.hostTeam, channelId, invite.guestTeam);
    throw conflict("this channel already has an open invitation to this partner", { invitation: open?.id ?? null });
  }
  // The partner's own pref toward the host may accept at once.
  const approval: AutoApprovalValue = await prefOf(ports, invite.guestTeam, invite.hostTeam, autoApproval);
  if (!autoApproves(approval, by.user)) return sharedChannelView(invite, by.team);
  const accepted = answerInvite(invite, { team: invite.guestTeam, user: null }, "accept", ports.now());
  // Lost to a cancel or a disconnect meanwhile: the invitation stays as that left it.
  if (!(await ports.store.update(accepted, "pending"))) return sharedChannelView(invite, by.team);
  return sharedChannelView(await apply(ports, accepted), by.team);
}

/** Pending invitations a prefs change reviews at most (the rest wait for an admin, or the next change). */
export const REVIEW_MAX = 500;

/**
 * After the guest team widened its auto-approval (toward one host, or every
 * host at the org level): its pending invitations the prefs now in force
 * approve are accepted and shared, as if they had just arrived. One that a
 * cancel or a disconnect took meanwhile stays as that left it. If this is
 * cut off, the rest stay pending: an admin answers them as before.
 */
export async function reviewPendingInvites(
  ports: SharedChannelsPorts,
  guestTeam: string,
  hostTeam: string | null,
): Promise<number> {
  let accepted = 0;
  const approvals = new Map<string, AutoApprovalValue>();
  for (const invite of await ports.store.pendingFor(guestTeam, hostTeam, REVIEW_MAX)) {
    let approval = approvals.get(invite.hostTeam);
    if (!approval) {
      approval = await prefOf(ports, guestTeam, invite.hostTeam, autoApproval);
      approvals.set(invite.hostTeam, approval);
    }
    if (!autoApproves(approval, invite.createdBy.user)) continue;
    const answered = answerInvite(invite, { team: guestTeam, user: null }, "accept", ports.now());
    if (!(await ports.store.update(answered, "pending"))) continue;
    try {
      await apply(ports, answered);
      accepted++;
    } catch (error) {
      // A refused share ended that invitation (apply); the others go on.
      if (!(error instanceof DomainError) || error.kind !== "conflict") throw error;
    }
  }
  return accepted;
}

/** The partner's admin accepts (the channel is shared with its team) or declines. */
export async function answerChannel(
  ports: SharedChannelsPorts,
  by: Actor,
  id: string,
  decision: "accept" | "decline",
): Promise<SharedChannelView> {
  const answered = answerInvite(await ports.store.inviteFor(by.team, id), by, decision, ports.now());
  if (!(await ports.store.update(answered, "pending"))) {
    throw conflict("this invitation was cancelled, or its connection ended, meanwhile");
  }
  return sharedChannelView(await apply(ports, answered), by.team);
}

/** The host cancels a pending invitation, or either side ends an accepted one (the channel leaves the partner). */
export async function withdrawChannel(
  ports: SharedChannelsPorts,
  by: SharingActor,
  id: string,
): Promise<SharedChannelView> {
  const current = await ports.store.inviteFor(by.team, id);
  const changed = withdrawInvite(current, by, ports.now());
  if (!current || !(await ports.store.update(changed, current.status))) {
    throw conflict("this invitation changed meanwhile; read it again");
  }
  return sharedChannelView(await apply(ports, changed), by.team);
}

/** The partner puts its people into an accepted shared channel (mayJoin says who may add whom). */
export async function joinSharedChannel(
  ports: SharedChannelsPorts,
  by: SharingActor,
  id: string,
  userIds: string[],
): Promise<{ added: string[]; unchanged: number }> {
  const found = await ports.store.inviteFor(by.team, id);
  const channel = found?.guestTeam === by.team ? await ports.store.channelOf(found.hostTeam, found.channel.id) : null;
  const invite = mayJoin(found, by, userIds, channel?.isPrivate ?? true);
  return ports.sharing.addMembers(invite.hostTeam, invite.channel.id, userIds, by.team);
}

/** One of the partner's people leaves the shared channel: itself, or removed by an admin of its team. */
export async function leaveSharedChannel(
  ports: SharedChannelsPorts,
  by: SharingActor,
  id: string,
  userId: string,
): Promise<{ removed: boolean }> {
  const invite = mayLeave(await ports.store.inviteFor(by.team, id), by, userId);
  // Only the partner's own people: a host member with the same id is the host's to remove.
  const team = await ports.store.memberTeamOf(invite.hostTeam, invite.channel.id, userId);
  if (team !== by.team) return { removed: false };
  return { removed: await ports.sharing.removeMember(invite.hostTeam, invite.channel.id, userId) };
}

export async function listSharedChannels(
  ports: SharedChannelsPorts,
  team: string,
  page: PageRequest = {},
): Promise<{ shared_channels: SharedChannelView[]; next_cursor: string | null }> {
  const { items, next } = await ports.store.invites(team, pageLimitOf(page.limit), parseCursor(page.cursor));
  return { shared_channels: items.map((i) => sharedChannelView(i, team)), next_cursor: cursorOf(next) };
}

/** After a disconnect (which closed its invitations in its own unit): the channels leave both teams now. */
/**
 * Why the organizations of a shared channel refuse a file from `team`'s
 * user, or null. Each side decides for the channels it shares with the
 * other: the uploader's organization for what its members send to each
 * team in the channel, each of those for what it receives from the
 * uploader's (their `file_uploads` prefs toward each other, partner level
 * over org level over default). A channel shared with nobody: null.
 */
export async function sharedUploadRefusal(
  ports: Pick<SharedChannelsPorts, "store" | "prefs">,
  host: string,
  channelId: string,
  team: string,
  file: { bytes: number; type: string; name: string },
): Promise<string | null> {
  const guests = await ports.store.sharedWith(host, channelId);
  if (guests.length === 0) return null;
  const others = [host, ...guests].filter((t) => t !== team);
  const sides = others.flatMap(
    (other): Array<[string, string]> => [
      [team, other],
      [other, team],
    ],
  );
  const prefs = await Promise.all(sides.map(([a, b]) => effectiveValue(ports.prefs, a, b, fileUploads)));
  for (const p of prefs) {
    const refused = uploadRefusal(p, file);
    if (refused) return refused;
  }
  return null;
}

export async function endConnectionChannels(ports: SharedChannelsPorts, connectionId: string): Promise<number> {
  let ended = 0;
  for (const invite of await ports.store.unappliedOf(connectionId)) {
    await apply(ports, invite);
    ended++;
  }
  return ended;
}

/**
 * The cron sweep: invitations whose status the directory has not reflected
 * for SWEEP_GRACE_MS (a crash between the status and the share). Failures
 * are logged and left for the next run.
 */
export async function finishPending(ports: SharedChannelsPorts): Promise<{ finished: number; failed: number }> {
  let finished = 0;
  let failed = 0;
  for (const invite of await ports.store.unapplied(ports.now() - SWEEP_GRACE_MS, SWEEP_BATCH)) {
    try {
      await apply(ports, invite);
      finished++;
    } catch (error) {
      // A refused share already ended its invitation (apply): that is finished too.
      if (error instanceof DomainError && error.kind === "conflict") finished++;
      else {
        failed++;
        console.error(
          `shared channel ${invite.id}: finishing its ${invite.status} failed; the next sweep retries`,
          error,
        );
      }
    }
  }
  return { finished, failed };
}

/**
 * Either party ends the connection (connections-service.ts), whose
 * invitations the disconnect closed in its own unit; then its shared
 * channels leave both teams at once. If that fails midway the sweep
 * finishes it: the disconnect itself has happened and is the answer.
 */
export async function disconnectWithChannels(
  ports: ConnectionsPorts,
  shared: SharedChannelsPorts,
  by: Actor,
  id: string,
): Promise<ConnectionView> {
  const ended = await disconnectConnection(ports, by, id);
  try {
    await endConnectionChannels(shared, id);
  } catch (error) {
    console.error(`connection ${id}: ending its shared channels failed; the sweep finishes it`, error);
  }
  return ended;
}
