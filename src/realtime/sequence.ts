import type { ReloadReason } from "./protocol";

// Per-topic sequence numbers: a topic numbers its events 1, 2, 3, … and keeps
// the last few in a log. These rules decide what a subscriber that has seen
// up to `since` gets, and what a socket may be sent next.

/** One logged event: its sequence number and its body as JSON text. */
export interface TopicEvent {
  seq: number;
  json: string;
}

/** The log's window: events oldest..seq are kept (oldest = seq + 1 when it is empty). */
export interface LogWindow {
  seq: number;
  oldest: number;
}

export type ResumePlan =
  | { kind: "current" }
  | { kind: "replay"; after: number }
  | { kind: "reload"; reason: ReloadReason };

/** What a subscriber that has seen everything up to `since` needs. */
export function resumePlan(since: number, log: LogWindow): ResumePlan {
  if (since > log.seq) return { kind: "reload", reason: "seq_ahead" };
  if (since === log.seq) return { kind: "current" };
  if (since + 1 < log.oldest) return { kind: "reload", reason: "gap_too_old" };
  return { kind: "replay", after: since };
}

/** The log window of a topic at `seq` holding at most `size` events. */
export function logWindow(seq: number, size: number): LogWindow {
  return { seq, oldest: Math.max(1, seq - size + 1) };
}

/**
 * The events a socket that has seen up to `last` can be sent now: those
 * continuing its sequence without a gap, in order. `complete` says whether
 * it reached `head` (else the missing ones must be fetched first).
 */
export function continuation(
  last: number,
  events: readonly TopicEvent[],
  head: number,
): { send: TopicEvent[]; last: number; complete: boolean } {
  const send: TopicEvent[] = [];
  let at = last;
  for (const e of events) {
    if (e.seq <= at) continue;
    if (e.seq !== at + 1) break;
    send.push(e);
    at = e.seq;
  }
  return { send, last: at, complete: at >= head };
}

/** Merges two seq-sorted event lists into one, sorted, without duplicates. */
export function mergeEvents(a: readonly TopicEvent[], b: readonly TopicEvent[]): TopicEvent[] {
  const bySeq = new Map<number, TopicEvent>();
  for (const e of a) bySeq.set(e.seq, e);
  for (const e of b) if (!bySeq.has(e.seq)) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq);
}
