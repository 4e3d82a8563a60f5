// The wire types a client sees, taken from the server's own protocol module
// so the client cannot drift from it (type-only: nothing of the Worker is
// bundled), plus the one runtime helper every client needs: a `batch`
// message is handled as the frames it carries, one by one, in order.

import type {
  ClientFrame,
  ClientTopic,
  ErrorCode,
  FrameId,
  ReloadReason,
  ServerFrame,
  SingleFrame,
  TopicRequest,
} from "../../src/realtime/protocol";

export type { ClientFrame, ClientTopic, ErrorCode, FrameId, ReloadReason, ServerFrame, SingleFrame, TopicRequest };

/** The server frame of one `type`: `FrameOf<"event">` is `{ v: 1; type: "event"; topic; seq; event }`. */
export type FrameOf<T extends SingleFrame["type"]> = Extract<SingleFrame, { type: T }>;

export type HelloFrame = FrameOf<"hello">;
export type EventFrame = FrameOf<"event">;
export type ReloadFrame = FrameOf<"reload">;
export type SubscribedFrame = FrameOf<"subscribed">;
export type UnsubscribedFrame = FrameOf<"unsubscribed">;
export type PresenceFrame = FrameOf<"presence">;
export type UserFrame = FrameOf<"user">;
export type ErrorFrame = FrameOf<"error">;
export type PongFrame = FrameOf<"pong">;

/**
 * The frames of one WebSocket message: a `batch` unwrapped, a lone frame as
 * itself; anything that is not a protocol frame is dropped (a client must not
 * die on one bad message, and the server never sends one).
 */
export function framesOf(text: string): SingleFrame[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  if (!isFrame(parsed)) return [];
  if (parsed.type === "batch") {
    const frames = (parsed as { frames?: unknown }).frames;
    return Array.isArray(frames) ? frames.filter((f): f is SingleFrame => isFrame(f) && f.type !== "batch") : [];
  }
  return [parsed as SingleFrame];
}

function isFrame(value: unknown): value is { v: 1; type: string } {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { v?: unknown }).v === 1 &&
    typeof (value as { type?: unknown }).type === "string"
  );
}
