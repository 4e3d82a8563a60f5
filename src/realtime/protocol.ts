/**
 * The real-time protocol, version 1: one WebSocket per client (`GET /v1/rtm`),
 * JSON text frames, every frame carrying `"v": 1`.
 *
 * Client → server
 * - `{ v: 1, type: "subscribe", id?, topics: [{ topic, since? }] }`: topic is
 *   `"channel:<id>"` or `"team"`; `since` is the last sequence number the
 *   client has seen of that topic (resume after a reconnect).
 * - `{ v: 1, type: "unsubscribe", id?, topics: [{ topic }] }`
 * - `{ v: 1, type: "ping", id? }`: answered `{ v: 1, type: "pong", id? }`. The
 *   exact text `{"v":1,"type":"ping"}` is answered by the runtime without waking
 *   the gateway (hibernation auto-response).
 *
 * Server → client
 * - `{ v: 1, type: "hello", user, team, gateway }`, first, on connect.
 * - `{ v: 1, type: "subscribed", id?, topics: [{ topic, seq }] }`: the topics
 *   accepted, each with the topic's current sequence number. Sent only when at
 *   least one topic was accepted; each refused topic gets an `error` (with
 *   `topic`) instead, before it. Subscribing to a topic already subscribed
 *   acknowledges it with the last sequence delivered on this socket.
 * - `{ v: 1, type: "event", topic, seq, event }`: per topic, in strictly
 *   increasing `seq` with no gaps and no duplicates. With `since`, the missed
 *   events (`since` < seq ≤ the `subscribed` seq) follow the `subscribed`
 *   frame, before any live event.
 * - `{ v: 1, type: "reload", topic, reason, seq }`: the events after `since`
 *   are no longer in the topic's log (`gap_too_old`), or `since` is beyond the
 *   topic's sequence (`seq_ahead`). The client refetches that topic's state;
 *   the subscription stands and continues after `seq`.
 * - `{ v: 1, type: "unsubscribed", id?, topics: [topic] }`
 * - `{ v: 1, type: "error", id?, topic?, code, message }`. A bad frame gets an
 *   error and changes nothing; the socket stays open.
 *
 * Limits: a client frame is at most MAX_FRAME_BYTES (UTF-8); at most
 * MAX_TOPICS_PER_FRAME topics per frame; a socket's subscriptions must fit its
 * hibernation attachment (see socket-state.ts), about 500 channels;
 * beyond that a subscribe gets `too_many_topics` errors.
 */

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 16 * 1024;
export const MAX_TOPICS_PER_FRAME = 100;
const MAX_ID_LENGTH = 64;
const CHANNEL_ID = /^[A-Za-z0-9_-]{1,40}$/;

/** The ping that the gateway's runtime answers by itself (no wake-up). */
export const PING_TEXT = '{"v":1,"type":"ping"}';
export const PONG_TEXT = '{"v":1,"type":"pong"}';

export type FrameId = string | number;
/** A topic as clients name it. Server-side topic keys are in topics.ts. */
export type ClientTopic = "team" | `channel:${string}`;

export interface TopicRequest {
  topic: ClientTopic;
  since?: number;
}

export type ClientFrame =
  | { v: 1; type: "subscribe"; id?: FrameId; topics: TopicRequest[] }
  | { v: 1; type: "unsubscribe"; id?: FrameId; topics: Array<{ topic: ClientTopic }> }
  | { v: 1; type: "ping"; id?: FrameId };

export type ErrorCode =
  | "frame_too_large"
  | "invalid_json"
  | "invalid_frame"
  | "unknown_type"
  | "unsupported_version"
  | "forbidden"
  | "not_found"
  | "too_many_topics"
  | "unavailable";

export type ReloadReason = "gap_too_old" | "seq_ahead";

export type ServerFrame =
  | { v: 1; type: "hello"; user: string; team: string; gateway: string }
  | { v: 1; type: "subscribed"; id?: FrameId; topics: Array<{ topic: ClientTopic; seq: number }> }
  | { v: 1; type: "unsubscribed"; id?: FrameId; topics: ClientTopic[] }
  | { v: 1; type: "event"; topic: ClientTopic; seq: number; event: Record<string, unknown> }
  | { v: 1; type: "reload"; topic: ClientTopic; reason: ReloadReason; seq: number }
  | { v: 1; type: "pong"; id?: FrameId }
  | { v: 1; type: "error"; id?: FrameId; topic?: ClientTopic; code: ErrorCode; message: string };

