import { pathToFileURL } from "node:url";
import WebSocket from "ws";
import type { ClientTopic, TopicRequest } from "../client/realtime/frames";
import { TopicPositions } from "../client/realtime/topic-positions";
import { CLOSE_CODES, retryAfterOf } from "../src/realtime/protocol";

// The load-generating side of `npm run bench:realtime`: a child process
// (forked by bench/realtime.ts, which spreads the subscribers over a few of
// them so the clients do not share one event loop with the publisher) that
// holds many WebSocket clients, parses every frame the way a real client
// would, and reports per phase: event frames, end-to-end latency samples,
// sequence gaps and duplicates, and what reconnecting cost.
//
// Every server under test sends the same frame shape, the platform's
// `{"v":1,"type":"event","topic":…,"seq":N,"event":{…,"text":"<send time>",…}}`:
// latency is this process's clock minus the send time the publisher put in
// `text` (performance.timeOrigin + performance.now() on both sides: one
// machine, one clock). The platform may send several frames as one
// `{"type":"batch","frames":[…]}` message: each inner event frame counts as a
// delivery, with its own latency, as if it had come alone.
//
// Loss is counted by each client from the sequence numbers it receives
// (SeqLedger): every seq of the phase's range it never got is missing,
// whatever the server claims, and a seq at or below the last one it got is a
// duplicate. The publisher puts `<send time> <index>` in each message's text;
// each client folds the indexes it receives, in order, into a digest, so the
// bench can tell whether every client got exactly what was published (the
// same events, in seq order) on every system.

/**
 * One client's view of one topic's sequence: what a phase expected (every
 * seq from `from` to the last one published) against what arrived. Pure, so
 * a test can feed it a gap and a duplicate (test/node/realtime-bench-loss.test.ts).
 */
export class SeqLedger {
  /** The last seq accepted (-1: none yet); survives phases (a resume continues from it). */
  last = -1;
  /** The first seq the current phase expects (-1: unknown, then nothing is counted missing). */
  private from = -1;
  /** Accepted seqs at or after `from` in this phase. */
  private inRange = 0;
  /** Frames whose seq was at or below the last accepted one (received twice, or out of order). */
  dups = 0;
  /** Seqs skipped over by a later event (a gap, as seen when the next event came). */
  gaps = 0;
  /** Seqs a `reload` frame told the client it would not get. */
  reloaded = 0;

  /** A new phase: from now on every seq from `from` on must arrive once. */
  begin(from: number | null): void {
    this.from = from ?? -1;
    this.inRange = 0;
    this.dups = 0;
    this.gaps = 0;
    this.reloaded = 0;
  }

  /** An event frame; true when it continues the sequence (false: a duplicate, not a delivery). */
  event(seq: number): boolean {
    if (this.last >= 0 && seq <= this.last) {
      this.dups++;
      return false;
    }
    if (this.last >= 0 && seq > this.last + 1) this.gaps += seq - this.last - 1;
    this.last = seq;
    if (this.from >= 0 && seq >= this.from) this.inRange++;
    return true;
  }

  /** The server said: nothing up to `seq` is coming (platform `reload`); those seqs stay missing. */
  reload(seq: number): void {
    if (seq <= this.last) return;
    this.reloaded += seq - Math.max(this.last, this.from - 1);
    this.last = seq;
  }

  /** Where the client stands after a (re)subscribe answered `seq`, before any event (first subscription). */
  start(seq: number): void {
    if (this.last < 0) this.last = seq;
  }

  /** Seqs from `from` to `final` (the last one published in the phase) this client never received. */
  missing(final: number | null): number {
    if (this.from < 0 || final === null || final < this.from) return 0;
    return Math.max(0, final - this.from + 1 - this.inRange);
  }
}

