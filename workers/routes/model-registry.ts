import { createRoute } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { BundledModelStore } from "../../platform/models/bundled";
import { modelRegistryPortsFor } from "../../platform/recommend-deps";
import { tooLarge, unsupportedMedia } from "../../src/errors";
import { EVAL_SET_MAX_BYTES } from "../../src/recommend/eval-set";
import { promote, readRegistry, rollback, storeEvalSet } from "../../src/recommend/model-registry";
import { SOURCE_NAMES } from "../../src/recommend/sources";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, routes } from "../openapi";
import { sourceOperatorsOnly } from "../source-operators";

// The model registry (platform operators only), mounted at /v1/admin:
//   PUT  /models/:source/eval-set   the source's evaluation set (NDJSON, src/recommend/eval-set.ts)
//   POST /models/:source/promote    { model: "<name>@<version>" }: the promotion gate, then register
//   POST /models/:source/rollback   the previous registered version (or the default) serves again
//   GET  /models/:source/registry   what serves, the versions and the events
// The use cases are src/recommend/model-registry.ts; a refused request
// changes nothing. Serving picks a change up within the experiment cache's
// time (platform/models/experiment-store.ts), in this isolate at once.

export interface ModelRegistryOptions {
  /** The bundled default models (the Worker's own by default; tests pass fixtures). */
  bundled?: () => BundledModelStore;
}

const tags = ["recommend admin"];
const SourceParams = z.object({ source: z.enum(SOURCE_NAMES) });
const operators = "Platform operators only.";
const RegistryAnswer = loose({
  source: z.string(),
  current: z.string().nullable(),
  serving: loose({ model: z.string(), origin: z.enum(["registry", "default"]) }),
  experiment_stored: z.boolean().meta({ description: "a stored experiment serves instead of the registry's default" }),
  versions: z.array(loose({})),
  events: z.array(loose({})),
});

const readRoute = createRoute({
  method: "get",
  path: "/models/{source}/registry",
  tags,
  summary: "The source's model registry: what serves, the promoted versions and the events",
  description: operators,
  security: bearer,
  request: { params: SourceParams },
  responses: { 200: json(RegistryAnswer, "the registry"), ...errors },
});
const evalSetRoute = createRoute({
  method: "put",
  path: "/models/{source}/eval-set",
  tags,
  summary: "Replace the source's evaluation set (what the promotion gate scores models on)",
  description: `${operators} NDJSON: a header line, then one held-out ranking a line (docs/recommendations.md, Registry and promotion); at most ${EVAL_SET_MAX_BYTES} bytes.`,
  security: bearer,
  middleware: bodyLimit({
    maxSize: EVAL_SET_MAX_BYTES,
    onError: () => {
      throw tooLarge(`eval set larger than ${EVAL_SET_MAX_BYTES} bytes`);
    },
  }),
  request: {
    params: SourceParams,
    body: {
      required: true,
      content: {
        "application/x-ndjson": { schema: { type: "string", description: "a header line, then a ranking a line" } },
      },
    },
  },
  responses: {
    200: json(loose({ source: z.string(), rankings: z.number(), cuts: z.array(z.string()) }), "the eval set stored"),
    ...errors,
  },
});
const promoteRoute = createRoute({
  method: "post",
  path: "/models/{source}/promote",
  tags,
  summary: "Promote an uploaded model version to serve the source, if it passes the promotion gate",
  description: `${operators} Scores the model, the serving one and the baselines on the eval set; 409 gate_refused (details: the per-cut NDCG@10, D, S and the references failed) unless it beats each by more than max(k·S, min_margin).`,
  security: bearer,
  request: {
    params: SourceParams,
    body: jsonRequest(z.strictObject({ model: z.string().meta({ description: "<name>@<version>" }) })),
  },
  responses: {
    200: json(loose({ promoted: z.string(), evidence: loose({}), registry: RegistryAnswer }), "registered"),
    ...errors,
  },
});
const rollbackRoute = createRoute({
  method: "post",
  path: "/models/{source}/rollback",
  tags,
  summary: "Roll back to the previous registered version (or the default)",
  description: `${operators} 409 when nothing is registered.`,
  security: bearer,
  request: { params: SourceParams },
  responses: { 200: json(loose({ rolled_back: z.string(), registry: RegistryAnswer }), "rolled back"), ...errors },
});

export function createModelRegistryRoutes(options: ModelRegistryOptions = {}) {
  const ports = (c: AppContext) => modelRegistryPortsFor(c.env, options.bundled?.());
  const app = routes();

  const operatorsOnly = sourceOperatorsOnly;
  for (const path of ["registry", "eval-set", "promote", "rollback"]) app.use(`/models/:source/${path}`, operatorsOnly);

  return app
    .openapi(readRoute, async (c) => c.json(await readRegistry(ports(c), c.req.param("source")), 200))
    .openapi(evalSetRoute, async (c) => {
      if (!/^application\/(x-)?ndjson\b/i.test(c.req.header("content-type") ?? "")) {
        throw unsupportedMedia("send the eval set as application/x-ndjson");
      }
      // Decoded here: Request.text() warns on a content type it does not know as text.
      const text = new TextDecoder().decode(await c.req.arrayBuffer());
      return c.json(await storeEvalSet(ports(c), c.req.param("source"), text), 200);
    })
    .openapi(promoteRoute, async (c) => {
      const { model } = await bodyOf(c, promoteRoute);
      const by = c.get("identity");
      return c.json(await promote(ports(c), c.req.param("source"), model, `${by.team}/${by.user}`), 200);
    })
    .openapi(rollbackRoute, async (c) => {
      const by = c.get("identity");
      return c.json(await rollback(ports(c), c.req.param("source"), `${by.team}/${by.user}`), 200);
    });
}

/** The routes over the Worker's own bindings and bundled models. */
export const modelRegistryRoutes = createModelRegistryRoutes();
