import { topicOf } from "../../platform/stubs";
import type { TopicPublisher } from "../../src/realtime/ports";

/** Publishes through the topic's Durable Object, which numbers, logs and fans out. */
export function topicPublisher(env: Env): TopicPublisher {
  return {
    async publish(topicKey, eventJson, options) {
      return topicOf(env, topicKey).publish(topicKey, eventJson, options);
    },
  };
}