/** FNV-1a over 32-bit words: the digest of the message indexes a client received, in order. */
export function foldDigest(digest: number, index: number): number {
  let h = digest;
  for (let i = 0; i < 4; i++) {
    h ^= (index >>> (i * 8)) & 0xff;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}
export const DIGEST_SEED = 2166136261;

/** "platform": connect with ?subscribe= (with @since after a reconnect) → hello, subscribed. "plain": ready when open. */
export type ClientKind = "platform" | "plain";

/**
 * Where one client connects. The platform's clients send their access token
 * in the Authorization header (`bearer`), as a non-browser client may: no
 * token in the URL, and a reconnect needs no new ticket (a browser would
 * POST /v1/rtm.connect for one before each connect).
 */
export interface Target {
  url: string;
  bearer?: string;
}

export type Command =
  | { cmd: "connect"; id: number; set: string; kind: ClientKind; targets: Target[]; topic: string; concurrency: number }
  | { cmd: "reset"; id: number; set: string; from: number | null }
  | { cmd: "collect"; id: number; set: string; final: number | null }
  | { cmd: "storm"; id: number; set: string; at: number; spreadMs: number }
  | { cmd: "stormStatus"; id: number; set: string }
  | { cmd: "seqStats"; id: number; set: string; seq: number }
  | { cmd: "close"; id: number; set: string }
  | { cmd: "exit"; id: number };

export interface ConnectReply {
  connected: number;
  failed: number;
  ms: number;
  attempts: number;
  firstError: string | null;
  /** Per connected client (ms): attempt → socket open (the upgrade), and open → ready (platform: `subscribed`). */
  openMs: number[];
  readyMs: number[];
}

export interface ReconnectStats {
  /** Connection attempts (the first try included). */
  attempts: number;
  /** Refused with close code 1013 (overloaded), 4029 (rate_limited), or an HTTP 429/503 before the upgrade. */
  overloaded: number;
  rateLimited: number;
  httpRefused: number;
  /** Attempts that failed otherwise (socket errors, other HTTP answers, other close codes). */
  errors: number;
  /** Of those, upgrades not answered within HANDSHAKE_TIMEOUT_MS. */
  timeouts: number;
  /** Sum of the retry_after_ms waits honoured. */
  retryWaitMs: number;
  firstError: string | null;
}

export interface PhaseStats {
  clients: number;
  /** Event frames received (replayed ones included). */
  frames: number;
  /** WebSocket messages that carried them (a batch may carry several). */
  messages: number;
  bytes: number;
  /** Events received twice or out of order (seq ≤ the last one seen), counted by each client (SeqLedger). */
  dups: number;
  /** Σ over clients of the phase's seqs (from the reset's `from` to the collect's `final`) never received. */
  missing: number;
  /** Seqs skipped over by a later event (a gap as it was noticed), and seqs given up by reload frames. */
  gapMissing: number;
  reloaded: number;
  reloads: number;
  /** Per client, in the set's order: the digest and count of the message indexes received (SeqLedger order). */
  digests: number[];
  counts: number[];
  errorFrames: number;
  /** Sockets the server closed (or that failed) while the client wanted them open. */
  unexpectedCloses: number;
  /** End-to-end latency of each event frame (ms). */
  samples: Float64Array;
  /** Clock of the last event frame received (0: none). */
  lastRecvAt: number;
  reconnect: ReconnectStats;
  /** Per client: the last seq seen (-1: none); min and max over the clients. */
  minLast: number;
  maxLast: number;
}

export interface StormStatus {
  clients: number;
  /** Clients that reconnected (and, on the platform, got `subscribed`) after the storm started. */
  resumed: number;
  /** Latest such moment (clock), 0 when none. */
  lastResumedAt: number;
  /** Clients that gave up. */
  failed: number;
}

export type Reply =
  | { type: "reply"; id: number; ok: true; value: unknown }
  | { type: "reply"; id: number; ok: false; error: string };

/** Unsolicited: every client of `set` in this process has received `seq`. */
export interface Complete {
  type: "complete";
  set: string;
  seq: number;
}

export const now = (): number => performance.timeOrigin + performance.now();

const RECONNECT_GIVE_UP_MS = 120_000;
/** An upgrade not answered in this long is abandoned and retried (what a real client does; a hung handshake would otherwise hang the bench). */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** A reconnecting client waits this long for its close handshake, then drops the socket. */
const CLOSE_WAIT_MS = 2_000;
/** Retries without a server-given delay: exponential from 250 ms to 10 s, jittered (×0.5–1.5). */
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

/** A growable Float64Array: hundreds of thousands of latency samples without boxing. */
class Samples {
  private buf = new Float64Array(1 << 14);
  private n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  take(): Float64Array {
    return this.buf.slice(0, this.n);
  }
}

class ClientSet {
  readonly clients: Client[] = [];
  frames = 0;
  messages = 0;
  bytes = 0;
  reloads = 0;
  errorFrames = 0;
  unexpectedCloses = 0;
  lastRecvAt = 0;
  samples = new Samples();
  reconnect: ReconnectStats = emptyReconnect();
  /** Per seq: clients that received it, and the latest receipt. Completed seqs are reported once. */
  seqs = new Map<number, { count: number; maxAt: number; reported: boolean }>();
  stormAt = 0;
  stormTimers: NodeJS.Timeout[] = [];
  /** Per client that became ready: attempt → open, open → ready (ms). */
  openMs: number[] = [];
  readyMs: number[] = [];

  constructor(
    readonly name: string,
    readonly kind: ClientKind,
    readonly topic: string,
  ) {}

  reset(from: number | null): void {
    for (const c of this.clients) {
      c.ledger.begin(from);
      c.digest = DIGEST_SEED;
      c.count = 0;
    }
    this.frames = 0;
    this.messages = 0;
    this.bytes = 0;
    this.reloads = 0;
    this.errorFrames = 0;
    this.unexpectedCloses = 0;
    this.lastRecvAt = 0;
    this.samples = new Samples();
    this.reconnect = emptyReconnect();
    this.seqs.clear();
    this.stormAt = 0;
  }

  received(seq: number, at: number): void {
    let entry = this.seqs.get(seq);
    if (!entry) {
      entry = { count: 0, maxAt: 0, reported: false };
      this.seqs.set(seq, entry);
    }
    entry.count++;
    if (at > entry.maxAt) entry.maxAt = at;
    if (!entry.reported && entry.count >= this.clients.length) {
      entry.reported = true;
      send({ type: "complete", set: this.name, seq } satisfies Complete);
    }
  }
}

function emptyReconnect(): ReconnectStats {
  return {
    attempts: 0,
    overloaded: 0,
    rateLimited: 0,
    httpRefused: 0,
    errors: 0,
    timeouts: 0,
    retryWaitMs: 0,
    firstError: null,
  };
}

/** The fields of a server frame this client looks at. */
interface FrameView {
  type?: unknown;
  seq?: unknown;
  event?: unknown;
  topics?: unknown;
  /** A batch's frames. */
  frames?: unknown;
}

class Client {
  ws: WebSocket | null = null;
  /** The topic's sequence as this client saw it: the last seq, gaps, duplicates, what is missing. */
  readonly ledger = new SeqLedger();
  /** The message indexes received this phase, folded in order (foldDigest), and how many. */
  digest = DIGEST_SEED;
  count = 0;
  ready = false;
  /** When the client last became ready (clock). */
  readyAt = 0;
  /** The client wants a socket: an unexpected close reconnects. */
  wanted = false;
  failed = false;
  private backoff = BACKOFF_MIN_MS;
  private lastError: string | null = null;
  /** When the current attempt started and its socket opened (clock; 0: not yet). */
  private attemptAt = 0;
  private openAt = 0;
  /** Set while a reconnect waits for its socket to close. */
  private dropping: NodeJS.Timeout | null = null;
  private onReady: (() => void) | null = null;
  /** Answers true when the client gives up (then the open() promise is rejected). */
  private onFail: ((error: string) => boolean) | null = null;

  constructor(
    readonly set: ClientSet,
    readonly target: Target,
  ) {}

  /** Opens a socket (retrying refusals and errors); resolves when it is ready. */
  open(): Promise<void> {
    this.wanted = true;
    this.failed = false;
    const started = now();
    return new Promise<void>((resolve, reject) => {
      this.onReady = resolve;
      this.onFail = (error) => {
        if (now() - started > RECONNECT_GIVE_UP_MS) {
          this.failed = true;
          this.wanted = false;
          reject(new Error(error));
          return true;
        }
        return false;
      };
      this.attempt();
    });
  }

  /**
   * Closes the socket and, once it is closed, opens a new one (resubscribing
   * with since): what reconnecting clients (partysocket, reconnecting-websocket)
   * do. Waiting for the close also keeps the server's file descriptors in
   * check: workerd holds about two per socket, and 5,000 old plus 5,000 new
   * sockets at once exceed a 20,000 limit. A close handshake slower than
   * CLOSE_WAIT_MS is cut short (the socket is dropped).
   */
  reconnect(): void {
    const ws = this.ws;
    this.backoff = BACKOFF_MIN_MS;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this.detach();
      this.reopen();
      return;
    }
    this.ready = false;
    this.dropping = setTimeout(() => {
      this.dropping = null;
      this.detach();
      this.reopen();
    }, CLOSE_WAIT_MS);
    try {
      ws.close(1000, "reconnect");
    } catch {
      // the close event follows
    }
  }

  private reopen(): void {
    this.open().catch(() => {
      // counted by stormStatus (failed)
    });
  }

  shutdown(): void {
    this.wanted = false;
    if (this.dropping) clearTimeout(this.dropping);
    this.dropping = null;
    this.detach();
  }

  /** Stops listening to the current socket (frames it still carries are not counted) and drops it. */
  private detach(): void {
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (!ws) return;
    ws.removeAllListeners();
    ws.on("error", () => {});
    ws.terminate();
  }

  private attempt(): void {
    const stats = this.set.reconnect;
    stats.attempts++;
    this.lastError = null;
    this.attemptAt = now();
    this.openAt = 0;
    const ws = new WebSocket(this.url(), {
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...(this.target.bearer ? { headers: { authorization: `Bearer ${this.target.bearer}` } } : {}),
    });
    this.ws = ws;
    ws.on("unexpected-response", (_req, res) => {
      // Refused before the upgrade: honour Retry-After / a JSON retry_after_ms when present.
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on("end", () => {
        if (this.ws !== ws) return;
        this.ws = null;
        ws.terminate();
        const status = res.statusCode ?? 0;
        const header = Number(res.headers["retry-after"]);
        const retry = retryAfterOf(body) ?? (Number.isFinite(header) ? header * 1000 : null);
        if (status === 429 || status === 503) {
          stats.httpRefused++;
          this.retry(retry, `HTTP ${status}`);
        } else {
          stats.errors++;
          stats.firstError ??= `HTTP ${status}: ${body.slice(0, 200)}`;
          this.retry(null, `HTTP ${status}`);
        }
      });
    });
    ws.on("open", () => {
      this.openAt = now();
      if (this.set.kind === "plain") this.becomeReady();
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.frame(data);
    });
    ws.on("close", (code: number, reason: Buffer) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.dropping) {
        // The close this client asked for (reconnect): open the next socket.
        clearTimeout(this.dropping);
        this.dropping = null;
        this.ready = false;
        this.reopen();
        return;
      }
      const wasReady = this.ready;
      this.ready = false;
      if (!this.wanted) return;
      const text = reason.toString();
      if (wasReady) this.set.unexpectedCloses++;
      if (code === CLOSE_CODES.overloaded) {
        stats.overloaded++;
        this.retry(retryAfterOf(text), `closed ${code} ${text}`);
      } else if (code === CLOSE_CODES.rate_limited) {
        stats.rateLimited++;
        this.retry(retryAfterOf(text), `closed ${code} ${text}`);
      } else {
        if (!wasReady) {
          stats.errors++;
          stats.firstError ??= this.lastError ?? `closed ${code} ${text}`;
        }
        this.retry(null, `closed ${code} ${text}`);
      }
    });
    ws.on("error", (error: Error) => {
      // ws always follows an error with a close event, which retries.
      if (this.ws !== ws) return;
      this.lastError = error.message;
      if (error.message.includes("Opening handshake has timed out")) stats.timeouts++;
    });
  }

  /** Waits retry_after_ms when the server said so, else a jittered exponential backoff; then tries again. */
  private retry(retryAfterMs: number | null, why: string): void {
    if (!this.wanted) return;
    if (this.onFail?.(why)) return;
    let wait: number;
    if (retryAfterMs !== null) {
      this.set.reconnect.retryWaitMs += retryAfterMs;
      wait = retryAfterMs;
    } else {
      wait = this.backoff * (0.5 + Math.random());
      this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
    }
    setTimeout(() => {
      if (this.wanted && this.ws === null) this.attempt();
    }, wait);
  }

  private becomeReady(): void {
    this.ready = true;
    this.readyAt = now();
    if (this.openAt > 0) {
      this.set.openMs.push(this.openAt - this.attemptAt);
      this.set.readyMs.push(this.readyAt - this.openAt);
    }
    this.backoff = BACKOFF_MIN_MS;
    const done = this.onReady;
    this.onReady = null;
    this.onFail = null;
    done?.();
  }

  /**
   * The platform's clients subscribe in the handshake (`?subscribe=topic`,
   * `topic@since` after a reconnect): no subscribe frame, no round trip, as
   * partyserver's clients follow their room by connecting to it.
   */
  private url(): string {
    if (this.set.kind !== "platform") return this.target.url;
    const param = TopicPositions.handshakeParam([this.request()]);
    return `${this.target.url}${this.target.url.includes("?") ? "&" : "?"}subscribe=${encodeURIComponent(param)}`;
  }

  /** A subscribe frame: only to ask again after a refused one (the handshake's comes with hello). */
  private subscribe(): void {
    this.ws?.send(JSON.stringify({ v: 1, type: "subscribe", topics: [this.request()] }));
  }

  /**
   * This client's topic as the protocol asks for it: with `since` after a
   * reconnect (the ledger's last seq), the same request the real-time client
   * (client/realtime) builds. The bench keeps its own socket loop rather than
   * RealtimeClient: a ticket per connect and jittered waits would change what
   * connect and the storm measure.
   */
  private request(): TopicRequest {
    const last = this.ledger.last;
    const topic = this.set.topic as ClientTopic;
    return last >= 0 ? { topic, since: last } : { topic };
  }

  private frame(data: Buffer): void {
    const at = now();
    let f: FrameView;
    try {
      f = JSON.parse(data.toString()) as FrameView;
    } catch {
      this.set.errorFrames++;
      return;
    }
    if (f.type !== "batch") {
      if (f.type === "event") this.set.messages++;
      this.handle(f, at, data.length);
      return;
    }
    const frames = Array.isArray(f.frames) ? (f.frames as FrameView[]) : [];
    if (frames.some((x) => x.type === "event")) this.set.messages++;
    // The message's bytes are spread over its frames: bytes per delivery on the wire.
    const bytes = frames.length === 0 ? 0 : data.length / frames.length;
    for (const inner of frames) this.handle(inner, at, bytes);
  }

  private handle(f: FrameView, at: number, bytes: number): void {
    const set = this.set;
    switch (f.type) {
      case "event": {
        const seq = typeof f.seq === "number" ? f.seq : -1;
        const event = f.event as { text?: unknown } | undefined;
        const text = typeof event?.text === "string" ? event.text : "";
        const space = text.indexOf(" ");
        // Every event frame goes into the digest, duplicates too: a client that got one twice did not get what was published.
        this.digest = foldDigest(this.digest, space < 0 ? -1 : Number(text.slice(space + 1)));
        this.count++;
        if (!this.ledger.event(seq)) return;
        set.frames++;
        set.bytes += bytes;
        set.lastRecvAt = at;
        const sent = Number(space < 0 ? text : text.slice(0, space));
        if (Number.isFinite(sent)) set.samples.push(at - sent);
        set.received(seq, at);
        return;
      }
      case "hello":
        return;
      case "subscribed": {
        const topics = Array.isArray(f.topics) ? (f.topics as Array<{ seq?: unknown }>) : [];
        const seq = topics[0]?.seq;
        // A first subscription starts at the topic's current seq; a resumed one
        // continues from `since` (the replay follows this frame).
        if (typeof seq === "number") this.ledger.start(seq);
        this.becomeReady();
        return;
      }
      case "reload": {
        set.reloads++;
        if (typeof f.seq === "number") this.ledger.reload(f.seq);
        return;
      }
      case "error":
        set.errorFrames++;
        // A refused subscribe (e.g. "unavailable" under load): ask again shortly.
        if (!this.ready) setTimeout(() => this.subscribe(), 200 + Math.random() * 300);
        return;
      default:
        return;
    }
  }
}

