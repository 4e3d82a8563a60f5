import { systemClock } from "../src/clock";
import { isoOf } from "../src/datasets/collab";
import {
  EXPORT_FORMAT,
  type ExportManifest,
  type ExportPorts,
  type ExportSink,
  type ExportStore,
  LEDGER_PAGE_MAX,
  type LedgerCursor,
  type LedgerTable,
} from "../src/recommend/export";
import type { LiveRows } from "../src/recommend/live-rows";
import { r2RecLogReader } from "./rec-log-reader";
import { recStoreOf } from "./stubs";

// The retraining exports (src/recommend/export.ts) in the rec-log bucket
// (REC_LOG_STORE), beside the logs they are cut from:
//   exports/<window>/manifest.json, exports/<window>/<team>/<file>
// A .gz file is gzipped here (CompressionStream), so what an operator
// downloads is what training/data.py opens. The manifest is written with an
// R2 conditional put (absent, or the etag read), so two cron ticks racing
// over one window write it once.

const IF_ABSENT: R2PutOptions["onlyIf"] = new Headers({ "if-none-match": "*" });
const manifestKey = (window: string) => `exports/${window}/manifest.json`;
const fileKey = (window: string, team: string, file: string) => `exports/${window}/${team}/${file}`;

/**
 * R2 multipart parts of a file written as it is produced: each exactly this
 * size but the last (R2 wants equal parts, of at least 5 MiB), so the Worker
 * holds one part of a file, never the file.
 */
const PART_BYTES = 5 * 1024 * 1024;

/** A gzip file written to R2 as it is produced (the ledger's tables of a big team do not fit a Worker). */
export async function gzipSink(bucket: R2Bucket, key: string): Promise<ExportSink> {
  const upload = await bucket.createMultipartUpload(key, { httpMetadata: { contentType: "application/gzip" } });
  const parts: R2UploadedPart[] = [];
  let chunks: Uint8Array[] = [];
  let size = 0;
  const cut = async (final: boolean) => {
    while (size >= PART_BYTES || (final && size > 0)) {
      const n = Math.min(size, PART_BYTES);
      const part = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const chunk = chunks[0] as Uint8Array;
        const take = Math.min(chunk.byteLength, n - at);
        part.set(chunk.subarray(0, take), at);
        at += take;
        if (take === chunk.byteLength) chunks.shift();
        else chunks[0] = chunk.subarray(take);
      }
      size -= n;
      parts.push(await upload.uploadPart(parts.length + 1, part));
    }
  };
  const gz = new CompressionStream("gzip");
  const writer = gz.writable.getWriter();
  const reader = gz.readable.getReader();
  const pumped = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      chunks.push(value);
      size += value.byteLength;
      await cut(false);
    }
  })();
  // A failed part upload stops the pump; a write waiting on it must not wait forever.
  const failed = pumped.then(() => new Promise<never>(() => {}));
  failed.catch(() => {});
  const encoder = new TextEncoder();
  return {
    async write(text) {
      await Promise.race([writer.write(encoder.encode(text)), failed]);
    },
    async close() {
      await writer.close();
      await pumped;
      await cut(true);
      await upload.complete(parts);
    },
    async abort() {
      chunks = [];
      await writer.abort().catch(() => {});
      await upload.abort().catch(() => {});
    },
  };
}

export function r2ExportStore(bucket: R2Bucket): ExportStore {
  return {
    async manifest(window) {
      const object = await bucket.get(manifestKey(window));
      if (!object) return null;
      const manifest = JSON.parse(await object.text()) as ExportManifest;
      if (manifest.format !== EXPORT_FORMAT) throw new Error(`${manifestKey(window)} is no ${EXPORT_FORMAT} manifest`);
      return { manifest, version: object.etag };
    },
    async putFile(window, team, file, body) {
      await bucket.put(fileKey(window, team, file), body, { httpMetadata: { contentType: "application/x-ndjson" } });
    },
    openGzip: (window, team, file) => gzipSink(bucket, fileKey(window, team, file)),
    async putManifest(window, manifest, expected) {
      const written = await bucket.put(manifestKey(window), JSON.stringify(manifest), {
        onlyIf: expected === null ? IF_ABSENT : { etagMatches: expected },
        httpMetadata: { contentType: "application/json" },
      });
      return written !== null;
    },
    async windows(limit) {
      const windows: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await bucket.list({ prefix: "exports/", delimiter: "/", cursor });
        for (const p of page.delimitedPrefixes) windows.push(p.slice("exports/".length, -1));
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      return windows.sort().reverse().slice(0, limit);
    },
    async file(window, team, file) {
      const object = await bucket.get(fileKey(window, team, file));
      return object ? object.body : null;
    },
  };
}

// Which teams' ledgers took rows on a day: one empty object per (day, team),
//   export-teams/<YYYY-MM-DD>/<team>
// (outside exports/, whose first level is the windows). Written by the
// feature-events consumer after an ingest and by a history upload; the
// export lists the window's prefix. An isolate remembers what it wrote, so
// a busy team costs one put per isolate and day, not one per batch.
const activeKey = (day: string, team: string) => `export-teams/${day}/${team}`;
const markedHere = new Set<string>();
const MARKED_MAX = 10_000;

export function exportActivity(bucket: R2Bucket) {
  return {
    async mark(team: string, days: readonly number[]): Promise<void> {
      for (const day of days) {
        const key = activeKey(isoOf(day), team);
        if (markedHere.has(key)) continue;
        await bucket.put(key, "");
        if (markedHere.size >= MARKED_MAX) markedHere.clear();
        markedHere.add(key);
      }
    },
    async teams(window: string): Promise<string[]> {
      const prefix = `export-teams/${window}/`;
      const teams: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await bucket.list({ prefix, cursor });
        for (const o of page.objects) teams.push(o.key.slice(prefix.length));
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      return teams;
    },
  };
}

/**
 * One table of a team's ledger (history, then live events) up to `lastDay`,
 * read from its RecStore a bounded page per call.
 */
export async function* ledgerPages(
  env: Pick<Env, "REC_STORE">,
  team: string,
  lastDay: number,
  table: LedgerTable,
  pageRows = LEDGER_PAGE_MAX,
): AsyncGenerator<LiveRows> {
  const store = recStoreOf(env, team);
  let cursor: LedgerCursor | null = { table: `hist_${table}`, after: null };
  while (cursor && (cursor.table === `hist_${table}` || cursor.table === `live_${table}`)) {
    const page: { rows: LiveRows; next: LedgerCursor | null } = await store.ledgerExportPage(lastDay, cursor, pageRows);
    yield page.rows;
    cursor = page.next;
  }
}

/** The export's ports over the Worker's bindings: the rec-log bucket and each team's RecStore ledger. */
export function exportPortsFor(env: Pick<Env, "REC_LOG_STORE" | "REC_STORE">): ExportPorts {
  return {
    store: r2ExportStore(env.REC_LOG_STORE),
    logs: r2RecLogReader(env.REC_LOG_STORE),
    ledger: (team, lastDay, table) => ledgerPages(env, team, lastDay, table),
    activeTeams: (window) => exportActivity(env.REC_LOG_STORE).teams(window),
    now: () => systemClock.now(),
  };
}
