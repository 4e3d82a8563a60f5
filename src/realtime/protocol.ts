/**
 * The real-time protocol, version 1: one WebSocket per client (`GET /v1/rtm`),
 * JSON text frames, every frame carrying `"v": 1`.
 *
 * Connecting. `POST /v1/rtm.connect` (bearer access token) answers
 * `{ url: "/v1/rtm?ticket=…", ticket, expires_in }`: a ticket good for one
 * socket within TICKET_TTL_SECONDS (tickets.ts), so no long-lived token sits
 * in a URL or a log. A client that can set headers (not a browser) may
 * instead connect with `Authorization: Bearer <access token>`; `?token=` is
 * refused. Either way the user must be an active member of the team right
 * now (else 403, no socket), and the socket closes with TOKEN_EXPIRED when
 * the access token it came from expires.
 *
 * Subscribing in the handshake. `GET /v1/rtm?…&subscribe=<topic>[@<since>],…`
 * (for example `subscribe=team,channel:C1@42`) subscribes as a `subscribe`
 * frame with those topics would, with no round trip: the answer is the same
 * `subscribed` (without id), errors and missed events, in one message led by
 * `hello` (a `batch` whose first frame is `hello`). A
 * malformed list is a 400 before any upgrade. A reconnecting client puts the
 * last seq it saw of each topic after `@`.
 *
 * Client → server
 * - `{ v: 1, type: "subscribe", id?, topics: [{ topic, since? }] }`: topic is
 *   `"channel:<id>"` or `"team"`; `since` is the last sequence number the
 *   client has seen of that topic (resume after a reconnect).
 * - `{ v: 1, type: "unsubscribe", id?, topics: [{ topic }] }`
 * - `{ v: 1, type: "presence_sub", id?, users: [userId, ...] }`: follow these
 *   users' presence (replaces the socket's list; `[]` stops). At most
 *   MAX_PRESENCE_USERS. Answered by a snapshot, then only these users' changes.
 *   Users the viewer may not see (a guest: people it shares no channel with;
 *   anyone: ids its team does not have) are left out of both, exactly as if
 *   they did not exist.
 * - `{ v: 1, type: "ping", id? }`: answered `{ v: 1, type: "pong", id? }`. The
 *   exact text `{"v":1,"type":"ping"}` is answered by the runtime without waking
 *   the gateway (hibernation auto-response).
 *
 * Server → client
 * - `{ v: 1, type: "hello", user, team, gateway }`, first, on connect (alone,
 *   or leading the batch that answers the handshake's `?subscribe=`).
 * - `{ v: 1, type: "subscribed", id?, topics: [{ topic, seq }] }`: the topics
 *   accepted, each with the topic's current sequence number. Sent only when at
 *   least one topic was accepted; each refused topic gets an `error` (with
 *   `topic`) instead, before it. Subscribing to a topic already subscribed
 *   acknowledges it with the last sequence delivered on this socket.
 * - `{ v: 1, type: "event", topic, seq, event }`: per topic, in strictly
 *   increasing `seq` with no gaps and no duplicates. With `since`, the missed
 *   events (`since` < seq ≤ the `subscribed` seq) follow the `subscribed`
 *   frame, before any live event. One exception to "no gaps": on the `team`
 *   topic a socket gets only the events meant for it, and its seqs jump
 *   over the others: a guest only `user_changed` of people it shares a
 *   channel with and `channel_changed` of its channels; anyone only the
 *   `conversation_opened` / `conversation_joined` / `conversation_left` of
 *   DMs and group DMs its user is in now (and its own leave); owners and
 *   admins alone the admin-only events (directory-events.ts). Every change
 *   the team cache keeps, as an event, its topic and audience: docs/realtime.md.
 * - `{ v: 1, type: "reload", topic, reason, seq }`: the events after `since`
 *   are no longer in the topic's log (`gap_too_old`), or `since` is beyond the
 *   topic's sequence (`seq_ahead`). The client refetches that topic's state;
 *   the subscription stands and continues after `seq`.
 * - `{ v: 1, type: "unsubscribed", id?, topics: [topic], reason? }`: answer
 *   to an unsubscribe, or unasked with `reason: "access_revoked"` when the
 *   user may no longer see the topic (removed from a private channel, the
 *   channel turned private, demoted to guest) or when that could not be
 *   checked (the check failed: denied, never assumed). Subscribing again
 *   checks afresh.
 * - `{ v: 1, type: "user", user: { id, name, ... } }`: a profile, sent just
 *   before the first event that names a user (message author or mention) this
 *   socket has not been sent yet.
 * - `{ v: 1, type: "presence", id?, users: [{ user, presence }] }`: with `id`,
 *   the snapshot answering presence_sub (every listed user, "active" or
 *   "away"); without, a change of one followed user.
 * - `{ v: 1, type: "error", id?, topic?, code, message }`. A bad frame gets an
 *   error and changes nothing; the socket stays open.
 * - `{ v: 1, type: "batch", frames: [frame, ...] }`: several of the frames
 *   above in one WebSocket message, exactly those that would otherwise come
 *   one by one, in the same order (never nested; `hello` only first). Sent when
 *   the server has more than one frame for the socket at once: a delivery of
 *   several events, the just-in-time profiles before them, a resume's missed
 *   events after `subscribed`. A client handles each inner frame as if it had
 *   come alone. A lone frame is always sent bare. At most
 *   GATEWAY_BATCH_FRAMES (64) frames and about MAX_BATCH_CHARS of text per
 *   batch; beyond, several messages.
 *
 * Limits: a user holds at most GATEWAY_MAX_SOCKETS_PER_USER sockets (beyond,
 * the new one closes with TOO_MANY_SOCKETS); a socket sends at most
 * FRAME_RATE frames a second (bursts of FRAME_BURST; beyond, `rate_limited`
 * errors and the frame is dropped; a socket that keeps going is closed with
 * RATE_LIMITED); a client frame is at most MAX_FRAME_BYTES (UTF-8); at most
 * MAX_TOPICS_PER_FRAME topics per frame; a socket's subscriptions must fit
 * its hibernation attachment (see socket-state.ts), about 500 channels;
 * beyond that a subscribe gets `too_many_topics` errors. Posting (HTTP, not
 * the socket) is limited per poster per channel: see topic.ts.
 */

