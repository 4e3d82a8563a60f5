import { PING_TEXT, PONG_TEXT } from "../../src/realtime/protocol";

// How a gateway shard holds its sockets (GATEWAY_HIBERNATE):
// - "true" (the default): hibernatable sockets (ctx.acceptWebSocket). An
//   idle shard leaves memory and bills no duration; the runtime answers
//   pings; every socket's state lives in its attachment (sockets.ts).
// - "false": sockets accepted in memory (ws.accept()) with event listeners,
//   as a non-hibernating partyserver room holds them. The shard stays in
//   memory, billed for duration, while any socket is open. It is here so the
//   connect benchmark compares like with like (this mode against the
//   in-memory room); on connect it measured no gain (bench:realtime,
//   2026-12-07: 0.67x of the in-memory room at 1,000 sockets, where the
//   hibernating platform is 0.77x of the hibernating room). Attachments
//   are still written, so the same index code serves both.

/** What a gateway does with a socket's events, whichever way it holds it. */
export interface SocketHandlers {
  message(ws: WebSocket, message: string | ArrayBuffer): Promise<void>;
  close(ws: WebSocket, code: number, reason: string): Promise<void>;
  error(ws: WebSocket): Promise<void>;
}

export interface SocketMode {
  readonly hibernates: boolean;
  /** Takes the server side of a new socket. */
  accept(server: WebSocket): void;
  /** Every open socket this mode holds. */
  sockets(): WebSocket[];
}

/** GATEWAY_HIBERNATE: "false" (or "0") holds sockets in memory; unset or anything else hibernates. */
export function hibernatesOf(value: string | undefined): boolean {
  const v = value?.trim().toLowerCase();
  return !(v === "false" || v === "0");
}

/** Hibernatable sockets: the runtime holds them and calls the object's webSocket* methods. */
export function hibernatingSockets(ctx: DurableObjectState): SocketMode {
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
  return {
    hibernates: true,
    accept: (server) => ctx.acceptWebSocket(server),
    sockets: () => ctx.getWebSockets(),
  };
}

/** Sockets held in memory, their events routed to the same handlers; pings answered here as the runtime would. */
export function inMemorySockets(handlers: SocketHandlers, background: (work: Promise<unknown>) => void): SocketMode {
  const open = new Set<WebSocket>();
  const settle = (work: Promise<void>) =>
    background(work.catch((error: unknown) => console.error("gateway: socket event failed", error)));
  return {
    hibernates: false,
    accept(server) {
      server.accept();
      open.add(server);
      server.addEventListener("message", (event) => {
        if (event.data === PING_TEXT) {
          try {
            server.send(PONG_TEXT);
          } catch {
            // closing
          }
          return;
        }
        settle(handlers.message(server, event.data));
      });
      server.addEventListener("close", (event) => {
        open.delete(server);
        settle(handlers.close(server, event.code, event.reason));
      });
      server.addEventListener("error", () => {
        open.delete(server);
        settle(handlers.error(server));
      });
    },
    sockets: () => [...open],
  };
}
