import { env } from "cloudflare:test";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { errorBody } from "../../platform/error-status";
import { metrics } from "../../platform/metrics";
import { bundledModelStore } from "../../platform/models/bundled";
import {
  defaultExperiment,
  EXPERIMENT_TTL_MS,
  type ExperimentCache,
  experimentObjectKey,
  r2ExperimentStore,
} from "../../platform/models/experiment-store";
import { MODEL_ONNX_MAX_BYTES } from "../../platform/models/model-uploads";
import { onnxModelLoader } from "../../platform/models/onnx-runtime";
import { r2ModelPrefix, r2ModelStore } from "../../platform/models/r2-model-store";
import {
  rememberingFailures,
  type ScorerSelectionDeps,
  scorerSelectionDeps,
  selectScorer,
} from "../../platform/models/scorer-selection";
import { DomainError, tooLarge } from "../../src/errors";
import type { ModelKey } from "../../src/models/manifest";
import type { ModelLoader } from "../../src/models/ports";
import { assignArm, type Experiment } from "../../src/recommend/experiments";
import type { Scorer } from "../../src/recommend/pipeline";
import { requireToken } from "../../workers/auth";
import { type AppEnv, errorResponse } from "../../workers/http";
import { createRecommendAdminRoutes, recommendAdminRoutes } from "../../workers/routes/recommend-admin";
import lrManifest from "../fixtures/models/lr/manifest.json";
import lrOnnx from "../fixtures/models/lr/model.onnx";
import lrParity from "../fixtures/models/lr/parity.json";
import xgbManifest from "../fixtures/models/xgboost/manifest.json";
import xgbOnnx from "../fixtures/models/xgboost/model.onnx";
import xgbParity from "../fixtures/models/xgboost/parity.json";
import { token } from "./client";

// The recommend admin API (experiments, model uploads) and scorer selection,
// inside workerd with the real MODELS bucket and onnxruntime-web. The routes
// are mounted here the way workers/app.ts mounts admin routes (token, then
// /v1/admin), with the body limit app.ts needs for model.onnx.
//
// Every test uses its own model versions, and reads experiments through its
// own cache, so tests do not depend on each other's bucket writes or on the
// isolate's caches.

const MODEL_LIMIT = MODEL_ONNX_MAX_BYTES;
const JSON_LIMIT = 1024 * 1024;

function testApp(routes = recommendAdminRoutes) {
  const app = new Hono<AppEnv>();
  app.onError((err, c) => {
    if (err instanceof DomainError) return errorResponse(c, err);
    console.error("unhandled error", err);
    return c.json(errorBody("internal", "internal error"), 500);
  });
  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));
  const bodyTooLarge = (limit: number) => () => {
    throw tooLarge(`request body larger than ${limit} bytes`);
  };
  app.use("/v1/*", async (c, next) => {
    const limit = c.req.path.endsWith("/model.onnx") ? MODEL_LIMIT : JSON_LIMIT;
    return bodyLimit({ maxSize: limit, onError: bodyTooLarge(limit) })(c, next);
  });
  app.use("/v1/*", requireToken);
  app.route("/v1/admin", routes);
  return app;
}

const app = testApp();

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string; details?: unknown } };
}

async function call(
  method: string,
  path: string,
  options: { token?: string; json?: unknown; body?: BodyInit; type?: string; via?: Hono<AppEnv> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? (await operator())}` };
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["content-type"] = "application/json";
  }
  if (options.type) headers["content-type"] = options.type;
  const res = await (options.via ?? app).request(`https://edge.test${path}`, { method, headers, body }, env);
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`non-JSON ${res.status} for ${method} ${path}: ${text.slice(0, 200)}`);
  }
}

const operator = () => token("TPLATFORM", "UOPERATOR");
const unique = () => `t${crypto.randomUUID().slice(0, 8)}`;