import { wholeVarOr } from "../vars";
import { MAX_PRESENCE_USERS } from "./presence";

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 16 * 1024;
export const MAX_TOPICS_PER_FRAME = 100;
/** Client frames per second per socket (auto-answered pings do not count), and the burst allowed. */
export const FRAME_RATE = 20;
export const FRAME_BURST = 60;
/** Frames dropped for rate before the socket is closed. */
export const MAX_DROPPED_FRAMES = 100;
const MAX_ID_LENGTH = 64;
const CHANNEL_ID = /^[A-Za-z0-9_-]{1,40}$/;
const USER_ID = /^[A-Za-z0-9_.@-]{1,64}$/;

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
  | { v: 1; type: "presence_sub"; id?: FrameId; users: string[] }
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
  | "too_many_users"
  | "rate_limited"
  | "unavailable";

export type ReloadReason = "gap_too_old" | "seq_ahead";

/**
 * Close codes. A client that sees OVERLOADED or RATE_LIMITED waits the
 * close reason's `retry_after_ms` (already jittered by the server, so a storm
 * of rejected clients does not come back in lockstep), reconnects, and
 * resubscribes with `since`: nothing is lost, only delayed.
 * The reason is JSON, `{"code":"overloaded","retry_after_ms":1840}`, well
 * under the 123-byte limit of a close reason.
 */
export const CLOSE_CODES = {
  /** The gateway is admitting connections faster or beyond what it holds (RFC 6455 "try again later"). */
  overloaded: 1013,
  /**
   * The access token the socket was opened with expired: get a new token
   * (and a ticket), reconnect, resubscribe with `since`.
   */
  token_expired: 4001,
  /** The user is no longer an active member of the team (deactivated, or removed): do not reconnect. */
  deactivated: 4003,
  /**
   * The user already has GATEWAY_MAX_SOCKETS_PER_USER (default 10) sockets
   * open: this new one is closed at once. Close another one first; retrying
   * as it is will be refused the same way.
   */
  too_many_sockets: 4008,
  /** The connection sent frames faster than its limit. */
  rate_limited: 4029,
} as const;
export type CloseCode = keyof typeof CLOSE_CODES;

export function closeReason(code: CloseCode, retryAfterMs?: number): string {
  return JSON.stringify(retryAfterMs === undefined ? { code } : { code, retry_after_ms: Math.round(retryAfterMs) });
}

/** The retry delay a close reason carries, or null when it carries none. */
export function retryAfterOf(reason: string): number | null {
  try {
    const parsed: unknown = JSON.parse(reason);
    if (isObject(parsed) && typeof parsed.retry_after_ms === "number" && parsed.retry_after_ms >= 0) {
      return parsed.retry_after_ms;
    }
  } catch {
    // not ours
  }
  return null;
}

/** Every server frame but `batch`: what a batch carries. */
export type SingleFrame =
  | { v: 1; type: "hello"; user: string; team: string; gateway: string }
  | { v: 1; type: "subscribed"; id?: FrameId; topics: Array<{ topic: ClientTopic; seq: number }> }
  | { v: 1; type: "unsubscribed"; id?: FrameId; topics: ClientTopic[]; reason?: "access_revoked" }
  | { v: 1; type: "presence"; id?: FrameId; users: Array<{ user: string; presence: "active" | "away" }> }
  | { v: 1; type: "user"; user: Record<string, unknown> }
  | { v: 1; type: "event"; topic: ClientTopic; seq: number; event: Record<string, unknown> }
  | { v: 1; type: "reload"; topic: ClientTopic; reason: ReloadReason; seq: number }
  | { v: 1; type: "pong"; id?: FrameId }
  | { v: 1; type: "error"; id?: FrameId; topic?: ClientTopic; code: ErrorCode; message: string };

