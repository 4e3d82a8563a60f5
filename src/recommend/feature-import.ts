import type { Clock } from "../clock";
import { dayOf, isoOf } from "../datasets/collab";
import { badRequest, DomainError, invalidBody, tooLarge } from "../errors";
import { UniqueViolation } from "../unique-violation";
import { parseFeatureRow } from "./feature-rows";
import type { FeatureRow, FeatureStore } from "./feature-store";

// Importing a team's feature snapshot: NDJSON `{ kind, key, data }` a line
// (ids and counts only). Rows are streamed into an unpublished snapshot; only
// a complete, valid upload is published, replacing the previous one, and the
// team's RecStore is told to copy it. A bad line anywhere: invalid, and the
// old snapshot stays current.

const APPEND_BATCH = 2_000;
export const MAX_SNAPSHOT_ROWS = 5_000_000;

export interface FeatureImportPorts {
  store: FeatureStore;
  /** Tells the team's edge copy (its RecStore) that a snapshot was published; it rechecks on its own too. */
  published(team: string): Promise<unknown>;
  clock: Clock;
}

/** One line of the upload, parsed as JSON (1-based line numbers) or why it is not JSON. */
export interface SnapshotLine {
  line: number;
  value?: unknown;
  error?: string;
}

export interface FeatureImportRequest {
  team: string;
  /** The snapshot's cut (snapshotCut). */
  asOf: number;
  /** The dataset's name (datasetNamed). */
  dataset: string;
  lines: AsyncIterable<SnapshotLine>;
}

/** The cut an `as_of` names (YYYY-MM-DD), in days since 1970-01-01. */
export function snapshotCut(text: string): number {
  try {
    return dayOf(text);
  } catch {
    throw badRequest("as_of must be the snapshot's cut date, YYYY-MM-DD");
  }
}

export function datasetNamed(text: string): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(text)) throw badRequest("dataset must be a short name");
  return text;
}

/** Imports and publishes a whole snapshot; answers what was published. */
export async function importFeatureSnapshot(ports: FeatureImportPorts, request: FeatureImportRequest) {
  const { store, clock } = ports;
  const { team, asOf, dataset } = request;
  const snapshotId = `${isoOf(asOf)}.${crypto.randomUUID().slice(0, 8)}`;
  await store.createSnapshot(team, { snapshotId, asOf, dataset, createdAt: clock.now() });
  let batch: FeatureRow[] = [];
  let rows = 0;
  const fail = async (error: DomainError): Promise<never> => {
    // Unpublished rows are invisible; drop them now rather than at the next publish.
    await store.discardSnapshot(team, snapshotId).catch((e) => console.error("discarding a failed snapshot", e));
    throw error;
  };
  try {
    for await (const { line, value, error } of request.lines) {
      const parsed = error ? { ok: false as const, message: error } : parseFeatureRow(value);
      if (!parsed.ok) await fail(invalidBody(`line ${line}: ${parsed.message}; nothing was imported`, { line }));
      else batch.push(parsed.value);
      if (++rows > MAX_SNAPSHOT_ROWS) await fail(tooLarge(`at most ${MAX_SNAPSHOT_ROWS} rows per snapshot`));
      if (batch.length >= APPEND_BATCH) {
        await store.appendRows(team, snapshotId, batch);
        batch = [];
      }
    }
    await store.appendRows(team, snapshotId, batch);
  } catch (error) {
    if (error instanceof DomainError) throw error;
    if (error instanceof UniqueViolation) await fail(invalidBody("a (kind, key) appears twice; nothing was imported"));
    throw error;
  }
  if (rows === 0) await fail(invalidBody("empty snapshot; nothing was imported"));
  await store.publishSnapshot(team, snapshotId, rows, clock.now());
  await ports.published(team).catch((e) => console.error(`rec store ${team} reload failed; it rechecks`, e));
  return { snapshot_id: snapshotId, as_of: isoOf(asOf), dataset, rows };
}