type Fixture = "lr" | "xgboost";
const FIXTURES = {
  lr: { manifest: lrManifest, onnx: lrOnnx, parity: lrParity },
  xgboost: { manifest: xgbManifest, onnx: xgbOnnx, parity: xgbParity },
};

const manifestFor = (fixture: Fixture, key: ModelKey) => ({ ...FIXTURES[fixture].manifest, ...key });
const modelPath = (k: ModelKey, file: string) => `/v1/admin/models/${k.source}/${k.name}/${k.version}/${file}`;

/** Uploads a fixture under `key` through the API (manifest, then model.onnx). */
async function upload(fixture: Fixture, key: ModelKey, via?: Hono<AppEnv>) {
  const m = await call("PUT", modelPath(key, "manifest.json"), { json: manifestFor(fixture, key), via });
  expect(m.status, JSON.stringify(m.body)).toBe(201);
  const o = await call("PUT", modelPath(key, "model.onnx"), {
    body: FIXTURES[fixture].onnx,
    type: "application/octet-stream",
    via,
  });
  expect(o.status, JSON.stringify(o.body)).toBe(201);
  return o.body;
}

/** The parity rows without missing values (a missing feature takes the manifest default, not NaN) and their scores. */
function parityRecords(fixture: Fixture) {
  const p = z
    .object({
      features: z.array(z.string()),
      rows: z.array(z.array(z.number().nullable())),
      scores: z.array(z.number()),
    })
    .parse(FIXTURES[fixture].parity);
  const kept = p.rows.flatMap((row, i) => (row.every((v) => v !== null) ? [i] : []));
  return {
    records: kept.map((i) => Object.fromEntries(p.features.map((f, j) => [f, p.rows[i]?.[j] as number]))),
    scores: kept.map((i) => p.scores[i] as number),
  };
}

const handTuned: Scorer = {
  name: "hand_tuned",
  version: "test-1",
  kind: "hand_tuned",
  async score(features) {
    return features.map((f) => Number(f.shared_channels ?? 0));
  },
};

/** Serving's deps with a cache of their own (the isolate's is shared by every test in this file). */
function servingDeps(cache: ExperimentCache = new Map()): ScorerSelectionDeps {
  const bundled = bundledModelStore([]);
  return {
    experiments: r2ExperimentStore({ bucket: env.MODELS, bundled: bundled.keys(), cache }),
    loader: rememberingFailures(onnxModelLoader(r2ModelStore(env.MODELS, bundled)), { failures: new Map() }),
  };
}

