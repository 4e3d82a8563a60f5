import { newId } from "../ids";
import type { IdempotencyRecord } from "../teams/team-store";
import type { ChangeEvent, ConversationSpec, DirChannel, DirUser, Membership } from "./model";

// Writes to the directory's source of truth: the input rules (rules.ts, applied
// by service.ts) in front of the SQL adapter (storage/directory/, composed by
// storage/directory-store.ts).
// Every write that changes something is one atomic unit: the entity rows, a
// bump of the team's directory version, and one change-log row per version,
// so versions are dense, never reused, and never ahead of (or behind) the data.
// Each write returns the events it produced, rebuilt from the committed state,
// for the caller to publish (ChangePublisher). A write that changes nothing
// returns no events and bumps nothing.
//
// Errors are DomainErrors (src/errors.ts): not_found for an unknown team,
// channel or user, conflict for a taken channel name or id, invalid for input
// the port's rules reject.

export interface NewChannel {
  id: string;
  /** Already normalized: see normalizeChannelName. */
  name: string;
  topic: string;
  purpose: string;
  isPrivate: boolean;
}

/** Fields to change; undefined leaves a field as it is. */
export interface ChannelPatch {
  name?: string;
  topic?: string;
  purpose?: string;
  isPrivate?: boolean;
  isArchived?: boolean;
}

export interface ProfilePatch {
  name?: string;
  realName?: string;
  displayName?: string;
  title?: string;
  avatarHash?: string;
  tz?: string;
  isBot?: boolean;
}

export interface MemberInput {
  userId: string;
  /** The member's team: the channel's team when absent, else a team the channel is shared with. */
  userTeamId?: string;
}

export interface MembershipInput extends MemberInput {
  channelId: string;
}

export interface DirectoryWriter {
  /**
   * not_found for an unknown team; conflict when the name or id is taken (or
   * the id is a channel shared into the team).
   */
  createChannel(
    teamId: string,
    channel: NewChannel,
    now: number,
  ): Promise<{ channel: DirChannel; events: ChangeEvent[] }>;
  /**
   * Rename, topic, purpose, privacy, archive / unarchive. A shared channel's
   * change is an event in the host's log and in every team it is shared with.
   */
  updateChannel(
    teamId: string,
    channelId: string,
    patch: ChannelPatch,
    now: number,
  ): Promise<{ channel: DirChannel; events: ChangeEvent[] }>;
  /** One member_added event per new member; members already there are left alone (idempotent). */
  addMembers(
    teamId: string,
    channelId: string,
    members: MemberInput[],
    now: number,
  ): Promise<{ added: Membership[]; unchanged: number; events: ChangeEvent[] }>;
  /**
   * One member_removed event per removed member; non-members are a no-op.
   * not_found for a user in no team of the channel.
   */
  removeMembers(
    teamId: string,
    channelId: string,
    userIds: string[],
    now: number,
  ): Promise<{ removed: Membership[]; unchanged: number; events: ChangeEvent[] }>;
  updateProfile(
    teamId: string,
    userId: string,
    patch: ProfilePatch,
    now: number,
  ): Promise<{ user: DirUser; events: ChangeEvent[] }>;
  /**
   * Shares a channel hosted by `teamId` into `withTeamId`: a channel event in
   * both teams' logs. Sharing again is a no-op. A conflict when the other team already
   * sees a channel with that id.
   */
  shareChannel(
    teamId: string,
    channelId: string,
    withTeamId: string,
    now: number,
  ): Promise<{ channel: DirChannel; events: ChangeEvent[] }>;
  /**
   * Ends the share of a channel hosted by `teamId` with `withTeamId`, as one
   * unit: the share, and every membership of `withTeamId`'s users in the
   * channel (a member_removed event each, in the host's log, as
   * removeMembers logs them), then a channel event in both teams' logs (the
   * other team's cache drops the channel on it). not_found for a channel the
   * team does not host; a no-op when it is not shared with `withTeamId`
   * (also when a concurrent unshare ended it first).
   */
  unshareChannel(
    teamId: string,
    channelId: string,
    withTeamId: string,
    now: number,
  ): Promise<{ channel: DirChannel; removed: Membership[]; events: ChangeEvent[] }>;
  /**
   * Bulk create, all or nothing: conflicts are checked first (a conflict
   * naming them), then every row, one version bump, one `reload` event and the
   * request's Idempotency-Key record (`record` of the answer, if given)
   * commit as one unit.
   */
  importChannels(
    teamId: string,
    channels: NewChannel[],
    now: number,
    record?: (answer: { imported: number }) => IdempotencyRecord,
  ): Promise<{ imported: number; events: ChangeEvent[] }>;
  /**
   * Bulk memberships of the team's own channels, all or nothing: unknown
   * channels and users are a not_found naming them; memberships already there are
   * kept; one version bump, one `reload` event and the Idempotency-Key
   * record (`record` of the answer, if given), as one unit.
   */
  importMemberships(
    teamId: string,
    rows: MembershipInput[],
    now: number,
    record?: (answer: { imported: number }) => IdempotencyRecord,
  ): Promise<{ imported: number; events: ChangeEvent[] }>;
  /**
   * Logs `user` events for users just written through TeamStore (which knows
   * nothing of directory versions). Many users at once (an import) log one
   * `reload` instead.
   */
  recordUserChanges(teamId: string, userIds: string[], now: number): Promise<ChangeEvent[]>;
  /** Logs one `reload` event: the team changed in ways not worth replaying (e.g. an import stopped part-way). */
  recordReload(teamId: string, now: number): Promise<ChangeEvent[]>;
  /**
   * Opens a DM or group DM (see ConversationSpec): the first open writes the
   * row (a private channel of its kind), its members, a channel event and a
   * member_added per member as one unit (`created`); a later open with the
   * same members finds it (two racing opens: the loser's unit fails on the
   * primary key and finds the winner's), and puts `rejoin` back in it when
   * that member had left. `members`: the member ids now, sorted. A conflict
   * when a channel of another kind holds the id.
   */
  openConversation(
    teamId: string,
    spec: ConversationSpec,
    rejoin: string,
    now: number,
  ): Promise<{ conversation: DirChannel; members: string[]; created: boolean; events: ChangeEvent[] }>;
  /**
   * Takes `userId` out of a group DM (a member_removed event); false when it
   * was not a member. not_found for an unknown id; invalid for a DM (`im`)
   * or a channel.
   */
  leaveConversation(
    teamId: string,
    conversationId: string,
    userId: string,
    now: number,
  ): Promise<{ left: boolean; events: ChangeEvent[] }>;
}

/** Slack's rule: lower-case letters, digits, `_` and `-`, at most 80. */
const CHANNEL_NAME = /^[a-z0-9_-]{1,80}$/;

/** Longest topic or purpose (Slack's limit; the column is varchar(250)). */
export const CHANNEL_TEXT_MAX = 250;

/** Longest value of each profile field (the users columns' widths). */
export const PROFILE_MAX = { name: 80, realName: 200, displayName: 80, title: 200, avatarHash: 64, tz: 64 } as const;

/** Trims and lower-cases; null when the result is not a valid channel name. */
export function normalizeChannelName(raw: string): string | null {
  const name = raw.trim().toLowerCase();
  return CHANNEL_NAME.test(name) ? name : null;
}

/** Same shape as team and user ids (src/ids.ts), with a C. */
export function newChannelId(): string {
  return `C${newId("T").slice(1)}`;
}
