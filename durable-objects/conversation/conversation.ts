import { DurableObject } from "cloudflare:workers";
import { conversationRootOf, topicOf } from "../../platform/stubs";
import {
  type Actor,
  ageCutoff,
  type ConversationEvent,
  checkPolicy,
  DEFAULT_HISTORY,
  type HistoryPolicy,
  MAX_REACTION_NAMES,
  type MessageView,
  mayDelete,
  mayEdit,
} from "../../src/conversations/history";
import { formatMessageId, nextMessageId, parseMessageId } from "../../src/conversations/ids";
import type { Changed, HistoryPage, StoreResult } from "../../src/conversations/ports";
import type { ErrorCode, ErrorKind } from "../../src/errors";
import { PublishLimits, publishRatesOf } from "../../src/realtime/rate-limit";
import { channelTopic, topicKey } from "../../src/realtime/topics";
import type { Role } from "../../src/teams/model";
import { MetaCache } from "../meta-cache";
import { DEFAULT_PUBLISH_PER_SECOND, DEFAULT_PUBLISH_PER_USER_PER_SECOND } from "../topic/topic";

// One Durable Object per conversation, named `<host team>:<conversation>`
// (platform/stubs.ts conversationOf): a channel, and once they land a DM or
// group DM, keyed by the team hosting it, as its topic is. In its SQLite:
// the conversation's messages (text only here: never in logs, features or
// the team cache), their reactions, and an outbox of real-time events.
//
// Every change is ONE transaction that writes the message row and the
// outbox row carrying its event, and arms an alarm in the same step. After
// the commit the outbox is delivered to the conversation's Topic
// (publishFrom, which skips what it already took from this outbox, so a
// delivery retried after a lost answer publishes nothing twice); what is
// not delivered is retried by the alarm until it is. A crash between commit
// and publish therefore loses no event, and no event exists for a change
// that did not commit.
//
// A deletion leaves a tombstone (id, author, time; no text, no mentions, no
// reactions) and its event asks the topic to blank the text of the
// message's logged events first, so the words are gone from history and
// from the resume log alike.
//
// History is bounded per team (HistoryPolicy: the newest N messages, none
// older than D days), trimmed on every write and by the alarm. The policy is
// kept by the team's root object, the same class named by the team id alone
// (conversationRootOf), and read from there at most once a minute.

/** How long a conversation uses the team's policy before asking the root again. */
const POLICY_TTL_MS = 60_000;
/** Outbox entries per delivery call. */
const OUTBOX_PAGE = 100;
/** First retry of a failed delivery; doubles up to MAX_RETRY_MS. */
const RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;
/** A conversation with history wakes at least this often to trim by age (and to see a changed policy). */
const TRIM_EVERY_MS = 86_400_000;

type Refusal = { ok: false; kind: ErrorKind; code: ErrorCode; message: string; details?: unknown };

function refuse(kind: ErrorKind, code: ErrorCode, message: string, details?: unknown): Refusal {
  return details === undefined ? { ok: false, kind, code, message } : { ok: false, kind, code, message, details };
}
const missing = (id: string) => refuse("not_found", "not_found", `message ${id} not found`);

type Row = {
  id: number;
  ts: number;
  team: string;
  user: string;
  text: string | null;
  mentions: string;
  edited_ts: number | null;
  deleted: number;
};

export interface ConversationStats {
  name: string | null;
  messages: number;
  tombstones: number;
  outbox: number;
  policy: HistoryPolicy;
}

