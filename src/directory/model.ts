import type { Role } from "../teams/model";

// What the edge cache holds and what change events carry. Entity events carry
// the entity's full current state, so applying one is an idempotent upsert and
// replaying a range of them after a gap is safe.

export interface DirUser {
  teamId: string;
  id: string;
  /** Handle, e.g. "ada". */
  name: string;
  realName: string;
  displayName: string;
  title: string;
  avatarHash: string;
  tz: string;
  isBot: boolean;
  role: Role;
  /** Deactivated: excluded from suggestions, still resolvable by id. */
  deleted: boolean;
  updatedAt: number;
}

/**
 * What a channels row is: a channel, a direct message (`im`: two members, or
 * one for a self-DM) or a group DM (`mpim`: 3-8 members). DMs are stored as
 * private channels of this kind (src/conversations/directory-conversations.ts),
 * so the write path, change log, cache feed and visibility rules apply as they are.
 */
export type ConversationKind = "channel" | "im" | "mpim";

export const CONVERSATION_KINDS: readonly ConversationKind[] = ["channel", "im", "mpim"];

export function isConversationKind(value: unknown): value is ConversationKind {
  return value === "channel" || value === "im" || value === "mpim";
}

/**
 * A DM or group DM to open: its id derives from the team and the member ids
 * (src/conversations/directory-conversations.ts), members sorted, the caller among them.
 */
export interface ConversationSpec {
  id: string;
  kind: Exclude<ConversationKind, "channel">;
  /** Every member's user id, sorted, each once (all of the caller's team). */
  members: string[];
}

export function kindOf(c: { kind?: ConversationKind }): ConversationKind {
  return c.kind ?? "channel";
}

export interface DirChannel {
  /** The hosting team (a shared channel is hosted by one team). */
  teamId: string;
  id: string;
  /**
   * `channel`, or a DM / group DM (name = id; shown by its members, never
   * edited). The store always sets it; absent (a hand-built channel) reads
   * as `channel` (kindOf).
   */
  kind?: ConversationKind;
  name: string;
  topic: string;
  purpose: string;
  isPrivate: boolean;
  isArchived: boolean;
  createdAt: number;
  updatedAt: number;
  /** Other teams this channel is shared with; empty for a team-local channel. */
  sharedWith: string[];
}

export interface Membership {
  channelId: string;
  userId: string;
  /** The member's team (differs from the channel's team in a shared channel). */
  userTeamId: string;
}

export type DirectoryChange =
  | { kind: "user"; user: DirUser }
  | { kind: "channel"; channel: DirChannel }
  | { kind: "member_added"; membership: Membership }
  | { kind: "member_removed"; membership: Membership }
  /**
   * Too much changed to replay (a bulk import): reload the team's directory.
   * Carries no state; applying it means loading again from DirectorySource.
   */
  | { kind: "reload" };

/** One change to one team's directory; versions are dense per team (1, 2, 3, ...). */
export interface ChangeEvent {
  teamId: string;
  version: number;
  change: DirectoryChange;
}
