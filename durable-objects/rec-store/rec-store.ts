import { DurableObject } from "cloudflare:workers";
import { driverFor } from "../../platform/deps";
import { type CandidateBlock, toBlock } from "../../src/recommend/candidate-block";
import { LEDGER_PAGE_MAX, type LedgerCursor } from "../../src/recommend/export";
import type { FeatureRow, FeatureStore, SnapshotMeta } from "../../src/recommend/feature-store";
import {
  FeatureTables,
  prepareSubject,
  type SubjectContext,
  snapshotFromRows,
} from "../../src/recommend/features/index";
import { snapshotToRows } from "../../src/recommend/features/rows";
import { CANDIDATES_PER_GENERATOR } from "../../src/recommend/features/spec";
import type { LiveBuild, LiveBuildOutcome, LiveIngest, LiveSnapshotMeta } from "../../src/recommend/live-features";
import { type DirtySet, livePatch } from "../../src/recommend/live-incremental";
import {
  buildLiveSnapshotFrom,
  type FeatureEvent,
  type LedgerTooLarge,
  LIVE_BUILD_MAX_ROWS,
  LIVE_SNAPSHOT_MAX_ROWS,
  type LiveRows,
  type LiveVectors,
} from "../../src/recommend/live-rows";
import type { FeedbackCheck, ServedRequest } from "../../src/recommend/ports";
import { isSource } from "../../src/recommend/sources";
import { wholeVarOr } from "../../src/vars";
import { featureStore } from "../../storage/feature-store";
import {
  appendHistory,
  beginHistory,
  clearDirty,
  dirtySet,
  discardHistory,
  hasHistory,
  ingest,
  ledgerCounts,
  ledgerLastDay,
  ledgerPage,
  ledgerRowsAround,
  ledgerSize,
  ledgerSource,
  migrateLedger,
  publishHistory,
  sweepSeen,
  sweepUploads,
} from "./live-ledger";
import { checkFeedback, migrateServed, recordServed, sweepServed } from "./served-log";

// One RecStore per team: the edge side of the recommenders. It keeps the
// team's current feature snapshot in its own SQLite (copied from the
// database's feature store when a new one is published, so an evicted object
// reopens without the database) and in memory while warm, so a request costs
// no database round trip per candidate. It also remembers what it served, for
// checking feedback.
//
// Live features (docs/recommendations.md "Live features"): the team's own
// events reach it through the feature-events queue and are summed in its
// activity ledger (live-ledger.ts); a rebuild, coalesced on an alarm at most
// once every REC_LIVE_REBUILD_SECONDS (or asked for by the rebuild route),
// turns the ledger into a snapshot with the import path's own builder. The
// live snapshot is served when the team has no imported count snapshot, or
// when its raw history is in the ledger too and the imported one is not
// newer (serving() says why).

/** Rows per page when copying a snapshot from the database. */
const COPY_PAGE = 5_000;
/** How often a warm object asks the database whether a newer snapshot was published. */
const RECHECK_MS = 60_000;
const SWEEP_MS = 24 * 3600 * 1000;
/** Generators propose at most this many each (a request's features and scoring grow with it). */
const MAX_PER_GENERATOR = 1000;
/** Default seconds between live rebuilds (REC_LIVE_REBUILD_SECONDS). */
const LIVE_REBUILD_SECONDS = 60;

export interface RecStoreStats {
  snapshot: SnapshotMeta | null;
  /** The snapshot built from the ledger, and which one requests are served from. */
  live: LiveSnapshotMeta | null;
  serving: "imported" | "live" | null;
  ledger: ReturnType<typeof ledgerCounts>;
  rows: number;
  served: number;
  databaseBytes: number;
}

/** Thrown inside the publish transaction to roll it back. */
class HistoryRefused extends Error {
  constructor(readonly refused: LedgerTooLarge) {
    super("history refused");
  }
}

