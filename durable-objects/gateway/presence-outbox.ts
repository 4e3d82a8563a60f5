// A gateway's presence changes on their way to the presence shards' topics.
// Every user's first socket publishes `active` (and their last one, after
// the grace period, `away`): when a team connects at once, that was one
// Topic call, one numbered write and one delivery round per user. Here the
// changes for one shard topic go out in rounds, one at a time per topic,
// each carrying everything waiting in one publishMany call. A change to a
// quiet topic goes at once; after a round, the next one starts no sooner
// than MIN_INTERVAL_MS after it, so under a burst (a team connecting, a
// reconnect storm) a shard gets a few calls a second whatever the number of
// users, and each change waits at most that long. Per topic, changes keep
// their order, so a user's `active` and `away` are numbered in the order
// they happened.

/** Least time between the starts of two rounds to one topic (ms): what a change may wait under a burst. */
export const MIN_INTERVAL_MS = 500;
/** Changes per publishMany call at most (the rest wait for the next round). */
const MAX_ROUND = 500;

export interface PresenceChange {
  json: string;
  /** The user, whose current state the change becomes (the topic's state key). */
  stateKey: string;
}

type Publish = (key: string, changes: PresenceChange[]) => Promise<unknown>;

interface Queue {
  waiting: Array<{ change: PresenceChange; done: () => void }>;
  running: boolean;
  /** When the last round started (0: never). */
  last: number;
}

export class PresenceOutbox {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly publish: Publish,
    private readonly onError: (key: string, changes: PresenceChange[], error: unknown) => void,
    private readonly interval = MIN_INTERVAL_MS,
  ) {}

  /** Queues a change for the topic `key`; resolves once its round was published (or failed, and was reported). */
  send(key: string, change: PresenceChange): Promise<void> {
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { waiting: [], running: false, last: 0 };
      this.queues.set(key, queue);
    }
    const q = queue;
    const done = new Promise<void>((resolve) => q.waiting.push({ change, done: resolve }));
    if (!q.running) void this.run(key, q);
    return done;
  }

  private async run(key: string, q: Queue): Promise<void> {
    q.running = true;
    try {
      while (q.waiting.length > 0) {
        const wait = q.last + this.interval - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        q.last = Date.now();
        const round = q.waiting.splice(0, MAX_ROUND);
        const changes = round.map((w) => w.change);
        try {
          await this.publish(key, changes);
        } catch (error) {
          this.onError(key, changes, error);
        }
        for (const w of round) w.done();
      }
    } finally {
      q.running = false;
      // A quiet topic's queue goes once its last round is MIN_INTERVAL_MS old (its next change then goes at once).
      if (this.queues.get(key) === q && q.waiting.length === 0 && Date.now() - q.last >= this.interval) {
        this.queues.delete(key);
      }
    }
  }
}
