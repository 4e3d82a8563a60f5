import { type ChannelCardBase, dirChannelCard, type UserCard, userCard } from "../directory/cards";
import type { ChangeEvent, DirUser } from "../directory/model";
import type { TopicPublisher } from "./ports";
import type { ClientTopic } from "./protocol";
import { channelTopic, topicKey } from "./topics";

// Directory changes as real-time events. User changes and public channel
// changes go to the team topic of every team that sees them; a private
// channel's changes and every membership change go to the channel's own
// topic, whose followers are exactly the people allowed to see them. A
// membership removal also tells the gateways to re-check who may still
// follow the channel (see gateway.ts). A channel that leaves a team (a share
// that ended) goes to the channel's topic too, whoever may see it: its
// followers are all re-checked, which drops the other team's.
//
// Changes that can take access away also go to the gateways of the users
// they touch, whether or not those follow the topics above (accessChanges):
// a deactivation closes the user's sockets; any other change of a user (a
// demotion to guest among them: events carry the new state, not the old)
// or a removal from a channel has the user's gateway re-read the user's
// live role and re-check each subscription; a reload (bulk import) may have
// changed anyone, so every gateway of the team re-checks all its sockets.

export interface TopicEventOut {
  /** Topic object name. */
  key: string;
  topic: ClientTopic;
  json: string;
}

export type DirectoryRealtimeEvent =
  | { type: "user_changed"; user: UserCard }
  | { type: "channel_changed"; channel: ChannelCardBase }
  | { type: "member_joined" | "member_left"; channel: string; user: string; user_team: string }
  | { type: "directory_reload" };

/** The topic events one directory change becomes. */
export function directoryTopicEvents(e: ChangeEvent): TopicEventOut[] {
  const out = (team: string, topic: ClientTopic, event: DirectoryRealtimeEvent): TopicEventOut => ({
    key: topicKey(team, topic),
    topic,
    json: JSON.stringify(event),
  });
  const c = e.change;
  switch (c.kind) {
    case "user":
      return [out(c.user.teamId, "team", { type: "user_changed", user: userCard(c.user) })];
    case "channel": {
      const event: DirectoryRealtimeEvent = { type: "channel_changed", channel: dirChannelCard(c.channel) };
      if (e.teamId !== c.channel.teamId && !c.channel.sharedWith.includes(e.teamId)) {
        // The channel left this team (its share ended). Its topic's followers
        // are re-checked on a channel_changed (gateway/access-guard.ts), which
        // drops this team's, members or not: this team's cache no longer has
        // the channel by now (the publisher applies the event there first).
        // The team's clients hear of it on their team topic, unless private.
        const topic = out(c.channel.teamId, channelTopic(c.channel.id), event);
        return c.channel.isPrivate ? [topic] : [topic, out(e.teamId, "team", event)];
      }
      if (c.channel.isPrivate) return [out(c.channel.teamId, channelTopic(c.channel.id), event)];
      return [c.channel.teamId, ...c.channel.sharedWith].map((team) => out(team, "team", event));
    }
    case "member_added":
    case "member_removed":
      // Membership changes are logged under the channel's host team.
      return [
        out(e.teamId, channelTopic(c.membership.channelId), {
          type: c.kind === "member_added" ? "member_joined" : "member_left",
          channel: c.membership.channelId,
          user: c.membership.userId,
          user_team: c.membership.userTeamId,
        }),
      ];
    case "reload":
      return [out(e.teamId, "team", { type: "directory_reload" })];
  }
}

/**
 * Publishes the topic events of committed directory changes: each topic's
 * events in version order, different topics at once. A failure is logged and
 * does not stop the others; a client that missed one sees it in the next
 * directory query (the edge cache has it), and a resumed topic replays it.
 */
export async function publishDirectoryEvents(
  publisher: TopicPublisher,
  events: ChangeEvent[],
  onError: (key: string, error: unknown) => void,
): Promise<void> {
  const byKey = new Map<string, string[]>();
  for (const e of [...events].sort((a, b) => a.version - b.version)) {
    for (const out of directoryTopicEvents(e)) byKey.set(out.key, [...(byKey.get(out.key) ?? []), out.json]);
  }
  await Promise.all(
    [...byKey].map(async ([key, list]) => {
      try {
        for (const json of list) await publisher.publish(key, json);
      } catch (error) {
        onError(key, error);
      }
    }),
  );
}

