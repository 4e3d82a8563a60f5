// The recommendation log store (R2 binding REC_LOG_STORE): where the
// rec-logs queue consumer writes served answers and feedback, one NDJSON
// object per source, day and batch (src/recommend/logs.ts names them).

/** Writes one log object, NDJSON, replacing any object of that key (a retried batch rewrites the same ones). */
export function recLogWriter(env: Pick<Env, "REC_LOG_STORE">): (key: string, ndjson: string) => Promise<void> {
  return (key, ndjson) =>
    putInSlices(env.REC_LOG_STORE, key, ndjson, { httpMetadata: { contentType: "application/x-ndjson" } });
}

/** Bytes handed to a log object's upload between yields (see putInSlices). */
const PUT_SLICE_BYTES = 16 * 1024;

/**
 * An R2 put whose body is fed in slices, yielding to the event loop between
 * them. A batch's object is ~350 KB; written in one piece, the local R2
 * (Miniflare, wrangler dev) hashed and stored it in one run on the Worker's
 * thread, and the request that arrived meanwhile waited 8-11 ms for it (one
 * request in a hundred: the bench's p99). In slices, requests interleave
 * (~4 ms worst). Deployed, R2 is a network call and the slices just stream.
 */
async function putInSlices(bucket: R2Bucket, key: string, body: string, options: R2PutOptions): Promise<void> {
  const bytes = new TextEncoder().encode(body);
  const { readable, writable } = new FixedLengthStream(bytes.byteLength);
  const writer = writable.getWriter();
  const feed = async () => {
    for (let at = 0; at < bytes.byteLength; at += PUT_SLICE_BYTES) {
      await writer.write(bytes.subarray(at, at + PUT_SLICE_BYTES));
      await scheduler.wait(0);
    }
    await writer.close();
  };
  // Together: a put that fails early cancels the stream, which fails the feed instead of leaving it waiting.
  await Promise.all([bucket.put(key, readable, options), feed()]);
}