/** A counter's or histogram count's current value in this isolate's registry (0 when absent). */
function metricValue(series: string, labels: Record<string, string>): number {
  const text = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}="${v}"`)
    .join(",");
  const line = metrics
    .render()
    .split("\n")
    .find((l) => l.startsWith(`${series}{${text}} `));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

async function storedKeys(prefix: string): Promise<string[]> {
  return (await env.MODELS.list({ prefix })).objects.map((o) => o.key);
}

describe("model uploads", () => {
  it("takes manifest.json then model.onnx, lists the version, and refuses a second upload of either part", async () => {
    const key = { source: "invite", name: "lr", version: unique() };
    const m = await call("PUT", modelPath(key, "manifest.json"), { json: manifestFor("lr", key) });
    expect(m.status).toBe(201);
    expect(m.body.model).toMatchObject({ ...key, kind: "lr", complete: false });

    let list = await call("GET", "/v1/admin/models/invite");
    expect(list.body.models).toContainEqual(
      expect.objectContaining({ name: key.name, version: key.version, kind: "lr", origin: "r2", complete: false }),
    );

    const o = await call("PUT", modelPath(key, "model.onnx"), { body: lrOnnx, type: "application/octet-stream" });
    expect(o.status, JSON.stringify(o.body)).toBe(201);
    expect(o.body.model).toMatchObject({ ...key, kind: "lr", complete: true, bytes: lrOnnx.byteLength });

    list = await call("GET", "/v1/admin/models/invite");
    expect(list.body.models).toContainEqual(
      expect.objectContaining({ name: key.name, version: key.version, kind: "lr", origin: "r2", complete: true }),
    );

    const again = await call("PUT", modelPath(key, "manifest.json"), { json: manifestFor("lr", key) });
    expect([again.status, again.body.error?.code]).toEqual([409, "conflict"]);
    const againOnnx = await call("PUT", modelPath(key, "model.onnx"), {
      body: xgbOnnx,
      type: "application/octet-stream",
    });
    expect([againOnnx.status, againOnnx.body.error?.code]).toEqual([409, "conflict"]);
    // The stored bytes are still the first upload's.
    const stored = await env.MODELS.get(`${r2ModelPrefix(key)}model.onnx`);
    expect(stored?.size).toBe(lrOnnx.byteLength);
  });

  it("refuses a model.onnx the runtime rejects (400 invalid_model) and keeps nothing of the version", async () => {
    const key = { source: "invite", name: "lr", version: unique() };
    expect((await call("PUT", modelPath(key, "manifest.json"), { json: manifestFor("lr", key) })).status).toBe(201);
    const r = await call("PUT", modelPath(key, "model.onnx"), {
      body: new TextEncoder().encode("not an onnx model"),
      type: "application/octet-stream",
    });
    expect([r.status, r.body.error?.code]).toEqual([400, "invalid_model"]);
    expect(await storedKeys(r2ModelPrefix(key))).toEqual([]);
    // The version can start over.
    await upload("lr", key);
  });

  it("refuses a model whose graph does not take the manifest's features (checked by scoring a sample)", async () => {
    const key = { source: "invite", name: "lr", version: unique() };
    const nine = { ...manifestFor("lr", key), features: lrManifest.features.slice(0, 9) };
    expect((await call("PUT", modelPath(key, "manifest.json"), { json: nine })).status).toBe(201);
    const r = await call("PUT", modelPath(key, "model.onnx"), { body: lrOnnx, type: "application/octet-stream" });
    expect([r.status, r.body.error?.code]).toEqual([400, "invalid_model"]);
    expect(r.body.error?.message).toContain("scoring a sample");
    expect(await storedKeys(r2ModelPrefix(key))).toEqual([]);

    const wrongOutput = { source: "invite", name: "lr", version: unique() };
    const m = { ...manifestFor("lr", wrongOutput), output: { name: "probabilities", meaning: "" } };
    expect((await call("PUT", modelPath(wrongOutput, "manifest.json"), { json: m })).status).toBe(201);
    const w = await call("PUT", modelPath(wrongOutput, "model.onnx"), {
      body: lrOnnx,
      type: "application/octet-stream",
    });
    expect([w.status, w.body.error?.code]).toEqual([400, "invalid_model"]);
  });

  it("refuses bad manifests, bad paths and bad bodies with 4xx JSON, storing nothing", async () => {
    const key = { source: "invite", name: "lr", version: unique() };
    const prefix = r2ModelPrefix(key);
    const cases: Array<[string, Promise<Answer>, number, string]> = [
      [
        "another version in the manifest",
        call("PUT", modelPath(key, "manifest.json"), { json: manifestFor("lr", { ...key, version: "other" }) }),
        400,
        "invalid_body",
      ],
      [
        "not a manifest",
        call("PUT", modelPath(key, "manifest.json"), { json: { ...manifestFor("lr", key), features: [] } }),
        400,
        "invalid_body",
      ],
      [
        "not JSON",
        call("PUT", modelPath(key, "manifest.json"), { body: "{nope", type: "application/json" }),
        400,
        "invalid_body",
      ],
      [
        "model.onnx before its manifest",
        call("PUT", modelPath(key, "model.onnx"), { body: lrOnnx, type: "application/octet-stream" }),
        409,
        "conflict",
      ],
      [
        "model.onnx as JSON",
        call("PUT", modelPath(key, "model.onnx"), { body: lrOnnx, type: "application/json" }),
        415,
        "unsupported_media_type",
      ],
      [
        "an empty model.onnx",
        call("PUT", modelPath(key, "model.onnx"), { body: new Uint8Array(0), type: "application/octet-stream" }),
        400,
        "invalid_body",
      ],
      [
        "a model.onnx over 16 MB",
        call("PUT", modelPath(key, "model.onnx"), {
          body: new Uint8Array(MODEL_ONNX_MAX_BYTES + 1),
          type: "application/octet-stream",
        }),
        413,
        "payload_too_large",
      ],
      [
        "a name an arm cannot spell",
        call("PUT", modelPath({ ...key, name: "l r" }, "manifest.json"), {
          json: manifestFor("lr", { ...key, name: "l r" }),
        }),
        400,
        "bad_request",
      ],
      [
        "an unknown source",
        call("PUT", modelPath({ ...key, source: "nope" }, "manifest.json"), {
          json: manifestFor("lr", { ...key, source: "nope" }),
        }),
        404,
        "unknown_source",
      ],
      ["listing an unknown source", call("GET", "/v1/admin/models/nope"), 404, "unknown_source"],
    ];
    for (const [what, pending, status, code] of cases) {
      const r = await pending;
      expect([r.status, r.body.error?.code], `${what}: ${JSON.stringify(r.body)}`).toEqual([status, code]);
      expect(typeof r.body.error?.message, what).toBe("string");
    }
    expect(await storedKeys(prefix)).toEqual([]);
    expect(await storedKeys("models/nope/")).toEqual([]);
  });

  it("lists bundled models with their origin and refuses an upload over a bundled version", async () => {
    const key = { source: "send_time", name: "lr", version: "bundled-1" };
    const bundled = bundledModelStore([{ dir: "send_time", manifest: manifestFor("lr", key), onnx: lrOnnx }]);
    const via = testApp(createRecommendAdminRoutes({ bundled: () => bundled }));
    const list = await call("GET", "/v1/admin/models/send_time", { via });
    expect(list.body.models).toContainEqual({
      name: "lr",
      version: "bundled-1",
      kind: "lr",
      origin: "bundled",
      complete: true,
    });
    const r = await call("PUT", modelPath(key, "manifest.json"), { json: manifestFor("lr", key), via });
    expect([r.status, r.body.error?.code]).toEqual([409, "conflict"]);
    // And the default experiment of that source is its bundled model.
    await call("DELETE", "/v1/admin/recommend/experiments/send_time", { via });
    const current = await call("GET", "/v1/admin/recommend/experiments/send_time", { via });
    expect(current.body).toMatchObject({
      default: true,
      experiment: { name: "send_time-default", arms: [{ name: "default", weight: 1, model: "lr@bundled-1" }] },
    });
  });
});

describe("experiments API", () => {
  it("sets an experiment naming uploaded models, returns it, and reverts to the default on DELETE", async () => {
    const lr = { source: "invite", name: "lr", version: unique() };
    const xgb = { source: "invite", name: "xgb", version: unique() };
    await upload("lr", lr);
    await upload("xgboost", xgb);
    const experiment: Experiment = {
      name: `invite-${unique()}`,
      arms: [
        { name: "lr", weight: 1, model: `lr@${lr.version}` },
        { name: "xgb", weight: 1, model: `xgb@${xgb.version}` },
      ],
    };
    const put = await call("PUT", "/v1/admin/recommend/experiments/invite", { json: experiment });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toEqual({ source: "invite", experiment, default: false });
    expect(await call("GET", "/v1/admin/recommend/experiments/invite")).toEqual({ status: 200, body: put.body });

    const del = await call("DELETE", "/v1/admin/recommend/experiments/invite");
    // The default: the source's bundled model (models/), or hand_tuned when none ships.
    const fallback = defaultExperiment("invite", bundledModelStore().keys());
    expect(fallback.arms[0]?.model).not.toBe("hand_tuned");
    expect(del).toEqual({ status: 200, body: { source: "invite", experiment: fallback, default: true } });
    expect((await call("GET", "/v1/admin/recommend/experiments/invite")).body).toEqual(del.body);
    expect(await env.MODELS.head(experimentObjectKey("invite"))).toBeNull();
  });

  it("refuses invalid experiments and arms naming models that do not load, changing nothing", async () => {
    const lr = { source: "composer_dm", name: "lr", version: unique() };
    await upload("lr", lr);
    const good: Experiment = { name: "dm", arms: [{ name: "a", weight: 1, model: `lr@${lr.version}` }] };
    expect((await call("PUT", "/v1/admin/recommend/experiments/composer_dm", { json: good })).status).toBe(200);
    const before = await (await env.MODELS.get(experimentObjectKey("composer_dm")))?.text();

    const invalid: Array<[string, unknown]> = [
      ["no arms", { name: "dm", arms: [] }],
      ["a negative weight", { name: "dm", arms: [{ name: "a", weight: -1, model: "hand_tuned" }] }],
      ["an unknown field", { name: "dm", arms: [{ name: "a", weight: 1, model: "hand_tuned" }], extra: 1 }],
      ["a model that is not name@version", { name: "dm", arms: [{ name: "a", weight: 1, model: "lr" }] }],
      [
        "duplicate arm names",
        {
          name: "dm",
          arms: [
            { name: "a", weight: 1, model: "hand_tuned" },
            { name: "a", weight: 1, model: "hand_tuned" },
          ],
        },
      ],
    ];
    for (const [what, json] of invalid) {
      const r = await call("PUT", "/v1/admin/recommend/experiments/composer_dm", { json });
      expect([r.status, r.body.error?.code], what).toEqual([400, "invalid_body"]);
    }
    const notJson = await call("PUT", "/v1/admin/recommend/experiments/composer_dm", {
      body: "{",
      type: "application/json",
    });
    expect([notJson.status, notJson.body.error?.code]).toEqual([400, "invalid_body"]);

    const missing = await call("PUT", "/v1/admin/recommend/experiments/composer_dm", {
      json: {
        name: "dm",
        arms: [
          { name: "ok", weight: 1, model: `lr@${lr.version}` },
          { name: "gone", weight: 1, model: "lr@never-uploaded" },
        ],
      },
    });
    expect([missing.status, missing.body.error?.code]).toEqual([409, "conflict"]);
    expect(missing.body.error?.details).toEqual({
      arms: [{ arm: "gone", model: "lr@never-uploaded", code: "not_found", message: expect.any(String) }],
    });
    // Another source's model is not this source's.
    const otherSource = await call("PUT", "/v1/admin/recommend/experiments/leave", { json: good });
    expect([otherSource.status, otherSource.body.error?.code]).toEqual([409, "conflict"]);

    const unknown = await call("PUT", "/v1/admin/recommend/experiments/nope", { json: good });
    expect([unknown.status, unknown.body.error?.code]).toEqual([404, "unknown_source"]);

    expect(await (await env.MODELS.get(experimentObjectKey("composer_dm")))?.text()).toBe(before);
    expect(await env.MODELS.head(experimentObjectKey("nope"))).toBeNull();
  });

  it("answers 403 to callers who are not operators and 401 without a token", async () => {
    const member = await token("TDEMO", "UMEMBER");
    const admin = await token("TDEMO", "UADMIN");
    const key = { source: "invite", name: "lr", version: unique() };
    const requests: Array<[string, string, { json?: unknown; body?: BodyInit; type?: string }]> = [
      ["GET", "/v1/admin/recommend/experiments/invite", {}],
      ["PUT", "/v1/admin/recommend/experiments/invite", { json: { name: "x", arms: [] } }],
      ["DELETE", "/v1/admin/recommend/experiments/invite", {}],
      ["GET", "/v1/admin/models/invite", {}],
      ["PUT", modelPath(key, "manifest.json"), { json: manifestFor("lr", key) }],
      ["PUT", modelPath(key, "model.onnx"), { body: lrOnnx, type: "application/octet-stream" }],
      // Even for an unknown source: the scope is checked first.
      ["GET", "/v1/admin/models/nope", {}],
    ];
    for (const [method, path, options] of requests) {
      for (const t of [member, admin]) {
        const r = await call(method, path, { ...options, token: t });
        expect([r.status, r.body.error?.code], `${method} ${path}`).toEqual([403, "forbidden"]);
      }
      const res = await app.request(`https://edge.test${path}`, { method }, env);
      expect(res.status, `${method} ${path} without a token`).toBe(401);
    }
    expect(await storedKeys(r2ModelPrefix(key))).toEqual([]);
  });
});

