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

export type PostResult =
  | { ok: true; topic: ClientTopic; seq: number }
  | { ok: false; status: 403 | 404; message: string }
  /** `limit`: the poster's own rate in this channel, or the channel's for everyone. */
  | { ok: false; status: 429; message: string; retryAfterMs: number; limit: "poster" | "topic" };

/** The poster must see the channel (else 404, exactly like a channel that does not exist). */
export async function postMessage(
  ports: { access: TopicAccess; publisher: TopicPublisher },
  m: PostMessage,
): Promise<PostResult> {
  const access = await ports.access.channel(m.team, m.user, m.channelId);
  if (!access.ok) return { ok: false, status: access.code === "forbidden" ? 403 : 404, message: access.message };
  const event: MessageEvent = {
    type: "message",
    channel: m.channelId,
    user: m.user,
    text: m.text,
    mentions: [...new Set(m.mentions)],
    ts: m.now,
  };
  const topic = channelTopic(m.channelId);
  // A shared channel's topic is its host team's: every team in it follows the
  // same one, so the poster is named with its team (user ids are per team).
  const published = await ports.publisher.publish(topicKey(access.host, topic), JSON.stringify(event), {
    poster: `${m.team}:${m.user}`,
  });
  if (!published.ok) {
    return {
      ok: false,
      status: 429,
      message:
        published.limit === "poster"
          ? "you are posting to this channel faster than your limit; retry later"
          : "this channel receives messages faster than its limit; retry later",
      retryAfterMs: published.retryAfterMs,
      limit: published.limit,
    };
  }
  return { ok: true, topic, seq: published.seq };
}
