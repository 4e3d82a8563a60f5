import type { Clock } from "../clock";
import type { DomainMutationMessage, MutationPublisher } from "./messages";

// The transactional outbox. A write that derives queue messages does not
// send them itself: it commits them as outbox rows in the same atomic unit as
// its own rows, so a crash can delay a message but never lose it, and never
// leave one for a write that did not commit. The relay then publishes the
// rows and marks them sent:
//
// - right after the write commits, by the request that made it (the normal
//   path, as fast as sending directly);
// - by the cron sweep, for rows a crash (or a failed send) left unsent for
//   longer than STRANDED_AFTER_MS;
// - by a heal, for its team's unsent rows, before it recounts (healer.ts).
//
// A sent message can still be lost on the queue's side (it ran out of
// retries into the dead-letter queue; a local queue that lives in memory
// dies with the process). So "sent" is not "done": a row stays until the
// consumer has applied its id (applied_mutations), and the sweep sends again
// any row sent more than REDELIVER_AFTER_MS ago whose id was never applied
// (redeliverUnapplied). Only applied rows are pruned.
//
// Publish first, mark second: a crash between the two publishes the row again
// later. That is safe because the message id is the row's id and the
// consumer applies each id once (mutation-consumer.ts, applied_mutations).
// Marking first would turn the same crash into a lost message, repaired only
// by a full recount of the team.

/** The queues an outbox row can be bound for. */
export const MUTATIONS_QUEUE = "domain-mutations";
export type OutboxQueue = typeof MUTATIONS_QUEUE;

export interface OutboxRow {
  teamId: string;
  /** The message's id (body.id): what the consumer dedupes on. */
  id: string;
  queue: OutboxQueue;
  body: DomainMutationMessage;
  createdAt: number;
}

export type OutboxKey = Pick<OutboxRow, "teamId" | "id">;

/** Where a scan of unsent rows stands: the last row it saw, in (createdAt, teamId, id) order. */
export type OutboxCursor = Pick<OutboxRow, "createdAt" | "teamId" | "id">;

export interface UnsentQuery {
  /** Only rows created at or before this time. */
  createdUpTo: number;
  limit: number;
  /** Only this team's rows. */
  teamId?: string;
  /** Only rows after this one (keyset paging). */
  after?: OutboxCursor;
}

/** Port over the outbox table (storage/sql-store.ts). Rows are written by the stores' write methods, in the write's unit. */
export interface OutboxStore {
  /** Rows not marked sent, oldest first (ordered by createdAt, teamId, id). */
  unsentOutbox(query: UnsentQuery): Promise<OutboxRow[]>;
  /** Sets sent_at on these rows; a row already marked keeps its time. */
  markOutboxSent(keys: readonly OutboxKey[], now: number): Promise<void>;
  /** Rows sent before `sentBefore` whose id the consumer never applied, oldest send first. */
  unappliedOutbox(query: { sentBefore: number; limit: number; teamId?: string }): Promise<OutboxRow[]>;
  /** Sets sent_at to `now` on these rows (sent again). */
  markOutboxResent(keys: readonly OutboxKey[], now: number): Promise<void>;
  /** Deletes up to `limit` rows sent before `sentBefore` whose id was applied (housekeeping); returns how many. */
  pruneSentOutbox(sentBefore: number, limit: number): Promise<number>;
}

/** A sent row whose id is still not applied after this long is sent again by the sweep. */
export const REDELIVER_AFTER_MS = 15 * 60_000;

/**
 * An unsent row younger than this may be in the hands of the request that
 * wrote it; older, its writer is taken to have died. Relaying a row its writer
 * is still sending is harmless (the consumer dedupes), only wasted.
 */
export const STRANDED_AFTER_MS = 10_000;

export function mutationRow(body: DomainMutationMessage, createdAt: number): OutboxRow {
  return { teamId: body.teamId, id: body.id, queue: MUTATIONS_QUEUE, body, createdAt };
}

export interface RelayDeps {
  outbox: OutboxStore;
  mutations: MutationPublisher;
  clock: Clock;
}

export interface RelayOutcome {
  /** Rows published and marked sent. */
  sent: number;
  /** Errors of the sends (or marks) that failed; their rows stay unsent for the next relay. */
  failed: unknown[];
}

