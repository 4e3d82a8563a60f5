import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import composerManifest from "../../models/composer_dm/manifest.json";
import { EXIT, exitCodeOf, gateAndRegister, pullExport } from "../../scripts/retrain";
import { signToken } from "../../src/auth/tokens";
import { baselineFeatures } from "../../src/recommend/model-registry";
import { type Backend, serveAsDeployed } from "../../tools/harness/backend";
import lrManifest from "../fixtures/models/lr/manifest.json";

// `npm run retrain` (scripts/retrain.ts) against the bundle as built for
// deploy, served by Miniflare: it pulls a window's export through the
// operators' routes, and its gate step uploads a candidate, PUTs the eval
// set and asks the Worker to promote it: promoted is exit 0, the gate's
// refusal exit 2 with nothing changed, any other failure exit 1. (Training
// itself, train.py on an export, runs in npm run loop: minutes, not a test.)
//
// The candidate is the fixture LR model as composer_dm, the eval set drawn
// from the process it was trained on (training/fixture_models.py
// `synthetic`), with composer_dm's own features as noise: the bundled
// composer_dm model (what serves) and the baselines rank it by chance.

const SECRET = "retrain-test-secret-0123456789abcdef0123";
const OPERATOR = { team: "TOPS", user: "UOPS" };
const SOURCE = "composer_dm";

let backend: Backend;
let operator: string;
let root: string;

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
  return { u, poisson, exponential: (m: number) => -m * Math.log(u()), bernoulli: (p: number) => (u() < p ? 1 : 0) };
}

