import { DurableObject } from "cloudflare:workers";
import { driverFor } from "../../platform/deps";
import { type CandidateBlock, toBlock } from "../../src/recommend/candidate-block";
import type { FeatureStore, SnapshotMeta } from "../../src/recommend/feature-store";
import {
  FeatureTables,
  prepareSubject,
  type SubjectContext,
  snapshotFromRows,
} from "../../src/recommend/features/index";
import { CANDIDATES_PER_GENERATOR } from "../../src/recommend/features/spec";
import type { FeedbackCheck, ServedRequest } from "../../src/recommend/ports";
import { isSource } from "../../src/recommend/sources";
import { wholeVarOr } from "../../src/vars";
import { featureStore } from "../../storage/feature-store";
import { checkFeedback, migrateServed, recordServed, sweepServed } from "./served-log";

// One RecStore per team: the edge side of the recommenders. It keeps the
// team's current feature snapshot in its own SQLite (copied from the
// database's feature store when a new one is published, so an evicted object
// reopens without the database) and in memory while warm, so a request costs
// no database round trip per candidate. It also remembers what it served, for
// checking feedback.

/** Rows per page when copying a snapshot from the database. */
const COPY_PAGE = 5_000;
/** How often a warm object asks the database whether a newer snapshot was published. */
const RECHECK_MS = 60_000;
const SWEEP_MS = 24 * 3600 * 1000;
/** Generators propose at most this many each (a request's features and scoring grow with it). */
const MAX_PER_GENERATOR = 1000;

export interface RecStoreStats {
  snapshot: SnapshotMeta | null;
  rows: number;
  served: number;
  databaseBytes: number;
}

export class RecStore extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private checkedAt = 0;
  private meta: SnapshotMeta | null | undefined;
  private copying: Promise<void> | null = null;
  private k: number | undefined;
  /** The snapshot's tables, built from the rows on first use while warm. */
  private tables: { snapshotId: string; tables: FeatureTables } | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rows (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
    `);
    migrateServed(this.sql);
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

  override async alarm(): Promise<void> {
    sweepServed(this.sql, Date.now());
    await this.ctx.storage.setAlarm(Date.now() + SWEEP_MS);
  }

  async stats(): Promise<RecStoreStats> {
    return {
      snapshot: this.snapshot(),
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
    if (Date.now() - this.checkedAt < RECHECK_MS && this.snapshot()) return;
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

  private currentTables(): FeatureTables | null {
    const meta = this.snapshot();
    if (!meta) return null;
    if (this.tables?.snapshotId !== meta.snapshotId) {
      const rows = this.sql
        .exec<{ kind: string; key: string; data: string }>("SELECT kind, key, data FROM rows")
        .toArray();
      this.tables = { snapshotId: meta.snapshotId, tables: new FeatureTables(snapshotFromRows(rows)) };
    }
    return this.tables.tables;
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
