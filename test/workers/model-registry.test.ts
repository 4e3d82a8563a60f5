import { env, SELF } from "cloudflare:test";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import composerManifest from "../../models/composer_dm/manifest.json";
import { isolateBundledModels } from "../../platform/models/bundled";
import { EXPERIMENT_TTL_MS, r2ExperimentStore } from "../../platform/models/experiment-store";
import {
  evalSetObjectKey,
  r2RegistryStore,
  registeredModel,
  registryObjectKey,
} from "../../platform/models/model-registry-store";
import { scorerSelectionDeps, selectScorer } from "../../platform/models/scorer-selection";
import { type CollabDataset, channelIdOf, dayOf, snapshotAt, userIdOf } from "../../src/datasets/collab";
import type { ModelKey } from "../../src/models/manifest";
import type { Field } from "../../src/models/onnx-proto";
import { fields } from "../../src/models/onnx-proto";
import { assignArm } from "../../src/recommend/experiments";
import { buildSnapshot, snapshotToRows } from "../../src/recommend/features/index";
import { baselineFeatures, emptyRegistry } from "../../src/recommend/model-registry";
import type { Scorer } from "../../src/recommend/pipeline";
import { uniqueTeamId } from "../contract/fixtures";
import lrManifest from "../fixtures/models/lr/manifest.json";
import lrOnnxBuffer from "../fixtures/models/lr/model.onnx";
import { bytesField, editNode, encode } from "../onnx-edit";
import { api, newTeam, ok, platformToken, token } from "./client";

// The model registry through the Worker as deployed (SELF: app.ts's routes,
// body limits, tokens, the real MODELS bucket and the bundled models): an
// operator uploads a model and an eval set, promotes the model through the
// promotion gate, serving answers with it without a redeploy, a worse model
// is refused with the gate's numbers, and one call rolls back.
//
// The eval set is synthetic, drawn from the process the fixture LR model was
// trained on (training/fixture_models.py `synthetic`: the same feature
// distributions and the same true logit), so the fixture model ranks it well
// and its negation badly; composer_dm's own features are present as noise,
// so the bundled composer_dm model (the serving default) and the baselines
// are scored on them as the gate requires, and rank no better than chance.

const SOURCE = "composer_dm";
const lrOnnx = new Uint8Array(lrOnnxBuffer);
const operator = () => token("TPLATFORM", "UOPERATOR");
const unique = () => `t${crypto.randomUUID().slice(0, 8)}`;

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string; details?: unknown } };
}

async function call(
  method: string,
  path: string,
  options: { token?: string; json?: unknown; body?: BodyInit; type?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? (await operator())}` };
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["content-type"] = "application/json";
  }
  if (options.type) headers["content-type"] = options.type;
  const res = await SELF.fetch(`https://edge.test${path}`, { method, headers, body });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`non-JSON ${res.status} for ${method} ${path}: ${text.slice(0, 200)}`);
  }
}

const modelPath = (k: ModelKey, file: string) => `/v1/admin/models/${k.source}/${k.name}/${k.version}/${file}`;

async function upload(key: ModelKey, onnx: Uint8Array) {
  const m = await call("PUT", modelPath(key, "manifest.json"), { json: { ...lrManifest, ...key } });
  expect(m.status, JSON.stringify(m.body)).toBe(201);
  const o = await call("PUT", modelPath(key, "model.onnx"), { body: onnx, type: "application/octet-stream" });
  expect(o.status, JSON.stringify(o.body)).toBe(201);
}

/** The LinearRegressor's coefficients and intercepts negated: the fixture LR's ranking reversed. */
function negatedLr(onnx: Uint8Array): Uint8Array {
  const negate = (f: Field): Field => {
    if (f.wire === 5) return { ...f, int: (f.int ^ 0x80000000) >>> 0 };
    const copy = new Float32Array(new Uint8Array(f.bytes).buffer);
    for (let i = 0; i < copy.length; i++) copy[i] = -(copy[i] as number);
    return bytesField(f.no, new Uint8Array(copy.buffer));
  };
  return editNode(onnx, 0, (node) =>
    node.map((f) => {
      if (f.no !== 5) return f;
      const attr = fields(f.bytes);
      const name = new TextDecoder().decode(attr.find((a) => a.no === 1)?.bytes);
      if (name !== "coefficients" && name !== "intercepts") return f;
      return bytesField(5, encode(attr.map((a) => (a.no === 7 ? negate(a) : a))));
    }),
  );
}