export type ParseResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; id?: FrameId; code: ErrorCode; message: string };

const encoder = new TextEncoder();

/** UTF-8 length, without encoding when the answer is obvious. */
export function frameBytes(data: string | ArrayBuffer): number {
  if (typeof data !== "string") return data.byteLength;
  if (data.length > MAX_FRAME_BYTES || data.length * 3 <= MAX_FRAME_BYTES) return data.length;
  return encoder.encode(data).byteLength;
}

/** Validates one client frame. Unknown fields are ignored; anything else off is an error naming it. */
export function parseClientFrame(data: string | ArrayBuffer): ParseResult {
  if (frameBytes(data) > MAX_FRAME_BYTES) {
    return fail("frame_too_large", `frames are limited to ${MAX_FRAME_BYTES} bytes`);
  }
  if (typeof data !== "string") return fail("invalid_frame", "binary frames are not supported; send JSON text");
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return fail("invalid_json", "frame is not valid JSON");
  }
  if (!isObject(raw)) return fail("invalid_frame", "frame must be a JSON object");
  const id = frameId(raw.id);
  if (id === null)
    return fail("invalid_frame", `id must be a string of at most ${MAX_ID_LENGTH} characters or a number`);
  const withId = (code: ErrorCode, message: string): ParseResult =>
    id === undefined ? { ok: false, code, message } : { ok: false, id, code, message };
  if (raw.v !== PROTOCOL_VERSION) return withId("unsupported_version", `v must be ${PROTOCOL_VERSION}`);
  const idPart = id === undefined ? {} : { id };
  switch (raw.type) {
    case "ping":
      return { ok: true, frame: { v: 1, type: "ping", ...idPart } };
    case "subscribe":
    case "unsubscribe": {
      const topics = topicList(raw.topics, raw.type === "subscribe");
      if (typeof topics === "string") return withId("invalid_frame", topics);
      if (raw.type === "subscribe") return { ok: true, frame: { v: 1, type: "subscribe", ...idPart, topics } };
      return {
        ok: true,
        frame: { v: 1, type: "unsubscribe", ...idPart, topics: topics.map(({ topic }) => ({ topic })) },
      };
    }
    default:
      if (typeof raw.type !== "string") return withId("invalid_frame", "type must be a string");
      return withId("unknown_type", `unknown frame type "${raw.type.slice(0, 40)}"`);
  }
}

export function isClientTopic(value: unknown): value is ClientTopic {
  if (value === "team") return true;
  return typeof value === "string" && value.startsWith("channel:") && CHANNEL_ID.test(value.slice(8));
}

/** The topics of a (un)subscribe frame, deduplicated (first wins), or what is wrong with them. */
function topicList(value: unknown, allowSince: boolean): TopicRequest[] | string {
  if (!Array.isArray(value) || value.length === 0) return "topics must be a non-empty array";
  if (value.length > MAX_TOPICS_PER_FRAME) return `at most ${MAX_TOPICS_PER_FRAME} topics per frame`;
  const seen = new Set<string>();
  const out: TopicRequest[] = [];
  for (const [i, entry] of value.entries()) {
    if (!isObject(entry)) return `topics[${i}] must be an object`;
    if (!isClientTopic(entry.topic)) return `topics[${i}].topic must be "team" or "channel:<id>"`;
    const since = entry.since;
    if (since !== undefined) {
      if (!allowSince) return `topics[${i}].since is only allowed in subscribe`;
      if (typeof since !== "number" || !Number.isSafeInteger(since) || since < 0) {
        return `topics[${i}].since must be a non-negative integer`;
      }
    }
    if (seen.has(entry.topic)) continue;
    seen.add(entry.topic);
    out.push(since === undefined ? { topic: entry.topic } : { topic: entry.topic, since });
  }
  return out;
}

/** undefined: absent; null: present but invalid. */
function frameId(value: unknown): FrameId | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === "string" && value.length <= MAX_ID_LENGTH) return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(code: ErrorCode, message: string): ParseResult {
  return { ok: false, code, message };
}

/** Serializes a server frame. Event frames are built by eventFrame (their body is already JSON). */
export function frame(f: ServerFrame): string {
  return JSON.stringify(f);
}

/** An event frame around an event body that is already JSON text: built once, sent to every socket. */
export function eventFrame(topic: ClientTopic, seq: number, eventJson: string): string {
  return `{"v":1,"type":"event","topic":${JSON.stringify(topic)},"seq":${seq},"event":${eventJson}}`;
}
