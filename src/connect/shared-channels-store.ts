import type { Page, PageAfter } from "./connections-store";
import type { ChannelToShare, SharedChannelInvite, SharedChannelStatus } from "./shared-channels";

// Where shared-channel invitations are kept (storage/shared-channels-sql.ts
// on D1 and MySQL). As for connections, the store settles what two requests
// at once could break: an invitation is inserted only while its connection
// is live (a disconnect a moment earlier inserts nothing), one invitation per
// channel and partner is open (a unique key), and a status changes only from
// the status it was read with. A connection's disconnect closes its
// invitations in the disconnect's own unit (storage/connections-sql.ts).

export type InsertOutcome =
  | "inserted"
  /** The connection ended before the insert: nothing written. */
  | "connection_ended"
  /** The channel already has an open (pending or accepted) invitation to that partner: nothing written. */
  | "already_open";

export interface SharedChannelsStore {
  /** The host team's channel of that id, as an invitation names it; null when it has none. */
  channelOf(team: string, channelId: string): Promise<ChannelToShare | null>;
  /** The team of the channel's member with this id; null when no member of the channel has it. */
  memberTeamOf(team: string, channelId: string, user: string): Promise<string | null>;
  insert(invite: SharedChannelInvite): Promise<InsertOutcome>;
  /** An invitation `team` hosts or is invited by; null when there is none of that id for it. */
  inviteFor(team: string, id: string): Promise<SharedChannelInvite | null>;
  /** The open invitation of this channel to that partner, if any. */
  openInvite(hostTeam: string, channelId: string, guestTeam: string): Promise<SharedChannelInvite | null>;
  /** The teams the host's channel is shared with now (accepted, not ended). */
  sharedWith(hostTeam: string, channelId: string): Promise<string[]>;
  /** The invitations `team` hosts or is invited by, newest first. */
  invites(team: string, limit: number, after: PageAfter | null): Promise<Page<SharedChannelInvite>>;
  /**
   * Writes the invitation's status, answer, end and `applied` only if it
   * still has status `previous` (and, to accept, its connection is still
   * live): false when another request or a disconnect came first.
   */
  update(invite: SharedChannelInvite, previous: SharedChannelStatus): Promise<boolean>;
  /** The directory reflects the invitation's status (only if it still has that status). */
  markApplied(id: string, status: SharedChannelStatus): Promise<void>;
  /** Pending invitations to `guestTeam` (from `hostTeam` only, when given), oldest first. */
  pendingFor(guestTeam: string, hostTeam: string | null, limit: number): Promise<SharedChannelInvite[]>;
  /** Invitations whose status the directory does not reflect yet, changed at or before `before`, oldest first. */
  unapplied(before: number, limit: number): Promise<SharedChannelInvite[]>;
  /** Those of one connection (a disconnect's, to finish at once). */
  unappliedOf(connectionId: string): Promise<SharedChannelInvite[]>;
}
