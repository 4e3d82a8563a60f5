import { badRequest } from "../errors";
import type { Membership } from "./model";
import {
  CHANNEL_TEXT_MAX,
  type MemberInput,
  type MembershipInput,
  normalizeChannelName,
  PROFILE_MAX,
  type ProfilePatch,
} from "./writer";

// The directory's input rules, checked before anything is read or written
// (src/directory/service.ts): what a channel, a profile, a member list and an
// import may hold. What depends on stored state (taken names and ids,
// unknown users, a shared id) the storage adapter answers, as conflicts and
// not_found.

function checkLength(field: string, value: string | undefined, max: number): void {
  if (value !== undefined && value.length > max) throw badRequest(`${field} is longer than ${max} characters`);
}

/** A channel's name (already normalized), topic and purpose. */
export function checkChannelInput(c: { name?: string; topic?: string; purpose?: string }): void {
  if (c.name !== undefined && normalizeChannelName(c.name) !== c.name) {
    throw badRequest(`invalid channel name "${c.name}": 1-80 of a-z 0-9 _ -`);
  }
  checkLength("topic", c.topic, CHANNEL_TEXT_MAX);
  checkLength("purpose", c.purpose, CHANNEL_TEXT_MAX);
}

/** Each profile field within its column's width. */
export function checkProfilePatch(patch: ProfilePatch): void {
  for (const [field, max] of Object.entries(PROFILE_MAX)) {
    checkLength(field, patch[field as keyof typeof PROFILE_MAX], max);
  }
}

/** An import names each channel id, and each name, once. */
export function rejectRepeats(values: string[], what: string): void {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) repeated.add(v);
    seen.add(v);
  }
  if (repeated.size > 0) throw badRequest(`the request repeats channel ${what}`, { [what]: [...repeated] });
}

/** A channel is shared with other teams only. */
export function checkShareTarget(teamId: string, withTeamId: string): void {
  if (withTeamId === teamId) throw badRequest("a channel cannot be shared with its own team");
}

/** The members to add, one per user id (the channel's team when none is given); one user with two teams is invalid. */
export function wantedMembers(teamId: string, channelId: string, members: MemberInput[]): Map<string, Membership> {
  const wanted = new Map<string, Membership>();
  for (const m of members) {
    const userTeamId = m.userTeamId ?? teamId;
    const seen = wanted.get(m.userId);
    if (seen && seen.userTeamId !== userTeamId) {
      throw badRequest(`user ${m.userId} is given with two different teams`);
    }
    wanted.set(m.userId, { channelId, userId: m.userId, userTeamId });
  }
  return wanted;
}

/** An import's memberships, one per (channel, user); one user with two teams in a channel is invalid. */
export function uniqueMemberships(teamId: string, input: MembershipInput[]): Membership[] {
  const unique = new Map<string, Membership>();
  for (const m of input) {
    const membership = { channelId: m.channelId, userId: m.userId, userTeamId: m.userTeamId ?? teamId };
    const key = `${m.channelId}/${m.userId}`;
    const seen = unique.get(key);
    if (seen && seen.userTeamId !== membership.userTeamId) {
      throw badRequest(`user ${m.userId} is given with two different teams in channel ${m.channelId}`);
    }
    unique.set(key, membership);
  }
  return [...unique.values()];
}