const sets = new Map<string, ClientSet>();

function send(message: Reply | Complete): void {
  process.send?.(message);
}

function setOf(name: string): ClientSet {
  const set = sets.get(name);
  if (!set) throw new Error(`unknown client set ${name}`);
  return set;
}

async function connect(c: Extract<Command, { cmd: "connect" }>): Promise<ConnectReply> {
  const set = new ClientSet(c.set, c.kind, c.topic);
  sets.set(c.set, set);
  for (const target of c.targets) set.clients.push(new Client(set, target));
  const t0 = now();
  let next = 0;
  let failed = 0;
  let firstError: string | null = null;
  // A bounded number of handshakes in flight: thousands at once only measure the accept queue.
  await Promise.all(
    Array.from({ length: Math.min(c.concurrency, set.clients.length) }, async () => {
      while (next < set.clients.length) {
        const client = set.clients[next++] as Client;
        try {
          await client.open();
        } catch (error) {
          failed++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }),
  );
  const attempts = set.reconnect.attempts;
  firstError ??= set.reconnect.firstError;
  return {
    connected: set.clients.length - failed,
    failed,
    ms: now() - t0,
    attempts,
    firstError,
    openMs: set.openMs,
    readyMs: set.readyMs,
  };
}

function collect(set: ClientSet, final: number | null): PhaseStats {
  let minLast = Number.POSITIVE_INFINITY;
  let maxLast = -1;
  let dups = 0;
  let missing = 0;
  let gapMissing = 0;
  let reloaded = 0;
  for (const c of set.clients) {
    minLast = Math.min(minLast, c.ledger.last);
    maxLast = Math.max(maxLast, c.ledger.last);
    dups += c.ledger.dups;
    missing += c.ledger.missing(final);
    gapMissing += c.ledger.gaps + c.ledger.reloaded;
    reloaded += c.ledger.reloaded;
  }
  return {
    clients: set.clients.length,
    frames: set.frames,
    messages: set.messages,
    bytes: set.bytes,
    dups,
    missing,
    gapMissing,
    reloaded,
    reloads: set.reloads,
    digests: set.clients.map((c) => c.digest),
    counts: set.clients.map((c) => c.count),
    errorFrames: set.errorFrames,
    unexpectedCloses: set.unexpectedCloses,
    samples: set.samples.take(),
    lastRecvAt: set.lastRecvAt,
    reconnect: { ...set.reconnect },
    minLast: set.clients.length === 0 ? -1 : minLast,
    maxLast,
  };
}

/** Every client drops its socket at a random moment in [at, at + spreadMs) and reconnects. */
function storm(set: ClientSet, at: number, spreadMs: number): void {
  set.stormAt = at;
  for (const client of set.clients) {
    const delay = Math.max(0, at + Math.random() * spreadMs - now());
    set.stormTimers.push(setTimeout(() => client.reconnect(), delay));
  }
}

function stormStatus(set: ClientSet): StormStatus {
  let resumed = 0;
  let failed = 0;
  let lastResumedAt = 0;
  for (const c of set.clients) {
    if (c.failed) failed++;
    else if (c.ready && c.readyAt > set.stormAt) {
      resumed++;
      lastResumedAt = Math.max(lastResumedAt, c.readyAt);
    }
  }
  return { clients: set.clients.length, resumed, lastResumedAt, failed };
}

async function handle(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case "connect":
      return connect(c);
    case "reset":
      setOf(c.set).reset(c.from);
      return null;
    case "collect":
      return collect(setOf(c.set), c.final);
    case "storm":
      storm(setOf(c.set), c.at, c.spreadMs);
      return null;
    case "stormStatus":
      return stormStatus(setOf(c.set));
    case "seqStats": {
      const entry = setOf(c.set).seqs.get(c.seq);
      return { count: entry?.count ?? 0, maxAt: entry?.maxAt ?? 0 };
    }
    case "close": {
      const set = setOf(c.set);
      for (const t of set.stormTimers) clearTimeout(t);
      for (const client of set.clients) client.shutdown();
      sets.delete(c.set);
      return null;
    }
    case "exit":
      setImmediate(() => process.exit(0));
      return null;
  }
}

// Only as the forked client process: a test importing SeqLedger must not take over its own process's IPC.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.on("message", (message: Command) => {
    handle(message).then(
      (value) => send({ type: "reply", id: message.id, ok: true, value }),
      (error: unknown) =>
        send({
          type: "reply",
          id: message.id,
          ok: false,
          error: error instanceof Error ? error.message : String(error),
        }),
    );
  });
  process.on("disconnect", () => process.exit(0));
}