describe("selectScorer", () => {
  it("assigns each user a stable arm and scores with that arm's model (parity with the Python scores)", async () => {
    const lr = { source: "invite", name: "lr", version: unique() };
    const xgb = { source: "invite", name: "xgb", version: unique() };
    await upload("lr", lr);
    await upload("xgboost", xgb);
    const experiment: Experiment = {
      name: `invite-${unique()}`,
      arms: [
        { name: "lr", weight: 1, model: `lr@${lr.version}` },
        { name: "xgb", weight: 1, model: `xgb@${xgb.version}` },
      ],
    };
    expect((await call("PUT", "/v1/admin/recommend/experiments/invite", { json: experiment })).status).toBe(200);

    // The isolate that took the PUT serves it at once (the isolate's cache, as the Worker uses it).
    const worker = await selectScorer({ ...scorerSelectionDeps(env), source: "invite", user: "U1", handTuned });
    expect(worker.experiment).toBe(experiment.name);

    const deps = servingDeps();
    const users = Array.from({ length: 40 }, (_, i) => `U${1000 + i}`);
    const arms = new Map<string, string>();
    for (const user of users) {
      const s = await selectScorer({ ...deps, source: "invite", user, handTuned });
      expect(s.fallback).toBeNull();
      expect(s.experimentProblem).toBeNull();
      expect(s.experiment).toBe(experiment.name);
      expect(s.arm).toBe(assignArm(experiment, user).name);
      expect(s.model).toEqual(
        s.arm === "lr"
          ? { name: "lr", version: lr.version, kind: "lr" }
          : { name: "xgb", version: xgb.version, kind: "xgboost" },
      );
      arms.set(user, s.arm);
    }
    expect(new Set(arms.values())).toEqual(new Set(["lr", "xgb"]));

    // Same arms on every request, and from another isolate's cache.
    const elsewhere = servingDeps();
    for (const user of users) {
      expect((await selectScorer({ ...deps, source: "invite", user, handTuned })).arm).toBe(arms.get(user));
      expect((await selectScorer({ ...elsewhere, source: "invite", user, handTuned })).arm).toBe(arms.get(user));
    }

    for (const [arm, fixture, model] of [
      ["lr", "lr", lr],
      ["xgb", "xgboost", xgb],
    ] as const) {
      const user = users.find((u) => arms.get(u) === arm) as string;
      const s = await selectScorer({ ...deps, source: "invite", user, handTuned });
      const { records, scores } = parityRecords(fixture);
      expect(records.length).toBeGreaterThan(30);
      const labels = { source: "invite", model: `${model.name}@${model.version}` };
      const timed = metricValue("rec_model_scoring_ms_count", labels);
      // Feature records in any key order: the scorer lays them out in the manifest's order.
      const shuffled = records.map((r) => Object.fromEntries(Object.entries(r).reverse()));
      const got = await s.scorer.score(shuffled);
      expect(got.length).toBe(scores.length);
      const worst = Math.max(...scores.map((want, i) => Math.abs(Number(got[i]) - want)));
      expect(worst, arm).toBeLessThanOrEqual(1e-5);
      expect(metricValue("rec_model_scoring_ms_count", labels)).toBe(timed + 1);
    }
  });

  it("falls back to the hand-tuned scorer when an arm's model is missing or corrupt, and counts it", async () => {
    // Written straight to the bucket, as a hand edit or a deleted model would leave it.
    const corrupt = { source: "leave", name: "lr", version: unique() };
    await env.MODELS.put(`${r2ModelPrefix(corrupt)}manifest.json`, JSON.stringify(manifestFor("lr", corrupt)));
    await env.MODELS.put(`${r2ModelPrefix(corrupt)}model.onnx`, "definitely not protobuf");
    const experiment: Experiment = {
      name: `leave-${unique()}`,
      arms: [
        { name: "gone", weight: 1, model: "lr@never-uploaded" },
        { name: "broken", weight: 1, model: `lr@${corrupt.version}` },
      ],
    };
    await env.MODELS.put(experimentObjectKey("leave"), JSON.stringify(experiment));
    const deps = servingDeps();
    const seen = new Set<string>();
    for (let i = 0; seen.size < 2 && i < 100; i++) {
      const user = `U${i}`;
      const arm = assignArm(experiment, user);
      const labels = { source: "leave", model: arm.model };
      const code = arm.name === "gone" ? "not_found" : "invalid_model";
      const before = metricValue("rec_model_load_failures_total", { ...labels, code });
      const s = await selectScorer({ ...deps, source: "leave", user, handTuned });
      expect(s.arm).toBe(arm.name);
      expect(s.scorer).toBe(handTuned);
      expect(s.model).toEqual({ name: "hand_tuned", version: "test-1", kind: "hand_tuned" });
      expect(s.fallback?.code).toBe(code);
      expect(s.fallback?.message.length).toBeGreaterThan(0);
      expect(await s.scorer.score([{ shared_channels: 3 }])).toEqual([3]);
      expect(metricValue("rec_model_load_failures_total", { ...labels, code })).toBe(before + 1);
      seen.add(arm.name);
    }
    expect(seen).toEqual(new Set(["gone", "broken"]));
  });

  it("falls back when the loader throws instead of answering", async () => {
    const experiment: Experiment = { name: "x", arms: [{ name: "a", weight: 1, model: "lr@1" }] };
    const s = await selectScorer({
      experiments: {
        ...servingDeps().experiments,
        current: async () => ({ experiment, origin: "stored", problem: null }),
      },
      loader: {
        scorer: async () => {
          throw new Error("stream reset");
        },
      },
      source: "leave",
      user: "U1",
      handTuned,
    });
    expect(s.scorer).toBe(handTuned);
    expect(s.fallback).toEqual({ code: "storage", message: "stream reset" });
  });

  it("serves the default experiment when the stored one is corrupt, logs and counts it", async () => {
    await env.MODELS.put(experimentObjectKey("archive"), '{"name": "archive", "arms": [{"name": "a"');
    const before = metricValue("rec_degraded_total", { source: "archive", step: "experiment" });
    const s = await selectScorer({ ...servingDeps(), source: "archive", user: "U1", handTuned });
    expect(s).toMatchObject({ experiment: "archive-default", arm: "default", fallback: null });
    expect(s.scorer).toBe(handTuned);
    expect(s.experimentProblem).toContain("not JSON");
    expect(metricValue("rec_degraded_total", { source: "archive", step: "experiment" })).toBe(before + 1);

    // Valid JSON, not an experiment: the same, and the admin API shows why.
    await env.MODELS.put(experimentObjectKey("archive"), JSON.stringify({ name: "archive", arms: [{ name: "a" }] }));
    const t = await selectScorer({ ...servingDeps(), source: "archive", user: "U1", handTuned });
    expect(t.experiment).toBe("archive-default");
    expect(t.experimentProblem).toContain("arms.0");
    const shown = await call("GET", "/v1/admin/recommend/experiments/archive");
    expect(shown.body).toMatchObject({ default: true, experiment: { name: "archive-default" } });
    expect(shown.body.problem).toContain("unusable");
    await env.MODELS.delete(experimentObjectKey("archive"));
  });
});

