import type { ChangeEvent, Membership } from "./model";
import {
  checkChannelInput,
  checkProfilePatch,
  checkShareTarget,
  rejectRepeats,
  uniqueMemberships,
  wantedMembers,
} from "./rules";
import type { DirectorySource } from "./source";
import type { DirectoryWriter } from "./writer";

// The directory's rules in front of its storage: input is checked here
// (rules.ts), then handed to the rows port, which checks stored state
// (unknown teams, channels and users; taken ids and names) and writes. The
// composed DirectorySource & DirectoryWriter is what the use cases and the
// team caches get (storage/directory-store.ts puts the two together).

/**
 * The directory's storage (storage/directory/): DirectoryWriter with its input
 * already checked, members already one per user.
 */
export interface DirectoryRows extends DirectorySource, Omit<DirectoryWriter, "addMembers" | "importMemberships"> {
  /** not_found for a team that does not exist. */
  requireTeam(teamId: string): Promise<void>;
  addMembers(
    teamId: string,
    channelId: string,
    wanted: Map<string, Membership>,
    now: number,
  ): Promise<{ added: Membership[]; unchanged: number; events: ChangeEvent[] }>;
  importMemberships(
    teamId: string,
    rows: Membership[],
    now: number,
    record: Parameters<DirectoryWriter["importMemberships"]>[3],
  ): Promise<{ imported: number; events: ChangeEvent[] }>;
}

export function directoryService(rows: DirectoryRows): DirectorySource & DirectoryWriter {
  return {
    version: (teamId) => rows.version(teamId),
    pageUsers: (teamId, afterId, limit) => rows.pageUsers(teamId, afterId, limit),
    users: (teamId, ids) => rows.users(teamId, ids),
    counts: (teamId) => rows.counts(teamId),
    membershipsOfUser: (teamId, userId) => rows.membershipsOfUser(teamId, userId),
    channels: (teamId, ids) => rows.channels(teamId, ids),
    membersOf: (teamId, channelIds) => rows.membersOf(teamId, channelIds),
    memberCounts: (teamId, channelIds) => rows.memberCounts(teamId, channelIds),
    pageChannels: (teamId, afterId, limit) => rows.pageChannels(teamId, afterId, limit),
    pageMemberships: (teamId, after, limit) => rows.pageMemberships(teamId, after, limit),
    pageChannelMembers: (host, channelId, afterUserId, limit) =>
      rows.pageChannelMembers(host, channelId, afterUserId, limit),
    pageForeignMemberships: (teamId, after, limit) => rows.pageForeignMemberships(teamId, after, limit),
    changesSince: (teamId, since, limit) => rows.changesSince(teamId, since, limit),

    async createChannel(teamId, channel, now) {
      checkChannelInput(channel);
      return rows.createChannel(teamId, channel, now);
    },
    async updateChannel(teamId, channelId, patch, now) {
      checkChannelInput(patch);
      return rows.updateChannel(teamId, channelId, patch, now);
    },
    async addMembers(teamId, channelId, members, now) {
      return rows.addMembers(teamId, channelId, wantedMembers(teamId, channelId, members), now);
    },
    removeMembers: (teamId, channelId, userIds, now) => rows.removeMembers(teamId, channelId, userIds, now),
    async updateProfile(teamId, userId, patch, now) {
      checkProfilePatch(patch);
      return rows.updateProfile(teamId, userId, patch, now);
    },
    async shareChannel(teamId, channelId, withTeamId, now) {
      checkShareTarget(teamId, withTeamId);
      return rows.shareChannel(teamId, channelId, withTeamId, now);
    },
    async unshareChannel(teamId, channelId, withTeamId, now) {
      checkShareTarget(teamId, withTeamId);
      return rows.unshareChannel(teamId, channelId, withTeamId, now);
    },
    async importChannels(teamId, channels, now, record) {
      for (const c of channels) checkChannelInput(c);
      rejectRepeats(
        channels.map((c) => c.id),
        "ids",
      );
      rejectRepeats(
        channels.map((c) => c.name),
        "names",
      );
      return rows.importChannels(teamId, channels, now, record);
    },
    async importMemberships(teamId, input, now, record) {
      let unique: Membership[];
      try {
        unique = uniqueMemberships(teamId, input);
      } catch (error) {
        // An unknown team is answered first, as it always was.
        await rows.requireTeam(teamId);
        throw error;
      }
      return rows.importMemberships(teamId, unique, now, record);
    },
    recordUserChanges: (teamId, userIds, now) => rows.recordUserChanges(teamId, userIds, now),
    recordReload: (teamId, now) => rows.recordReload(teamId, now),
    // Checked by the use case (src/conversations/directory-conversations.ts), which derives the spec.
    openConversation: (teamId, spec, rejoin, now) => rows.openConversation(teamId, spec, rejoin, now),
    leaveConversation: (teamId, id, userId, now) => rows.leaveConversation(teamId, id, userId, now),
  };
}
