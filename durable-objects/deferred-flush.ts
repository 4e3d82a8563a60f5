/**
 * Batches writes that may trail what they describe: the first `schedule()`
 * starts a timer of `ms`, later calls until it fires add nothing, and then
 * `flush` runs once for all of them. `keep` holds the object up until then
 * (ctx.waitUntil). Used where a Durable Object's SQLite write would
 * otherwise hold back its outgoing messages (gateway positions and away
 * list, a topic's gateway acknowledgements).
 */
export function deferredFlush(ms: number, keep: (work: Promise<unknown>) => void, flush: () => void): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    keep(
      new Promise((resolve) => setTimeout(resolve, ms)).then(() => {
        scheduled = false;
        flush();
      }),
    );
  };
}
