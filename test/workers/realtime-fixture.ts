import { SELF } from "cloudflare:test";
import { api, newTeam, ok } from "./client";

// Shared by the real-time tests: a WebSocket client that collects frames, and
// a small team with channels whose topics start at seq 0.

export type Frame = Record<string, unknown> & { type: string };

/**
 * A client socket that collects frames; take() awaits the next n of them.
 * A `batch` message is unwrapped into its frames, as a real client does (the
 * messages as they came are in `messages`). Profile frames (just-in-time
 * annotation) are set aside in `profiles`, with the index of the frame they
 * preceded, unless `withProfiles`.
 */
export class Client {
  readonly frames: Frame[] = [];
  readonly messages: Frame[] = [];
  readonly profiles: Array<{ before: number; user: Record<string, unknown> }> = [];
  closed: { code: number; reason: string } | null = null;
  private read = 0;
  private constructor(
    readonly ws: WebSocket,
    withProfiles: boolean,
  ) {
    ws.addEventListener("message", (e) => {
      const m = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data)) as Frame;
      this.messages.push(m);
      for (const f of m.type === "batch" ? (m.frames as Frame[]) : [m]) {
        if (f.type === "user" && !withProfiles) {
          this.profiles.push({ before: this.frames.length, user: f.user as Record<string, unknown> });
        } else this.frames.push(f);
      }
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
    });
  }

  /**
   * Connects with access token `t`: by default as a browser does (a ticket
   * from POST /v1/rtm.connect, then GET /v1/rtm?ticket=), or with the token
   * in the Authorization header (non-browser clients).
   */
  static async connect(t: string, via: "ticket" | "header" = "ticket", withProfiles = false): Promise<Client> {
    const res = via === "header" ? await rtmUpgrade("/v1/rtm", t) : await rtmUpgrade(await ticketUrl(t));
    if (res.status !== 101) throw new Error(`expected 101, got ${res.status}: ${await res.text()}`);
    return Client.accept(res, withProfiles);
  }

  /** The socket of a 101 response. */
  static accept(res: Response, withProfiles = false): Client {
    const ws = res.webSocket;
    if (!ws) throw new Error("no webSocket on the 101 response");
    ws.accept();
    return new Client(ws, withProfiles);
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /** The next n frames (waiting up to ms for them). */
  async take(n = 1, ms = 5_000): Promise<Frame[]> {
    const deadline = Date.now() + ms;
    while (this.frames.length < this.read + n) {
      if (Date.now() > deadline) {
        throw new Error(`expected ${n} more frames in ${ms} ms, got ${JSON.stringify(this.frames.slice(this.read))}`);
      }
      await sleep(5);
    }
    const out = this.frames.slice(this.read, this.read + n);
    this.read += n;
    return out;
  }

  async one(): Promise<Frame> {
    const [f] = await this.take(1);
    if (!f) throw new Error("no frame");
    return f;
  }

  /** Frames that arrive within ms (for "nothing more comes"). */
  async rest(ms = 300): Promise<Frame[]> {
    await sleep(ms);
    const out = this.frames.slice(this.read);
    this.read = this.frames.length;
    return out;
  }

  async subscribe(topics: Array<{ topic: string; since?: number }>, id = "s"): Promise<Frame> {
    this.send({ v: 1, type: "subscribe", id, topics });
    return this.one();
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

/** POST /v1/rtm.connect with access token `t`: the ticket's URL (path and query). */
export async function ticketUrl(t: string): Promise<string> {
  const body = await ok<{ url: string; ticket: string; expires_in: number }>(
    api("POST", "/v1/rtm.connect", { token: t }),
  );
  return body.url;
}

/** A WebSocket upgrade request to `path` (with `bearer` in the Authorization header when given). */
export function rtmUpgrade(path: string, bearer?: string): Promise<Response> {
  const headers: Record<string, string> = { upgrade: "websocket" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  return SELF.fetch(`https://edge.test${path}`, { headers });
}

/** Waits for the server to close the socket; its code and reason. */
export async function closedWith(c: Client, ms = 3_000): Promise<{ code: number; reason: string }> {
  const deadline = Date.now() + ms;
  while (!c.closed && Date.now() < deadline) await sleep(5);
  if (!c.closed) throw new Error("socket still open");
  return c.closed;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface Fixture {
  team: string;
  /** The access token of the team's admin (UADMIN, role admin: admin rights come from the live role). */
  admin: string;
  ids: Record<string, string>;
  channels: Record<string, string>;
}

export const MEMBERS = ["ada", "bob", "cat", "dan", "eve", "fay", "gil", "hal"];

export async function buildTeam(): Promise<Fixture> {
  const { id: team, admin } = await newTeam();
  const base = `/v1/admin/teams/${team}`;
  const ids: Record<string, string> = {};
  for (const handle of [...MEMBERS, "gus"]) {
    const id = `U${handle.toUpperCase()}${team.slice(1, 7)}`;
    ids[handle] = id;
    const role = handle === "gus" ? "guest" : "member";
    await ok(api("POST", `${base}/users`, { token: admin, json: { id, email: `${handle}@live.test`, role } }), 201);
  }
  const channels: Record<string, string> = {};
  const memberships: Array<{ channel_id: string; user_id: string }> = [];
  const make = async (key: string, isPrivate: boolean, members: string[]) => {
    const body = await ok<{ channel: { id: string } }>(
      api("POST", `${base}/channels`, { token: admin, json: { name: `${key}-room`, private: isPrivate } }),
      201,
    );
    channels[key] = body.channel.id;
    for (const m of members) memberships.push({ channel_id: body.channel.id, user_id: ids[m] ?? m });
  };
  for (const key of [
    "general",
    "ordered",
    "resume",
    "old",
    "unsub",
    "bad",
    "hib",
    "fan",
    "burst",
    "gap",
    "jit",
    "woke",
  ]) {
    await make(key, false, MEMBERS);
  }
  await make("secret", true, ["ada"]);
  await make("guests", false, ["gus", "bob"]);
  await make("private", true, ["ada", "bob", "cat"]);
  await make("leave", true, ["ada", "bob"]);
  // One bulk import (a team-topic `reload`), so channel topics start at seq 0.
  await ok(api("POST", `${base}/memberships/import`, { token: admin, json: { memberships } }), 201);
  return { team, admin, ids, channels };
}
