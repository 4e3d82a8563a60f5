import { type ChannelCardBase, dirChannelCard, type UserCard, userCard } from "../directory/cards";
import { type ChangeEvent, type ConversationKind, type DirUser, kindOf } from "../directory/model";
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
//
// DMs and group DMs (private channel rows of kind im / mpim) are also
// announced on the team topic, which their members may not yet follow the
// conversation's own topic but usually follow: `conversation_opened` (with
// its members), `conversation_joined`, `conversation_left`. Each reaches only
// sockets whose user is a member right now, read from the team cache
// (gateway/audience.ts), and the one who left; everyone else skips it, so
// their team-topic seqs jump there (as a guest's do).

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
  | { type: "directory_reload" }
  | ConversationEvent;

/**
 * A DM or group DM announced on the team topic to its members only (the
 * gateway filters per viewer from live membership: conversationAudience).
 * A conversation's own topic reaches only those who already follow it, and
 * nobody follows a conversation that did not exist a moment ago: this is how
 * its members hear of it without polling.
 */
export type ConversationEvent =
  | {
      type: "conversation_opened";
      channel: ChannelCardBase & { kind: Exclude<ConversationKind, "channel"> };
      /** Every member's id, sorted (the opening unit's memberships). */
      members: string[];
    }
  /** A member came back to (joined) or left a group DM. */
  | { type: "conversation_joined" | "conversation_left"; channel: string; user: string };

/**
 * The shape of a DM or group DM id (src/conversations/directory-conversations.ts:
 * D or G and 20 base-32 characters). A membership change carries no kind, so
 * this picks which ones to announce on the team topic; a channel that only
 * looks like one (an imported id) loses nothing by it: its announcement goes
 * to its own members only, who may see that change anyway.
 */
const CONVERSATION_ID = /^[DG][A-Z2-7]{20}$/;

export function looksLikeConversation(channelId: string): boolean {
  return CONVERSATION_ID.test(channelId);
}

/**
 * The topic events one directory change becomes. `batch`: the changes
 * committed with it (in version order), which say who a DM opened with.
 */
export function directoryTopicEvents(e: ChangeEvent, batch: readonly ChangeEvent[] = [e]): TopicEventOut[] {
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
      const kind = kindOf(c.channel);
      if (kind !== "channel") {
        // A DM or group DM: its row is written once, by the unit that opens
        // it with every member (storage/directory/conversations.ts).
        const members = batch
          .flatMap((b) =>
            b.change.kind === "member_added" && b.change.membership.channelId === c.channel.id
              ? [b.change.membership.userId]
              : [],
          )
          .sort();
        return [
          out(c.channel.teamId, channelTopic(c.channel.id), event),
          out(c.channel.teamId, "team", {
            type: "conversation_opened",
            channel: { ...dirChannelCard(c.channel), kind },
            members: [...new Set(members)],
          }),
        ];
      }
      if (c.channel.isPrivate) return [out(c.channel.teamId, channelTopic(c.channel.id), event)];
      return [c.channel.teamId, ...c.channel.sharedWith].map((team) => out(team, "team", event));
    }
    case "member_added":
    case "member_removed": {
      // Membership changes are logged under the channel's host team.
      const m = c.membership;
      const topic = out(e.teamId, channelTopic(m.channelId), {
        type: c.kind === "member_added" ? "member_joined" : "member_left",
        channel: m.channelId,
        user: m.userId,
        user_team: m.userTeamId,
      });
      if (!looksLikeConversation(m.channelId)) return [topic];
      // Opening announces the conversation with its members (the channel case above).
      const opening = batch.some((b) => b.change.kind === "channel" && b.change.channel.id === m.channelId);
      if (opening) return [topic];
      return [
        topic,
        out(e.teamId, "team", {
          type: c.kind === "member_added" ? "conversation_joined" : "conversation_left",
          channel: m.channelId,
          user: m.userId,
        }),
      ];
    }
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
  const sorted = [...events].sort((a, b) => a.version - b.version);
  for (const e of sorted) {
    for (const out of directoryTopicEvents(e, sorted)) byKey.set(out.key, [...(byKey.get(out.key) ?? []), out.json]);
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
 * Who a team-topic conversation event is for: the live members of
 * `conversation` (the gateway asks the team cache, never the event), plus
 * `user`, the member who left (its other sockets learn it left). `members`:
 * the members it was opened with, which bound who can be a member now (a
 * group DM's members only leave and come back: its id derives from them).
 * undefined: not a conversation event (every subscriber may get it as far
 * as this rule goes); null: a conversation event that cannot be read, which
 * nobody gets.
 */
export type ConversationAudience = { conversation: string; members?: string[]; user?: string };

export function conversationAudience(json: string): ConversationAudience | null | undefined {
  // Cheap test first: most team events are not about a conversation.
  if (!json.includes('"conversation_')) return undefined;
  let e: { type?: unknown; channel?: unknown; members?: unknown; user?: unknown };
  try {
    e = JSON.parse(json) as typeof e;
  } catch {
    return null;
  }
  if (e.type === "conversation_opened") {
    const id = (e.channel as { id?: unknown } | undefined)?.id;
    if (typeof id !== "string" || !Array.isArray(e.members)) return null;
    const members = e.members.filter((m): m is string => typeof m === "string");
    return members.length > 0 ? { conversation: id, members } : { conversation: id };
  }
  if (e.type === "conversation_joined" || e.type === "conversation_left") {
    if (typeof e.channel !== "string" || typeof e.user !== "string") return null;
    return e.type === "conversation_left" ? { conversation: e.channel, user: e.user } : { conversation: e.channel };
  }
  // Any other type whose text merely contains the mark (a user titled so).
  return typeof e.type === "string" && e.type.startsWith("conversation_") ? null : undefined;
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
