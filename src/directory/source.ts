import type { ChangeEvent, DirChannel, DirUser, Membership } from "./model";

/**
 * What a team cache loads from (the database, through storage/directory-store.ts).
 * Pages are keyset-ordered so a load can resume and never skips rows.
 */
export interface DirectorySource {
  /** The team's current directory version (0 for a team with no changes yet). */
  version(teamId: string): Promise<number>;
  pageUsers(teamId: string, afterId: string | null, limit: number): Promise<DirUser[]>;
  /** These users of the team, as they are now (those it does not have are left out). */
  users(teamId: string, ids: string[]): Promise<DirUser[]>;
  /** The team's active users and channels (kind channel, own and shared in): a boot's header while the cache loads. */
  counts(teamId: string): Promise<{ activeUsers: number; channels: number }>;
  /**
   * One user of the team's memberships, in the team's own channels and in
   * channels shared in: the rows a load would give the cache for that user.
   */
  membershipsOfUser(teamId: string, userId: string): Promise<Membership[]>;
  /**
   * How many of the team's own users are in each of these channels it hosts
   * (a card's member count; a shared channel's comes from its own object).
   * Channels with none are left out.
   */
  memberCounts(teamId: string, channelIds: string[]): Promise<Record<string, number>>;
  /** Members of these channels the team hosts (a caller's DMs, whose member lists are small), by channel and user. */
  membersOf(teamId: string, channelIds: string[]): Promise<Membership[]>;
  /** These channels as the team sees them (hosted by it or shared with it), ordered by id. */
  channels(teamId: string, ids: string[]): Promise<DirChannel[]>;
  /** Channels hosted by the team or shared with it, ordered by id. */
  pageChannels(teamId: string, afterId: string | null, limit: number): Promise<DirChannel[]>;
  /** Memberships of the team's own (not shared-in) channels, ordered by (channelId, userId). */
  pageMemberships(
    teamId: string,
    after: { channelId: string; userId: string } | null,
    limit: number,
  ): Promise<Membership[]>;
  /** Members of one channel (any team), by user id: what a shared channel's object loads. */
  pageChannelMembers(
    hostTeamId: string,
    channelId: string,
    afterUserId: string | null,
    limit: number,
  ): Promise<Membership[]>;
  /**
   * The team's users' memberships in channels hosted by other teams (shared
   * in), ordered by (channelId, userId).
   */
  pageForeignMemberships(
    teamId: string,
    after: { channelId: string; userId: string } | null,
    limit: number,
  ): Promise<Membership[]>;
  /**
   * Events with version > `since`, in version order, rebuilt from the change
   * log with each entity's current state: what a cache that missed events
   * needs, and nothing more.
   */
  changesSince(teamId: string, since: number, limit: number): Promise<ChangeEvent[]>;
}

/** Where committed changes go: the team caches (the Worker passes a Durable Object publisher). */
export interface ChangePublisher {
  /** Events of one team, in version order. Failures are the cache's gap to recover, not the writer's. */
  publish(teamId: string, events: ChangeEvent[]): Promise<void>;
}
