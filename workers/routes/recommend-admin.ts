import { createRoute } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { BundledModelStore } from "../../platform/models/bundled";
import { readoutPortsFor } from "../../platform/rec-log-reader";
import { experimentAdminPortsFor, modelVersionPortsFor } from "../../platform/recommend-deps";
import { tooLarge, unsupportedMedia } from "../../src/errors";
import { currentExperiment, resetExperiment, storeExperiment } from "../../src/recommend/experiment-admin";
import { experimentSchema } from "../../src/recommend/experiments";
import {
  listModelVersions,
  MODEL_ONNX_MAX_BYTES,
  modelKeyNamed,
  uploadGraph,
  uploadManifest,
} from "../../src/recommend/model-versions";
import { experimentReadout, READOUT_DEFAULT_DAYS, READOUT_MAX_DAYS } from "../../src/recommend/readout";
import { SOURCE_NAMES } from "../../src/recommend/sources";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, queryOf, routes } from "../openapi";
import { sourceOperatorsOnly } from "../source-operators";

// Operators' API over recommendations (platform scope only), mounted at /v1/admin:
//   PUT|GET|DELETE /recommend/experiments/:source   the source's experiment (arms → models)
//   PUT /models/:source/:name/:version/manifest.json then .../model.onnx   upload a model version
//   GET /models/:source                              the source's models, R2 and bundled
//   GET /experiments/:source/readout                 per-arm CTR and DCG of clicks, from the rec logs
// The use cases are src/recommend/experiment-admin.ts and model-versions.ts:
// everything is validated before anything is written, so a refused request
// changes nothing.

export interface RecommendAdminOptions {
  /** The bundled default models (the Worker's own by default; tests pass fixtures). */
  bundled?: () => BundledModelStore;
}

const tags = ["recommend admin"];
const SourceParams = z.object({ source: z.enum(SOURCE_NAMES) });
const ModelParams = z.object({ source: z.enum(SOURCE_NAMES), name: pathId, version: pathId });
const ExperimentAnswer = z.object({
  source: z.string(),
  experiment: loose({}),
  default: z.boolean(),
  problem: z.string().optional(),
});
const ModelAnswer = z.object({ model: loose({}) });
const operators = "Platform operators only.";

const readExperiment = createRoute({
  method: "get",
  path: "/recommend/experiments/{source}",
  tags,
  summary: "The source's experiment (arms to models), as stored",
  description: operators,
  security: bearer,
  request: { params: SourceParams },
  responses: { 200: json(ExperimentAnswer, "the experiment, or the default"), ...errors },
});
const putExperiment = createRoute({
  method: "put",
  path: "/recommend/experiments/{source}",
  tags,
  summary: "Replace the source's experiment",
  description: operators,
  security: bearer,
  request: { params: SourceParams, body: jsonRequest(experimentSchema) },
  responses: { 200: json(ExperimentAnswer, "the experiment stored"), ...errors },
});
const resetExperimentRoute = createRoute({
  method: "delete",
  path: "/recommend/experiments/{source}",
  tags,
  summary: "Back to the source's default experiment",
  description: operators,
  security: bearer,
  request: { params: SourceParams },
  responses: { 200: json(ExperimentAnswer, "the default experiment"), ...errors },
});
const listModels = createRoute({
  method: "get",
  path: "/models/{source}",
  tags,
  summary: "The source's models, uploaded and bundled",
  description: operators,
  security: bearer,
  request: { params: SourceParams },
  responses: { 200: json(z.object({ source: z.string(), models: z.array(loose({})) }), "the models"), ...errors },
});
const putManifest = createRoute({
  method: "put",
  path: "/models/{source}/{name}/{version}/manifest.json",
  tags,
  summary: "Upload a model version's manifest (first; then its model.onnx)",
  description: `${operators} The manifest is checked whole by the model store (features, input, output, metrics).`,
  security: bearer,
  request: { params: ModelParams, body: jsonRequest(z.unknown()) },
  responses: { 201: json(ModelAnswer, "the model version"), ...errors },
});
const putGraph = createRoute({
  method: "put",
  path: "/models/{source}/{name}/{version}/model.onnx",
  tags,
  summary: "Upload a model version's ONNX graph",
  description: `${operators} At most ${MODEL_ONNX_MAX_BYTES} bytes.`,
  security: bearer,
  middleware: bodyLimit({
    maxSize: MODEL_ONNX_MAX_BYTES,
    onError: () => {
      throw tooLarge(`model.onnx larger than ${MODEL_ONNX_MAX_BYTES} bytes`);
    },
  }),
  request: {
    params: ModelParams,
    body: {
      required: true,
      content: {
        "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } },
      },
    },
  },
  responses: { 201: json(ModelAnswer, "the model version"), ...errors },
});
const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "a day, YYYY-MM-DD")
  .meta({ description: "a UTC day, YYYY-MM-DD" });
