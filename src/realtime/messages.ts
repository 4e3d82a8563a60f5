import { forbidden, notFound, rateLimited } from "../errors";
import type { TopicAccess, TopicPublisher } from "./ports";
import type { ClientTopic } from "./protocol";
import { channelTopic, topicKey } from "./topics";

// A message posted to a channel travels as an event on the channel's topic;
// its text is not stored anywhere else (only in the topic's short log, for
// resume).

export const MAX_TEXT_LENGTH = 4000;
export const MAX_MENTIONS = 100;

export interface MessageEvent {
  type: "message";
  channel: string;
  user: string;
  text: string;
  mentions: string[];
  /** Milliseconds since the epoch, when the edge accepted it. */
  ts: number;
}

export interface PostMessage {
  team: string;
  user: string;
  channelId: string;
  text: string;
  mentions: string[];
  now: number;
}

/** A posted message: its topic and its seq there. */
export interface Posted {
  topic: ClientTopic;
  seq: number;
}

/**
 * The poster must see the channel (else not_found, exactly like a channel
 * that does not exist; forbidden when the cache says so). Over the poster's
 * own rate in the channel or the channel's overall rate: limited, with the
 * retry delay and `details.limit` saying which.
 */
export async function postMessage(
  ports: { access: TopicAccess; publisher: TopicPublisher },
  m: PostMessage,
): Promise<Posted> {
  const access = await ports.access.channel(m.team, m.user, m.channelId);
  if (!access.ok) throw access.code === "forbidden" ? forbidden(access.message) : notFound(access.message);
  const event: MessageEvent = {
    type: "message",
    channel: m.channelId,
    user: m.user,
    text: m.text,
    mentions: [...new Set(m.mentions)],
    ts: m.now,
  };
  return publishToChannel(ports.publisher, access.host, m.team, m.user, m.channelId, event);
}

/**
 * Publishes a poster's event on a channel's topic (hosted by `host`), held
 * to the poster's and the channel's publish rates: over either, limited,
 * with the retry delay and `details.limit` saying which.
 */
export async function publishToChannel(
  publisher: TopicPublisher,
  host: string,
  team: string,
  user: string,
  channelId: string,
  event: object,
): Promise<Posted> {
  const topic = channelTopic(channelId);
  // A shared channel's topic is its host team's: every team in it follows the
  // same one, so the poster is named with its team (user ids are per team).
  const published = await publisher.publish(topicKey(host, topic), JSON.stringify(event), {
    poster: `${team}:${user}`,
  });
  if (!published.ok) {
    const message =
      published.limit === "poster"
        ? "you are posting to this channel faster than your limit; retry later"
        : "this channel receives messages faster than its limit; retry later";
    throw rateLimited(message, Math.max(1, Math.ceil(published.retryAfterMs / 1000)), {
      retry_after_ms: published.retryAfterMs,
      limit: published.limit,
    });
  }
  return { topic, seq: published.seq };
}