/** xorshift32: the same eval set every run. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 2 ** 32;
  };
  const poisson = (lambda: number) => {
    let k = 0;
    for (let p = u(); p > Math.exp(-lambda); p *= u()) k++;
    return k;
  };
  const exponential = (mean: number) => -mean * Math.log(u());
  const bernoulli = (p: number) => (u() < p ? 1 : 0);
  // The median of three uniforms is Beta(2, 2).
  const beta22 = () => [u(), u(), u()].sort((a, b) => a - b)[1] as number;
  return { u, poisson, exponential, bernoulli, beta22 };
}

const FIXTURE_FEATURES = lrManifest.features.map((f) => f.name);
const NOISE_FEATURES = [
  ...new Set([...composerManifest.features.map((f) => f.name), ...baselineFeatures(SOURCE)]),
].filter((f) => !FIXTURE_FEATURES.includes(f));

/** An eval set of `cuts` cuts, drawn from training/fixture_models.py's synthetic process. */
function evalSet(seed: number, cuts = ["2023-08-24", "2024-08-23", "2025-08-23"], perCut = 40, rows = 30): string {
  const r = rng(seed);
  const features = [...FIXTURE_FEATURES, ...NOISE_FEATURES];
  const lines: unknown[] = [{ format: "eval-set/1", source: SOURCE, dataset: "synthetic", features }];
  let query = 0;
  for (const cut of cuts) {
    for (let q = 0; q < perCut; q++) {
      const items: number[] = [];
      const labels: number[] = [];
      const x: number[][] = [];
      for (let i = 0; i < rows; i++) {
        const v = [
          r.poisson(3),
          r.poisson(1),
          r.exponential(40),
          r.exponential(60),
          r.bernoulli(0.4),
          r.poisson(5),
          1 + 1999 * r.u(),
          Math.floor(13 * r.u()),
          r.bernoulli(0.1),
          r.beta22(),
        ] as const;
        const logit =
          0.35 * v[0] +
          0.5 * v[1] +
          0.8 * Math.log1p(v[2]) -
          0.02 * v[3] +
          0.9 * v[4] +
          0.15 * Math.sqrt(v[5]) -
          0.1 * v[7] -
          1.2 * v[8] +
          1.5 * (v[9] - 0.5) +
          (v[0] > 4 && v[4] === 1 ? 0.6 : 0) -
          2.5;
        items.push(q * 1000 + i);
        labels.push(r.u() < 1 / (1 + Math.exp(-logit)) ? 1 : 0);
        x.push([...v, ...NOISE_FEATURES.map(() => 3 * r.u())]);
      }
      const positives = Math.max(
        1,
        labels.reduce((s, l) => s + l, 0),
      );
      lines.push({ cut, query: query++, positives, items, labels, x });
    }
  }
  return `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
}

async function putEvalSet(text: string, t?: string) {
  return call("PUT", `/v1/admin/models/${SOURCE}/eval-set`, { body: text, type: "application/x-ndjson", token: t });
}

const handTuned: Scorer = {
  name: "hand_tuned",
  version: "test",
  kind: "hand_tuned",
  score: async (rows) => rows.map(() => 0),
};

/** What serving picks for a user of the source now (the isolate's caches, as a request would). */
async function served(user = "U1") {
  const selection = await selectScorer({ ...scorerSelectionDeps(env), source: SOURCE, user, handTuned });
  return { ...selection.model, fallback: selection.fallback, experiment: selection.experiment };
}

// A small team served by POST /v1/recommend (as test/workers/recommend.test.ts builds one): the
// answer names the model that scored it, which is what a promotion must change.
const CUT = "2024-01-01";
const T = dayOf(CUT);
const servedTeam = uniqueTeamId("TREG");

function dataset(): CollabDataset {
  const activity: CollabDataset["activity"] = [];
  const hours: CollabDataset["hours"] = [];
  const interactions: CollabDataset["interactions"] = [];
  for (let u = 1; u <= 8; u++) {
    for (let k = 0; k < 5; k++) {
      const channel = 1 + ((u + k) % 5);
      activity.push({ day: T - 10 - ((u * 37 + k * 53) % 600), user: u, channel, commits: 1, files: 1 });
      hours.push({ day: T - 10 - ((u * 37 + k * 53) % 600), user: u, hour: (u * 3 + channel) % 24, commits: 1 });
    }
    if (u < 8) interactions.push({ day: T - 30 - u, user: u, other: u + 1, kind: "merged_pr", count: 1 });
  }
  const channels = Array.from({ length: 5 }, (_, i) => ({
    channel: i + 1,
    name: `lib/part${i + 1}`,
    firstDay: T - 800,
  }));
  return { name: "synthetic", channels, activity, interactions, hours };
}

async function seedServedTeam() {
  const ds = dataset();
  const snap = snapshotAt(ds, T);
  const admin = await platformToken();
  await ok(api("POST", "/v1/admin/teams", { token: admin, json: { id: servedTeam, name: "Registry Co" } }), 201);
  const base = `/v1/admin/teams/${servedTeam}`;
  const users = Array.from({ length: 8 }, (_, i) => ({ id: userIdOf(i + 1), email: `u${i + 1}@registry.test` }));
  await ok(api("POST", `${base}/users/import`, { token: admin, json: { users } }), 201);
  const channels = snap.channels.map((c) => ({ id: channelIdOf(c.channel), name: c.name }));
  await ok(api("POST", `${base}/channels/import`, { token: admin, json: { channels } }), 201);
  const memberships = snap.memberships.map((m) => ({ channel_id: channelIdOf(m.channel), user_id: userIdOf(m.user) }));
  await ok(api("POST", `${base}/memberships/import`, { token: admin, json: { memberships } }), 201);
  const vec = (i: number) => [Math.cos(i), Math.sin(i)];
  const emb = {
    dims: 2,
    users: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [String(i + 1), vec(i + 1)])),
    channels: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [String(i + 1), vec(i * 2)])),
  };
  const rows = snapshotToRows(buildSnapshot(ds, T, emb));
  const body = `${rows.map((r) => JSON.stringify({ kind: r.kind, key: r.key, data: JSON.parse(r.data) })).join("\n")}\n`;
  const res = await SELF.fetch(`https://edge.test${base}/features/import?as_of=${CUT}&dataset=synthetic`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/x-ndjson" },
    body,
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

/** The model POST /v1/recommend answers with now (user 3 of the served team). */
async function answeredBy() {
  const res = await api<{ model: { name: string; version: string; fallback: unknown }; items: unknown[] }>(
    "POST",
    "/v1/recommend",
    { token: await token(servedTeam, userIdOf(3)), json: { source: SOURCE, limit: 3 } },
  );
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.model;
}

describe("model registry", () => {
  beforeAll(seedServedTeam);
  // The bucket is shared by the tests of this file: each starts with no registry, eval set or
  // experiment for the source, and this isolate's serving cache read afresh.
  beforeEach(async () => {
    await env.MODELS.delete([registryObjectKey(SOURCE), evalSetObjectKey(SOURCE), `experiments/${SOURCE}.json`]);
    await scorerSelectionDeps(env).experiments.current(SOURCE, { fresh: true });
  });

  it("promotes through the gate, serves the new model without a redeploy, refuses a worse one, rolls back in one call", async () => {
    const bundledDefault = (await served()).name;
    expect(bundledDefault).toBe(composerManifest.name);
    expect(await answeredBy()).toMatchObject({ name: composerManifest.name, version: composerManifest.version });

    const good = { source: SOURCE, name: "lr", version: unique() };
    const worse = { source: SOURCE, name: "lr", version: unique() };
    const same = { source: SOURCE, name: "lr", version: unique() };
    await upload(good, lrOnnx);
    await upload(worse, negatedLr(lrOnnx));
    await upload(same, lrOnnx);

    const stored = await putEvalSet(evalSet(7));
    expect(stored.status, JSON.stringify(stored.body)).toBe(200);
    expect(stored.body).toMatchObject({
      source: SOURCE,
      rankings: 120,
      cuts: ["2023-08-24", "2024-08-23", "2025-08-23"],
    });

    let registry = await call("GET", `/v1/admin/models/${SOURCE}/registry`);
    expect(registry.body).toMatchObject({
      current: null,
      serving: { model: `${composerManifest.name}@${composerManifest.version}`, origin: "default" },
      versions: [],
    });

    // The fixture model beats the bundled default and the best baseline on every cut.
    const promoted = await call("POST", `/v1/admin/models/${SOURCE}/promote`, {
      json: { model: `lr@${good.version}` },
    });
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(200);
    const evidence = promoted.body.evidence as {
      serving: string;
      references: string[];
      gate: {
        passes: boolean;
        comparisons: Record<string, { improvement: number; required: number; passes: boolean }>;
      };
      ndcg10: Record<string, { mean: number; per_cut: number[] }>;
    };
    expect(evidence.serving).toBe(`default:${composerManifest.name}@${composerManifest.version}`);
    expect(evidence.gate.passes).toBe(true);
    expect(evidence.references[0]).toBe("serving");
    expect(evidence.references[1]).toMatch(/^best_baseline:/);
    for (const c of Object.values(evidence.gate.comparisons)) expect(c.improvement).toBeGreaterThan(c.required);
    expect(evidence.ndcg10.candidate?.per_cut).toHaveLength(3);
    expect(promoted.body.registry).toMatchObject({
      current: `lr@${good.version}`,
      serving: { model: `lr@${good.version}`, origin: "registry" },
    });

    // This isolate serves it at once, with no experiment stored and no deploy.
    expect(await served()).toMatchObject({ name: "lr", version: good.version, kind: "lr", fallback: null });
    expect(await answeredBy()).toMatchObject({ name: "lr", version: good.version, fallback: null });
    expect(await env.MODELS.head(`experiments/${SOURCE}.json`)).toBeNull();

    // A model equal to the serving one does not clear it (D = 0); nothing changes.
    const before = await (await env.MODELS.get(registryObjectKey(SOURCE)))?.text();
    const equal = await call("POST", `/v1/admin/models/${SOURCE}/promote`, { json: { model: `lr@${same.version}` } });
    expect([equal.status, equal.body.error?.code]).toEqual([409, "gate_refused"]);
    const equalGate = (equal.body.error?.details ?? {}) as { gate?: { failed: string[] } };
    expect(equalGate.gate?.failed).toContain("serving");

    // The deliberately worse model: refused with the per-cut numbers, D, S and the references it failed.
    const refused = await call("POST", `/v1/admin/models/${SOURCE}/promote`, {
      json: { model: `lr@${worse.version}` },
    });
    expect([refused.status, refused.body.error?.code]).toEqual([409, "gate_refused"]);
    const details = refused.body.error?.details as {
      gate: {
        failed: string[];
        comparisons: Record<string, { improvement: number; improvement_per_cut: number[]; improvement_std: number }>;
      };
      ndcg10: Record<string, { per_cut: number[] }>;
    };
    expect(details.gate.failed).toEqual(expect.arrayContaining(["serving"]));
    expect(details.gate.comparisons.serving?.improvement).toBeLessThan(0);
    expect(details.gate.comparisons.serving?.improvement_per_cut).toHaveLength(3);
    expect(typeof details.gate.comparisons.serving?.improvement_std).toBe("number");
    expect(details.ndcg10.candidate?.per_cut).toHaveLength(3);
    expect(refused.body.error?.message).toContain(`lr@${good.version} keeps serving`);
    expect(await (await env.MODELS.get(registryObjectKey(SOURCE)))?.text()).toBe(before);
    expect(await served()).toMatchObject({ name: "lr", version: good.version });

    registry = await call("GET", `/v1/admin/models/${SOURCE}/registry`);
    expect(registry.body.current).toBe(`lr@${good.version}`);
    expect(registry.body.versions).toHaveLength(1);

    // One call rolls back: the bundled default serves again.
    const back = await call("POST", `/v1/admin/models/${SOURCE}/rollback`);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body).toMatchObject({
      rolled_back: `lr@${good.version}`,
      registry: { current: null, serving: { origin: "default" } },
    });
    expect(await served()).toMatchObject({ name: bundledDefault, fallback: null });
    expect(await answeredBy()).toMatchObject({ name: composerManifest.name, version: composerManifest.version });
    const events = ((await call("GET", `/v1/admin/models/${SOURCE}/registry`)).body.events ?? []) as Array<{
      action: string;
    }>;
    expect(events.map((e) => e.action)).toEqual(["promote", "rollback"]);

    // Nothing left to roll back to.
    const none = await call("POST", `/v1/admin/models/${SOURCE}/rollback`);
    expect([none.status, none.body.error?.code]).toEqual([409, "conflict"]);
  });

  it("rolls back to the previous registered version, and another isolate serves a change within its cache time", async () => {
    const first = { source: SOURCE, name: "lr", version: unique() };
    await upload(first, lrOnnx);
    expect((await putEvalSet(evalSet(11))).status).toBe(200);
    expect(
      (await call("POST", `/v1/admin/models/${SOURCE}/promote`, { json: { model: `lr@${first.version}` } })).status,
    ).toBe(200);

    // A second registered version, as a training run registers it (the same object shape); the gate is
    // the route's, tested above: this is about the order of versions.
    const store = r2RegistryStore(env.MODELS);
    const read = await store.read(SOURCE);
    const second = { source: SOURCE, name: "lr", version: unique() };
    await upload(second, lrOnnx);
    const entry = {
      ...(read.registry.versions[0] as (typeof read.registry.versions)[number]),
      model: `lr@${second.version}`,
    };
    expect(
      await store.write(SOURCE, { ...read.registry, versions: [...read.registry.versions, entry] }, read.version),
    ).toBe(true);

    // Another isolate: its own cache and clock; it read before the change.
    let now = 1_000_000;
    const other = r2ExperimentStore({
      bucket: env.MODELS,
      bundled: isolateBundledModels().keys(),
      registered: registeredModel(env.MODELS),
      cache: new Map(),
      now: () => now,
    });
    const arm = async () => assignArm((await other.current(SOURCE)).experiment, "U1").model;
    expect(await arm()).toBe(`lr@${second.version}`);

    const back = await call("POST", `/v1/admin/models/${SOURCE}/rollback`);
    expect(back.body).toMatchObject({
      rolled_back: `lr@${second.version}`,
      registry: { current: `lr@${first.version}` },
    });
    // Still the cached answer until the TTL passes, then the registry's.
    expect(await arm()).toBe(`lr@${second.version}`);
    now += EXPERIMENT_TTL_MS;
    expect(await arm()).toBe(`lr@${first.version}`);

    // A stored experiment serves instead of the registry's default, and the registry says so;
    // deleting it hands back to the registry's current version (not the bundled model).
    const experiment = { name: "manual", arms: [{ name: "a", weight: 1, model: "hand_tuned" }] };
    expect((await call("PUT", `/v1/admin/recommend/experiments/${SOURCE}`, { json: experiment })).status).toBe(200);
    expect((await call("GET", `/v1/admin/models/${SOURCE}/registry`)).body).toMatchObject({
      current: `lr@${first.version}`,
      experiment_stored: true,
    });
    expect(await served()).toMatchObject({ name: "hand_tuned", experiment: "manual" });
    const reset = await call("DELETE", `/v1/admin/recommend/experiments/${SOURCE}`);
    expect(reset.status).toBe(200);
    // The answer names what serving now uses: the registry's version, not the bundled default.
    expect(JSON.stringify(reset.body)).toContain(`lr@${first.version}`);
    expect(reset.body).toMatchObject({ default: true });
    expect(await served()).toMatchObject({ name: "lr", version: first.version, experiment: `${SOURCE}-default` });
    expect((await call("GET", `/v1/admin/models/${SOURCE}/registry`)).body.experiment_stored).toBe(false);
  });

  it("lets only one of two writers from the same read win (conditional put on the etag)", async () => {
    const store = r2RegistryStore(env.MODELS);
    const source = "leave";
    const empty = await store.read(source);
    expect(empty.version).toBeNull();
    const a = {
      ...emptyRegistry(source),
      events: [{ action: "rollback" as const, model: "a", from: "x", at: "t", by: "a" }],
    };
    const b = {
      ...emptyRegistry(source),
      events: [{ action: "rollback" as const, model: "b", from: "x", at: "t", by: "b" }],
    };
    expect(await store.write(source, a, null)).toBe(true);
    expect(await store.write(source, b, null)).toBe(false);
    const now = await store.read(source);
    expect(now.registry.events[0]?.model).toBe("a");
    expect(await store.write(source, b, empty.version)).toBe(false);
    expect(await store.write(source, b, now.version)).toBe(true);
    expect(await store.write(source, a, now.version)).toBe(false);
  });

  it("refuses bad bodies and impossible promotions with 4xx JSON, changing nothing", async () => {
    const key = { source: SOURCE, name: "lr", version: unique() };
    await upload(key, lrOnnx);
    const path = (what: string) => `/v1/admin/models/${SOURCE}/${what}`;
    // Promoting before any eval set is stored.
    const noSet = await call("POST", path("promote"), { json: { model: `lr@${key.version}` } });
    expect([noSet.status, noSet.body.error?.code]).toEqual([409, "conflict"]);

    const good = evalSet(3);
    const [header, ...rankings] = good.trim().split("\n");
    const headerJson = JSON.parse(header as string);
    const lacking = { ...headerJson, features: FIXTURE_FEATURES };
    const cases: Array<[string, Promise<Answer>, number, string]> = [
      [
        "eval set as JSON",
        call("PUT", path("eval-set"), { body: good, type: "application/json" }),
        415,
        "unsupported_media_type",
      ],
      ["empty eval set", putEvalSet(""), 400, "invalid_body"],
      ["not JSON", putEvalSet("{nope\n"), 400, "invalid_body"],
      ["another source", putEvalSet(good.replace(`"source":"${SOURCE}"`, '"source":"invite"')), 400, "invalid_body"],
      ["a header only", putEvalSet(`${header}\n`), 400, "invalid_body"],
      [
        "lacking the baselines' features",
        putEvalSet(
          [
            JSON.stringify(lacking),
            JSON.stringify({
              cut: "2024-01-01",
              query: 1,
              positives: 1,
              items: [1],
              labels: [1],
              x: [FIXTURE_FEATURES.map(() => 0)],
            }),
          ].join("\n"),
        ),
        400,
        "invalid_body",
      ],
      [
        "a row of the wrong width",
        putEvalSet(
          `${header}\n${JSON.stringify({ cut: "2024-01-01", query: 1, positives: 1, items: [1], labels: [1], x: [[1]] })}\n`,
        ),
        400,
        "invalid_body",
      ],
      [
        "a label that is not 0/1",
        putEvalSet(`${header}\n${(rankings[0] as string).replace('"labels":[', '"labels":[2,')}\n`),
        400,
        "invalid_body",
      ],
      [
        "an unknown source",
        call("PUT", "/v1/admin/models/nope/eval-set", { body: good, type: "application/x-ndjson" }),
        404,
        "unknown_source",
      ],
      ["promote: no body", call("POST", path("promote"), { body: "", type: "application/json" }), 400, "invalid_body"],
      ["promote: not a model ref", call("POST", path("promote"), { json: { model: "lr" } }), 400, "invalid_body"],
      [
        "promote: extra key",
        call("POST", path("promote"), { json: { model: `lr@${key.version}`, force: true } }),
        400,
        "invalid_body",
      ],
      ["promote: a number", call("POST", path("promote"), { json: { model: 7 } }), 400, "invalid_body"],
      [
        "promote: unknown source",
        call("POST", "/v1/admin/models/nope/promote", { json: { model: `lr@${key.version}` } }),
        404,
        "unknown_source",
      ],
      ["rollback: unknown source", call("POST", "/v1/admin/models/nope/rollback"), 404, "unknown_source"],
    ];
    for (const [what, pending, status, code] of cases) {
      const r = await pending;
      expect([r.status, r.body.error?.code], `${what}: ${JSON.stringify(r.body)}`).toEqual([status, code]);
      expect(typeof r.body.error?.message, what).toBe("string");
    }
    expect(await env.MODELS.head(evalSetObjectKey(SOURCE))).toBeNull();

    // With an eval set: a model that is not uploaded cannot be promoted.
    expect((await putEvalSet(good)).status).toBe(200);
    const missing = await call("POST", path("promote"), { json: { model: "lr@never-uploaded" } });
    expect([missing.status, missing.body.error?.code]).toEqual([409, "conflict"]);
    expect(await env.MODELS.head(registryObjectKey(SOURCE))).toBeNull();
  });

  it("answers 503 with what to do when the stored registry object is unusable, and changes nothing", async () => {
    const key = { source: SOURCE, name: "lr", version: unique() };
    await upload(key, lrOnnx);
    expect((await putEvalSet(evalSet(5))).status).toBe(200);
    for (const corrupt of [
      '{"source": "composer_dm", "versions": [',
      JSON.stringify({ source: SOURCE, versions: 7 }),
    ]) {
      await env.MODELS.put(registryObjectKey(SOURCE), corrupt);
      const requests: Array<[string, string, { json?: unknown }]> = [
        ["GET", `/v1/admin/models/${SOURCE}/registry`, {}],
        ["POST", `/v1/admin/models/${SOURCE}/promote`, { json: { model: `lr@${key.version}` } }],
        ["POST", `/v1/admin/models/${SOURCE}/rollback`, {}],
      ];
      for (const [method, path, options] of requests) {
        const r = await call(method, path, options);
        expect([r.status, r.body.error?.code], `${method} ${path}: ${JSON.stringify(r.body)}`).toEqual([
          503,
          "unavailable",
        ]);
        expect(r.body.error?.message).toContain(`${registryObjectKey(SOURCE)} in the MODELS bucket is unusable`);
      }
      expect(await (await env.MODELS.get(registryObjectKey(SOURCE)))?.text()).toBe(corrupt);
    }
    await env.MODELS.delete(registryObjectKey(SOURCE));
    expect((await call("GET", `/v1/admin/models/${SOURCE}/registry`)).status).toBe(200);
  });

  it("answers 403 to members and other teams' admins, and 401 without a token", async () => {
    const team = await newTeam();
    const member = await token(team.id, "UMEMBER");
    const key = { source: SOURCE, name: "lr", version: unique() };
    await upload(key, lrOnnx);
    const requests: Array<[string, string, { json?: unknown; body?: BodyInit; type?: string }]> = [
      ["GET", `/v1/admin/models/${SOURCE}/registry`, {}],
      ["PUT", `/v1/admin/models/${SOURCE}/eval-set`, { body: evalSet(5), type: "application/x-ndjson" }],
      ["POST", `/v1/admin/models/${SOURCE}/promote`, { json: { model: `lr@${key.version}` } }],
      ["POST", `/v1/admin/models/${SOURCE}/rollback`, {}],
      ["POST", "/v1/admin/models/nope/rollback", {}],
    ];
    for (const [method, path, options] of requests) {
      for (const t of [member, team.admin]) {
        const r = await call(method, path, { ...options, token: t });
        expect([r.status, r.body.error?.code], `${method} ${path}`).toEqual([403, "forbidden"]);
      }
      const res = await SELF.fetch(`https://edge.test${path}`, { method });
      expect(res.status, `${method} ${path} without a token`).toBe(401);
      await res.text();
    }
    expect(await env.MODELS.head(evalSetObjectKey(SOURCE))).toBeNull();
    expect(await env.MODELS.head(registryObjectKey(SOURCE))).toBeNull();
  });
});
