import { fnv1a } from "../fnv1a";

// Presence: a user is active while any of their sockets is connected. All of
// a user's sockets land on the same gateway shard (by a hash of the user), so
// that gateway alone decides: the first socket makes the user active at once;
// when the last one closes the user turns away only after a grace period, so
// a reload or a flaky network does not flap the dot for everyone.
//
// Changes are published to presence shard topics (`presence:<team>:<n>`, by
// a hash of the user). A topic keeps each user's last state, so a client
// subscribing to a list of users gets a snapshot and then only the changes
// of the users on its list: the gateway filters per socket.

export type PresenceState = "active" | "away";

export interface PresenceEvent {
  type: "presence";
  user: string;
  presence: PresenceState;
}

/** Presence topics per team: enough to spread a large team's churn, few enough for one socket to follow all. */
export const PRESENCE_SHARDS = 16;
/** Users one socket may follow. */
export const MAX_PRESENCE_USERS = 500;
export const DEFAULT_GRACE_SECONDS = 30;

export type PresenceTopic = `presence:${number}`;

export function presenceShardOf(user: string): number {
  return fnv1a(user) % PRESENCE_SHARDS;
}

export function presenceTopic(shard: number): PresenceTopic {
  return `presence:${shard}`;
}

export function isPresenceTopic(value: string): value is PresenceTopic {
  if (!value.startsWith("presence:")) return false;
  const n = Number(value.slice("presence:".length));
  return Number.isInteger(n) && n >= 0 && n < PRESENCE_SHARDS && value === `presence:${n}`;
}

/** Users grouped by their presence topic. */
export function byPresenceTopic(users: Iterable<string>): Map<PresenceTopic, string[]> {
  const out = new Map<PresenceTopic, string[]>();
  for (const user of users) {
    const topic = presenceTopic(presenceShardOf(user));
    const list = out.get(topic);
    if (list) list.push(user);
    else out.set(topic, [user]);
  }
  return out;
}

export function presenceEventJson(user: string, presence: PresenceState): string {
  const e: PresenceEvent = { type: "presence", user, presence };
  return JSON.stringify(e);
}

/** The presence event in a topic event body, or null for anything else. */
export function parsePresenceEvent(json: string): PresenceEvent | null {
  try {
    const e = JSON.parse(json) as Partial<PresenceEvent>;
    if (e.type === "presence" && typeof e.user === "string" && (e.presence === "active" || e.presence === "away")) {
      return { type: "presence", user: e.user, presence: e.presence };
    }
  } catch {
    // not a presence event
  }
  return null;
}

/** A user's state in a snapshot: the last published state, away when never seen. */
export function presenceOf(stateJson: string | undefined): PresenceState {
  return (stateJson && parsePresenceEvent(stateJson)?.presence) || "away";
}
