// The recommenders' feature store in the database: a team's count tables as
// of a cut day, as rows of (kind, key, JSON counts). ids and counts only,
// never text. A snapshot is written whole, then made current in one step, so
// a reader (the team's RecStore object) sees the old one or the new one,
// never a mix. The rows' meaning belongs to src/recommend/features/.

export interface FeatureRow {
  kind: string;
  key: string;
  /** JSON text. */
  data: string;
}

export interface SnapshotMeta {
  snapshotId: string;
  /** The cut, in days since 1970-01-01: counts cover days before it. */
  asOf: number;
  dataset: string;
  rows: number;
  createdAt: number;
}

/** The longest key and kind a row may have (the MySQL table's column widths, storage/schema/mysql.ts). */
export const MAX_ROW_KEY = 96;
export const MAX_ROW_KIND = 8;

export interface FeatureStore {
  /** Starts a snapshot (not visible to readers until published). */
  createSnapshot(teamId: string, meta: Omit<SnapshotMeta, "rows">): Promise<void>;
  /** Adds rows; a key written twice in one snapshot is an error. */
  appendRows(teamId: string, snapshotId: string, rows: readonly FeatureRow[]): Promise<void>;
  /** Makes the snapshot current, then drops every other snapshot of the team. */
  publishSnapshot(teamId: string, snapshotId: string, rows: number, now: number): Promise<void>;
  /** Drops an unpublished snapshot (a failed upload); the current one is never touched. */
  discardSnapshot(teamId: string, snapshotId: string): Promise<void>;
  current(teamId: string): Promise<SnapshotMeta | null>;
  /** Rows in (kind, key) order after a position, for paged loading. */
  pageRows(
    teamId: string,
    snapshotId: string,
    after: { kind: string; key: string } | null,
    limit: number,
  ): Promise<FeatureRow[]>;
}