/**
 * A queue send takes at most 100 messages and 256 KB in all (Cloudflare
 * Queues' sendBatch); a message of an import page can be ~30 KB, so rows
 * go in groups under both limits.
 */
const SEND_MAX_MESSAGES = 100;
const SEND_MAX_BYTES = 200_000;

/**
 * Publishes the rows to their queue, group by group, marking each group sent
 * after its send. A group that fails stays unsent and the others go on: one
 * row that cannot be sent must not hold back the rest. Never throws.
 */
export async function relayOutbox(
  rows: readonly OutboxRow[],
  deps: RelayDeps,
  mark: "sent" | "resent" = "sent",
): Promise<RelayOutcome> {
  const out: RelayOutcome = { sent: 0, failed: [] };
  for (const group of sendGroups(rows)) {
    try {
      // One queue so far; a second one would group the rows by `queue` too.
      await deps.mutations.publish(group.map((r) => r.body));
      if (mark === "sent") await deps.outbox.markOutboxSent(group, deps.clock.now());
      else await deps.outbox.markOutboxResent(group, deps.clock.now());
      out.sent += group.length;
    } catch (error) {
      out.failed.push(error);
    }
  }
  return out;
}

function sendGroups(rows: readonly OutboxRow[]): OutboxRow[][] {
  const encoder = new TextEncoder();
  const groups: OutboxRow[][] = [];
  let group: OutboxRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = encoder.encode(JSON.stringify(row.body)).byteLength;
    if (group.length > 0 && (group.length === SEND_MAX_MESSAGES || bytes + size > SEND_MAX_BYTES)) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(row);
    bytes += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

export interface StrandedOptions {
  /** Only rows at least this old (default STRANDED_AFTER_MS); 0 for every unsent row. */
  minAgeMs?: number;
  /** Only this team's rows. */
  teamId?: string;
  pageSize?: number;
  /** Stop after this many rows (the next sweep takes the rest). */
  maxRows?: number;
}

export interface StrandedOutcome extends RelayOutcome {
  /** Unsent rows found (sent or not). */
  found: number;
}

/**
 * Relays unsent rows left behind, oldest first, in keyset pages: a row that
 * fails is passed over until the next sweep instead of being read again.
 */
export async function relayStranded(deps: RelayDeps, options: StrandedOptions = {}): Promise<StrandedOutcome> {
  const { minAgeMs = STRANDED_AFTER_MS, teamId, pageSize = 500, maxRows = 10_000 } = options;
  const createdUpTo = deps.clock.now() - minAgeMs;
  const out: StrandedOutcome = { found: 0, sent: 0, failed: [] };
  let after: OutboxCursor | undefined;
  while (out.found < maxRows) {
    const limit = Math.min(pageSize, maxRows - out.found);
    const rows = await deps.outbox.unsentOutbox({ createdUpTo, limit, teamId, after });
    const relayed = await relayOutbox(rows, deps);
    out.found += rows.length;
    out.sent += relayed.sent;
    out.failed.push(...relayed.failed);
    const last = rows.at(-1);
    if (!last || rows.length < limit) break;
    after = { createdAt: last.createdAt, teamId: last.teamId, id: last.id };
  }
  return out;
}

/**
 * Sends again the rows sent more than `olderThanMs` ago whose ids the
 * consumer never applied (a message lost on the queue's side), and stamps
 * them sent now, so each goes again at most once a window. The consumer
 * applies each id once, so a message that was only slow costs a skipped
 * delivery. Never throws for a failed send (the row waits for the next sweep).
 */
export async function redeliverUnapplied(
  deps: RelayDeps,
  options: { olderThanMs?: number; teamId?: string; maxRows?: number } = {},
): Promise<StrandedOutcome> {
  const { olderThanMs = REDELIVER_AFTER_MS, teamId, maxRows = 5_000 } = options;
  const rows = await deps.outbox.unappliedOutbox({
    sentBefore: deps.clock.now() - olderThanMs,
    limit: maxRows,
    teamId,
  });
  return { found: rows.length, ...(await relayOutbox(rows, deps, "resent")) };
}