export type ServerFrame = SingleFrame | { v: 1; type: "batch"; frames: SingleFrame[] };

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
    case "presence_sub": {
      const users = userList(raw.users);
      if (typeof users === "string")
        return withId(users.startsWith("at most") ? "too_many_users" : "invalid_frame", users);
      return { ok: true, frame: { v: 1, type: "presence_sub", ...idPart, users } };
    }
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

/**
 * The `subscribe` query parameter of GET /v1/rtm (`team,channel:C1@42`): the
 * topic requests a subscribe frame would carry, or what is wrong with them.
 */
export function parseHandshakeTopics(raw: string): TopicRequest[] | string {
  const parts = raw.split(",");
  if (parts.length > MAX_TOPICS_PER_FRAME) return `subscribe: at most ${MAX_TOPICS_PER_FRAME} topics`;
  const seen = new Set<string>();
  const out: TopicRequest[] = [];
  for (const part of parts) {
    const at = part.indexOf("@");
    const topic = at < 0 ? part : part.slice(0, at);
    const since = at < 0 ? undefined : part.slice(at + 1);
    const shown = JSON.stringify(part.slice(0, 60));
    if (!isClientTopic(topic)) return `subscribe: ${shown} is not "team" or "channel:<id>"`;
    if (since !== undefined && !/^\d{1,15}$/.test(since)) {
      return `subscribe: ${shown}: the seq after @ must be a non-negative integer`;
    }
    if (seen.has(topic)) continue;
    seen.add(topic);
    out.push(since === undefined ? { topic } : { topic, since: Number(since) });
  }
  return out;
}

/** A presence_sub's users, deduplicated, or what is wrong with them. */
function userList(value: unknown): string[] | string {
  if (!Array.isArray(value)) return "users must be an array of user ids";
  if (value.length > MAX_PRESENCE_USERS) return `at most ${MAX_PRESENCE_USERS} users per socket`;
  for (const [i, u] of value.entries()) {
    if (typeof u !== "string" || !USER_ID.test(u)) return `users[${i}] must be a user id`;
  }
  return [...new Set(value as string[])];
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

// Frame coalescing. What a WebSocket message costs (a send on the server, a
// message event on the client, the framing) is paid per message, whatever
// its size; under load a topic's delivery carries several events, and sending
// each as its own message paid that cost per event per socket. So the frames
// one socket gets at once travel as one `batch` message (as Centrifugo and
// Ably do), built once per run of events and sent as the same string to every
// socket that gets exactly those frames. Bounded, so no message grows without
// limit and a slow client is not handed one huge message.

/** Frames per batch message unless GATEWAY_BATCH_FRAMES says otherwise (1: never batch). */
export const DEFAULT_BATCH_FRAMES = 64;
/** Text per batch message, about (UTF-16 units; at most 3 bytes each in UTF-8). */
export const MAX_BATCH_CHARS = 128 * 1024;
const BATCH_OPEN = '{"v":1,"type":"batch","frames":[';
const BATCH_CLOSE = "]}";

/**
 * The messages that carry these frames, in order: a lone frame bare, runs of
 * frames as batches of at most maxFrames frames and maxChars of text (a frame
 * larger than that on its own goes bare).
 */
export function packFrames(
  texts: readonly string[],
  maxFrames = DEFAULT_BATCH_FRAMES,
  maxChars = MAX_BATCH_CHARS,
): string[] {
  if (texts.length <= 1 || maxFrames <= 1) return [...texts];
  const out: string[] = [];
  let run: string[] = [];
  let chars = BATCH_OPEN.length + BATCH_CLOSE.length;
  const flush = () => {
    if (run.length === 1) out.push(run[0] as string);
    else if (run.length > 1) out.push(`${BATCH_OPEN}${run.join(",")}${BATCH_CLOSE}`);
    run = [];
    chars = BATCH_OPEN.length + BATCH_CLOSE.length;
  };
  for (const text of texts) {
    if (run.length >= maxFrames || (run.length > 0 && chars + 1 + text.length > maxChars)) flush();
    run.push(text);
    chars += text.length + (run.length > 1 ? 1 : 0);
  }
  flush();
  return out;
}

/** GATEWAY_BATCH_FRAMES: a whole number of frames ≥ 1; anything else is logged and the default used. */
export function batchFramesOf(value: string | undefined): number {
  return wholeVarOr("GATEWAY_BATCH_FRAMES", value, DEFAULT_BATCH_FRAMES);
}
