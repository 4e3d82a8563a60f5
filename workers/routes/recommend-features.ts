import { Hono } from "hono";
import { driverFor } from "../../platform/deps";
import { recStoreOf } from "../../platform/stubs";
import { mayAdminister } from "../../src/auth/policy";
import { dayOf, isoOf } from "../../src/datasets/collab";
import { badRequest, DomainError, invalidBody, tooLarge, unsupportedMedia } from "../../src/errors";
import { parseFeatureRow } from "../../src/recommend/feature-rows";
import type { FeatureRow } from "../../src/recommend/feature-store";
import { UniqueViolation } from "../../src/unique-violation";
import { featureStore } from "../../storage/feature-store";
import { authorize } from "../auth";
import type { AppEnv } from "../http";
import { readNdjson } from "../ndjson";

// POST /v1/admin/teams/:team/features/import?as_of=YYYY-MM-DD&dataset=<name>:
// a whole feature snapshot, NDJSON `{ kind, key, data }` a line (ids and
// counts only). Rows are streamed into an unpublished snapshot; only a
// complete, valid upload is published, replacing the previous one, and the
// team's RecStore is told to copy it. A bad line anywhere: 400, the old
// snapshot stays current.

const APPEND_BATCH = 2_000;
export const MAX_SNAPSHOT_ROWS = 5_000_000;

export const recommendFeatureRoutes = new Hono<AppEnv>().post("/teams/:team/features/import", async (c) => {
  const teamId = c.req.param("team");
  await authorize(c, (p) => mayAdminister(p, teamId));
  const asOfText = c.req.query("as_of") ?? "";
  let asOf: number;
  try {
    asOf = dayOf(asOfText);
  } catch {
    throw badRequest("as_of must be the snapshot's cut date, YYYY-MM-DD");
  }
  const dataset = c.req.query("dataset") ?? "";
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(dataset)) throw badRequest("dataset must be a short name");
  if (!(c.req.header("content-type") ?? "").includes("ndjson") || !c.req.raw.body) {
    throw unsupportedMedia("send the rows as application/x-ndjson");
  }
  const store = featureStore(driverFor(c.env));
  const snapshotId = `${isoOf(asOf)}.${crypto.randomUUID().slice(0, 8)}`;
  await store.createSnapshot(teamId, { snapshotId, asOf, dataset, createdAt: Date.now() });
  let batch: FeatureRow[] = [];
  let rows = 0;
  const fail = async (error: DomainError): Promise<never> => {
    // Unpublished rows are invisible; drop them now rather than at the next publish.
    await store.discardSnapshot(teamId, snapshotId).catch((e) => console.error("discarding a failed snapshot", e));
    throw error;
  };
  try {
    for await (const { line, value, error } of readNdjson(c.req.raw.body)) {
      const parsed = error ? { ok: false as const, message: error } : parseFeatureRow(value);
      if (!parsed.ok) await fail(invalidBody(`line ${line}: ${parsed.message}; nothing was imported`, { line }));
      else batch.push(parsed.value);
      if (++rows > MAX_SNAPSHOT_ROWS) await fail(tooLarge(`at most ${MAX_SNAPSHOT_ROWS} rows per snapshot`));
      if (batch.length >= APPEND_BATCH) {
        await store.appendRows(teamId, snapshotId, batch);
        batch = [];
      }
    }
    await store.appendRows(teamId, snapshotId, batch);
  } catch (error) {
    if (error instanceof DomainError) throw error;
    if (error instanceof UniqueViolation) await fail(invalidBody("a (kind, key) appears twice; nothing was imported"));
    throw error;
  }
  if (rows === 0) await fail(invalidBody("empty snapshot; nothing was imported"));
  await store.publishSnapshot(teamId, snapshotId, rows, Date.now());
  const recStore = recStoreOf(c.env, teamId);
  await recStore.reload(teamId).catch((e) => console.error(`rec store ${teamId} reload failed; it rechecks`, e));
  return c.json({ snapshot_id: snapshotId, as_of: isoOf(asOf), dataset, rows }, 201);
});
