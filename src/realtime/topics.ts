import { fnv1a } from "../fnv1a";
import type { PresenceTopic } from "./presence";
import type { ClientTopic } from "./protocol";

// Server-side names. A topic is one Topic Durable Object: `ch:<host>:<channel>`
// for a channel (keyed by the team hosting it, so every team a shared channel
// reaches publishes to and follows the same topic), `team:<team>` for
// team-wide events, `presence:<team>:<n>` for a presence shard. A gateway is one Gateway
// Durable Object: `gw:<team>:<n>`, a team's users spread over its shards by a
// hash of the user id (many users per gateway, every socket of a user on the
// same one).

export const DEFAULT_GATEWAY_SHARDS = 4;
const MAX_GATEWAY_SHARDS = 1024;

/** What a gateway socket can follow: the client's topics, and presence shards on its behalf. */
export type SubTopic = ClientTopic | PresenceTopic;

/** The topic object's name. `team` is the channel's host team for a channel topic. */
export function topicKey(team: string, topic: SubTopic): string {
  if (topic === "team") return `team:${team}`;
  if (topic.startsWith("presence:")) return `presence:${team}:${topic.slice("presence:".length)}`;
  return `ch:${team}:${topic.slice("channel:".length)}`;
}

/** The topic a topic object's name stands for, as a gateway indexes it (team ids never hold ':'; channel ids neither). */
export function subTopicOfKey(key: string): SubTopic | null {
  const parts = key.split(":");
  if (parts[0] === "team" && parts.length === 2) return "team";
  if (parts[0] === "ch" && parts.length === 3) return `channel:${parts[2]}`;
  if (parts[0] === "presence" && parts.length === 3 && /^\d+$/.test(parts[2] ?? ""))
    return `presence:${Number(parts[2])}`;
  return null;
}

export function channelTopic(channelId: string): ClientTopic {
  return `channel:${channelId}`;
}

/** The channel id of a client topic, or null for the team topic. */
export function channelOf(topic: ClientTopic): string | null {
  return topic === "team" ? null : topic.slice("channel:".length);
}

/** The GATEWAY_SHARDS var: unset means the default; anything else must be an integer in 1..1024. */
export function parseShardCount(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_GATEWAY_SHARDS;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_GATEWAY_SHARDS) {
    throw new Error(`GATEWAY_SHARDS must be an integer from 1 to ${MAX_GATEWAY_SHARDS}, got "${value}"`);
  }
  return n;
}

export function shardOf(user: string, shards: number): number {
  return fnv1a(user) % shards;
}

export function gatewayName(team: string, user: string, shards: number): string {
  return gatewayShardName(team, shardOf(user, shards));
}

/** Gateway shard `n` of a team (every shard: a change that may touch any of its users). */
export function gatewayShardName(team: string, n: number): string {
  return `gw:${team}:${n}`;
}
