import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { mayOperate } from "../../src/auth/policy";
import { badRequest, conflict, DomainError, invalidBody, tooLarge, unsupportedMedia } from "../../src/errors";
import { type ModelKey, modelKeyString, parseManifest } from "../../src/models/manifest";
import { armModel, experimentSchema } from "../../src/recommend/experiments";
import { isSource, SOURCE_NAMES } from "../../src/recommend/sources";
import { authorize } from "../auth";
import { type AppContext, type AppEnv, jsonBody } from "../http";
import type { BundledModelStore } from "../models/bundled";
import { type CurrentExperiment, r2ExperimentStore } from "../models/experiment-store";
import {
  listModels,
  MODEL_NAME,
  MODEL_ONNX_MAX_BYTES,
  MODEL_VERSION,
  putManifest,
  putModelOnnx,
  type UploadRefusal,
} from "../models/model-uploads";
import { onnxModelLoader } from "../models/onnx-runtime";
import { r2ModelStore } from "../models/r2-model-store";
import { isolateBundledModels } from "../models/scorer-selection";

// Operators' API over recommendations (platform scope only), mounted at /v1/admin:
//   PUT|GET|DELETE /recommend/experiments/:source   the source's experiment (arms → models)
//   PUT /models/:source/:name/:version/manifest.json then .../model.onnx   upload a model version
//   GET /models/:source                              the source's models, R2 and bundled
// Everything is validated before anything is written: a refused request
// changes nothing. An experiment may only name models that load now, so a
// typo cannot silently send an arm to the hand-tuned fallback. Serving picks
// a stored experiment up within EXPERIMENT_TTL_MS (experiment-store.ts).

export interface RecommendAdminOptions {
  /** The bundled default models (the Worker's own by default; tests pass fixtures). */
  bundled?: () => BundledModelStore;
}

export function createRecommendAdminRoutes(options: RecommendAdminOptions = {}) {
  const bundled = options.bundled ?? isolateBundledModels;
  const routes = new Hono<AppEnv>();
  const experimentsOf = (c: AppContext) => r2ExperimentStore({ bucket: c.env.MODELS, bundled: bundled().keys() });

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

  routes.get("/recommend/experiments/:source", async (c) => {
    const source = c.req.param("source");
    return c.json(experimentAnswer(source, await experimentsOf(c).current(source, { fresh: true })));
  });

  routes.put("/recommend/experiments/:source", async (c) => {
    const source = c.req.param("source");
    const experiment = await jsonBody(c, experimentSchema);
    // Load every model the arms name (R2 first, then the bundle), as serving will.
    const loader = onnxModelLoader(r2ModelStore(c.env.MODELS, bundled()));
    const unloadable: Array<{ arm: string; model: string; code: string; message: string }> = [];
    for (const arm of experiment.arms) {
      const named = armModel(arm);
      if (!named) continue;
      const loaded = await loader.scorer({ source, ...named });
      if (!loaded.ok) {
        unloadable.push({ arm: arm.name, model: arm.model, code: loaded.error.code, message: loaded.error.message });
      }
    }
    if (unloadable.length > 0) {
      throw conflict(
        unloadable.map((u) => `arm ${u.arm}: ${u.model} cannot be loaded (${u.code}: ${u.message})`).join("; "),
        { arms: unloadable },
      );
    }
    const store = experimentsOf(c);
    await store.put(source, experiment);
    return c.json(experimentAnswer(source, { experiment, origin: "stored", problem: null }));
  });

  routes.delete("/recommend/experiments/:source", async (c) => {
    const source = c.req.param("source");
    const store = experimentsOf(c);
    await store.remove(source);
    return c.json(experimentAnswer(source, { experiment: store.defaultFor(source), origin: "default", problem: null }));
  });

  routes.get("/models/:source", async (c) => {
    const source = c.req.param("source");
    return c.json({ source, models: await listModels(c.env.MODELS, bundled(), source) });
  });

  routes.put("/models/:source/:name/:version/manifest.json", async (c) => {
    const key = modelKeyOf(c);
    const parsed = parseManifest(await jsonBody(c, z.unknown()));
    if (!parsed.ok) throw invalidBody(parsed.message);
    const { manifest } = parsed;
    if (modelKeyString(manifest) !== modelKeyString(key)) {
      throw invalidBody(`the manifest is for ${modelKeyString(manifest)}, the path names ${modelKeyString(key)}`);
    }
    const result = await putManifest(bucketOf(c), bundled(), key, manifest);
    if (!result.ok) throw refusal(result);
    return c.json({ model: { ...key, kind: manifest.kind, origin: "r2", complete: false } }, 201);
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
      const type = c.req.header("content-type") ?? "";
      if (!/^application\/octet-stream\b/i.test(type)) {
        throw unsupportedMedia("model.onnx is sent as application/octet-stream");
      }
      const onnx = new Uint8Array(await c.req.arrayBuffer());
      if (onnx.byteLength === 0) throw invalidBody("empty model.onnx");
      const result = await putModelOnnx(bucketOf(c), bundled(), key, onnx);
      if (!result.ok) throw refusal(result);
      const { manifest, bytes } = result.value;
      return c.json({ model: { ...key, kind: manifest.kind, origin: "r2", complete: true, bytes } }, 201);
    },
  );

  return routes;
}

/** The routes over the Worker's own bindings and bundled models. */
export const recommendAdminRoutes = createRecommendAdminRoutes();

function experimentAnswer(source: string, current: CurrentExperiment) {
  return {
    source,
    experiment: current.experiment,
    /** True when no experiment is stored (or the stored one is unusable: see problem). */
    default: current.origin === "default",
    ...(current.problem ? { problem: current.problem } : {}),
  };
}

function modelKeyOf(c: AppContext): ModelKey {
  const { source, name, version } = c.req.param() as Record<string, string>;
  if (!MODEL_NAME.test(name ?? "") || !MODEL_VERSION.test(version ?? "")) {
    throw badRequest(
      "model names are 1-80 of A-Z a-z 0-9 _ . - and versions 1-80 of the same or : (an experiment arm names them as <name>@<version>)",
    );
  }
  return { source: source as string, name: name as string, version: version as string };
}

function bucketOf(c: AppContext): R2Bucket {
  if (!c.env.MODELS) throw new Error("no MODELS bucket bound");
  return c.env.MODELS;
}

const refusal = (r: UploadRefusal) => new DomainError(r.kind, r.code, r.message);
