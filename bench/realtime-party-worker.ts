import { routePartykitRequest, Server } from "partyserver";
import { verifyToken } from "../src/auth/tokens";
import { DEFAULT_BATCH_FRAMES, eventFrame, isClientTopic, packFrames } from "../src/realtime/protocol";

// Baseline Worker of `npm run bench:realtime` (bench/wrangler.realtime-party.toml,
// never deployed): the same broadcast on `partyserver`, one room per
// subscriber count. Clients connect to /parties/<party>/<room>; a POST to the
// same path is one message, numbered and broadcast to every connection of
// the room with the platform's frame shape (the platform's own eventFrame),
// answered `{ seq }` once it has been sent.
//
// Parties, the same room code:
// - `rt-room`: partyserver's default in-memory connections, one WebSocket
//   message per event (what a partyserver app does out of the box);
// - `rt-room-hib`: the same with hibernation (the platform's gateways
//   hibernate);
// - `rt-room-batch`: in-memory connections, coalescing frames the way the
//   platform does, so the comparison is not "batching vs no batching": events
//   are numbered as they arrive and broadcast in rounds, one at a time; the
//   events that arrive while a round is being sent (or before its first turn
//   runs) go out together in the next round, packed by the platform's own
//   packFrames with the platform's limits (GATEWAY_BATCH_FRAMES' default of
//   64 frames, about 128 KiB): the same `batch` messages, the same frames in
//   them, a lone event bare. Each POST is answered when its round was sent,
//   as the platform answers a publish once its delivery round is done;
// - `rt-room-auth`: `rt-room-batch` behind the token check a deployed room
//   would have: `onBeforeConnect` verifies the client's bearer token with the
//   platform's own verifyToken (HS256, the same secret and claims) before
//   the upgrade reaches the room, and refuses a bad one with 401. It is the
//   like-for-like peer of the platform's connect on authentication (the
//   platform also reads the user's live role and subscribes in the
//   handshake, which no partyserver room here does).
//
// The seq survives an eviction in the room's SQLite (a hibernating room may
// be evicted between phases; a restarted count would look like duplicates).

export class RtRoom extends Server {
  static override options = { hibernate: false };
  private seq: number | null = null;

  override async onRequest(request: Request): Promise<Response> {
    if (request.method !== "POST") return new Response("POST a message", { status: 405 });
    const body = await request.text();
    const param = new URL(request.url).searchParams.get("topic") ?? "channel:C";
    const topic = isClientTopic(param) ? param : "channel:C";
    const seq = this.nextSeq();
    await this.send(eventFrame(topic, seq, body));
    return Response.json({ seq });
  }

  /** Sends one event frame to every connection (resolves once it is sent). */
  protected send(frame: string): Promise<void> {
    this.broadcast(frame);
    return Promise.resolve();
  }

  private nextSeq(): number {
    const kv = this.ctx.storage.kv;
    this.seq = (this.seq ?? kv.get<number>("seq") ?? 0) + 1;
    kv.put("seq", this.seq);
    return this.seq;
  }
}

export class RtRoomHib extends RtRoom {
  static override options = { hibernate: true };
}

export class RtRoomBatch extends RtRoom {
  /** Frames waiting for the next round, with the POSTs waiting on them. */
  private waiting: Array<{ frame: string; sent: () => void }> = [];
  private rounds: Promise<void> | null = null;

  protected override send(frame: string): Promise<void> {
    return new Promise<void>((sent) => {
      this.waiting.push({ frame, sent });
      this.rounds ??= this.run().finally(() => {
        this.rounds = null;
      });
    });
  }

  /** Rounds, one at a time, until nothing waits: each yields a turn first, so events arriving meanwhile join it. */
  private async run(): Promise<void> {
    while (this.waiting.length > 0) {
      await new Promise((r) => setTimeout(r, 0));
      const round = this.waiting;
      this.waiting = [];
      for (const message of packFrames(
        round.map((w) => w.frame),
        DEFAULT_BATCH_FRAMES,
      ))
        this.broadcast(message);
      for (const w of round) w.sent();
    }
  }
}

export class RtRoomAuth extends RtRoomBatch {}

interface PartyEnv {
  /** The platform's JWT_SECRET (the bench passes the same one to both). */
  JWT_SECRET?: string;
}

/** A deployed room's gate: a valid access token, or 401 before the upgrade. */
async function tokenCheck(req: Request, env: PartyEnv): Promise<Response | undefined> {
  const header = req.headers.get("authorization") ?? "";
  const token = header.startsWith("Bearer ") ? header.slice(7) : "";
  const verified = env.JWT_SECRET && token ? await verifyToken(token, env.JWT_SECRET) : null;
  return verified?.ok ? undefined : new Response("unauthorized", { status: 401 });
}

export default {
  async fetch(request: Request, env: PartyEnv): Promise<Response> {
    // No env: routePartykitRequest reads the bindings from `cloudflare:workers`.
    const answer = await routePartykitRequest(request, undefined, {
      onBeforeConnect: (req, lobby) => (String(lobby.className) === "RtRoomAuth" ? tokenCheck(req, env) : undefined),
    });
    return answer ?? new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<PartyEnv>;
