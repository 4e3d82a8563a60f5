import { env, runInDurableObject } from "cloudflare:test";
import type { ChannelAccess, ChannelGrant, LiveState, ProfileSource, TopicAccess } from "../../src/realtime/ports";
import type { SocketState } from "../../src/realtime/socket-state";
import type { Role } from "../../src/teams/model";

// What the gateway-part suites (gateway-fanout, gateway-subscriptions) share:
// a fresh gateway's storage, and the team cache as a tiny in-memory port.

export const TEAM = "T1";
export const GATEWAY = "gw:T1:0";

/** Runs `fn` with a fresh gateway's storage (its SQLite holds the positions). */
export function withStorage<T>(fn: (state: DurableObjectState) => Promise<T> | T): Promise<T> {
  const stub = env.GATEWAY.get(env.GATEWAY.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(state));
}

/**
 * The team cache: channels in `refused` are not visible; the others are
 * public channels of the team (channelGrant says every member may see
 * them); guests may not see the users `hidden` lists for them. `asked`
 * counts the channel checks that reached it.
 */
export function teamCache(options: { refused?: string[]; hidden?: Record<string, string[]> } = {}) {
  const asked = { channel: 0, channelGrant: 0 };
  const check = (channel: string): ChannelAccess =>
    options.refused?.includes(channel)
      ? { ok: false, code: "not_found", message: "no such channel" }
      : { ok: true, host: TEAM };
  const access: TopicAccess = {
    async channel(_team, _viewer, channel) {
      asked.channel++;
      return check(channel);
    },
    async channelGrant(_team, _viewer, channel): Promise<ChannelGrant> {
      asked.channelGrant++;
      const c = check(channel);
      return c.ok ? { ...c, everyMember: true } : c;
    },
    async team() {
      return { ok: true };
    },
  };
  const live: LiveState = {
    async actors() {
      return new Map();
    },
    async visible(_team, _viewer, users, channels) {
      return { ok: true, users: new Set(users), channels: new Set(channels) };
    },
  };
  const profiles: ProfileSource = {
    async profiles(_team, viewers, users) {
      const hidden: Record<string, string[]> = {};
      for (const v of viewers) if (options.hidden?.[v]) hidden[v] = options.hidden[v];
      return { profiles: users.map((id) => ({ id })), hidden };
    },
  };
  return { access, live, profiles, asked };
}

/**
 * A connected socket's server side (`ws`, accepted, carrying an attachment)
 * with its state, following nothing yet; `messages` is what its client
 * receives. The caller tracks it in its socket index.
 */
export function connectedSocket(sid: string, user: string, extra: { role?: Role; presence?: string[] } = {}) {
  const [client, ws] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  client.accept();
  ws.accept();
  const messages: string[] = [];
  client.addEventListener("message", (e) => {
    messages.push(String(e.data));
  });
  const state: SocketState = {
    sid,
    team: TEAM,
    user,
    gateway: GATEWAY,
    subs: new Map(),
    presence: new Set(extra.presence ?? []),
    exp: 2 ** 40,
    role: extra.role ?? "member",
  };
  return { ws, state, messages };
}
