import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, serveAsDeployed } from "../../tools/harness/backend";

// GET /openapi.json of the Worker built as for a deploy (served by
// Miniflare), validated against the OpenAPI 3.1 schema by
// @seriousme/openapi-schema-validator. In Node, not workerd: the validator
// compiles JSON schemas to code (ajv), which workerd does not allow. That
// the document covers every route the app serves is checked in workerd
// (test/workers/openapi.test.ts), against the app's own route list.

const SECRET = "openapi-test-secret-0123456789abcdef-0123";

let backend: Backend;

beforeAll(async () => {
  backend = await serveAsDeployed("openapi-test", { vars: { JWT_SECRET: SECRET } });
}, 180_000);

afterAll(async () => {
  await backend?.close();
});

describe("the OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const res = await fetch(`${backend.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    // The validator does refuse a broken document (a response without its description).
    const broken = structuredClone(doc) as { paths: Record<string, Record<string, { responses: object }>> };
    const first = Object.values(Object.values(broken.paths)[0] ?? {})[0];
    if (first) first.responses = { 200: {} };
    expect((await new Validator().validate(broken)).valid).toBe(false);
    const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    // Every route of the Worker (test/workers/openapi.test.ts compares them one by one).
    expect(operations).toBeGreaterThan(60);
  });

  it("is served with the reference page, both without a token", async () => {
    const docs = await fetch(`${backend.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await docs.text()).toContain("/openapi.json");
  });
});
