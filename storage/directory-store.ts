import { type DirectoryRows, directoryService } from "../src/directory/service";
import type { DirectorySource } from "../src/directory/source";
import type { DirectoryWriter } from "../src/directory/writer";
import { channelWrites } from "./directory/channels";
import { conversationWrites } from "./directory/conversations";
import { directoryLookups } from "./directory/lookups";
import { memberWrites } from "./directory/members";
import { directoryReads } from "./directory/reads";
import { directoryUnits } from "./directory/units";
import { userEntries } from "./directory/users";
import type { SqlDriver } from "./sql-driver";

// The directory's source of truth for the edge cache, on both engines (same
// SQL subset and dialect split as sql-store.ts), one module per aggregate
// under directory/: reads (what a cache loads), channels, members, user
// entries; lookups (state checks) and units (a write's atomic unit and its
// read-back) are shared. The input rules sit in front, in src/directory
// (service.ts, rules.ts).
//
// Versions. Every write is one atomic unit (D1 batch / MySQL transaction):
// the entity rows, `UPDATE teams SET dir_version = dir_version + k`, and k
// rows of `directory_changes` whose versions are derived from dir_version
// inside the same unit. Versions are therefore dense per team (1, 2, 3, ...),
// never reused, and a failing write (a taken name) bumps nothing. The events a
// write returns are read back after the commit with changesSince, so they
// carry committed state and the versions the database actually assigned.
// The admin user writes (sql-store.ts) append `user` and `bulk` rows to the
// same log in their own units, through the same change-log.ts; the
// recordUserChanges / recordReload of directory/users.ts are a separate unit
// each, for callers outside TeamStore.
//
// Change-log encoding, one row per version:
//
// | kind           | entity_id  | extra                                                  |
// | -------------- | ---------- | ------------------------------------------------------ |
// | user           | user id    | ''                                                     |
// | channel        | channel id | the channel's host team (= team_id unless shared in)   |
// | member_added   | channel id | user id, or `userId@userTeamId` for another team's user |
// | member_removed | channel id | same as member_added                                   |
// | bulk           | ''         | what was imported: channels, memberships, users, reload |
//
// changesSince rebuilds events from the log plus the current rows: user and
// channel events carry the entity as it is now; a membership event is
// member_added when the pair is a member now and member_removed when not (so,
// like entity events, replaying any suffix of the log ends in the current
// state); `bulk` becomes { kind: "reload" }. Membership events live in the
// host team's log only (pageMemberships lists the team's own channels); a
// shared channel's channel events go to the host and every team it is shared
// with, and to a team it stops being shared with (whose cache then drops it:
// the rebuilt channel no longer lists that team).
//
// Identity. Channel ids are per team; a team must never see two channels with
// one id, so creating a channel whose id is shared into the team, or sharing a
// channel into a team that already sees that id, is a conflict. Within a channel a
// member is keyed by user id alone (the memberships primary key).
//
// Races. Nothing here deletes users or channels, so existence checks made
// before a write stay true. Shares are the exception: unshareChannel ends
// one, deleting the other team's memberships in the same unit, from the rows
// as the unit finds them. So a write that relies on a share checks it inside
// its unit: an add of another team's users is guarded by the share still
// being there (nothing is written otherwise, and the add looks again), and
// two unshares of one share are guarded the same way (the second writes
// nothing). Two concurrent adds of one member: the loser's unit fails on the
// primary key and is retried against fresh state. Two concurrent removals of
// one member can both log member_removed; the duplicate is harmless (the
// cache applies state).

/** The SQL side alone: input is assumed checked (DirectoryRows). */
export function directoryRows(driver: SqlDriver): DirectoryRows {
  const lookups = directoryLookups(driver);
  const source = directoryReads(lookups);
  const units = directoryUnits(lookups, source);
  return {
    ...source,
    requireTeam: async (teamId) => {
      await lookups.versionsBefore([teamId]);
    },
    ...channelWrites(lookups, units),
    ...memberWrites(lookups, units),
    ...userEntries(lookups, units),
    ...conversationWrites(lookups, units),
  };
}

/** The directory as the use cases and the team caches get it: the rules in front of the SQL. */
export function directoryStore(driver: SqlDriver): DirectorySource & DirectoryWriter {
  return directoryService(directoryRows(driver));
}
