import { type ClientTopic, isClientTopic } from "./protocol";

// What a gateway knows about one socket, kept in the socket's hibernation
// attachment so that a gateway woken from hibernation serves it exactly as
// before: who it is and, per subscribed topic, the last sequence number sent
// on it. The runtime limits an attachment to 16 KiB (serialized; it was 2 KiB
// before workerd raised it in 2026), so it is stored compactly: channel topics
// by id ("#C0123456789"), the team topic as "*". Whether subscriptions fit is
// judged as if every seq were already at its largest possible value, so a
// socket that fits never outgrows its attachment as sequence numbers grow:
// about 500 Slack-style channels per socket.

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
  subs: Map<ClientTopic, number>;
}

interface Stored {
  i: string;
  t: string;
  u: string;
  g: string;
  s: Record<string, number>;
}

export function encodeState(state: SocketState): string {
  const s: Record<string, number> = {};
  for (const [topic, seq] of state.subs) s[topic === "team" ? "*" : `#${topic.slice(8)}`] = seq;
  const stored: Stored = { i: state.sid, t: state.team, u: state.user, g: state.gateway, s };
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
  const subs = new Map<ClientTopic, number>();
  for (const [k, seq] of Object.entries(raw.s ?? {})) {
    const topic = k === "*" ? "team" : `channel:${k.slice(1)}`;
    if (isClientTopic(topic) && typeof seq === "number") subs.set(topic, seq);
  }
  return { sid: raw.i, team: raw.t, user: raw.u, gateway: String(raw.g ?? ""), subs };
}

/** Whether the state fits its attachment now and whatever its sequence numbers grow to. */
export function fitsAttachment(state: SocketState): boolean {
  const widest = new Map([...state.subs.keys()].map((topic) => [topic, Number.MAX_SAFE_INTEGER]));
  const encoded = encodeState({ ...state, subs: widest });
  return new TextEncoder().encode(encoded).byteLength <= STATE_BUDGET_BYTES;
}
