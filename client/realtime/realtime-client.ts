import ReconnectingWebSocket from "partysocket/ws";
import { CLOSE_CODES, PING_TEXT, retryAfterOf } from "../../src/realtime/protocol";
import { Backoff, type BackoffOptions } from "./backoff";
import type {
  ClientFrame,
  ClientTopic,
  ErrorFrame,
  EventFrame,
  HelloFrame,
  PresenceFrame,
  ReloadFrame,
  SingleFrame,
  SubscribedFrame,
  UnsubscribedFrame,
  UserFrame,
} from "./frames";
import { framesOf } from "./frames";
import { TOPICS_PER_FRAME, TopicPositions } from "./topic-positions";

// A client of GET /v1/rtm (docs/realtime.md) for browsers and Node (≥ 22, or
// any runtime with WebSocket and fetch): partysocket keeps one socket up;
// this class decides how each (re)connect is made and what it resumes.
//
// - Every connect trades the access token for a fresh single-use ticket
//   (POST /v1/rtm.connect): a ticket opens one socket within 30 s, so one
//   fetched earlier cannot be reused for a reconnect.
// - The topics go in the handshake (`?subscribe=team,channel:C1@42`), each
//   with the last seq seen, so a reconnect is a resume with no round trip:
//   the server sends the missed events before live ones, or `reload` when
//   they are older than its log.
// - Reconnects wait a jittered, growing delay (backoff.ts), or exactly the
//   `retry_after_ms` of an overloaded / rate-limited close; 4003
//   (deactivated) and 4008 (too many sockets) are final.

export type ConnectionState = "connecting" | "open" | "closed";

export interface ConnectionStatus {
  state: ConnectionState;
  /** Failed tries since the socket was last open. */
  attempts: number;
  /** Why the last try or socket failed, when one did. */
  lastError?: string;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** False when the client stopped for good (close(), a final close code, a refused ticket). */
  reconnecting: boolean;
  /** The server's requested wait before the next try (1013, 4029), if any. */
  retryAfterMs: number | null;
}

/** What `on()` can listen to: protocol frames by their type (events already deduplicated), and the connection's life. */
export interface RealtimeEventMap {
  status: ConnectionStatus;
  hello: HelloFrame;
  /** A topic's next event, in seq order, never twice. */
  event: EventFrame;
  /** Events before `seq` cannot be replayed: refetch the topic's state; events go on after `seq`. */
  reload: ReloadFrame;
  subscribed: SubscribedFrame;
  unsubscribed: UnsubscribedFrame;
  presence: PresenceFrame;
  /** A just-in-time profile, before the first event naming that user. */
  user: UserFrame;
  /** An `error` frame (a refused topic carries `topic`); the socket stays open. */
  error: ErrorFrame;
  close: CloseInfo;
}

export type AccessToken = string | (() => string | Promise<string>);

export interface RealtimeClientOptions {
  /** The platform's origin, e.g. `location.origin` or "https://edge.example". */
  baseUrl: string;
  /** The bearer access token, or a function asked for a current one before every (re)connect. */
  token: AccessToken;
  /** Topics to subscribe from the first connect on. */
  topics?: ClientTopic[];
  /** Positions to resume from (a snapshot of `positions()` kept by the application). */
  positions?: Partial<Record<ClientTopic, number>>;
  /** Users whose presence to follow from the first connect on. */
  presence?: string[];
  backoff?: BackoffOptions;
  /** A heartbeat every this many ms (default 30 s); with no message for two of them the socket is replaced. 0: none. */
  heartbeatMs?: number;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Defaults to the global WebSocket. */
  WebSocket?: typeof WebSocket;
  /** Do not connect until connect() is called. */
  startClosed?: boolean;
}

/** Close codes after which a new socket would be refused the same way. */
const FINAL_CLOSES: ReadonlySet<number> = new Set([CLOSE_CODES.deactivated, CLOSE_CODES.too_many_sockets]);

type Listener<K extends keyof RealtimeEventMap> = (value: RealtimeEventMap[K]) => void;

export class RealtimeClient {
  private readonly socket: ReconnectingWebSocket;
  private readonly topics = new Set<ClientTopic>();
  private readonly tracked: TopicPositions;
  private readonly backoff: Backoff;
  private readonly fetchFn: typeof fetch;
  private readonly listeners = new Map<keyof RealtimeEventMap, Set<(value: never) => void>>();
  private followed: string[];
  private state: ConnectionStatus = { state: "connecting", attempts: 0 };
  private tries = 0;
  private retryAfterMs: number | null = null;
  private stopped = false;
  private helloSeen = false;
  private lastMessageAt = 0;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private nextId = 1;
  /** Events the server sent twice (never, by its guarantee) that this client dropped. */
  duplicatesDropped = 0;

