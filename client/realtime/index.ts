// The real-time client's public surface: `import { RealtimeClient } from "…/client/realtime"`.
export type { BackoffOptions } from "./backoff";
export { Backoff } from "./backoff";
export type * from "./frames";
export { framesOf } from "./frames";
export type {
  AccessToken,
  CloseInfo,
  ConnectionState,
  ConnectionStatus,
  RealtimeClientOptions,
  RealtimeEventMap,
} from "./realtime-client";
export { RealtimeClient } from "./realtime-client";
export { TOPICS_PER_FRAME, TopicPositions } from "./topic-positions";
