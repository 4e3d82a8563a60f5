import { Hono } from "hono";
import { featureImportPortsFor } from "../../platform/recommend-deps";
import { mayAdminister } from "../../src/auth/policy";
import { unsupportedMedia } from "../../src/errors";
import { datasetNamed, importFeatureSnapshot, snapshotCut } from "../../src/recommend/feature-import";
import { authorize } from "../auth";
import type { AppEnv } from "../http";
import { readNdjson } from "../ndjson";

// POST /v1/admin/teams/:team/features/import?as_of=YYYY-MM-DD&dataset=<name>:
// a whole feature snapshot, NDJSON `{ kind, key, data }` a line (ids and
// counts only), imported and published by src/recommend/feature-import.ts.
// A bad line anywhere: 400, the old snapshot stays current.

export const recommendFeatureRoutes = new Hono<AppEnv>().post("/teams/:team/features/import", async (c) => {
  const team = c.req.param("team");
  await authorize(c, (p) => mayAdminister(p, team));
  const asOf = snapshotCut(c.req.query("as_of") ?? "");
  const dataset = datasetNamed(c.req.query("dataset") ?? "");
  const body = c.req.raw.body;
  if (!(c.req.header("content-type") ?? "").includes("ndjson") || !body) {
    throw unsupportedMedia("send the rows as application/x-ndjson");
  }
  const request = { team, asOf, dataset, lines: readNdjson(body) };
  return c.json(await importFeatureSnapshot(featureImportPortsFor(c.env), request), 201);
});