function evalSet(): string {
  const fixture = lrManifest.features.map((f) => f.name);
  const noise = [...new Set([...composerManifest.features.map((f) => f.name), ...baselineFeatures(SOURCE)])].filter(
    (f) => !fixture.includes(f),
  );
  const r = rng(7);
  const lines: unknown[] = [
    { format: "eval-set/1", source: SOURCE, dataset: "synthetic", features: [...fixture, ...noise] },
  ];
  let query = 0;
  for (const cut of ["2023-08-24", "2024-08-23", "2025-08-23"]) {
    for (let q = 0; q < 40; q++) {
      const items: number[] = [];
      const labels: number[] = [];
      const x: number[][] = [];
      for (let i = 0; i < 30; i++) {
        const beta = [r.u(), r.u(), r.u()].sort((a, b) => a - b)[1] as number;
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
          beta,
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
        x.push([...v, ...noise.map(() => 3 * r.u())]);
      }
      lines.push({
        cut,
        query: query++,
        positives: Math.max(
          1,
          labels.reduce((s, l) => s + l, 0),
        ),
        items,
        labels,
        x,
      });
    }
  }
  return `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
}

/** The fixture LR as a composer_dm candidate folder, as training writes one. */
function candidate(version: string): string {
  const models = join(root, version, "models");
  mkdirSync(join(models, SOURCE, "lr"), { recursive: true });
  writeFileSync(
    join(models, SOURCE, "lr", "manifest.json"),
    JSON.stringify({ ...lrManifest, source: SOURCE, name: "composer_dm-retrain", version }),
  );
  writeFileSync(join(models, SOURCE, "lr", "model.onnx"), readFileSync("test/fixtures/models/lr/model.onnx"));
  return models;
}

async function call(method: string, path: string, body?: unknown, type = "application/json") {
  const res = await fetch(`${backend.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${operator}`, ...(body === undefined ? {} : { "content-type": type }) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  backend = await serveAsDeployed("retrain-test", {
    vars: { JWT_SECRET: SECRET, PLATFORM_OPERATORS: `${OPERATOR.team}:${OPERATOR.user}` },
  });
  operator = await signToken({ ...OPERATOR, ttlSeconds: 600 }, SECRET);
  root = mkdtempSync(join(tmpdir(), "retrain-"));
  mkdirSync(join(root, "eval-sets"));
  writeFileSync(join(root, "eval-sets", `${SOURCE}.eval-set.ndjson`), evalSet());
}, 180_000);

afterAll(async () => {
  await backend?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("npm run retrain", () => {
  it("pulls a window's export through the operators' routes", async () => {
    const team = "TRETRAIN";
    expect((await call("POST", "/v1/admin/teams", { id: team, name: "Retrain" })).status).toBe(201);
    const history = [
      { table: "activity", day: "2025-01-02", user_id: "U1", channel_id: "C7", commits: 3 },
      { table: "hours", day: "2025-01-02", user_id: "U1", local_hour: 9, commits: 3 },
    ];
    const up = await call(
      "POST",
      `/v1/admin/teams/${team}/features/history`,
      `${history.map((h) => JSON.stringify(h)).join("\n")}\n`,
      "application/x-ndjson",
    );
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    const today = new Date().toISOString().slice(0, 10);
    const served = {
      message_id: "m1",
      kind: "served",
      request_id: "r1",
      team,
      user: "U1",
      source: "channel_browser",
      experiment: "channel_browser-default",
      arm: "default",
      model: "m",
      version: "1",
      fallback: false,
      ts: Date.now(),
      feature_names: ["f"],
      items: [{ item: "C7", rank: 1, score: 0.5, features: [1] }],
    };
    const bucket = await backend.mf.getR2Bucket("REC_LOG_STORE");
    await bucket.put(`rec-logs/source=channel_browser/day=${today}/t.ndjson`, `${JSON.stringify(served)}\n`);
    // Only a partial window so far: the default (newest complete) finds none.
    expect((await call("POST", `/v1/admin/exports/${today}`)).status).toBe(201);
    await expect(pullExport({ url: backend.url, token: operator, dir: join(root, "pulled") })).rejects.toThrow(
      /no complete export/,
    );
    const pulled = await pullExport({ url: backend.url, token: operator, dir: join(root, "pulled"), window: today });
    expect(pulled).toMatchObject({ window: today, team });
    const activity = gunzipSync(readFileSync(join(pulled.path, "activity.csv.gz"))).toString();
    expect(activity).toBe("day,user_id,channel_id,commits,files\n2025-01-02,1,7,3,0\n");
    expect(JSON.parse(readFileSync(join(pulled.path, "rec-logs.ndjson"), "utf8"))).toMatchObject({ request_id: "r1" });
    // Not an operator: the pull fails (retrain's exit 1).
    const admin = await signToken({ team, user: "UADMIN", ttlSeconds: 600 }, SECRET);
    await expect(pullExport({ url: backend.url, token: admin, dir: join(root, "x"), window: today })).rejects.toThrow(
      /403/,
    );
  });

  it("promotes a candidate that beats what serves (exit 0), refuses one that does not (exit 2), and fails loudly (exit 1)", async () => {
    const evalSets = join(root, "eval-sets");
    const candidates = [{ source: SOURCE, kind: "lr" }];
    const first = await gateAndRegister({
      url: backend.url,
      token: operator,
      models: candidate("retrain-1"),
      evalSets,
      candidates,
    });
    expect(
      first.map((d) => d.status),
      JSON.stringify(first),
    ).toEqual(["promoted"]);
    expect(exitCodeOf(first)).toBe(EXIT.promoted);
    const registry = await call("GET", `/v1/admin/models/${SOURCE}/registry`);
    expect(registry.body.current).toBe("composer_dm-retrain@retrain-1");

    // The same model again under a new version: no better than what now serves, refused.
    const second = await gateAndRegister({
      url: backend.url,
      token: operator,
      models: candidate("retrain-2"),
      evalSets,
      candidates,
    });
    expect(second.map((d) => d.status)).toEqual(["refused"]);
    expect((second[0]?.detail as { gate?: { failed: string[] } } | undefined)?.gate?.failed).toContain("serving");
    expect(exitCodeOf(second)).toBe(EXIT.refused);
    expect((await call("GET", `/v1/admin/models/${SOURCE}/registry`)).body.current).toBe(
      "composer_dm-retrain@retrain-1",
    );

    // A token that is no operator's: an error, not a decision.
    const stranger = await signToken({ team: "TSOMEONE", user: "USOMEONE", ttlSeconds: 600 }, SECRET);
    const third = await gateAndRegister({
      url: backend.url,
      token: stranger,
      models: candidate("retrain-3"),
      evalSets,
      candidates,
    });
    expect(third.map((d) => d.status)).toEqual(["error"]);
    expect(exitCodeOf(third)).toBe(EXIT.error);
    expect(exitCodeOf([...first, ...second])).toBe(EXIT.refused);
    expect(exitCodeOf([])).toBe(EXIT.error);

    // Rolled back in one call: the bundled default serves again.
    expect((await call("POST", `/v1/admin/models/${SOURCE}/rollback`)).status).toBe(200);
  });
});