const ReadoutQuery = z.strictObject({
  experiment: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,60}$/, "an experiment name")
    .optional()
    .meta({ description: "a past experiment of the source, by name; default the current one" }),
  from: day.optional().meta({ description: `first day; default ${READOUT_DEFAULT_DAYS - 1} days before \`to\`` }),
  to: day.optional().meta({ description: "last day (inclusive); default today (UTC)" }),
});
const interval = { low: z.number(), high: z.number() };
const ArmReadout = z.object({
  arm: z.string(),
  models: z.array(z.string()),
  requests: z.number().int(),
  served_items: z.number().int(),
  impression_events: z.number().int(),
  impressions: z.number().int(),
  clicks: z.number().int(),
  ctr: z.object({ value: z.number(), ...interval }),
  ctr_served: z.object({ value: z.number() }),
  dcg: z.object({ mean: z.number(), sd: z.number(), ...interval }),
  vs_baseline: z
    .object({
      ctr: z.object({ diff: z.number(), ...interval }),
      dcg: z.object({ diff: z.number(), ...interval }),
    })
    .nullable(),
});
const ReadoutAnswer = z.object({
  source: z.string(),
  experiment: z.object({ name: z.string(), current: z.boolean() }),
  from: z.string(),
  to: z.string(),
  confidence: z.number(),
  impression_basis: z.enum(["feedback", "served"]),
  baseline: z.string().nullable(),
  arms: z.array(ArmReadout),
  read: z.object({ objects: z.number().int(), bytes: z.number().int(), lines: z.number().int() }),
  dropped: z.record(z.string(), z.number().int()),
});
const readout = createRoute({
  method: "get",
  path: "/experiments/{source}/readout",
  tags,
  summary: "Per-arm readout of the source's experiment, from the rec logs",
  description: `${operators} Requests, impressions, clicks, CTR (95% Wilson interval) and the mean DCG of clicks per request (95% normal interval) per arm, each against the baseline arm (\`control\` if present, else the first); computed from the logs on demand, each logged message once. At most ${READOUT_MAX_DAYS} days, and a capped number of log bytes: a range over the cap is a 400.`,
  security: bearer,
  request: { params: SourceParams, query: ReadoutQuery },
  responses: { 200: json(ReadoutAnswer, "the readout"), ...errors },
});

export function createRecommendAdminRoutes(options: RecommendAdminOptions = {}) {
  const bundled = () => options.bundled?.();
  const experiments = (c: AppContext) => experimentAdminPortsFor(c.env, bundled());
  const models = (c: AppContext) => modelVersionPortsFor(c.env, bundled());
  const app = routes();

  // Scoped to these paths: a "*" here would apply to every /v1/admin route once mounted.
  const operatorsOnly = sourceOperatorsOnly;
  app.use("/recommend/experiments/:source", operatorsOnly);
  // Hono's trailing /* also matches /models/:source itself.
  app.use("/models/:source/*", operatorsOnly);
  app.use("/experiments/:source/readout", operatorsOnly);

  return app
    .openapi(readExperiment, async (c) => c.json(await currentExperiment(experiments(c), c.req.param("source")), 200))
    .openapi(putExperiment, async (c) => {
      const experiment = await bodyOf(c, putExperiment);
      return c.json(await storeExperiment(experiments(c), c.req.param("source"), experiment), 200);
    })
    .openapi(resetExperimentRoute, async (c) =>
      c.json(await resetExperiment(experiments(c), c.req.param("source")), 200),
    )
    .openapi(listModels, async (c) => {
      const source = c.req.param("source");
      return c.json({ source, models: await listModelVersions(models(c), source) }, 200);
    })
    .openapi(putManifest, async (c) => {
      const key = modelKeyOf(c);
      const body = await bodyOf(c, putManifest);
      return c.json({ model: await uploadManifest(models(c), key, body) }, 201);
    })
    .openapi(putGraph, async (c) => {
      const key = modelKeyOf(c);
      if (!/^application\/octet-stream\b/i.test(c.req.header("content-type") ?? "")) {
        throw unsupportedMedia("model.onnx is sent as application/octet-stream");
      }
      const onnx = new Uint8Array(await c.req.arrayBuffer());
      return c.json({ model: await uploadGraph(models(c), key, onnx) }, 201);
    })
    .openapi(readout, async (c) =>
      c.json(
        await experimentReadout(readoutPortsFor(c.env, bundled()), c.req.param("source"), queryOf(c, readout)),
        200,
      ),
    );
}

/** The routes over the Worker's own bindings and bundled models. */
export const recommendAdminRoutes = createRecommendAdminRoutes();

function modelKeyOf(c: AppContext) {
  const { source, name, version } = c.req.param() as Record<string, string | undefined>;
  return modelKeyNamed(source ?? "", name ?? "", version ?? "");
}
