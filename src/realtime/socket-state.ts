import { isRole, type Role } from "../teams/model";
import { isPresenceTopic } from "./presence";
import { isClientTopic } from "./protocol";
import type { SubTopic } from "./topics";

// What a gateway knows about one socket, kept in the socket's hibernation
// attachment so that a gateway woken from hibernation serves it exactly as
// before: who it is and, per subscribed topic, the last sequence number sent
// on it. The runtime limits an attachment to 16 KiB (serialized; it was 2 KiB
// before workerd raised it in 2026), so it is stored compactly: channel topics
// by id ("#C0123456789"), the team topic as "*", presence shards as "%3",
// followed users' presence as a plain list. Whether subscriptions fit is
// judged as if every seq were already at its largest possible value, so a
// socket that fits never outgrows its attachment as sequence numbers grow:
// about 500 Slack-style channels per socket.
//
// Trust is kept there too: when the socket's access token expires (`exp`,
// the gateway closes it then) and the user's role as live state last said
// (`role`, which decides whether team-wide events are filtered for a guest).
// A state missing either reads as the safe value: expired, and guest.

export const MAX_ATTACHMENT_BYTES = 16 * 1024;
/** What the encoded state may take, leaving room for the runtime's serialization header. */
export const STATE_BUDGET_BYTES = MAX_ATTACHMENT_BYTES - 64;

export interface SocketState {
  /** Socket id, unique within its gateway. */
  sid: string;
  team: string;
  user: string;
  gateway: string;
  /** Subscribed topics and the last sequence number sent for each. */
  subs: Map<SubTopic, number>;
  /** Users whose presence the socket follows (their shards are in subs). */
  presence: Set<string>;
  /** When the access token behind the socket expires (seconds since the epoch): the socket closes then. */
  exp: number;
  /** The user's role as live state last said (at connect, then on every change the gateway hears of). */
  role: Role;
}

interface Stored {
  i: string;
  t: string;
  u: string;
  g: string;
  s: Record<string, number>;
  p?: string[];
  x?: number;
  r?: string;
}

export function encodeState(state: SocketState): string {
  const s: Record<string, number> = {};
  for (const [topic, seq] of state.subs) s[compact(topic)] = seq;
  const stored: Stored = {
    i: state.sid,
    t: state.team,
    u: state.user,
    g: state.gateway,
    s,
    x: state.exp,
    r: state.role,
  };
  if (state.presence.size > 0) stored.p = [...state.presence];
  return JSON.stringify(stored);
}

/** null for anything that is not an encoded state (a socket accepted by other code, a corrupt value). */
export function decodeState(value: unknown): SocketState | null {
  if (typeof value !== "string") return null;
  let raw: Stored;
  try {
    raw = JSON.parse(value) as Stored;
  } catch {
    return null;
  }
  if (!raw || typeof raw.i !== "string" || typeof raw.t !== "string" || typeof raw.u !== "string") return null;
  const subs = new Map<SubTopic, number>();
  for (const [k, seq] of Object.entries(raw.s ?? {})) {
    const topic = expand(k);
    if (topic && typeof seq === "number") subs.set(topic, seq);
  }
  const presence = new Set(Array.isArray(raw.p) ? raw.p.filter((u): u is string => typeof u === "string") : []);
  // Fail closed: no expiry reads as expired, no role as guest (the most filtered).
  const exp = typeof raw.x === "number" && Number.isFinite(raw.x) ? raw.x : 0;
  const role = typeof raw.r === "string" && isRole(raw.r) ? raw.r : "guest";
  return { sid: raw.i, team: raw.t, user: raw.u, gateway: String(raw.g ?? ""), subs, presence, exp, role };
}

function compact(topic: SubTopic): string {
  if (topic === "team") return "*";
  if (topic.startsWith("presence:")) return `%${topic.slice("presence:".length)}`;
  return `#${topic.slice("channel:".length)}`;
}

function expand(k: string): SubTopic | null {
  if (k === "*") return "team";
  const topic = k.startsWith("%") ? `presence:${k.slice(1)}` : `channel:${k.slice(1)}`;
  return isClientTopic(topic) || isPresenceTopic(topic) ? topic : null;
}

/** Whether the state fits its attachment now and whatever its sequence numbers grow to. */
export function fitsAttachment(state: SocketState): boolean {
  // A bound first, without encoding: JSON writes a string's character as at
  // most 6 bytes (\u00XX), a number as at most 24 characters; keys, quotes
  // and separators are a few characters per entry. A socket with a handful of
  // topics is far below the budget (most subscribes end here).
  let text = state.sid.length + state.team.length + state.user.length + state.gateway.length + state.role.length;
  let fixed = 96;
  for (const topic of state.subs.keys()) {
    text += topic.length;
    fixed += 32;
  }
  for (const u of state.presence) {
    text += u.length;
    fixed += 4;
  }
  if (text * 6 + fixed <= STATE_BUDGET_BYTES) return true;
  const widest = new Map([...state.subs.keys()].map((topic) => [topic, Number.MAX_SAFE_INTEGER]));
  const encoded = encodeState({ ...state, subs: widest });
  return new TextEncoder().encode(encoded).byteLength <= STATE_BUDGET_BYTES;
}
