import type { Clock } from "../clock";
import type { IdempotencyRequest, Once } from "../teams/idempotency";
import type { TeamStore } from "../teams/team-store";
import { type ImportAnswer, type ImportOutcome, importChannelsOnce, importMembershipsOnce } from "./imports";
import type { ChangeEvent, DirChannel, DirUser, Membership } from "./model";
import type { ChangePublisher } from "./source";
import type { ChannelPatch, DirectoryWriter, MembershipInput, NewChannel, ProfilePatch } from "./writer";

// The admin use cases over the directory (routes/directory-admin.ts): each
// commits one write (entity, version bump and change-log rows in one unit),
// then publishes the events it produced to the team caches. A failed publish
// is the cache's gap to recover (changesSince), never the caller's error.

export interface DirectoryAdminDeps {
  store: Pick<TeamStore, "idempotencyRecord">;
  directory: DirectoryWriter;
  changes: ChangePublisher;
  clock: Clock;
}

/** Publishes events team by team, in version order; failures are logged, never the caller's error. */
export async function publishChanges(changes: ChangePublisher, events: ChangeEvent[]): Promise<void> {
  const byTeam = new Map<string, ChangeEvent[]>();
  for (const e of events) byTeam.set(e.teamId, [...(byTeam.get(e.teamId) ?? []), e]);
  for (const [teamId, list] of byTeam) {
    try {
      await changes.publish(
        teamId,
        list.sort((a, b) => a.version - b.version),
      );
    } catch (error) {
      console.error(`directory publish to team ${teamId} failed; its cache catches up from the log`, error);
    }
  }
}

/** Runs a write stamped now, publishes its events, answers the rest. */
async function writeAndPublish<T extends { events: ChangeEvent[] }>(
  deps: DirectoryAdminDeps,
  write: (now: number) => Promise<T>,
): Promise<Omit<T, "events">> {
  const { events, ...answer } = await write(deps.clock.now());
  await publishChanges(deps.changes, events);
  return answer;
}

export function createChannel(
  deps: DirectoryAdminDeps,
  teamId: string,
  channel: NewChannel,
): Promise<{ channel: DirChannel }> {
  return writeAndPublish(deps, (now) => deps.directory.createChannel(teamId, channel, now));
}

export function updateChannel(
  deps: DirectoryAdminDeps,
  teamId: string,
  channelId: string,
  patch: ChannelPatch,
): Promise<{ channel: DirChannel }> {
  return writeAndPublish(deps, (now) => deps.directory.updateChannel(teamId, channelId, patch, now));
}

export function shareChannel(
  deps: DirectoryAdminDeps,
  teamId: string,
  channelId: string,
  withTeamId: string,
): Promise<{ channel: DirChannel }> {
  return writeAndPublish(deps, (now) => deps.directory.shareChannel(teamId, channelId, withTeamId, now));
}

/**
 * Ends a share: the other team loses the channel and its users' memberships
 * in it (the memberships removed are answered); a no-op when not shared.
 */
export function unshareChannel(
  deps: DirectoryAdminDeps,
  teamId: string,
  channelId: string,
  withTeamId: string,
): Promise<{ channel: DirChannel; removed: Membership[] }> {
  return writeAndPublish(deps, (now) => deps.directory.unshareChannel(teamId, channelId, withTeamId, now));
}

/** Adds these users (of `userTeamId`, the channel's team when absent): the ids added, and how many were members already. */
export async function addMembers(
  deps: DirectoryAdminDeps,
  teamId: string,
  channelId: string,
  userIds: string[],
  userTeamId: string | undefined,
): Promise<{ added: string[]; unchanged: number }> {
  const members = userIds.map((userId) => ({ userId, userTeamId }));
  const { added, unchanged } = await writeAndPublish(deps, (now) =>
    deps.directory.addMembers(teamId, channelId, members, now),
  );
  return { added: added.map((m) => m.userId), unchanged };
}

/** Whether the user was a member (and is no more). */
export async function removeMember(
  deps: DirectoryAdminDeps,
  teamId: string,
  channelId: string,
  userId: string,
): Promise<boolean> {
  const { removed } = await writeAndPublish(deps, (now) =>
    deps.directory.removeMembers(teamId, channelId, [userId], now),
  );
  return removed.length > 0;
}

export function updateProfile(
  deps: DirectoryAdminDeps,
  teamId: string,
  userId: string,
  patch: ProfilePatch,
): Promise<{ user: DirUser }> {
  return writeAndPublish(deps, (now) => deps.directory.updateProfile(teamId, userId, patch, now));
}

/** A channel import, at most once per Idempotency-Key; its events published (none on a replay). */
export function importChannels(
  deps: DirectoryAdminDeps,
  teamId: string,
  channels: NewChannel[],
  idempotency: IdempotencyRequest | null,
): Promise<Once<ImportAnswer>> {
  return published(deps, importChannelsOnce(deps, teamId, channels, idempotency));
}

/** A memberships import, at most once per Idempotency-Key; its events published (none on a replay). */
export function importMemberships(
  deps: DirectoryAdminDeps,
  teamId: string,
  rows: MembershipInput[],
  idempotency: IdempotencyRequest | null,
): Promise<Once<ImportAnswer>> {
  return published(deps, importMembershipsOnce(deps, teamId, rows, idempotency));
}

async function published(deps: DirectoryAdminDeps, outcome: Promise<ImportOutcome>): Promise<Once<ImportAnswer>> {
  const { events, ...once } = await outcome;
  await publishChanges(deps.changes, events);
  return once;
}
