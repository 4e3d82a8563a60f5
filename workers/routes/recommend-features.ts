import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { historyPorts, liveFeatureStore } from "../../platform/live-features-deps";
import { featureImportPortsFor } from "../../platform/recommend-deps";
import { mayAdminister } from "../../src/auth/policy";
import { unsupportedMedia } from "../../src/errors";
import { datasetNamed, importFeatureSnapshot, snapshotCut } from "../../src/recommend/feature-import";
import { rebuildLiveFeatures } from "../../src/recommend/live-features";
import { importHistory } from "../../src/recommend/live-history";
import { authorize } from "../auth";
import { readNdjson } from "../ndjson";
import { bearer, errors, json, loose, pathId, routes } from "../openapi";

// POST /v1/admin/teams/:team/features/import?as_of=YYYY-MM-DD&dataset=<name>:
// a whole feature snapshot, NDJSON `{ kind, key, data }` a line (ids and
// counts only), imported and published by src/recommend/feature-import.ts.
// A bad line anywhere: 400, the old snapshot stays current.
// POST /v1/admin/teams/:team/features/rebuild: builds the team's live
// snapshot from its activity ledger now (src/recommend/live-features.ts),
// instead of at the next coalesced rebuild.
// POST /v1/admin/teams/:team/features/history: the team's history as raw
// rows (activity, interactions, hours; src/recommend/live-history.ts) into
// the same ledger, replacing the previous history; rebuilt at once.

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

const LiveSnapshot = z.object({
  snapshot_id: z.string(),
  cut: z.string(),
  rows: z.number(),
  users: z.number(),
  channels: z.number(),
  built_at: z.string(),
  last_event_at: z.string(),
  ms: z.number(),
  build: z.enum(["full", "changed"]),
});

const featureRebuild = createRoute({
  method: "post",
  path: "/teams/{team}/features/rebuild",
  tags: ["recommend"],
  summary: "Build the team's live feature snapshot from its activity ledger now",
  description:
    "The team's admins. By default only the rows the events since the last build changed are rebuilt, whenever that gives what a full build would (else it builds in full); `build=full` rebuilds everything from the ledger. A full build of a ledger past what one build takes (REC_LIVE_MAX_ROWS ledger rows, at most 2,000,000; about 130,000 feature rows in memory) is refused with 409 and the last snapshot keeps serving. `live` is null when the ledger has no rows yet; `serving` says which snapshot requests read (the live one unless an imported one was published after the ledger's latest event).",
  security: bearer,
  request: {
    params: z.object({ team: pathId }),
    query: z.object({
      build: z
        .enum(["full", "changed"])
        .optional()
        .meta({ description: "`changed` (default): the rows new events changed, when possible; `full`: everything" }),
    }),
  },
  responses: {
    200: json(
      z.object({ live: LiveSnapshot.nullable(), serving: z.enum(["imported", "live"]).nullable() }),
      "the live snapshot just built, and which snapshot is served",
    ),
    ...errors,
  },
});

const featureHistory = createRoute({
  method: "post",
  path: "/teams/{team}/features/history",
  tags: ["recommend"],
  summary: "Replace the team's imported history (raw activity, interaction and hour rows) in its feature ledger",
  description:
    'The team\'s admins. NDJSON, one row a line: `{"table":"activity","day","user_id","channel_id","commits"}`, `{"table":"interactions","day","user_id","other_user_id","kind","count"}` or `{"table":"hours","day","user_id","local_hour","commits"}`. A bad line anywhere: 400 and the previous history stays.',
  security: bearer,
  request: {
    params: z.object({ team: pathId }),
    body: {
      required: true,
      content: { "application/x-ndjson": { schema: { type: "string", description: "one row a line" } } },
    },
  },
  responses: {
    201: json(z.object({ upload: z.string(), lines: z.number(), rows: z.number() }), "the history imported"),
    ...errors,
  },
});

export const recommendFeatureRoutes = routes()
  .openapi(featureHistory, async (c) => {
    const team = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, team));
    const body = c.req.raw.body;
    if (!(c.req.header("content-type") ?? "").includes("ndjson") || !body) {
      throw unsupportedMedia("send the rows as application/x-ndjson");
    }
    return c.json(await importHistory(historyPorts(c.env), team, readNdjson(body)), 201);
  })
  .openapi(featureRebuild, async (c) => {
    const team = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, team));
    return c.json(await rebuildLiveFeatures(liveFeatureStore(c.env), team, c.req.query("build")), 200);
  })
  .openapi(featureImport, async (c) => {
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
