import { DurableObject } from "cloudflare:workers";
import { gatewayNamed } from "../../platform/stubs";
import type { PublishOptions, PublishResult } from "../../src/realtime/ports";
import type { ReloadReason } from "../../src/realtime/protocol";
import { PublishLimits, publishRatesOf } from "../../src/realtime/rate-limit";
import { resumePlan, type TopicEvent } from "../../src/realtime/sequence";
import { MetaCache } from "../meta-cache";
import { GatewayRegistry } from "./registry";

/** A gateway shard's stub (typed by the binding: no import of the gateway from here). */
type GatewayStub = ReturnType<typeof gatewayNamed>;

// One Durable Object per topic (`ch:<team>:<channel>`, `team:<team>`). In its
// SQLite: the topic's sequence number (monotonic, survives eviction), a short
// log of the last events (for resume), and the gateway shards that have
// subscribers, each with the last sequence number it acknowledged.
//
// Publishing numbers the event and logs it in one synchronous step, then a
// delivery round sends every gateway that is behind the events it lacks, in
// one RPC per gateway shard (never one per member). Rounds run one at a time,
// so a gateway receives a topic's events in order; events published while a
// round is in flight (or before its first turn) go out together in the next
// one. A gateway that fails stays behind and is retried (by the next round,
// or an alarm); one that answers that it has no subscribers left is dropped.
// Gateways' acknowledgements are written behind the rounds (registry.ts), so
// the only write on an event's way out is the event itself.
//
// A topic can also keep state: an event published with a state key becomes
// that key's current value (presence per user), handed out as a snapshot to
// a gateway subscribing, at exactly the seq its live events start after.
// Clients' publishes (messages) are rate limited twice: per poster in the
// topic (TOPIC_PUBLISH_PER_USER_PER_SECOND), so one user cannot use up a
// channel's rate and silence everyone else in it, and per topic
// (TOPIC_PUBLISH_PER_SECOND), so a crowd cannot flood every follower. A
// publish refused by either takes nothing from the other. System events are
// never limited.

/** Events kept for resume, unless the TOPIC_LOG_SIZE var or configure() says otherwise. */
export const DEFAULT_LOG_SIZE = 1000;
/** Events per delivery RPC and per page of eventsSince. */
export const PAGE = 500;
const DELIVERY_TIMEOUT_MS = 10_000;
/** A round starting within this long of the last one's end is on a busy topic: it gathers first (round()). */
const GATHER_AFTER_MS = 50;
/**
 * How long a busy topic's round gathers before taking its events. Publishes
 * that a client sends together reach the topic a few milliseconds apart
 * (each passes the Worker's live-role round and channel check on its own),
 * so a bare yield took the first alone and the rest in the next round.
 */
const GATHER_MS = 4;
const RETRY_MS = 1_000;
/** Client publishes per second per topic (TOPIC_PUBLISH_PER_SECOND); bursts of twice that. */
export const DEFAULT_PUBLISH_PER_SECOND = 100;
/**
 * Client publishes per second per poster per topic
 * (TOPIC_PUBLISH_PER_USER_PER_SECOND); bursts of twice that. Well under the
 * topic's rate, so no single poster can exhaust it.
 */
export const DEFAULT_PUBLISH_PER_USER_PER_SECOND = 10;

/** Events after a point, a page at a time; `reload` when they are no longer (or never were) in the log. */
export interface Catchup {
  seq: number;
  oldest: number;
  events: TopicEvent[];
  reload?: ReloadReason;
}

export interface TopicStats {
  topic: string | null;
  seq: number;
  oldest: number;
  logSize: number;
  logged: number;
  gateways: Array<{ name: string; acked: number }>;
  /** Keys holding state (presence: users seen). */
  stateKeys: number;
  /** Delivery RPCs and rounds made by this instance (since it last started). */
  deliveries: number;
  rounds: number;
}

