import type { SocketState } from "../../src/realtime/socket-state";

// What every part of a gateway shares: a socket with its state, and the two
// ways everything reaches a socket or waits its turn.

export interface Conn {
  ws: WebSocket;
  state: SocketState;
}

/** A socket's recorded seq meaning "at the topic's shared delivered seq" (positions.ts). */
export const IN_SYNC = -1;

/** Sends, ignoring a socket that is closing (its close event removes it). */
export function send(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // The socket is closing; its close event removes it.
  }
}

/** Runs `fn` after everything queued under `key`; the queue entry goes away when idle. */
export function enqueue<T>(queues: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => {});
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

/** A client frame's id, echoed on its answer. */
export function idOf(f: { id?: string | number }): { id?: string | number } {
  return f.id === undefined ? {} : { id: f.id };
}
