import type { FeatureRow, FeatureStore, SnapshotMeta } from "../src/recommend/feature-store";
import { bulkInsert, num } from "./portable-sql";
import type { SqlDriver } from "./sql-driver";

// FeatureStore on either engine. Publishing is one atomic unit that flips
// rec_current; the old snapshot's rows are deleted afterwards (a reader that
// is paging through them at that moment restarts from the new current one).

export function featureStore(db: SqlDriver): FeatureStore {
  const upsertCurrent =
    db.dialect === "sqlite"
      ? "INSERT INTO rec_current (team_id, snapshot_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (team_id) DO UPDATE SET snapshot_id = excluded.snapshot_id, updated_at = excluded.updated_at"
      : "INSERT INTO rec_current (team_id, snapshot_id, updated_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE snapshot_id = VALUES(snapshot_id), updated_at = VALUES(updated_at)";
  return {
    async createSnapshot(teamId, meta) {
      await db.run(
        "INSERT INTO rec_snapshots (team_id, snapshot_id, as_of, dataset, `rows`, created_at) VALUES (?, ?, ?, ?, 0, ?)",
        [teamId, meta.snapshotId, meta.asOf, meta.dataset, meta.createdAt],
      );
    },
    async appendRows(teamId, snapshotId, rows) {
      if (rows.length === 0) return;
      const statements = bulkInsert(
        db.dialect,
        "rec_feature_rows",
        ["team_id", "snapshot_id", "kind", "key", "data"],
        rows.map((r) => [teamId, snapshotId, r.kind, r.key, r.data]),
      );
      for (const s of statements) await db.run(s.sql, s.params);
    },
    async publishSnapshot(teamId, snapshotId, rows, now) {
      await db.atomic([
        {
          sql: "UPDATE rec_snapshots SET `rows` = ? WHERE team_id = ? AND snapshot_id = ?",
          params: [rows, teamId, snapshotId],
        },
        { sql: upsertCurrent, params: [teamId, snapshotId, now] },
      ]);
      await db.run("DELETE FROM rec_feature_rows WHERE team_id = ? AND snapshot_id <> ?", [teamId, snapshotId]);
      await db.run("DELETE FROM rec_snapshots WHERE team_id = ? AND snapshot_id <> ?", [teamId, snapshotId]);
    },
    async discardSnapshot(teamId, snapshotId) {
      const current = await db.all("SELECT snapshot_id FROM rec_current WHERE team_id = ?", [teamId]);
      if (current[0] && String(current[0].snapshot_id) === snapshotId) return;
      await db.run("DELETE FROM rec_feature_rows WHERE team_id = ? AND snapshot_id = ?", [teamId, snapshotId]);
      await db.run("DELETE FROM rec_snapshots WHERE team_id = ? AND snapshot_id = ?", [teamId, snapshotId]);
    },
    async current(teamId) {
      const rows = await db.all(
        `SELECT s.snapshot_id, s.as_of, s.dataset, s.\`rows\`, s.created_at FROM rec_current c
         JOIN rec_snapshots s ON s.team_id = c.team_id AND s.snapshot_id = c.snapshot_id WHERE c.team_id = ?`,
        [teamId],
      );
      const r = rows[0];
      if (!r) return null;
      const meta: SnapshotMeta = {
        snapshotId: String(r.snapshot_id),
        asOf: num(r.as_of),
        dataset: String(r.dataset),
        rows: num(r.rows),
        createdAt: num(r.created_at),
      };
      return meta;
    },
    async pageRows(teamId, snapshotId, after, limit) {
      const rows = after
        ? await db.all(
            `SELECT kind, \`key\`, data FROM rec_feature_rows WHERE team_id = ? AND snapshot_id = ?
             AND (kind > ? OR (kind = ? AND \`key\` > ?)) ORDER BY kind, \`key\` LIMIT ${Math.floor(limit)}`,
            [teamId, snapshotId, after.kind, after.kind, after.key],
          )
        : await db.all(
            `SELECT kind, \`key\`, data FROM rec_feature_rows WHERE team_id = ? AND snapshot_id = ? ORDER BY kind, \`key\` LIMIT ${Math.floor(limit)}`,
            [teamId, snapshotId],
          );
      return rows.map((r): FeatureRow => ({ kind: String(r.kind), key: String(r.key), data: String(r.data) }));
    },
  };
}