export class Conversation extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Meta values, read through memory (meta-cache.ts). */
  private readonly meta: MetaCache;
  /** The delivery queue: one delivery at a time, in outbox order. */
  private tail: Promise<void> = Promise.resolve();
  /** Outbox numbers delivered by this instance and their topic seq (what a write answers). */
  private readonly seqs = new Map<number, number>();
  private retryMs = RETRY_MS;
  private policyCache: { policy: HistoryPolicy; at: number } | null = null;
  private readonly limits = new PublishLimits(() =>
    publishRatesOf(this.env, {
      perSecond: DEFAULT_PUBLISH_PER_SECOND,
      perPosterPerSecond: DEFAULT_PUBLISH_PER_USER_PER_SECOND,
    }),
  );

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.meta = new MetaCache(this.sql);
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, team TEXT NOT NULL, user TEXT NOT NULL,
        text TEXT, mentions TEXT NOT NULL DEFAULT '[]', edited_ts INTEGER, deleted INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);
      CREATE TABLE IF NOT EXISTS reactions (
        message INTEGER NOT NULL, name TEXT NOT NULL, team TEXT NOT NULL, user TEXT NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (message, name, team, user)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS outbox (n INTEGER PRIMARY KEY, json TEXT NOT NULL, redacts TEXT);
    `);
  }

  // --- a conversation's messages ------------------------------------------------

  async post(
    host: string,
    conversation: string,
    actor: Actor,
    text: string,
    mentions: string[],
  ): Promise<StoreResult<Changed>> {
    this.name(host, conversation);
    const limited = this.admit(actor);
    if (limited) return limited;
    const policy = await this.policy(host);
    const now = Date.now();
    const n = this.tx(() => {
      const live = this.liveCount();
      const id = nextMessageId(Number(this.meta.get("last_id") ?? 0), now);
      this.meta.set("last_id", String(id));
      this.sql.exec(
        "INSERT INTO messages (id, ts, team, user, text, mentions) VALUES (?, ?, ?, ?, ?, ?)",
        id,
        now,
        actor.team,
        actor.user,
        text,
        JSON.stringify(mentions),
      );
      const event: ConversationEvent = {
        type: "message",
        channel: conversation,
        id: formatMessageId(id),
        user: actor.user,
        text,
        mentions,
        ts: now,
      };
      this.meta.set("live", String(live + 1));
      const queued = this.enqueue(event);
      this.trim(policy, now);
      return { queued, id };
    });
    return this.committed(n.queued, n.id);
  }

  async edit(
    host: string,
    conversation: string,
    actor: Actor,
    id: string,
    text: string,
    mentions: string[] | null,
  ): Promise<StoreResult<Changed>> {
    this.name(host, conversation);
    const row = this.row(id);
    if (!row) return missing(id);
    if (!mayEdit(row, actor)) return refuse("forbidden", "forbidden", "only the author may edit a message");
    const limited = this.admit(actor);
    if (limited) return limited;
    const now = Date.now();
    const kept = mentions ?? (JSON.parse(row.mentions) as string[]);
    const queued = this.tx(() => {
      this.sql.exec(
        "UPDATE messages SET text = ?, mentions = ?, edited_ts = ? WHERE id = ?",
        text,
        JSON.stringify(kept),
        now,
        row.id,
      );
      return this.enqueue({
        type: "message_changed",
        channel: conversation,
        id,
        user: row.user,
        text,
        mentions: kept,
        ts: row.ts,
        edited_ts: now,
      });
    });
    return this.committed(queued, row.id);
  }

  async remove(
    host: string,
    conversation: string,
    actor: Actor,
    actorRole: Role | null,
    id: string,
  ): Promise<StoreResult<Changed>> {
    this.name(host, conversation);
    const row = this.row(id);
    if (!row) return missing(id);
    if (!mayDelete(row, actor, actorRole, host)) {
      return refuse("forbidden", "forbidden", "only the author or a team owner or admin may delete a message");
    }
    const now = Date.now();
    const queued = this.tx(() => {
      // A tombstone: who and when stay (ids are never reused, cursors stay
      // valid); the words, the mentions and the reactions go.
      const live = this.liveCount();
      this.sql.exec("UPDATE messages SET text = NULL, mentions = '[]', deleted = 1 WHERE id = ?", row.id);
      this.meta.set("live", String(live - 1));
      this.sql.exec("DELETE FROM reactions WHERE message = ?", row.id);
      return this.enqueue({ type: "message_deleted", channel: conversation, id, ts: now }, id);
    });
    return this.committed(queued, null);
  }

  async react(
    host: string,
    conversation: string,
    actor: Actor,
    id: string,
    name: string,
    add: boolean,
  ): Promise<StoreResult<Changed>> {
    this.name(host, conversation);
    const row = this.row(id);
    if (!row) return missing(id);
    const has =
      this.sql
        .exec(
          "SELECT 1 FROM reactions WHERE message = ? AND name = ? AND team = ? AND user = ?",
          row.id,
          name,
          actor.team,
          actor.user,
        )
        .toArray().length > 0;
    // One reaction per user per name: adding it again, or removing one that
    // is not there, changes nothing and sends no event.
    if (has === add) return { ok: true, value: { message: this.view(row), seq: null } };
    if (add) {
      const names = this.sql
        .exec<{ name: string }>("SELECT DISTINCT name FROM reactions WHERE message = ?", row.id)
        .toArray()
        .map((r) => r.name);
      if (!names.includes(name) && names.length >= MAX_REACTION_NAMES) {
        return refuse("conflict", "conflict", `a message carries at most ${MAX_REACTION_NAMES} different reactions`);
      }
    }
    const limited = this.admit(actor);
    if (limited) return limited;
    const now = Date.now();
    const queued = this.tx(() => {
      if (add) {
        this.sql.exec(
          "INSERT INTO reactions (message, name, team, user, ts) VALUES (?, ?, ?, ?, ?)",
          row.id,
          name,
          actor.team,
          actor.user,
          now,
        );
      } else {
        this.sql.exec(
          "DELETE FROM reactions WHERE message = ? AND name = ? AND team = ? AND user = ?",
          row.id,
          name,
          actor.team,
          actor.user,
        );
      }
      return this.enqueue({
        type: add ? "reaction_added" : "reaction_removed",
        channel: conversation,
        message: id,
        user: actor.user,
        name,
        ts: now,
      });
    });
    return this.committed(queued, row.id);
  }

  /** Newest first: up to `limit` messages older than `before` (null: the newest), tombstones left out. */
  async page(
    host: string,
    conversation: string,
    before: number | null,
    limit: number,
  ): Promise<StoreResult<HistoryPage>> {
    this.name(host, conversation);
    const policy = await this.policy(host);
    const rows = this.sql
      .exec<Row>(
        `SELECT id, ts, team, user, text, mentions, edited_ts, deleted FROM messages
         WHERE deleted = 0 AND id < ? AND ts >= ? ORDER BY id DESC LIMIT ?`,
        before ?? Number.MAX_SAFE_INTEGER,
        ageCutoff(policy, Date.now()),
        limit + 1,
      )
      .toArray();
    const shown = rows.slice(0, limit);
    const reactions = this.reactionsOf(shown.map((r) => r.id));
    const messages = shown.map((r) => this.view(r, reactions.get(Number(r.id)) ?? []));
    const last = shown[shown.length - 1];
    return { ok: true, value: { messages, next: rows.length > limit && last ? Number(last.id) : null } };
  }

  async stats(): Promise<ConversationStats> {
    const count = (where: string) =>
      Number(this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM messages WHERE ${where}`).one().n);
    const host = this.meta.get("host");
    return {
      name: host === null ? null : `${host}:${this.meta.get("conversation")}`,
      messages: count("deleted = 0"),
      tombstones: count("deleted = 1"),
      outbox: Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n),
      policy: this.policyCache?.policy ?? DEFAULT_HISTORY,
    };
  }

  /** Delivers what the outbox holds, trims by age, and arms the next wake. */
  override async alarm(): Promise<void> {
    const host = this.meta.get("host");
    if (host === null) return;
    await this.deliver();
    const policy = await this.policy(host);
    this.tx(() => this.trim(policy, Date.now()));
    await this.arm();
  }

  // --- the team's policy (on the team's root object) ---------------------------

  /** The team's own policy, or the default. Root object only (named by the team id). */
  async teamPolicy(team: string): Promise<HistoryPolicy & { custom: boolean }> {
    this.root(team);
    const own = this.meta.get("policy");
    return own === null
      ? { ...DEFAULT_HISTORY, custom: false }
      : { ...(JSON.parse(own) as HistoryPolicy), custom: true };
  }

  async setTeamPolicy(team: string, policy: HistoryPolicy): Promise<HistoryPolicy & { custom: boolean }> {
    this.root(team);
    this.meta.set("policy", JSON.stringify(checkPolicy(policy)));
    return this.teamPolicy(team);
  }

  // --- internals -----------------------------------------------------------------

  /** Queues an event in the outbox (inside the change's transaction); its outbox number. */
  private enqueue(event: ConversationEvent, redacts?: string): number {
    const n = Number(this.meta.get("outbox_n") ?? 0) + 1;
    this.meta.set("outbox_n", String(n));
    this.sql.exec("INSERT INTO outbox (n, json, redacts) VALUES (?, ?, ?)", n, JSON.stringify(event), redacts ?? null);
    return n;
  }

  /**
   * After a commit: the alarm is armed (in the commit's own output: a crash
   * now still delivers), then the outbox goes to the topic; the answer
   * carries the event's seq when this delivery got it there.
   */
  private async committed(n: number, id: number | null): Promise<StoreResult<Changed>> {
    void this.ctx.storage.setAlarm(Date.now() + RETRY_MS);
    await this.deliver();
    const row = id === null ? null : this.rowById(id);
    const seq = this.seqs.get(n) ?? null;
    this.seqs.delete(n);
    return { ok: true, value: { message: row ? this.view(row) : null, seq } };
  }

  /** One delivery after another, in outbox order; a failure leaves the rows for the alarm. */
  private deliver(): Promise<void> {
    const next = this.tail.then(() => this.deliverAll());
    this.tail = next.catch(() => undefined);
    return next.catch((error) => {
      console.error(`conversation ${this.meta.get("host")}:${this.meta.get("conversation")}: delivery failed`, error);
    });
  }

  private async deliverAll(): Promise<void> {
    const host = this.meta.get("host");
    const conversation = this.meta.get("conversation");
    if (host === null || conversation === null) return;
    const key = topicKey(host, channelTopic(conversation));
    for (;;) {
      const rows = this.sql
        .exec<{ n: number; json: string; redacts: string | null }>(
          "SELECT n, json, redacts FROM outbox ORDER BY n LIMIT ?",
          OUTBOX_PAGE,
        )
        .toArray();
      if (rows.length === 0) break;
      const entries = rows.map((r) =>
        r.redacts === null ? { n: Number(r.n), json: r.json } : { n: Number(r.n), json: r.json, redacts: r.redacts },
      );
      const answer = await topicOf(this.env, key).publishFrom(key, `conversation:${host}:${conversation}`, entries);
      for (const s of answer.seqs) {
        if (this.seqs.size > 1_000) this.seqs.clear();
        this.seqs.set(s.n, s.seq);
      }
      this.sql.exec("DELETE FROM outbox WHERE n <= ?", answer.upto);
      this.retryMs = RETRY_MS;
      if (rows.length < OUTBOX_PAGE) break;
    }
  }

  /** The next wake: soon while the outbox holds events (backing off), else when the oldest message ages out. */
  private async arm(): Promise<void> {
    const pending = Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n);
    const now = Date.now();
    if (pending > 0) {
      await this.ctx.storage.setAlarm(now + this.retryMs);
      this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
      return;
    }
    const oldest = this.sql.exec<{ ts: number | null }>("SELECT MIN(ts) AS ts FROM messages").one().ts;
    if (oldest === null) return;
    const policy = this.policyCache?.policy ?? DEFAULT_HISTORY;
    const expires = Number(oldest) + policy.maxAgeDays * 86_400_000 + 1;
    await this.ctx.storage.setAlarm(Math.min(Math.max(expires, now + 1_000), now + TRIM_EVERY_MS));
  }

  /**
   * The bounds, inside a change's transaction: messages (and tombstones)
   * older than the age go, and everything older than the newest
   * `maxMessages` live messages.
   */
  private trim(policy: HistoryPolicy, now: number): void {
    const cutoff = ageCutoff(policy, now);
    // The live count is kept in meta, so a write under the bound costs no
    // scan of the history; over it, the floor is found from the oldest end
    // (usually one row past the excess).
    const live = this.liveCount();
    const excess = live - policy.maxMessages;
    const floor =
      excess > 0
        ? this.sql
            .exec<{ id: number }>("SELECT id FROM messages WHERE deleted = 0 ORDER BY id LIMIT 1 OFFSET ?", excess)
            .toArray()[0]?.id
        : undefined;
    if (excess > 0 && floor === undefined) {
      // The kept count said more than there are: count again, trim nothing by count now.
      this.meta.forget("live");
      this.sql.exec("DELETE FROM meta WHERE key = 'live'");
      this.trim(policy, now);
      return;
    }
    const below = floor === undefined ? 0 : Number(floor);
    const gone = Number(
      this.sql
        .exec<{ n: number }>(
          "SELECT COUNT(*) AS n FROM messages WHERE deleted = 0 AND (ts < ? OR id < ?)",
          cutoff,
          below,
        )
        .one().n,
    );
    this.sql.exec(
      "DELETE FROM reactions WHERE message IN (SELECT id FROM messages WHERE ts < ? OR id < ?)",
      cutoff,
      below,
    );
    this.sql.exec("DELETE FROM messages WHERE ts < ? OR id < ?", cutoff, below);
    if (gone > 0) this.meta.set("live", String(live - gone));
  }

  /** Live (not deleted) messages held; counted once, then kept in meta by every change. */
  private liveCount(): number {
    const kept = this.meta.get("live");
    if (kept !== null) return Number(kept);
    const n = Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM messages WHERE deleted = 0").one().n);
    this.meta.set("live", String(n));
    return n;
  }

  /** The team's policy, from its root object at most once per POLICY_TTL_MS. */
  private async policy(host: string): Promise<HistoryPolicy> {
    const now = Date.now();
    if (this.policyCache && now - this.policyCache.at < POLICY_TTL_MS) return this.policyCache.policy;
    const { maxMessages, maxAgeDays } = await conversationRootOf(this.env, host).teamPolicy(host);
    this.policyCache = { policy: { maxMessages, maxAgeDays }, at: now };
    return this.policyCache.policy;
  }

  /** Posts, edits and reactions are held to the topic's publish rates (per poster, per conversation). */
  private admit(actor: Actor): Refusal | null {
    const refused = this.limits.admit(`${actor.team}:${actor.user}`, Date.now());
    if (!refused) return null;
    return refuse(
      "limited",
      "rate_limited",
      refused.limit === "poster"
        ? "you are writing to this conversation faster than your limit; retry later"
        : "this conversation receives messages faster than its limit; retry later",
      { retry_after_ms: refused.retryAfterMs, limit: refused.limit },
    );
  }

  /** A live (not deleted) message by its id; null for a malformed, unknown, deleted or trimmed one. */
  private row(id: string): Row | null {
    const n = parseMessageId(id);
    if (n === null) return null;
    const row = this.rowById(n);
    return row && row.deleted === 0 ? row : null;
  }

  private rowById(id: number): Row | null {
    return (
      this.sql
        .exec<Row>("SELECT id, ts, team, user, text, mentions, edited_ts, deleted FROM messages WHERE id = ?", id)
        .toArray()[0] ?? null
    );
  }

  private reactionsOf(ids: number[]): Map<number, MessageView["reactions"]> {
    const out = new Map<number, MessageView["reactions"]>();
    if (ids.length === 0) return out;
    for (const r of this.sql
      .exec<{ message: number; name: string; user: string }>(
        `SELECT message, name, user FROM reactions WHERE message IN (SELECT value FROM json_each(?))
         ORDER BY message, (SELECT MIN(ts) FROM reactions r2 WHERE r2.message = reactions.message AND r2.name = reactions.name), name, ts`,
        JSON.stringify(ids),
      )
      .toArray()) {
      const list = out.get(Number(r.message)) ?? [];
      let entry = list.find((e) => e.name === r.name);
      if (!entry) {
        entry = { name: r.name, users: [], count: 0 };
        list.push(entry);
      }
      entry.users.push(r.user);
      entry.count++;
      out.set(Number(r.message), list);
    }
    return out;
  }

  private view(row: Row, reactions?: MessageView["reactions"]): MessageView {
    return {
      id: formatMessageId(Number(row.id)),
      channel: this.meta.get("conversation") ?? "",
      user: row.user,
      team: row.team,
      text: row.text ?? "",
      mentions: JSON.parse(row.mentions) as string[],
      ts: Number(row.ts),
      edited_ts: row.edited_ts === null ? null : Number(row.edited_ts),
      reactions: reactions ?? this.reactionsOf([Number(row.id)]).get(Number(row.id)) ?? [],
    };
  }

  private name(host: string, conversation: string): void {
    const known = this.meta.get("host");
    if (known === null) {
      if (this.meta.get("root") !== null) throw new Error("a team root is not a conversation object");
      this.meta.set("host", host);
      this.meta.set("conversation", conversation);
    } else if (known !== host || this.meta.get("conversation") !== conversation) {
      throw new Error(
        `conversation object ${known}:${this.meta.get("conversation")} addressed as ${host}:${conversation}`,
      );
    }
  }

  /** The team's root object holds only the team's policy, never messages. */
  private root(team: string): void {
    const known = this.meta.get("root");
    if (known === null) {
      if (this.meta.get("host") !== null) throw new Error("a conversation object is not a team root");
      this.meta.set("root", team);
    } else if (known !== team) throw new Error(`team root ${known} addressed as ${team}`);
  }

  /**
   * One SQLite transaction. Meta values are read through memory: if the
   * transaction rolls back, what it set there is forgotten with it.
   */
  private tx<T>(work: () => T): T {
    try {
      return this.ctx.storage.transactionSync(work);
    } catch (error) {
      this.meta.clear();
      throw error;
    }
  }
}