export class Topic extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The tail of the round queue, and the round waiting to start (publishes join it). */
  private tail: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;
  private deliveries = 0;
  private rounds = 0;
  private readonly limits = new PublishLimits(() =>
    publishRatesOf(this.env, {
      perSecond: DEFAULT_PUBLISH_PER_SECOND,
      perPosterPerSecond: DEFAULT_PUBLISH_PER_USER_PER_SECOND,
    }),
  );
  /** Meta values, read through memory (meta-cache.ts). */
  private readonly meta: MetaCache;
  private readonly stubs = new Map<string, GatewayStub>();
  private readonly registry: GatewayRegistry;
  /** When the last round ended (0: none yet). */
  private lastRound = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.meta = new MetaCache(this.sql);
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS gateways (
        name TEXT PRIMARY KEY, acked INTEGER NOT NULL, version INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, json TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS sources (name TEXT PRIMARY KEY, upto INTEGER NOT NULL) WITHOUT ROWID;
    `);
    this.registry = new GatewayRegistry(this.sql, (work) => ctx.waitUntil(work));
  }

  /** Numbers and logs the event, then waits for the delivery round that carries it. */
  async publish(topic: string, eventJson: string, options: PublishOptions = {}): Promise<PublishResult> {
    this.name(topic);
    if (options.poster !== undefined) {
      const refused = this.limits.admit(options.poster, Date.now());
      if (refused) return { ok: false, ...refused };
    }
    const seq = this.seq() + 1;
    this.sql.exec("INSERT INTO events (seq, json) VALUES (?, ?)", seq, eventJson);
    if (options.stateKey !== undefined) {
      this.sql.exec("INSERT OR REPLACE INTO state (key, json) VALUES (?, ?)", options.stateKey, eventJson);
    }
    this.meta.set("seq", String(seq));
    this.sql.exec("DELETE FROM events WHERE seq <= ?", seq - this.logSize());
    await this.round();
    return { ok: true, seq };
  }

  /**
   * System events (presence) published together: numbered and logged in
   * order in one step, then carried by one delivery round, as the same
   * publishes one by one would be (a gateway's many arrivals at once cost
   * the topic one call and one write, not one each). Never rate limited.
   */
  async publishMany(topic: string, events: Array<{ json: string; stateKey?: string }>): Promise<{ seqs: number[] }> {
    this.name(topic);
    if (events.length === 0) return { seqs: [] };
    const first = this.seq() + 1;
    const seqs = events.map((_, i) => first + i);
    const seq = first + events.length - 1;
    // Two statements for the whole list (json_each), not two per event: a
    // team connecting at once sends hundreds of presence changes per call.
    this.sql.exec(
      "INSERT INTO events (seq, json) SELECT ? + key, value FROM json_each(?)",
      first,
      JSON.stringify(events.map((e) => e.json)),
    );
    const states = events.flatMap((e) => (e.stateKey === undefined ? [] : [[e.stateKey, e.json]]));
    if (states.length > 0) {
      // In list order, so a key changed twice keeps its last value.
      this.sql.exec(
        "INSERT OR REPLACE INTO state (key, json) SELECT value->>0, value->>1 FROM json_each(?) ORDER BY key",
        JSON.stringify(states),
      );
    }
    this.meta.set("seq", String(seq));
    this.sql.exec("DELETE FROM events WHERE seq <= ?", seq - this.logSize());
    await this.round();
    return { seqs };
  }

  /**
   * Events from a store's outbox (a Conversation's), numbered and logged in
   * order in one step, then carried by one delivery round. Each entry has
   * the outbox's own number; entries at or below the last one taken from
   * `source` are skipped, so an outbox delivering again after a lost answer
   * publishes nothing twice. An entry with `redacts` first blanks the text
   * of that message's logged events (a deletion: the text must not outlive
   * it in the resume log). Never rate limited: the store admitted the change.
   */
  async publishFrom(
    topic: string,
    source: string,
    entries: Array<{ n: number; json: string; redacts?: string }>,
  ): Promise<{ upto: number; seqs: Array<{ n: number; seq: number }> }> {
    this.name(topic);
    let upto = Number(
      this.sql.exec<{ upto: number }>("SELECT upto FROM sources WHERE name = ?", source).toArray()[0]?.upto ?? 0,
    );
    const fresh = entries.filter((e) => e.n > upto).sort((a, b) => a.n - b.n);
    if (fresh.length === 0) return { upto, seqs: [] };
    let seq = this.seq();
    const seqs: Array<{ n: number; seq: number }> = [];
    for (const e of fresh) {
      if (e.redacts !== undefined) this.redactLogged(e.redacts);
      seq++;
      this.sql.exec("INSERT INTO events (seq, json) VALUES (?, ?)", seq, e.json);
      seqs.push({ n: e.n, seq });
      upto = e.n;
    }
    this.sql.exec("INSERT OR REPLACE INTO sources (name, upto) VALUES (?, ?)", source, upto);
    this.meta.set("seq", String(seq));
    this.sql.exec("DELETE FROM events WHERE seq <= ?", seq - this.logSize());
    await this.round();
    return { upto, seqs };
  }

  /**
   * Blanks the text (and the mentions) of every logged event of message
   * `messageId` (its post and its edits): a client resuming from before it
   * gets the events, never the words. Answers how many events it changed.
   */
  async redact(topic: string, messageId: string): Promise<{ redacted: number }> {
    this.name(topic);
    return { redacted: this.redactLogged(messageId) };
  }

  /**
   * A gateway has a socket subscribing. From now on the gateway receives every
   * event after the returned seq; with `since`, the first page of what came
   * after it (the gateway pages on with eventsSince).
   */
  async subscribe(
    topic: string,
    gateway: string,
    since?: number,
    stateKeys?: string[],
  ): Promise<Catchup & { state?: Record<string, string> }> {
    this.name(topic);
    const seq = this.seq();
    // A new registration starts at the current seq; a known one keeps its
    // position, and its version changes so an in-flight "no subscribers"
    // answer from before this call cannot drop it.
    this.registry.register(gateway, seq);
    const page = since === undefined ? { seq, oldest: this.oldest(), events: [] } : this.catchup(since);
    return stateKeys === undefined ? page : { ...page, state: this.stateOf(stateKeys) };
  }

  /** The current state of these keys (absent keys are left out). */
  async snapshot(topic: string, keys: string[]): Promise<{ seq: number; state: Record<string, string> }> {
    this.name(topic);
    return { seq: this.seq(), state: this.stateOf(keys) };
  }

  /** Up to PAGE events after `since`, or a reload when they are gone from the log. */
  async eventsSince(topic: string, since: number): Promise<Catchup> {
    this.name(topic);
    return this.catchup(since);
  }

  /** Per-topic log size (kept) and client publish rates (until restart), for hot topics and tests. */
  async configure(
    topic: string,
    options: { logSize?: number; publishPerSecond?: number; publishPerUserPerSecond?: number },
  ): Promise<TopicStats> {
    this.name(topic);
    const { logSize, publishPerSecond, publishPerUserPerSecond } = options;
    if (logSize !== undefined) {
      if (!Number.isInteger(logSize) || logSize < 1) throw new Error("logSize must be a positive integer");
      this.meta.set("log_size", String(logSize));
      this.sql.exec("DELETE FROM events WHERE seq <= ?", this.seq() - logSize);
    }
    if (publishPerSecond !== undefined) {
      if (!(publishPerSecond > 0)) throw new Error("publishPerSecond must be positive");
      this.limits.setStreamRate(publishPerSecond, Date.now());
    }
    if (publishPerUserPerSecond !== undefined) {
      if (!(publishPerUserPerSecond > 0)) throw new Error("publishPerUserPerSecond must be positive");
      this.limits.setPosterRate(publishPerUserPerSecond);
    }
    return this.stats();
  }

  async stats(): Promise<TopicStats> {
    return {
      topic: this.meta.get("topic"),
      seq: this.seq(),
      oldest: this.oldest(),
      logSize: this.logSize(),
      logged: Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM events").one().n),
      gateways: this.registry.list().map((g) => ({ name: g.name, acked: g.acked })),
      stateKeys: Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM state").one().n),
      deliveries: this.deliveries,
      rounds: this.rounds,
    };
  }

  /** Retries gateways that a round could not reach. */
  override async alarm(): Promise<void> {
    await this.round();
  }

  // --- internals --------------------------------------------------------------

  private catchup(since: number): Catchup {
    const seq = this.seq();
    const oldest = this.oldest();
    const plan = resumePlan(since, { seq, oldest });
    switch (plan.kind) {
      case "current":
        return { seq, oldest, events: [] };
      case "reload":
        return { seq, oldest, events: [], reload: plan.reason };
      case "replay":
        return {
          seq,
          oldest,
          events: this.sql
            .exec<{ seq: number; json: string }>(
              "SELECT seq, json FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
              plan.after,
              PAGE,
            )
            .toArray()
            .map((e) => ({ seq: Number(e.seq), json: e.json })),
        };
    }
  }

  private redactLogged(messageId: string): number {
    return this.sql.exec(
      `UPDATE events SET json = json_set(json, '$.text', '', '$.mentions', json('[]'))
       WHERE json_valid(json) AND json ->> '$.id' = ? AND json ->> '$.type' IN ('message', 'message_changed')
         AND (json ->> '$.text' != '' OR json_array_length(json, '$.mentions') > 0)`,
      messageId,
    ).rowsWritten;
  }

  /**
   * Joins the round waiting to start, or queues one: at most one runs at a
   * time; events published while a round is in flight wait for the next. On
   * a busy topic (a round ended within GATHER_AFTER_MS) a round yields once
   * before taking its events, so publishes arriving together go out in one
   * round rather than the first alone and the rest in the next; a quiet
   * topic's event goes at once.
   */
  private round(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.tail
      .then(() =>
        Date.now() - this.lastRound < GATHER_AFTER_MS
          ? new Promise((resolve) => setTimeout(resolve, GATHER_MS))
          : undefined,
      )
      .then(() => {
        this.queued = null;
        return this.deliverRound();
      })
      .catch((error) => console.error("topic delivery round failed", error))
      .finally(() => {
        this.lastRound = Date.now();
      });
    this.queued = next;
    this.tail = next;
    return next;
  }

  private async deliverRound(): Promise<void> {
    const topic = this.meta.get("topic");
    if (!topic) return;
    const seq = this.seq();
    const behind = this.registry.behind(seq);
    if (behind.length === 0) return;
    this.rounds++;
    // The events every gateway lacks, read once: a gateway far behind gets
    // the latest page; its sockets see the gap and fetch (or reload) what
    // they miss.
    const from = Math.max(Math.min(...behind.map((g) => g.acked)), seq - PAGE);
    const log = this.sql
      .exec<{ seq: number; json: string }>(
        "SELECT seq, json FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
        from,
        seq,
      )
      .toArray()
      .map((e) => ({ seq: Number(e.seq), json: e.json }));
    const answers: Array<{ name: string; version: number; gone: boolean }> = [];
    let failed = false;
    await Promise.all(
      behind.map(async (g) => {
        const after = Math.max(g.acked, seq - PAGE);
        const events = log[0] && log[0].seq > after ? log : log.filter((e) => e.seq > after);
        try {
          let gone = false;
          if (events.length > 0) {
            this.deliveries++;
            const { subscribers } = await withTimeout(this.gateway(g.name).deliver(topic, events), DELIVERY_TIMEOUT_MS);
            gone = subscribers === 0;
          }
          answers.push({ name: g.name, version: g.version, gone });
        } catch (error) {
          failed = true;
          console.error(`topic ${topic}: delivery to ${g.name} failed`, error);
        }
      }),
    );
    // Acknowledgements are written behind the round (registry.ts); a drop at once.
    for (const a of answers) {
      if (a.gone) this.registry.drop(a.name, a.version);
      else this.registry.ack(a.name, seq);
    }
    if (failed) await this.ctx.storage.setAlarm(Date.now() + RETRY_MS);
  }

  /** A gateway shard's stub, kept: a busy topic calls the same few every round. */
  private gateway(name: string): GatewayStub {
    let stub = this.stubs.get(name);
    if (!stub) {
      stub = gatewayNamed(this.env, name);
      if (this.stubs.size > 1_000) this.stubs.clear();
      this.stubs.set(name, stub);
    }
    return stub;
  }

  private stateOf(keys: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    if (keys.length === 0) return out;
    for (const row of this.sql
      .exec<{ key: string; json: string }>(
        "SELECT key, json FROM state WHERE key IN (SELECT value FROM json_each(?))",
        JSON.stringify(keys),
      )
      .toArray()) {
      out[row.key] = row.json;
    }
    return out;
  }

  private name(topic: string): void {
    const known = this.meta.get("topic");
    if (known === null) this.meta.set("topic", topic);
    else if (known !== topic) throw new Error(`topic object ${known} addressed as ${topic}`);
  }

  private seq(): number {
    return Number(this.meta.get("seq") ?? 0);
  }

  /** The oldest logged seq; seq + 1 when the log is empty. */
  private oldest(): number {
    const row = this.sql.exec<{ s: number | null }>("SELECT MIN(seq) AS s FROM events").one();
    return row.s === null ? this.seq() + 1 : Number(row.s);
  }

  private logSize(): number {
    const own = this.meta.get("log_size");
    if (own !== null) return Number(own);
    const configured = Number(this.env.TOPIC_LOG_SIZE);
    return Number.isInteger(configured) && configured > 0 ? configured : DEFAULT_LOG_SIZE;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
