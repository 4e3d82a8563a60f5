import type { ChangeEvent, DirChannel, DirUser } from "../directory/model";
import type { TopicPublisher } from "./ports";
import type { ClientTopic } from "./protocol";
import { channelTopic, topicKey } from "./topics";

// Directory changes as real-time events. User changes and public channel
// changes go to the team topic of every team that sees them; a private
// channel's changes and every membership change go to the channel's own
// topic, whose followers are exactly the people allowed to see them. A
// membership removal also tells the gateways to re-check who may still
// follow the channel (see gateway.ts).

export interface TopicEventOut {
  /** Topic object name. */
  key: string;
  topic: ClientTopic;
  json: string;
}

export type DirectoryRealtimeEvent =
  | { type: "user_changed"; user: ReturnType<typeof userCard> }
  | { type: "channel_changed"; channel: ReturnType<typeof channelCard> }
  | { type: "member_joined" | "member_left"; channel: string; user: string; user_team: string }
  | { type: "directory_reload" };

export function userCard(u: DirUser) {
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

function channelCard(c: DirChannel) {
  return {
    id: c.id,
    name: c.name,
    topic: c.topic,
    purpose: c.purpose,
    is_private: c.isPrivate,
    is_archived: c.isArchived,
    is_shared: c.sharedWith.length > 0,
  };
}

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
      const event: DirectoryRealtimeEvent = { type: "channel_changed", channel: channelCard(c.channel) };
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
