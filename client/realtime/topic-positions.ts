import type { ClientTopic, TopicRequest } from "./frames";

// Where a client stands in each topic's sequence: what makes a reconnect a
// resume. Pure (no socket, no clock) so it is tested on its own and usable by
// any client of the protocol, this package's or a benchmark's.
//
// The server numbers each topic's events 1, 2, 3, … and a subscribe with
// `since: N` gets exactly the events after N before live ones; so the only
// state a client needs per topic is the last seq it has seen, and the only
// rule is to drop what is at or below it (the server never sends those, but
// a client that overlaps two sockets for a moment, or replays a persisted
// position, must not show an event twice).

/** The most topics one subscribe (or one handshake) may carry: MAX_TOPICS_PER_FRAME in the protocol. */
export const TOPICS_PER_FRAME = 100;

export class TopicPositions {
  /** topic → the last seq seen; undefined until the first `subscribed` answer or event. */
  private readonly last = new Map<ClientTopic, number>();

  constructor(initial?: Partial<Record<ClientTopic, number>>) {
    for (const [topic, seq] of Object.entries(initial ?? {})) {
      if (typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 0) this.last.set(topic as ClientTopic, seq);
    }
  }

  /** The last seq seen of `topic`, or undefined when none yet. */
  seen(topic: ClientTopic): number | undefined {
    return this.last.get(topic);
  }

  /** Every topic's last seq, to persist or show. */
  snapshot(): Partial<Record<ClientTopic, number>> {
    return Object.fromEntries(this.last);
  }

  /** What to send for these topics: `since` where a position is known (a resume), none where not (a first subscribe). */
  requests(topics: Iterable<ClientTopic>): TopicRequest[] {
    const out: TopicRequest[] = [];
    for (const topic of topics) {
      const since = this.last.get(topic);
      out.push(since === undefined ? { topic } : { topic, since });
    }
    return out;
  }

  /** The `subscribe` query parameter of GET /v1/rtm for these requests: `team,channel:C1@42`. */
  static handshakeParam(requests: readonly TopicRequest[]): string {
    return requests.map((r) => (r.since === undefined ? r.topic : `${r.topic}@${r.since}`)).join(",");
  }

  /**
   * A `subscribed` answer's seq for `topic`. On a first subscribe it is where
   * the topic stands, and live events continue after it. On a resume (a
   * position was known) the missed events up to it follow the answer, so the
   * position stays where it was and those events move it.
   */
  subscribed(topic: ClientTopic, seq: number): void {
    if (!this.last.has(topic)) this.last.set(topic, seq);
  }

  /** An event: true when it is new (deliver it), false when it was seen already (drop it). */
  accept(topic: ClientTopic, seq: number): boolean {
    const last = this.last.get(topic);
    if (last !== undefined && seq <= last) return false;
    this.last.set(topic, seq);
    return true;
  }

  /**
   * A `reload`: what came before `seq` cannot be replayed (older than the
   * topic's log, or the position was ahead of the topic); the subscription
   * goes on after `seq`, and the application refetches the topic's state.
   */
  reload(topic: ClientTopic, seq: number): void {
    this.last.set(topic, seq);
  }

  /** Forgets a topic (unsubscribed): a later subscribe starts from where the topic then stands. */
  forget(topic: ClientTopic): void {
    this.last.delete(topic);
  }
}
