import { Hono } from "hono";
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
import { type AppContext, type AppEnv, jsonBody } from "../http";

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

export function createRecommendAdminRoutes(options: RecommendAdminOptions = {}) {
  const bundled = () => options.bundled?.();
  const experiments = (c: AppContext) => experimentAdminPortsFor(c.env, bundled());
  const models = (c: AppContext) => modelVersionPortsFor(c.env, bundled());
  const routes = new Hono<AppEnv>();

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
  routes.use("/recommend/experiments/:source", operatorsOnly);
  // Hono's trailing /* also matches /models/:source itself.
  routes.use("/models/:source/*", operatorsOnly);

  routes.get("/recommend/experiments/:source", async (c) =>
    c.json(await currentExperiment(experiments(c), c.req.param("source"))),
  );

  routes.put("/recommend/experiments/:source", async (c) => {
    const experiment = await jsonBody(c, experimentSchema);
    return c.json(await storeExperiment(experiments(c), c.req.param("source"), experiment));
  });

  routes.delete("/recommend/experiments/:source", async (c) =>
    c.json(await resetExperiment(experiments(c), c.req.param("source"))),
  );

  routes.get("/models/:source", async (c) => {
    const source = c.req.param("source");
    return c.json({ source, models: await listModelVersions(models(c), source) });
  });

  routes.put("/models/:source/:name/:version/manifest.json", async (c) => {
    const key = modelKeyOf(c);
    const body = await jsonBody(c, z.unknown());
    return c.json({ model: await uploadManifest(models(c), key, body) }, 201);
  });

  routes.put(
    "/models/:source/:name/:version/model.onnx",
    bodyLimit({
      maxSize: MODEL_ONNX_MAX_BYTES,
      onError: () => {
        throw tooLarge(`model.onnx larger than ${MODEL_ONNX_MAX_BYTES} bytes`);
      },
    }),
    async (c) => {
      const key = modelKeyOf(c);
      if (!/^application\/octet-stream\b/i.test(c.req.header("content-type") ?? "")) {
        throw unsupportedMedia("model.onnx is sent as application/octet-stream");
      }
      const onnx = new Uint8Array(await c.req.arrayBuffer());
      return c.json({ model: await uploadGraph(models(c), key, onnx) }, 201);
    },
  );

  return routes;
}

/** The routes over the Worker's own bindings and bundled models. */
export const recommendAdminRoutes = createRecommendAdminRoutes();

function modelKeyOf(c: AppContext) {
  const { source, name, version } = c.req.param() as Record<string, string | undefined>;
  return modelKeyNamed(source ?? "", name ?? "", version ?? "");
}
