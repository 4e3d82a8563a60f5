import { createApp } from "./app";
import { handleQueue } from "./queues";
import { sweepStaleTeams } from "./scheduled";

// The one Worker: the Hono app is `fetch`, the queue consumers are `queue`,
// the cron sweep is `scheduled`. Durable Object classes are exported here too.
// This is the default build (wrangler.toml): no ONNX runtime, every shipped
// model is scored in TypeScript; workers/index-onnx.ts is the same Worker with
// onnxruntime-web registered (wrangler.onnx.toml; docs/deploy.md, Builds).

export { ConnectIndex } from "../durable-objects/connect-index/connect-index";
export { Conversation } from "../durable-objects/conversation/conversation";
export { Gateway } from "../durable-objects/gateway/gateway";
export { Metrics } from "../durable-objects/metrics/metrics";
export { RecStore } from "../durable-objects/rec-store/rec-store";
export { SharedChannel } from "../durable-objects/shared-channel/shared-channel";
export { TeamCache } from "../durable-objects/team-cache/team-cache";
export { Topic } from "../durable-objects/topic/topic";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env, ctx) {
    await handleQueue(batch, env, (work) => ctx.waitUntil(work));
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepStaleTeams(env));
  },
} satisfies ExportedHandler<Env>;
