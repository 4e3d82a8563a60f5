import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";

// Baseline of `npm run bench:realtime`: the same broadcast on a plain Node
// `ws` server, in its own process (forked by bench/realtime.ts) so it never
// shares an event loop with the clients or the publisher.
//
// POST /publish with an event body (JSON) numbers it and sends every open
// socket the same frame the platform sends, answering `{ seq }` once every
// send is queued. The frame is encoded once and the same Buffer is handed to
// every socket (the idiomatic broadcast; a string would be re-encoded per
// socket). No auth, no log, no resume: the floor of what a broadcast costs.

const server = createServer((req, res) => {
  if (req.method !== "POST" || req.url?.split("?")[0] !== "/publish") {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const topic = new URL(req.url ?? "/", "http://x").searchParams.get("topic") ?? "channel:C";
    const seq = ++seqs;
    const frame = Buffer.from(
      `{"v":1,"type":"event","topic":${JSON.stringify(topic)},"seq":${seq},"event":${Buffer.concat(chunks).toString()}}`,
    );
    let sent = 0;
    for (const ws of wss.clients) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      ws.send(frame, { binary: false });
      sent++;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ seq, sent }));
  });
});

let seqs = 0;
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (ws) => ws.on("error", () => {}));

server.listen(0, "127.0.0.1", () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on("disconnect", () => process.exit(0));