export class RecStore extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private checkedAt = 0;
  private meta: SnapshotMeta | null | undefined;
  private copying: Promise<void> | null = null;
  private k: number | undefined;
  /** The snapshot's tables, built from the rows on first use while warm. */
  private tables: { snapshotId: string; tables: FeatureTables } | null = null;
  private liveMeta: LiveSnapshotMeta | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rows (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
    `);
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS live_rows (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID",
    );
    migrateServed(this.sql);
    migrateLedger(this.sql);
  }

  /** A new snapshot was published: copy it now rather than at the next recheck. */
  async reload(teamId: string): Promise<SnapshotMeta | null> {
    this.checkedAt = 0;
    await this.ensureSnapshot(teamId);
    return this.snapshot();
  }

  /**
   * A source's candidates for a subject with their features, from the team's
   * current snapshot (features/: the offline pipeline's generators and
   * features). A subject the snapshot does not know gets the cold-start
   * candidates. No snapshot at all is an error naming how to upload one.
   */
  async candidates(
    teamId: string,
    source: string,
    subject: string,
    context: Readonly<Record<string, unknown>>,
  ): Promise<CandidateBlock> {
    if (!isSource(source)) throw new Error(`unknown source ${source}`);
    await this.ensureSnapshot(teamId);
    const tables = this.currentTables();
    if (!tables) {
      throw new Error(
        `no feature snapshot for team ${teamId}: upload one (POST /v1/admin/teams/${teamId}/features/import, or npm run import-dataset)`,
      );
    }
    const prepared = prepareSubject(tables, source, subject, subjectContext(context));
    const candidates = prepared.candidates(this.perGenerator());
    const features = prepared.features(candidates.map((c) => c.id));
    // A block, not records: see candidate-block.ts.
    return toBlock(candidates.map((c, i) => ({ id: c.id, features: features[i] ?? {} })));
  }

  async recordServed(request: ServedRequest): Promise<void> {
    recordServed(this.sql, request);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + SWEEP_MS);
  }

  async checkFeedback(requestId: string, user: string, items: string[]): Promise<FeedbackCheck> {
    return checkFeedback(this.sql, requestId, user, items);
  }

  /**
   * Events of this team from the feature-events queue, into the ledger, each
   * id once (live-ledger.ts); schedules a coalesced rebuild. An event of
   * another team is refused here too (the consumer routes by the event's
   * team; this object is named by team), never counted.
   */
  async ingestEvents(teamId: string, events: FeatureEvent[]): Promise<LiveIngest> {
    const mine = events.filter((e) => e.team === teamId);
    const foreign = events.length - mine.length;
    if (foreign > 0) console.error(`rec store ${teamId}: dropped ${foreign} event(s) of another team`);
    const now = Date.now();
    const outcome = this.ctx.storage.transactionSync(() => {
      const o = ingest(this.sql, mine, now);
      if (o.added > 0) this.setMeta("ledger", { lastEventAt: now, team: teamId });
      return o;
    });
    if (outcome.added > 0) await this.scheduleRebuild(now);
    return { ...outcome, foreign };
  }

  /**
   * Builds the live snapshot from the ledger: in full (the rebuild route, a
   * history upload), or, for the alarm, only the rows the events since the
   * last build changed when that gives the same snapshot
   * (src/recommend/live-incremental.ts). Null when the ledger has no rows.
   */
  async rebuildLive(teamId: string, how: LiveBuild = "full"): Promise<LiveBuildOutcome> {
    const vectorsFrom = this.snapshot()?.snapshotId ?? null;
    if (how === "changed") {
      const patched = this.patchLive(teamId, vectorsFrom);
      if (patched !== undefined) return { live: patched, refused: null };
    }
    // Past what one build can read in time or hold in memory, a full build is
    // refused (the last snapshot keeps serving) rather than taking the object
    // down on every alarm.
    const refused = this.tooLarge();
    if (refused) {
      console.error(JSON.stringify({ rec_store: teamId, live_rebuild_refused: refused }));
      return { live: this.live(), refused };
    }
    // Imported history and live events: one set of rows (the builder sums a key seen in both),
    // read a page at a time.
    const lastDay = ledgerLastDay(this.sql);
    if (lastDay === null) return { live: null, refused: null };
    const cut = lastDay + 1;
    const builtAt = Date.now();
    const snapshot = buildLiveSnapshotFrom("live", ledgerSource(this.sql), cut, this.importedVectors());
    const featureRows = snapshotToRows(snapshot);
    const meta = this.liveMetaOf(
      builtAt,
      cut,
      featureRows.length,
      snapshot.users.length,
      snapshot.channels.length,
      "full",
    );
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM live_rows");
      this.writeLiveRows(featureRows);
      clearDirty(this.sql);
      meta.ms = Date.now() - builtAt;
      this.setMeta("live", meta);
      this.setMeta("live_basis", { vectorsFrom });
    });
    return { live: this.built(teamId, meta), refused: null };
  }

  /**
   * The incremental build: the marked users' and channels' rows recomputed
   * from their ledger rows and written over the stored ones. Undefined when
   * it cannot give what a full build would (no build yet, a new cut, other
   * embedding vectors, a new id that moves the order): the caller builds in
   * full. Synchronous from the first read to the commit, so no event lands
   * between what was read and what is cleared.
   */
  private patchLive(teamId: string, vectorsFrom: string | null): LiveSnapshotMeta | null | undefined {
    const prev = this.live();
    const basis = this.getMeta<{ vectorsFrom: string | null }>("live_basis");
    if (!prev || !basis || basis.vectorsFrom !== vectorsFrom) return undefined;
    const lastDay = ledgerLastDay(this.sql);
    if (lastDay === null || lastDay + 1 !== prev.cut) return undefined;
    const dirty = dirtySet(this.sql);
    if (dirty.users.size === 0 && dirty.channels.size === 0) return prev;
    const builtAt = Date.now();
    const keys = (kind: string) =>
      this.sql
        .exec<{ key: string }>("SELECT key FROM live_rows WHERE kind = ?", kind)
        .toArray()
        .map((r) => r.key);
    const patch = livePatch(ledgerRowsAround(this.sql, prev.cut), prev.cut, this.importedVectors(dirty), dirty, {
      users: keys("user"),
      channels: keys("channel"),
    });
    if (!patch) return undefined;
    const meta = this.liveMetaOf(builtAt, prev.cut, 0, patch.users, patch.channels, "changed");
    this.ctx.storage.transactionSync(() => {
      this.writeLiveRows(patch.rows);
      clearDirty(this.sql);
      meta.rows = Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM live_rows").one().n);
      meta.ms = Date.now() - builtAt;
      this.setMeta("live", meta);
    });
    return this.built(teamId, meta, patch.rows.length);
  }

  /** Whether the ledger is past what one full build takes (live-rows.ts LIVE_BUILD_MAX_ROWS, LIVE_SNAPSHOT_MAX_ROWS). */
  private tooLarge(): LedgerTooLarge | null {
    const max = wholeVarOr("REC_LIVE_MAX_ROWS", this.env.REC_LIVE_MAX_ROWS, LIVE_BUILD_MAX_ROWS, LIVE_BUILD_MAX_ROWS);
    const size = ledgerSize(this.sql);
    if (size.rows <= max && size.features <= LIVE_SNAPSHOT_MAX_ROWS) return null;
    return { ...size, max, maxFeatures: LIVE_SNAPSHOT_MAX_ROWS };
  }

  private liveMetaOf(
    builtAt: number,
    cut: number,
    rows: number,
    users: number,
    channels: number,
    build: LiveBuild,
  ): LiveSnapshotMeta {
    return {
      snapshotId: `live.${builtAt}.${crypto.randomUUID().slice(0, 8)}`,
      cut,
      rows,
      users,
      channels,
      builtAt,
      lastEventAt: this.getMeta<{ lastEventAt: number }>("ledger")?.lastEventAt ?? builtAt,
      ms: 0,
      build,
    };
  }

  /** Inserts or replaces rows (kind, key), a page per statement. */
  private writeLiveRows(rows: readonly FeatureRow[]): void {
    for (let i = 0; i < rows.length; i += COPY_PAGE) {
      this.sql.exec(
        "INSERT OR REPLACE INTO live_rows (kind, key, data) SELECT j.value->>0, j.value->>1, j.value->>2 FROM json_each(?) AS j",
        JSON.stringify(rows.slice(i, i + COPY_PAGE).map((r) => [r.kind, r.key, r.data])),
      );
    }
  }

  private built(teamId: string, meta: LiveSnapshotMeta, written?: number) {
    this.liveMeta = meta;
    console.log(JSON.stringify({ rec_store: teamId, live_rebuild: { ...meta, written: written ?? meta.rows } }));
    return meta;
  }

  /**
   * The ledger's rows (imported history and live events) of days up to
   * `lastDay`, as a rebuild reads them: the scheduled export for retraining
   * (src/recommend/export.ts). This object is named by its team, so these are
   * that team's rows only.
   */
  /**
   * A page of the ledger (history, then live events) of days up to
   * `lastDay`, for the retraining export: pages keep each call's answer
   * bounded whatever the team's size (platform/rec-export-store.ts reads on
   * until `next` is null).
   */
  async ledgerExportPage(
    lastDay: number,
    cursor: LedgerCursor | null,
    limit: number,
  ): Promise<{ rows: LiveRows; next: LedgerCursor | null }> {
    return ledgerPage(this.sql, lastDay, cursor, Math.max(1, Math.min(limit, LEDGER_PAGE_MAX)));
  }

  // --- an imported history (src/recommend/live-history.ts) ---------------------

  async beginHistory(): Promise<string> {
    const upload = crypto.randomUUID();
    beginHistory(this.sql, upload, Date.now());
    return upload;
  }

  async appendHistory(upload: string, rows: LiveRows): Promise<void> {
    this.ctx.storage.transactionSync(() => appendHistory(this.sql, upload, rows));
  }

  async discardHistory(upload: string): Promise<void> {
    discardHistory(this.sql, upload);
  }

  /**
   * Replaces the team's history with the upload and rebuilds at once. The
   * history counts as new data (like an event) for the precedence over an
   * imported count snapshot.
   */
  async publishHistory(teamId: string, upload: string): Promise<{ rows: number } | { refused: LedgerTooLarge }> {
    const now = Date.now();
    // Published, measured, and rolled back when a build could not take it:
    // then nothing changed but the upload, which is discarded.
    let rows: number;
    try {
      rows = this.ctx.storage.transactionSync(() => {
        const n = publishHistory(this.sql, upload);
        const refused = this.tooLarge();
        if (refused) throw new HistoryRefused(refused);
        this.setMeta("ledger", { lastEventAt: now, team: teamId });
        // The history's rows are marked nowhere: until a full build has
        // taken them (the one below, or, should the object stop before it,
        // the next), no build may patch the old snapshot.
        this.sql.exec("DELETE FROM meta WHERE key = 'live_basis'");
        return n;
      });
    } catch (error) {
      if (!(error instanceof HistoryRefused)) throw error;
      discardHistory(this.sql, upload);
      return { refused: error.refused };
    }
    await this.importedCopied(teamId);
    await this.rebuildLive(teamId);
    return { rows };
  }

  /** The imported snapshot is current here (its vectors go into a live build); a failed check keeps what is here. */
  private async importedCopied(teamId: string): Promise<void> {
    await this.ensureSnapshot(teamId).catch((e) =>
      console.error(`rec store ${teamId}: imported snapshot check failed`, e),
    );
  }

  /** The rebuild route: the imported snapshot rechecked, the live one built now (or refused); which one is served. */
  async rebuildNow(
    teamId: string,
    build: LiveBuild = "full",
  ): Promise<LiveBuildOutcome & { serving: "imported" | "live" | null }> {
    this.checkedAt = 0;
    await this.ensureSnapshot(teamId);
    const outcome = await this.rebuildLive(teamId, build);
    return { ...outcome, serving: this.serving() };
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    const due = this.getMeta<{ rebuildAt?: number | null; sweepAt?: number | null }>("alarms") ?? {};
    let rebuildAt = due.rebuildAt ?? null;
    let sweepAt = due.sweepAt ?? null;
    // A pending rebuild runs at whichever alarm fires first: the alarm is
    // always set to the earliest due time, so this is its own or a later one.
    if (rebuildAt !== null) {
      rebuildAt = null;
      // The team id (the object is named by it; ingest kept it) names the log
      // line and the database's imported snapshot, whose vectors the build carries.
      const team = this.getMeta<{ team?: string }>("ledger")?.team;
      if (team) await this.importedCopied(team);
      await this.rebuildLive(team ?? "?", "changed");
    }
    if (sweepAt === null || sweepAt <= now) {
      sweepServed(this.sql, now);
      sweepSeen(this.sql, now);
      sweepUploads(this.sql, now);
      sweepAt = now + SWEEP_MS;
    }
    this.setMeta("alarms", { rebuildAt, sweepAt });
    await this.ctx.storage.setAlarm(Math.min(sweepAt, rebuildAt ?? Number.POSITIVE_INFINITY));
  }

  async stats(): Promise<RecStoreStats> {
    return {
      snapshot: this.snapshot(),
      live: this.live(),
      serving: this.serving(),
      ledger: ledgerCounts(this.sql),
      rows: Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM rows").one().n),
      served: Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM served").one().n),
      databaseBytes: this.sql.databaseSize,
    };
  }

  /** REC_CANDIDATES_PER_GENERATOR, read once; a bad value falls back to the pipeline's k (logged). */
  private perGenerator(): number {
    this.k ??= wholeVarOr(
      "REC_CANDIDATES_PER_GENERATOR",
      this.env.REC_CANDIDATES_PER_GENERATOR,
      CANDIDATES_PER_GENERATOR,
      MAX_PER_GENERATOR,
    );
    return this.k;
  }

  // --- the snapshot -----------------------------------------------------------

  /** The team's current snapshot is here (copied if the database has a newer one); rechecked at most every RECHECK_MS. */
  private async ensureSnapshot(teamId: string): Promise<void> {
    if (Date.now() - this.checkedAt < RECHECK_MS && (this.snapshot() || this.live())) return;
    this.copying ??= this.refresh(teamId).finally(() => {
      this.copying = null;
    });
    await this.copying;
  }

  /** The current snapshot's meta, read from SQLite once per instance (every request asks). */
  private snapshot(): SnapshotMeta | null {
    if (this.meta === undefined) {
      const raw = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'snapshot'").toArray()[0];
      this.meta = raw ? (JSON.parse(raw.value) as SnapshotMeta) : null;
    }
    return this.meta;
  }

  /** The live snapshot's meta, read once per instance. */
  private live(): LiveSnapshotMeta | null {
    if (this.liveMeta === undefined) this.liveMeta = this.getMeta<LiveSnapshotMeta>("live");
    return this.liveMeta;
  }

  /**
   * Which snapshot requests read: the live one, unless the team has an
   * imported one published after the ledger's latest event (an import
   * replaces what the ledger knew; the next event makes the live one newer).
   */
  /**
   * Which snapshot requests read. An imported count snapshot covers a team's
   * whole past, and its windows are fixed to its own cut, so live events
   * cannot be added to it: a live snapshot built from a few days of events
   * alone would replace years of history with almost nothing. So the live
   * one is served only when it holds the team's past too (a raw history was
   * uploaded into the ledger: POST …/features/history) or when nothing was
   * imported; then the newer of the two wins (an imported snapshot published
   * after the ledger's latest event or history).
   */
  private serving(): "imported" | "live" | null {
    const imported = this.snapshot();
    const live = this.live();
    if (!live) return imported ? "imported" : null;
    if (!imported) return "live";
    if (!hasHistory(this.sql)) return "imported";
    return imported.createdAt <= live.lastEventAt ? "live" : "imported";
  }

  private currentTables(): FeatureTables | null {
    const which = this.serving();
    if (!which) return null;
    const snapshotId = which === "live" ? this.live()?.snapshotId : this.snapshot()?.snapshotId;
    if (!snapshotId) return null;
    if (this.tables?.snapshotId !== snapshotId) {
      const table = which === "live" ? "live_rows" : "rows";
      const rows = this.sql
        .exec<{ kind: string; key: string; data: string }>(`SELECT kind, key, data FROM ${table}`)
        .toArray();
      this.tables = { snapshotId, tables: new FeatureTables(snapshotFromRows(rows)) };
    }
    return this.tables.tables;
  }

  /**
   * The imported snapshot's embedding vectors, by platform id: the SVD is
   * trained offline (FEATURES.md section 3), so a live snapshot carries the
   * vectors the team's import has for the ids it knows; a user or channel new
   * since then has none (its cosines are 0, as for any id without a vector).
   * Rows that are not a snapshot's (a hand-made upload) give none.
   */
  private importedVectors(only?: DirtySet): LiveVectors {
    const users = new Map<string, number[]>();
    const channels = new Map<string, number[]>();
    let dims = 0;
    let cut: string | undefined;
    try {
      for (const r of this.sql
        .exec<{ kind: string; key: string; data: string }>(
          "SELECT kind, key, data FROM rows WHERE kind IN ('meta', 'user', 'channel')",
        )
        .toArray()) {
        // An incremental build needs the marked ids' vectors only: skip parsing the rest.
        if (only && r.kind !== "meta" && !(r.kind === "user" ? only.users : only.channels).has(r.key)) continue;
        const data = JSON.parse(r.data) as { v?: unknown; dims?: unknown; embeddingCut?: unknown };
        if (r.kind === "meta") {
          if (typeof data.dims === "number") dims = data.dims;
          if (typeof data.embeddingCut === "string") cut = data.embeddingCut;
        } else if (Array.isArray(data.v) && data.v.every((x) => typeof x === "number")) {
          (r.kind === "user" ? users : channels).set(r.key, data.v as number[]);
        }
      }
    } catch (error) {
      console.error("imported vectors unreadable; the live snapshot has none", error);
      return { dims: 0, users: new Map(), channels: new Map() };
    }
    return { dims, ...(cut ? { cut } : {}), users, channels };
  }

  /** At most one rebuild per REC_LIVE_REBUILD_SECONDS: the first event after a rebuild sets it, the rest ride along. */
  private async scheduleRebuild(now: number): Promise<void> {
    const due = this.getMeta<{ rebuildAt?: number | null; sweepAt?: number | null }>("alarms") ?? {};
    if (due.rebuildAt != null) return;
    const seconds = wholeVarOr(
      "REC_LIVE_REBUILD_SECONDS",
      this.env.REC_LIVE_REBUILD_SECONDS,
      LIVE_REBUILD_SECONDS,
      24 * 3600,
    );
    const rebuildAt = now + seconds * 1000;
    this.setMeta("alarms", { ...due, rebuildAt });
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > rebuildAt) await this.ctx.storage.setAlarm(rebuildAt);
  }

  private getMeta<T>(key: string): T | null {
    const raw = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return raw ? (JSON.parse(raw.value) as T) : null;
  }

  private setMeta(key: string, value: unknown): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, JSON.stringify(value));
  }

  private async refresh(teamId: string): Promise<void> {
    const store = this.store();
    const current = await store.current(teamId);
    this.checkedAt = Date.now();
    const mine = this.snapshot();
    if (!current || mine?.snapshotId === current.snapshotId) return;
    // Copied into a staging table and swapped in one synchronous step, so a
    // request never sees half a snapshot.
    this.sql.exec("DROP TABLE IF EXISTS staging");
    this.sql.exec(
      "CREATE TABLE staging (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID",
    );
    let after: { kind: string; key: string } | null = null;
    let copied = 0;
    for (;;) {
      const page = await store.pageRows(teamId, current.snapshotId, after, COPY_PAGE);
      if (page.length > 0) {
        this.sql.exec(
          "INSERT INTO staging (kind, key, data) SELECT j.value->>0, j.value->>1, j.value->>2 FROM json_each(?) AS j",
          JSON.stringify(page.map((r) => [r.kind, r.key, r.data])),
        );
        copied += page.length;
      }
      const last = page.at(-1);
      if (!last || page.length < COPY_PAGE) break;
      after = { kind: last.kind, key: last.key };
    }
    if (copied !== current.rows) {
      // Published again while we copied: the next request copies the newer one.
      this.checkedAt = 0;
      if ((await store.current(teamId))?.snapshotId !== current.snapshotId) return;
    }
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM rows");
      this.sql.exec("INSERT INTO rows SELECT kind, key, data FROM staging");
      this.sql.exec("DROP TABLE staging");
      this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('snapshot', ?)", JSON.stringify(current));
    });
    this.meta = current;
  }

  private store(): FeatureStore {
    return featureStore(driverFor(this.env));
  }
}

const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;

/** The route's validated context, as the feature code names it. */
function subjectContext(context: Readonly<Record<string, unknown>>): SubjectContext {
  const out: SubjectContext = {};
  const members = strings(context.members);
  if (members && members.length > 0) out.conversation = members;
  const channels = strings(context.channels);
  if (channels) out.firstDayChannels = channels;
  const partners = strings(context.partners);
  if (partners) out.firstDayPartners = partners;
  return out;
}