/** Users the events deactivate (their sockets must close). */
export function deactivatedUsers(events: ChangeEvent[]): DirUser[] {
  return events.flatMap((e) => (e.change.kind === "user" && e.change.user.deleted ? [e.change.user] : []));
}

/** What a batch of changes means for open sockets (see the header). */
export interface AccessChanges {
  /** Deactivated: close their sockets. */
  deactivated: DirUser[];
  /** Changed or removed from a channel: re-check them (team: the user's own team, which names its gateway). */
  recheck: Array<{ team: string; user: string }>;
  /** A reload: re-check every socket of the team. */
  reload: boolean;
}

export function accessChanges(events: ChangeEvent[]): AccessChanges {
  const deactivated = deactivatedUsers(events);
  const gone = new Set(deactivated.map((u) => `${u.teamId}:${u.id}`));
  const recheck = new Map<string, { team: string; user: string }>();
  const add = (team: string, user: string) => {
    const key = `${team}:${user}`;
    if (!gone.has(key)) recheck.set(key, { team, user });
  };
  let reload = false;
  for (const e of events) {
    const c = e.change;
    if (c.kind === "user" && !c.user.deleted) add(c.user.teamId, c.user.id);
    else if (c.kind === "member_removed") add(c.membership.userTeamId, c.membership.userId);
    else if (c.kind === "reload") reload = true;
  }
  return { deactivated, recheck: [...recheck.values()], reload };
}

/**
 * What a team-topic event is about, for filtering it per viewer: the user a
 * `user_changed` carries, the channel a `channel_changed` carries, or
 * nothing in particular (`directory_reload`, anything else: every
 * subscriber gets it). null: unreadable, so nobody filtered may get it.
 */
export function teamEventSubject(json: string): { users: string[]; channels: string[]; admins?: true } | null {
  // Cheap test first: most team events are neither.
  if (!json.includes('"user_changed"') && !json.includes('"channel_changed"') && !json.includes(ADMIN_EVENT_MARK)) {
    return { users: [], channels: [] };
  }
  let e: { type?: unknown; user?: { id?: unknown }; channel?: { id?: unknown } };
  try {
    e = JSON.parse(json) as typeof e;
  } catch {
    return null;
  }
  if (e.type === "user_changed") return typeof e.user?.id === "string" ? { users: [e.user.id], channels: [] } : null;
  if (e.type === "channel_changed") {
    return typeof e.channel?.id === "string" ? { users: [], channels: [e.channel.id] } : null;
  }
  if (typeof e.type === "string" && ADMIN_EVENTS.has(e.type)) return { users: [], channels: [], admins: true };
  return { users: [], channels: [] };
}

/**
 * Team-topic events for the team's owners and admins only (a Slack Connect
 * prefs change: which partner, which pref, who): every other socket skips
 * them, as a guest skips what it may not see.
 */
export const ADMIN_EVENTS: ReadonlySet<string> = new Set(["connect_pref_changed"]);
const ADMIN_EVENT_MARK = '"connect_pref_changed"';

/** The card of a `user_changed` event (id, role, deleted), or null for any other event. */
export function userChangedCard(json: string): { id: string; role: unknown; deleted: boolean } | null {
  if (!json.includes('"user_changed"')) return null;
  try {
    const e = JSON.parse(json) as { type?: unknown; user?: { id?: unknown; role?: unknown; deleted?: unknown } };
    if (e.type !== "user_changed" || typeof e.user?.id !== "string") return null;
    return { id: e.user.id, role: e.user.role, deleted: e.user.deleted === true };
  } catch {
    return null;
  }
}

/**
 * What a channel topic's event changes about who may follow the channel: a
 * member left (that member's subscriptions are re-checked), or the channel
 * changed (turned private, say: every subscriber's are). null for anything
 * else, including messages, which are never parsed for this (a message's
 * text may say "member_left"; its JSON is not a directory event).
 */
export type ChannelAccessChange = { kind: "member_left"; user: string } | { kind: "channel_changed" };

export function channelAccessChange(json: string): ChannelAccessChange | null {
  // Most events are messages: a cheap test before parsing anything.
  if (!json.includes('"member_left"') && !json.includes('"channel_changed"')) return null;
  try {
    const e = JSON.parse(json) as { type?: unknown; user?: unknown };
    if (e.type === "channel_changed") return { kind: "channel_changed" };
    if (e.type === "member_left" && typeof e.user === "string") return { kind: "member_left", user: e.user };
  } catch {
    // not JSON: nothing changes
  }
  return null;
}
