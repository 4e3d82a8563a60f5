import { routePartykitRequest, Server } from "partyserver";

// Baseline Worker of `npm run bench:realtime` (bench/wrangler.realtime-party.toml,
// never deployed): the same broadcast on `partyserver`, one room per
// subscriber count. Clients connect to /parties/<party>/<room>; a POST to the
// same path is one message, numbered and broadcast to every connection of
// the room with the platform's frame shape, answered `{ seq }` once every send
// is queued.
//
// Two parties, the same code: `rt-room` with partyserver's default in-memory
// connections, and `rt-room-hib` with hibernation (the platform's gateways
// hibernate), so the comparison is both against the fastest broadcast and
// the like-for-like one.
//
// The seq survives an eviction in the room's SQLite (a hibernating room may
// be evicted between phases; a restarted count would look like duplicates).

export class RtRoom extends Server {
  static override options = { hibernate: false };
  private seq: number | null = null;

  override async onRequest(request: Request): Promise<Response> {
    if (request.method !== "POST") return new Response("POST a message", { status: 405 });
    const body = await request.text();
    const topic = new URL(request.url).searchParams.get("topic") ?? "channel:C";
    const seq = this.nextSeq();
    this.broadcast(`{"v":1,"type":"event","topic":${JSON.stringify(topic)},"seq":${seq},"event":${body}}`);
    return Response.json({ seq });
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

export default {
  // routePartykitRequest reads the bindings from `cloudflare:workers` env when not given one.
  async fetch(request: Request): Promise<Response> {
    return (await routePartykitRequest(request)) ?? new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler;