describe("experiment cache and failure memory", () => {
  it("an isolate sees another isolate's change once its entry is older than the TTL", async () => {
    let clock = 1_000_000;
    const now = () => clock;
    const mine = r2ExperimentStore({ bucket: env.MODELS, bundled: [], cache: new Map(), now });
    const admin = r2ExperimentStore({ bucket: env.MODELS, bundled: [], cache: new Map(), now });
    await admin.remove("channel_browser");
    expect((await mine.current("channel_browser")).origin).toBe("default");
    const experiment: Experiment = { name: "cb", arms: [{ name: "a", weight: 1, model: "hand_tuned" }] };
    await admin.put("channel_browser", experiment);
    expect((await admin.current("channel_browser")).experiment).toEqual(experiment);
    clock += EXPERIMENT_TTL_MS - 1;
    expect((await mine.current("channel_browser")).origin).toBe("default");
    clock += 1;
    expect(await mine.current("channel_browser")).toEqual({ experiment, origin: "stored", problem: null });
    await admin.remove("channel_browser");
  });

  it("keeps serving the last experiment read when the bucket cannot be read", async () => {
    let clock = 0;
    let failing = false;
    const bucket = new Proxy(env.MODELS, {
      get(target, prop) {
        if (prop === "get" && failing) return async () => Promise.reject(new Error("R2 is down"));
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const store = r2ExperimentStore({ bucket, bundled: [], cache: new Map(), now: () => clock });
    const experiment: Experiment = { name: "st", arms: [{ name: "a", weight: 1, model: "hand_tuned" }] };
    await store.put("send_time", experiment);
    failing = true;
    clock += EXPERIMENT_TTL_MS;
    const r = await store.current("send_time");
    expect(r.experiment).toEqual(experiment);
    expect(r.problem).toContain("R2 is down");
    failing = false;
    await store.remove("send_time");
  });

  it("remembers a failed load for the TTL instead of reloading the model on every request", async () => {
    let clock = 0;
    let loads = 0;
    const key = { source: "leave", name: "lr", version: "nowhere" };
    const inner: ModelLoader = {
      async scorer(k) {
        loads++;
        return { ok: false, error: { code: "not_found", key: k, message: "no" } };
      },
    };
    const loader = rememberingFailures(inner, { now: () => clock, failures: new Map() });
    await loader.scorer(key);
    await loader.scorer(key);
    expect(loads).toBe(1);
    clock += EXPERIMENT_TTL_MS;
    await loader.scorer(key);
    expect(loads).toBe(2);
  });

  it("the default experiment is the source's newest bundled model, else hand-tuned", () => {
    const keys = [
      { source: "invite", name: "lr", version: "2025-01-01" },
      { source: "invite", name: "xgboost", version: "2025-06-01" },
      { source: "leave", name: "lr", version: "2026-01-01" },
    ];
    expect(defaultExperiment("invite", keys).arms).toEqual([
      { name: "default", weight: 1, model: "xgboost@2025-06-01" },
    ]);
    expect(defaultExperiment("archive", keys).arms).toEqual([{ name: "default", weight: 1, model: "hand_tuned" }]);
    // A version an arm cannot name is not a default.
    expect(defaultExperiment("leave", [{ source: "leave", name: "lr", version: "a b" }]).arms[0]?.model).toBe(
      "hand_tuned",
    );
  });
});
