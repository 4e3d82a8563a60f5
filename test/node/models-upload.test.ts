import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadModels } from "../../scripts/models-upload";
import { signToken } from "../../src/auth/tokens";
import { type Backend, serveAsDeployed } from "../../tools/harness/backend";

// `npm run models:upload` (scripts/models-upload.ts) against the bundle as
// built for deploy, served by Miniflare: a model folder as training writes
// it lands in the MODELS bucket and is listed by the operator API; a broken
// one is refused and reported, and nothing of it is listed.

const SECRET = "models-upload-test-secret-0123456789abcdef";
const OPERATOR = { team: "TOPS", user: "UOPS" };

let backend: Backend;
let operator: string;
let root: string;

beforeAll(async () => {
  backend = await serveAsDeployed("models-upload-test", {
    vars: { JWT_SECRET: SECRET, PLATFORM_OPERATORS: `${OPERATOR.team}:${OPERATOR.user}` },
  });
  operator = await signToken({ ...OPERATOR, ttlSeconds: 600 }, SECRET);
  // Two copies of a shipped model under new versions: one intact, one with its graph cut short.
  root = mkdtempSync(join(tmpdir(), "models-upload-"));
  for (const [dir, version] of [
    ["good", "upload-test-good"],
    ["broken", "upload-test-broken"],
  ] as const) {
    cpSync("models/archive", join(root, "archive", dir), { recursive: true });
    const path = join(root, "archive", dir, "manifest.json");
    const manifest = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...manifest, version }));
  }
  const onnx = join(root, "archive", "broken", "model.onnx");
  writeFileSync(onnx, readFileSync(onnx).subarray(0, 64));
}, 180_000);

afterAll(async () => {
  await backend?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("npm run models:upload", () => {
  it("uploads a model folder and refuses a broken one", async () => {
    const results = await uploadModels({ url: backend.url, root, token: operator });
    const byVersion = new Map(results.map((r) => [r.version, r]));
    expect(byVersion.get("upload-test-good")?.status).toBe("uploaded");
    expect(byVersion.get("upload-test-broken")?.status).toBe("refused");
    expect(byVersion.get("upload-test-broken")?.detail).toMatch(/^4\d\d /);
    const listed = await fetch(`${backend.url}/v1/admin/models/archive`, {
      headers: { authorization: `Bearer ${operator}` },
    });
    expect(listed.status).toBe(200);
    const { models } = (await listed.json()) as {
      models: Array<{ version: string; complete: boolean; origin: string }>;
    };
    const r2 = (version: string) => models.find((m) => m.version === version && m.origin === "r2");
    expect(r2("upload-test-good")?.complete).toBe(true);
    // Its manifest was taken, its graph refused: never complete, so never served.
    expect(r2("upload-test-broken")?.complete ?? false).toBe(false);
  });

  it("is refused without an operator's token", async () => {
    const stranger = await signToken({ team: "TSOMEONE", user: "USOMEONE", ttlSeconds: 600 }, SECRET);
    const results = await uploadModels({ url: backend.url, root, token: stranger, only: ["archive/good"] });
    expect(results.map((r) => r.status)).toEqual(["refused"]);
  });
});
