import {
  type ChangeEvent,
  type DirChannel,
  type DirUser,
  isConversationKind,
  type Membership,
} from "../../src/directory/model";
import { num, roleOf } from "../portable-sql";
import type { Row } from "../sql-driver";

// Row shapes of the directory tables and the change log's member encoding,
// shared by the directory's SQL modules.

export const USER_COLUMNS =
  "u.`team_id` AS u_team, u.`id` AS u_id, u.`name` AS u_name, u.`real_name` AS u_real_name, u.`display_name` AS u_display_name, u.`title` AS u_title, u.`avatar_hash` AS u_avatar_hash, u.`tz` AS u_tz, u.`is_bot` AS u_is_bot, u.`role` AS u_role, u.`deactivated` AS u_deactivated, u.`updated_at` AS u_updated";
export const CHANNEL_COLUMNS =
  "ch.`team_id` AS c_team, ch.`id` AS c_id, ch.`name` AS c_name, ch.`topic` AS c_topic, ch.`purpose` AS c_purpose, ch.`is_private` AS c_private, ch.`is_archived` AS c_archived, ch.`created_at` AS c_created, ch.`updated_at` AS c_updated, ch.`kind` AS c_kind";

/** extra of a membership row: the user id, plus their team when it is not the channel's. */
export function encodeMember(hostTeamId: string, m: Membership): string {
  return m.userTeamId === hostTeamId ? m.userId : `${m.userId}@${m.userTeamId}`;
}

export function decodeMember(hostTeamId: string, channelId: string, extra: string): Membership {
  const at = extra.indexOf("@");
  return at < 0
    ? { channelId, userId: extra, userTeamId: hostTeamId }
    : { channelId, userId: extra.slice(0, at), userTeamId: extra.slice(at + 1) };
}

/** `col = ?` pairs for the fields that differ from the current row. */
export function changedAssignments(
  current: Record<string, unknown>,
  wanted: Record<string, unknown>,
): { sets: string[]; params: unknown[] } {
  const changed = Object.entries(wanted).filter(([k, v]) => v !== undefined && v !== current[k]);
  return { sets: changed.map(([k]) => `\`${k}\` = ?`), params: changed.map(([, v]) => v) };
}

export function toDirUser(r: Row): DirUser {
  return {
    teamId: String(r.u_team),
    id: String(r.u_id),
    name: String(r.u_name),
    realName: String(r.u_real_name),
    displayName: String(r.u_display_name),
    title: String(r.u_title),
    avatarHash: String(r.u_avatar_hash),
    tz: String(r.u_tz),
    isBot: num(r.u_is_bot) === 1,
    role: roleOf(r.u_role),
    deleted: num(r.u_deactivated) === 1,
    updatedAt: num(r.u_updated),
  };
}

export function toMembership(r: Row): Membership {
  return { channelId: String(r.channel_id), userId: String(r.user_id), userTeamId: String(r.user_team_id) };
}

export function toDirChannel(r: Row, sharedWith: string[]): DirChannel {
  return {
    teamId: String(r.c_team),
    id: String(r.c_id),
    kind: isConversationKind(r.c_kind) ? r.c_kind : "channel",
    name: String(r.c_name),
    topic: String(r.c_topic),
    purpose: String(r.c_purpose),
    isPrivate: num(r.c_private) === 1,
    isArchived: num(r.c_archived) === 1,
    createdAt: num(r.c_created),
    updatedAt: num(r.c_updated),
    sharedWith,
  };
}

export const shareKey = (hostTeamId: string, channelId: string) => `${hostTeamId}/${channelId}`;

export function isChannelEvent(e: ChangeEvent, hostTeamId: string, channelId: string): boolean {
  return e.change.kind === "channel" && e.change.channel.teamId === hostTeamId && e.change.channel.id === channelId;
}

export function isMemberEvent(e: ChangeEvent, channelId: string, userIds: Set<string>): boolean {
  const c = e.change;
  return (
    (c.kind === "member_added" || c.kind === "member_removed") &&
    c.membership.channelId === channelId &&
    userIds.has(c.membership.userId)
  );
}

export function changeOf(events: ChangeEvent[], teamId: string, kind: "channel"): DirChannel | undefined;
export function changeOf(events: ChangeEvent[], teamId: string, kind: "user"): DirUser | undefined;
export function changeOf(
  events: ChangeEvent[],
  teamId: string,
  kind: "channel" | "user",
): DirChannel | DirUser | undefined {
  for (const e of events) {
    if (e.teamId !== teamId) continue;
    if (kind === "channel" && e.change.kind === "channel") return e.change.channel;
    if (kind === "user" && e.change.kind === "user") return e.change.user;
  }
  return undefined;
}