  constructor(private readonly options: RealtimeClientOptions) {
    this.tracked = new TopicPositions(options.positions);
    this.backoff = new Backoff(options.backoff);
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    for (const t of options.topics ?? []) this.topics.add(t);
    this.followed = [...(options.presence ?? [])];
    this.socket = new ReconnectingWebSocket(() => this.nextUrl(), undefined, {
      ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
      // The waits are ours (nextUrl): partysocket's own delay is not jittered.
      minReconnectionDelay: 0,
      maxReconnectionDelay: 0,
      maxRetries: Number.POSITIVE_INFINITY,
      connectionTimeout: 10_000,
      // Frames sent while down are not replayed: a reconnect resubscribes from the handshake.
      maxEnqueuedMessages: 0,
      startClosed: options.startClosed === true,
      shouldReconnectOnClose: (e) => !this.stopped && !FINAL_CLOSES.has(e.code),
    });
    this.socket.addEventListener("message", (e) => this.onMessage(e.data));
    this.socket.addEventListener("close", (e) => this.onClose(e.code, e.reason));
    this.startHeartbeat(options.heartbeatMs ?? 30_000);
  }

  /** Listens to one kind of event; returns the function that stops listening. */
  on<K extends keyof RealtimeEventMap>(type: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  get status(): ConnectionStatus {
    return this.state;
  }

  /** The last seq seen per topic: persist it to resume across page loads (`positions` option). */
  positions(): Partial<Record<ClientTopic, number>> {
    return this.tracked.snapshot();
  }

  /** Subscribes (now if open, and on every reconnect), resuming each topic from its last seen seq. */
  subscribe(...topics: ClientTopic[]): void {
    const added = topics.filter((t) => !this.topics.has(t));
    for (const t of added) this.topics.add(t);
    if (added.length > 0 && this.isOpen()) this.sendSubscribes(added);
  }

  unsubscribe(...topics: ClientTopic[]): void {
    const removed = topics.filter((t) => this.topics.delete(t));
    for (const t of removed) this.tracked.forget(t);
    if (removed.length > 0 && this.isOpen()) {
      this.send({ v: 1, type: "unsubscribe", id: this.id(), topics: removed.map((topic) => ({ topic })) });
    }
  }

  /** Follows these users' presence (replacing the list; [] stops); answered by a `presence` snapshot. */
  presence(users: string[]): void {
    this.followed = [...users];
    if (this.isOpen()) this.send({ v: 1, type: "presence_sub", id: this.id(), users: this.followed });
  }

  /** Opens the socket (after `startClosed`, or a close()). */
  connect(): void {
    this.stopped = false;
    this.socket.reconnect();
  }

  /** Drops the socket and reconnects (after the jittered wait), resuming every topic. */
  reconnect(): void {
    this.socket.reconnect(4000, "client reconnect");
  }

  /** Closes for good. */
  close(): void {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.socket.close(1000, "client closed");
    this.setStatus({ state: "closed", attempts: this.backoff.attempts });
  }

  private isOpen(): boolean {
    return this.helloSeen && this.socket.readyState === this.socket.OPEN;
  }

  private id(): string {
    return `c${this.nextId++}`;
  }

  private send(frame: ClientFrame): void {
    this.socket.send(JSON.stringify(frame));
  }

  private sendSubscribes(topics: readonly ClientTopic[]): void {
    const requests = this.tracked.requests(topics);
    for (let i = 0; i < requests.length; i += TOPICS_PER_FRAME) {
      this.send({ v: 1, type: "subscribe", id: this.id(), topics: requests.slice(i, i + TOPICS_PER_FRAME) });
    }
  }

  /** partysocket asks this before every try: wait (unless first), fetch a fresh ticket, build the URL. */
  private async nextUrl(): Promise<string> {
    if (this.tries++ > 0) {
      const wait = this.retryAfterMs ?? this.backoff.next();
      this.retryAfterMs = null;
      this.setStatus({ ...this.state, state: "connecting", attempts: this.backoff.attempts });
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    if (this.stopped) throw new Error("closed");
    const base = this.options.baseUrl;
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    let res: Response;
    try {
      res = await this.fetchFn(new URL("/v1/rtm.connect", base).toString(), {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
    } catch (error) {
      throw this.failed(`rtm.connect: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (res.status === 401 || res.status === 403) {
      // The token is bad or the user may not connect: retrying cannot help.
      const reason = `rtm.connect refused: ${res.status} ${(await res.text()).slice(0, 200)}`;
      this.stopped = true;
      this.socket.close(1000, "ticket refused");
      this.emit("close", {
        code: res.status === 401 ? CLOSE_CODES.token_expired : CLOSE_CODES.deactivated,
        reason,
        reconnecting: false,
        retryAfterMs: null,
      });
      this.setStatus({ state: "closed", attempts: this.backoff.attempts, lastError: reason });
      throw new Error(reason);
    }
    if (!res.ok) {
      const retryAfter = Number(res.headers.get("retry-after"));
      if (Number.isFinite(retryAfter) && retryAfter > 0) this.retryAfterMs = retryAfter * 1000;
      throw this.failed(`rtm.connect: ${res.status}`);
    }
    const body = (await res.json()) as { url: string };
    const url = new URL(body.url, base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // The first TOPICS_PER_FRAME topics ride the handshake; hello sends the rest.
    const requests = this.tracked.requests([...this.topics].slice(0, TOPICS_PER_FRAME));
    if (requests.length > 0) url.searchParams.set("subscribe", TopicPositions.handshakeParam(requests));
    this.helloSeen = false;
    return url.toString();
  }

  private failed(message: string): Error {
    this.setStatus({ state: "connecting", attempts: this.backoff.attempts, lastError: message });
    return new Error(message);
  }

  private onMessage(data: unknown): void {
    this.lastMessageAt = Date.now();
    if (typeof data !== "string") return;
    for (const frame of framesOf(data)) this.onFrame(frame);
  }

  private onFrame(frame: SingleFrame): void {
    switch (frame.type) {
      case "hello":
        this.helloSeen = true;
        this.backoff.reset();
        this.setStatus({ state: "open", attempts: 0 });
        this.emit("hello", frame);
        if (this.topics.size > TOPICS_PER_FRAME) this.sendSubscribes([...this.topics].slice(TOPICS_PER_FRAME));
        if (this.followed.length > 0) this.send({ v: 1, type: "presence_sub", id: this.id(), users: this.followed });
        return;
      case "subscribed":
        for (const { topic, seq } of frame.topics) this.tracked.subscribed(topic, seq);
        this.emit("subscribed", frame);
        return;
      case "event":
        if (this.tracked.accept(frame.topic, frame.seq)) this.emit("event", frame);
        else this.duplicatesDropped++;
        return;
      case "reload":
        this.tracked.reload(frame.topic, frame.seq);
        this.emit("reload", frame);
        return;
      case "unsubscribed":
        // Asked for, or access revoked: either way not resubscribed on reconnect.
        for (const t of frame.topics) {
          this.topics.delete(t);
          this.tracked.forget(t);
        }
        this.emit("unsubscribed", frame);
        return;
      case "error":
        if (
          frame.topic &&
          (frame.code === "not_found" || frame.code === "forbidden" || frame.code === "too_many_topics")
        ) {
          // Refused: asking again on every reconnect would be refused again.
          this.topics.delete(frame.topic);
          this.tracked.forget(frame.topic);
        }
        this.emit("error", frame);
        return;
      case "presence":
        this.emit("presence", frame);
        return;
      case "user":
        this.emit("user", frame);
        return;
      case "pong":
        return;
    }
  }

  private onClose(code: number, reason: string): void {
    this.helloSeen = false;
    const retryAfterMs =
      code === CLOSE_CODES.overloaded || code === CLOSE_CODES.rate_limited ? retryAfterOf(reason) : null;
    if (retryAfterMs !== null) this.retryAfterMs = retryAfterMs;
    const reconnecting = !this.stopped && !FINAL_CLOSES.has(code);
    this.emit("close", { code, reason, reconnecting, retryAfterMs });
    if (!reconnecting) this.stopped = true;
    this.setStatus({
      state: reconnecting ? "connecting" : "closed",
      attempts: this.backoff.attempts,
      lastError: `closed ${code}${reason ? ` ${reason}` : ""}`,
    });
  }

  private startHeartbeat(everyMs: number): void {
    if (everyMs <= 0) return;
    this.heartbeat = setInterval(() => {
      if (!this.isOpen()) return;
      // Answered by the gateway's runtime without waking it (PING_TEXT exactly).
      if (Date.now() - this.lastMessageAt > 2 * everyMs) this.reconnect();
      else this.socket.send(PING_TEXT);
    }, everyMs);
    // Node: a heartbeat alone must not keep the process alive.
    (this.heartbeat as { unref?: () => void }).unref?.();
  }

  private setStatus(status: ConnectionStatus): void {
    this.state = status;
    this.emit("status", status);
  }

  private emit<K extends keyof RealtimeEventMap>(type: K, value: RealtimeEventMap[K]): void {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        (listener as Listener<K>)(value);
      } catch (error) {
        // One application handler's bug must not stop delivery to the others.
        console.error(`realtime ${type} listener failed`, error);
      }
    }
  }
}
