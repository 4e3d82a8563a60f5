import type { DirChannel, DirUser } from "./model";

// The one wire shape of each directory entity. The team cache's answers
// (durable-objects/team-cache/queries.ts), the real-time events
// (src/realtime/directory-events.ts) and the admin API (routes/directory-admin.ts)
// all build on these; field names and order are what clients read.

/** A user as every client sees it. */
export interface UserCard {
  id: string;
  name: string;
  real_name: string;
  display_name: string;
  title: string;
  avatar_hash: string;
  tz: string;
  is_bot: boolean;
  role: string;
  deleted: boolean;
}

/** A channel as every client sees it (the cache adds the viewer's view: member_count, is_member). */
export interface ChannelCardBase {
  id: string;
  name: string;
  topic: string;
  purpose: string;
  is_private: boolean;
  is_archived: boolean;
  is_shared: boolean;
}

/** What a user card is made of: a DirUser, or a cache row read as one (its role a plain string). */
export type UserCardSource = Pick<
  DirUser,
  "id" | "name" | "realName" | "displayName" | "title" | "avatarHash" | "tz" | "isBot" | "deleted"
> & { role: string };

/** What a channel card is made of: whether it is shared, not with whom. */
export type ChannelCardSource = Pick<DirChannel, "id" | "name" | "topic" | "purpose" | "isPrivate" | "isArchived"> & {
  isShared: boolean;
};

export function userCard(u: UserCardSource): UserCard {
  return {
    id: u.id,
    name: u.name,
    real_name: u.realName,
    display_name: u.displayName,
    title: u.title,
    avatar_hash: u.avatarHash,
    tz: u.tz,
    is_bot: u.isBot,
    role: u.role,
    deleted: u.deleted,
  };
}

export function channelCard(c: ChannelCardSource): ChannelCardBase {
  return {
    id: c.id,
    name: c.name,
    topic: c.topic,
    purpose: c.purpose,
    is_private: c.isPrivate,
    is_archived: c.isArchived,
    is_shared: c.isShared,
  };
}

/** A DirChannel's card. */
export function dirChannelCard(c: DirChannel): ChannelCardBase {
  return channelCard({ ...c, isShared: c.sharedWith.length > 0 });
}

/** The admin API's user: the card with its team and update time, `deactivated` for `deleted`. */
export function adminProfile(u: DirUser) {
  const { id, deleted, ...card } = userCard(u);
  return { id, team_id: u.teamId, ...card, deactivated: deleted, updated_at: u.updatedAt };
}

/** The admin API's channel: the card with its team, whom it is shared with, and its times. */
export function adminChannel(ch: DirChannel) {
  const { id, is_shared: _shared, ...card } = dirChannelCard(ch);
  return {
    id,
    team_id: ch.teamId,
    ...card,
    shared_with: ch.sharedWith,
    created_at: ch.createdAt,
    updated_at: ch.updatedAt,
  };
}
