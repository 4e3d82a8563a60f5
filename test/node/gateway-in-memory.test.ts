import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/tokens";
import { PING_TEXT, PONG_TEXT } from "../../src/realtime/protocol";
import { type Backend, serveAsDeployed } from "../../tools/harness/backend";

// GATEWAY_HIBERNATE = "false" (durable-objects/gateway/socket-mode.ts): the
// gateway holds its sockets in memory with event listeners instead of the
// hibernation API. The workers suites run the default (hibernating); this
// suite serves the bundle as built for deploy, with that one var changed,
// and checks the same contract through real sockets: the handshake
// subscribe, events in order, pings answered, a resume without loss, and
// another team's user kept out.

const SECRET = "in-memory-gateway-test-secret-0123456789";
const OPERATOR = { team: "TOPS", user: "UOPS" };
const TEAM = "TMEM";
const OTHER = "TMEMX";

let backend: Backend;
let operator: string;
let channel: string;

type Frame = Record<string, unknown> & { type: string };

async function call(method: string, path: string, token: string, body?: unknown): Promise<Response> {
  return fetch(`${backend.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function ok<T>(res: Promise<Response>, status = 200): Promise<T> {
  const r = await res;
  const text = await r.text();
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${text}`);
  return JSON.parse(text) as T;
}

const tokenOf = (team: string, user: string) => signToken({ team, user, ttlSeconds: 600 }, SECRET);

/** A socket that unpacks `batch` messages into frames and queues raw pongs. */
class Socket {
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  closed: { code: number; reason: string } | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const text = String(e.data);
      this.raw.push(text);
      const f = JSON.parse(text) as Frame;
      if (f.type === "batch") this.frames.push(...(f.frames as Frame[]));
      else this.frames.push(f);
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
    });
  }

  static async open(token: string, subscribe?: string): Promise<Socket> {
    const { url } = await ok<{ url: string }>(call("POST", "/v1/rtm.connect", token));
    const target = new URL(url, backend.url.replace(/^http/, "ws"));
    if (subscribe) target.searchParams.set("subscribe", subscribe);
    const ws = new WebSocket(target.toString());
    const socket = new Socket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", () => reject(new Error("socket did not open")));
    });
    return socket;
  }

  async until(pred: (f: Frame) => boolean, ms = 5_000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0] as Frame;
      if (Date.now() > deadline) throw new Error(`no such frame; have ${JSON.stringify(this.frames).slice(0, 400)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  send(f: unknown): void {
    this.ws.send(typeof f === "string" ? f : JSON.stringify(f));
  }
}

const post = async (text: string) =>
  ok(call("POST", `/v1/channels/${channel}/messages`, await tokenOf(TEAM, "UADA"), { text }), 201);

beforeAll(async () => {
  backend = await serveAsDeployed("in-memory-gateway-test", {
    vars: { GATEWAY_HIBERNATE: "false", JWT_SECRET: SECRET, PLATFORM_OPERATORS: `${OPERATOR.team}:${OPERATOR.user}` },
  });
  operator = await signToken({ ...OPERATOR, ttlSeconds: 600 }, SECRET);
  for (const team of [TEAM, OTHER]) await ok(call("POST", "/v1/admin/teams", operator, { id: team, name: team }), 201);
  for (const id of ["UADA", "UBOB"]) {
    await ok(call("POST", `/v1/admin/teams/${TEAM}/users`, operator, { id, email: `${id}@mem.example` }), 201);
  }
  await ok(call("POST", `/v1/admin/teams/${OTHER}/users`, operator, { id: "UOTHER", email: "o@other.example" }), 201);
  const made = await ok<{ channel: { id: string } }>(
    call("POST", `/v1/admin/teams/${TEAM}/channels`, operator, { name: "mem-room", private: false }),
    201,
  );
  channel = made.channel.id;
  await ok(
    call("POST", `/v1/admin/teams/${TEAM}/memberships/import`, operator, {
      memberships: ["UADA", "UBOB"].map((user_id) => ({ channel_id: channel, user_id })),
    }),
    201,
  );
}, 180_000);

afterAll(async () => {
  await backend?.close();
});

describe("a gateway holding its sockets in memory (GATEWAY_HIBERNATE=false)", () => {
  it("subscribes in the handshake, delivers events in order, answers pings", async () => {
    const bob = await Socket.open(await tokenOf(TEAM, "UBOB"), `channel:${channel}`);
    expect(await bob.until((f) => f.type === "hello")).toMatchObject({ user: "UBOB", team: TEAM });
    const sub = await bob.until((f) => f.type === "subscribed");
    const start = (sub.topics as Array<{ seq: number }>)[0]?.seq ?? 0;
    for (let i = 0; i < 5; i++) await post(`m${i}`);
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) seqs.push(Number((await bob.until((f) => f.type === "event")).seq));
    expect(seqs).toEqual([1, 2, 3, 4, 5].map((n) => start + n));
    // The runtime answers pings for hibernatable sockets; here the gateway does, the same way.
    bob.send(PING_TEXT);
    const deadline = Date.now() + 3_000;
    while (!bob.raw.includes(PONG_TEXT) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(bob.raw).toContain(PONG_TEXT);
    bob.ws.close(1000);
  });

  it("resumes from the last seq after a reconnect, without loss or duplicates", async () => {
    const topic = `channel:${channel}`;
    const first = await Socket.open(await tokenOf(TEAM, "UADA"), topic);
    const sub = await first.until((f) => f.type === "subscribed");
    const seen = (sub.topics as Array<{ seq: number }>)[0]?.seq ?? 0;
    first.ws.close(1000);
    for (let i = 0; i < 3; i++) await post(`while away ${i}`);
    const again = await Socket.open(await tokenOf(TEAM, "UADA"));
    await again.until((f) => f.type === "hello");
    again.send({ v: 1, type: "subscribe", id: "r", topics: [{ topic, since: seen }] });
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) seqs.push(Number((await again.until((f) => f.type === "event")).seq));
    expect(seqs).toEqual([seen + 1, seen + 2, seen + 3]);
    await new Promise((r) => setTimeout(r, 200));
    expect(again.frames.filter((f) => f.type === "event")).toEqual([]);
    again.ws.close(1000);
  });

  it("keeps another team's user out of the channel: refused as if it did not exist", async () => {
    const outsider = await Socket.open(await tokenOf(OTHER, "UOTHER"));
    await outsider.until((f) => f.type === "hello");
    outsider.send({ v: 1, type: "subscribe", id: "x", topics: [{ topic: `channel:${channel}` }] });
    const answer = await outsider.until((f) => f.id === "x");
    expect(answer.type).toBe("error");
    await post("not for outsiders");
    await new Promise((r) => setTimeout(r, 300));
    expect(outsider.frames.filter((f) => f.type === "event")).toEqual([]);
    outsider.ws.close(1000);
  });
});
