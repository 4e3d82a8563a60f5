import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { featureImportPortsFor } from "../../platform/recommend-deps";
import { mayAdminister } from "../../src/auth/policy";
import { unsupportedMedia } from "../../src/errors";
import { datasetNamed, importFeatureSnapshot, snapshotCut } from "../../src/recommend/feature-import";
import { authorize } from "../auth";
import { readNdjson } from "../ndjson";
import { bearer, errors, json, loose, pathId, routes } from "../openapi";

// POST /v1/admin/teams/:team/features/import?as_of=YYYY-MM-DD&dataset=<name>:
// a whole feature snapshot, NDJSON `{ kind, key, data }` a line (ids and
// counts only), imported and published by src/recommend/feature-import.ts.
// A bad line anywhere: 400, the old snapshot stays current.

const featureImport = createRoute({
  method: "post",
  path: "/teams/{team}/features/import",
  tags: ["recommend"],
  summary: "Import and publish a whole feature snapshot (NDJSON `{ kind, key, data }` a line)",
  security: bearer,
  request: {
    params: z.object({ team: pathId }),
    // Read by snapshotCut and datasetNamed, which refuse anything else with a 400.
    query: z.object({
      as_of: z.string().meta({ description: "the snapshot's cut, YYYY-MM-DD" }),
      dataset: z.string().meta({ description: "the dataset's name" }),
    }),
    body: {
      required: true,
      content: {
        "application/x-ndjson": { schema: { type: "string", description: "one `{ kind, key, data }` a line" } },
      },
    },
  },
  responses: { 201: json(loose({}), "the published snapshot's counts"), ...errors },
});

export const recommendFeatureRoutes = routes().openapi(featureImport, async (c) => {
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
