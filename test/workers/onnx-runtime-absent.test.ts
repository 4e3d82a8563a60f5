import { describe, expect, it } from "vitest";
import slackbotOnnx from "../../models/slackbot/model.onnx";
import { checkOnnx } from "../../platform/models/model-uploads";
import { onnxScorer, ortRuntime } from "../../platform/models/onnx-runtime";
import { onnxRuntimeEngine } from "../../platform/models/runtime-registry";
import { loadSlackbotModel, slackbotModel } from "../../platform/slackbot-model";
import { type ModelKey, type ModelManifest, parseManifest } from "../../src/models/manifest";
import lrManifestJson from "../fixtures/models/lr/manifest.json";
import lrOnnx from "../fixtures/models/lr/model.onnx";
import xgbManifestJson from "../fixtures/models/xgboost/manifest.json";
import xgbOnnx from "../fixtures/models/xgboost/model.onnx";
import { editNode, editTreeAttr, textField } from "../onnx-edit";
import { api, platformToken } from "./client";

// The default build (wrangler.toml, workers/index.ts) has no ONNX runtime:
// what needs one (a graph no TypeScript reader covers, engine
// "onnxruntime-web" asked for) is refused with a 4xx naming the ONNX build,
// or, while serving, a runtime_unavailable load failure that falls back to
// the hand-tuned model; never a 5xx. Everything that ships still scores
// (the Slack bot's classifier: slackbot-model.test.ts; the recommenders:
// recommend.test.ts, recommend-admin.test.ts). The ONNX build's side:
// test/workers-onnx/.

function manifestOf(json: unknown): ModelManifest {
  const parsed = parseManifest(json);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.manifest;
}

const lr = manifestOf(lrManifestJson);
const xgb = manifestOf(xgbManifestJson);
const keyOf = (m: ModelManifest): ModelKey => ({ source: m.source, name: m.name, version: m.version });
const unique = () => `t${crypto.randomUUID().slice(0, 8)}`;

/** The XGBoost fixture with MAX instead of SUM: a valid graph onnxruntime-web runs and no reader covers. */
const xgbMaxOnnx = () =>
  editTreeAttr(new Uint8Array(xgbOnnx), "aggregate_function", (a) => [
    ...a.filter((f) => f.no !== 4),
    textField(4, "MAX"),
  ]);

/** The Slack bot's graph with Softmax's axis left to its default (-1): the same model, not the shape the reader takes. */
const slackbotDefaultAxis = () => editNode(new Uint8Array(slackbotOnnx), 6, (node) => node.filter((f) => f.no !== 5));

describe("the default build, without onnxruntime-web", () => {
  it("registers no runtime, and starting one names the ONNX build", async () => {
    expect(onnxRuntimeEngine()).toBeNull();
    await expect(ortRuntime()).rejects.toThrow(/needs onnxruntime-web.*wrangler\.onnx\.toml/);
  });

  it("scores the shipped Slack bot model in TypeScript; a graph of another shape fails its load naming the ONNX build", async () => {
    const model = await slackbotModel();
    expect(model.engine).toBe("typescript");
    expect((await model.classify("postgresql replication lag"))[0]?.id).toBe("database");
    await expect(loadSlackbotModel(slackbotDefaultAxis())).rejects.toThrow(
      /model\.onnx .*needs onnxruntime-web.*wrangler\.onnx\.toml/,
    );
  });

  it("serves LR and tree graphs in TypeScript; another graph or a forced runtime is runtime_unavailable, garbage invalid_model", async () => {
    const a = await onnxScorer(keyOf(lr), lr, new Uint8Array(lrOnnx));
    const b = await onnxScorer(keyOf(xgb), xgb, new Uint8Array(xgbOnnx));
    expect([a.ok && a.value.engine, b.ok && b.value.engine]).toEqual(["linear", "trees"]);

    const max = await onnxScorer({ ...keyOf(xgb), version: unique() }, xgb, xgbMaxOnnx());
    expect(max.ok).toBe(false);
    if (!max.ok) {
      expect(max.error.code).toBe("runtime_unavailable");
      expect(max.error.message).toMatch(/no TypeScript reader covers.*ai\.onnx\.ml\/TreeEnsembleRegressor/);
      expect(max.error.message).toContain("wrangler.onnx.toml");
    }
    const forced = await onnxScorer({ ...keyOf(lr), version: unique() }, lr, new Uint8Array(lrOnnx), {
      engine: "onnxruntime-web",
    });
    expect(!forced.ok && forced.error.code).toBe("runtime_unavailable");
    expect(!forced.ok && forced.error.message).toMatch(/engine "onnxruntime-web".*wrangler\.onnx\.toml/);

    const garbage = await onnxScorer({ ...keyOf(lr), version: unique() }, lr, new TextEncoder().encode("not onnx"));
    expect(!garbage.ok && garbage.error.code).toBe("invalid_model");
    const renamed = await onnxScorer(
      { ...keyOf(lr), version: unique() },
      { ...lr, input: "x" },
      new Uint8Array(lrOnnx),
    );
    expect(!renamed.ok && renamed.error.code).toBe("invalid_model");
  });

  it("checks uploads in TypeScript: covered graphs by scoring a sample, others refused as needing the runtime", async () => {
    expect(await checkOnnx(lr, new Uint8Array(lrOnnx))).toBeNull();
    expect(await checkOnnx(xgb, new Uint8Array(xgbOnnx))).toBeNull();
    const nine = { ...lr, features: lr.features.slice(0, 9) };
    expect(await checkOnnx(nine, new Uint8Array(lrOnnx))).toMatchObject({
      code: "invalid_model",
      message: expect.stringContaining("scoring a sample"),
    });
    expect(await checkOnnx(xgb, xgbMaxOnnx())).toMatchObject({
      code: "runtime_missing",
      message: expect.stringContaining("wrangler.onnx.toml"),
    });
  });

  it("an upload only onnxruntime-web runs: 400 runtime_unavailable JSON naming the ONNX build, the manifest kept", async () => {
    const token = await platformToken();
    const key = { source: "invite", name: "max", version: unique() };
    const path = `/v1/admin/models/${key.source}/${key.name}/${key.version}`;
    const m = await api("PUT", `${path}/manifest.json`, { token, json: { ...xgb, ...key } });
    expect(m.status, JSON.stringify(m.body)).toBe(201);
    const r = await api<{ error: { code: string; message: string } }>("PUT", `${path}/model.onnx`, {
      token,
      body: xgbMaxOnnx(),
      contentType: "application/octet-stream",
    });
    expect([r.status, r.body.error.code]).toEqual([400, "runtime_unavailable"]);
    expect(r.body.error.message).toContain("needs onnxruntime-web");
    expect(r.body.error.message).toContain("npx wrangler deploy --config wrangler.onnx.toml");
    expect(r.body.error.message).toContain("manifest.json is kept");
    const listed = await api<{ models: Array<{ name: string; version: string; complete: boolean }> }>(
      "GET",
      `/v1/admin/models/${key.source}`,
      { token },
    );
    expect(listed.body.models.find((i) => i.version === key.version)).toMatchObject({ complete: false });
  });
});
