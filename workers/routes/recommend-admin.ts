import { createRoute } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { BundledModelStore } from "../../platform/models/bundled";
import { experimentAdminPortsFor, modelVersionPortsFor } from "../../platform/recommend-deps";
import { mayOperate } from "../../src/auth/policy";
import { DomainError, tooLarge, unsupportedMedia } from "../../src/errors";
import { currentExperiment, resetExperiment, storeExperiment } from "../../src/recommend/experiment-admin";
import { experimentSchema } from "../../src/recommend/experiments";
import {
  listModelVersions,
  MODEL_ONNX_MAX_BYTES,
  modelKeyNamed,
  uploadGraph,
  uploadManifest,
} from "../../src/recommend/model-versions";
import { isSource, SOURCE_NAMES } from "../../src/recommend/sources";
import { authorize } from "../auth";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, routes } from "../openapi";

// Operators' API over recommendations (platform scope only), mounted at /v1/admin:
//   PUT|GET|DELETE /recommend/experiments/:source   the source's experiment (arms → models)
//   PUT /models/:source/:name/:version/manifest.json then .../model.onnx   upload a model version
//   GET /models/:source                              the source's models, R2 and bundled
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

export function createRecommendAdminRoutes(options: RecommendAdminOptions = {}) {
  const bundled = () => options.bundled?.();
  const experiments = (c: AppContext) => experimentAdminPortsFor(c.env, bundled());
  const models = (c: AppContext) => modelVersionPortsFor(c.env, bundled());
  const app = routes();

  // Scoped to these paths: a "*" here would apply to every /v1/admin route once mounted.
  const operatorsOnly = async (c: AppContext, next: () => Promise<void>) => {
    await authorize(c, mayOperate);
    const source = c.req.param("source") ?? "";
    if (!isSource(source)) {
      throw new DomainError(
        "not_found",
        "unknown_source",
        `unknown source "${source}"; sources are ${SOURCE_NAMES.join(", ")}`,
      );
    }
    await next();
  };
  app.use("/recommend/experiments/:source", operatorsOnly);
  // Hono's trailing /* also matches /models/:source itself.
  app.use("/models/:source/*", operatorsOnly);

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
    });
}

/** The routes over the Worker's own bindings and bundled models. */
export const recommendAdminRoutes = createRecommendAdminRoutes();

function modelKeyOf(c: AppContext) {
  const { source, name, version } = c.req.param() as Record<string, string | undefined>;
  return modelKeyNamed(source ?? "", name ?? "", version ?? "");
}
