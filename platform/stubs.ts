// The one place that turns a Durable Object binding and a name into a stub.
// Every object is named by what it holds: a team's cache and recommendation
// store by the team id, a gateway shard and a topic by their keys, a shared
// channel by its host team and channel. Callers say which object they mean,
// not how a namespace is addressed, so a tenant's data can only be reached
// through a name that carries the tenant.

/** The team's directory cache (durable-objects/team-cache). */
export function teamCacheOf(env: Pick<Env, "TEAM_CACHE">, teamId: string) {
  return env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(teamId));
}

/** The team's recommendation store (durable-objects/rec-store). */
export function recStoreOf(env: Pick<Env, "REC_STORE">, teamId: string) {
  return env.REC_STORE.get(env.REC_STORE.idFromName(teamId));
}

/** A gateway shard, by its name (src/realtime/topics.ts: gatewayName, gatewayShardName). */
export function gatewayNamed(env: Pick<Env, "GATEWAY">, name: string) {
  return env.GATEWAY.get(env.GATEWAY.idFromName(name));
}

/** A topic, by its key (src/realtime/topics.ts). */
export function topicOf(env: Pick<Env, "TOPIC">, key: string) {
  return env.TOPIC.get(env.TOPIC.idFromName(key));
}

/** A shared channel's object, by its name (sharedChannelName: host team and channel). */
export function sharedChannelNamed(env: Pick<Env, "SHARED_CHANNEL">, name: string) {
  return env.SHARED_CHANNEL.get(env.SHARED_CHANNEL.idFromName(name));
}

/** The platform's one metrics object. */
export function metricsObject(env: Pick<Env, "METRICS">) {
  return env.METRICS.get(env.METRICS.idFromName("global"));
}

/** The team's Slack Connect connection index (durable-objects/connect-index). */
export function connectIndexOf(env: Pick<Env, "CONNECT_INDEX">, teamId: string) {
  return env.CONNECT_INDEX.get(env.CONNECT_INDEX.idFromName(teamId));
}

/**
 * A conversation's object (durable-objects/conversation): its messages, by
 * the team hosting it and its id (a shared channel's history is its host's,
 * as its topic is).
 */
export function conversationOf(env: Pick<Env, "CONVERSATION">, host: string, conversation: string) {
  return env.CONVERSATION.get(env.CONVERSATION.idFromName(`${host}:${conversation}`));
}

/** A team's conversations root: the same class named by the team id alone, holding the team's history policy. */
export function conversationRootOf(env: Pick<Env, "CONVERSATION">, teamId: string) {
  return env.CONVERSATION.get(env.CONVERSATION.idFromName(teamId));
}
