import { SELF } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createApp } from "../../workers/app";
import { honoPath } from "../../workers/openapi";
import { CATALOGUE, routeKey } from "./route-catalogue";

// The OpenAPI document (GET /openapi.json) against the app itself: every
// route the app serves is described, and nothing is described that it does
// not serve. The document's validity against the OpenAPI 3.1 schema is
// checked in Node (test/node/openapi-document.test.ts): the validator
// compiles JSON schemas to code, which workerd does not allow.

interface Operation {
  parameters?: Array<{ name: string; in: string; required?: boolean }>;
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, { content?: Record<string, unknown> }>;
  security?: unknown[];
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

/** "GET /v1/admin/teams/:team" for each operation of the document, as Hono spells its routes. */
function describedRoutes(doc: Document): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => routeKey({ method: method.toUpperCase(), path: honoPath(path) })),
  );
}

/** What an app serves, method and path (`app.use` middleware, method ALL, left out). */
function servedRoutes(app: Hono<never> | { routes: Array<{ method: string; path: string }> }): Set<string> {
  return new Set(app.routes.filter((r) => r.method !== "ALL").map(routeKey));
}

/** Served but not described, and described but not served. */
function drift(served: Set<string>, described: string[]): { undescribed: string[]; unserved: string[] } {
  return {
    undescribed: [...served].filter((k) => !described.includes(k)).sort(),
    unserved: described.filter((k) => !served.has(k)).sort(),
  };
}

async function documentOf(): Promise<Document> {
  const res = await SELF.fetch("https://edge.test/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  return (await res.json()) as Document;
}

describe("GET /openapi.json", () => {
  it("describes every route the app serves, and none it does not", async () => {
    const doc = await documentOf();
    expect(doc.openapi).toBe("3.1.0");
    const described = describedRoutes(doc);
    expect(described.length, "an operation listed twice").toBe(new Set(described).size);
    expect(drift(servedRoutes(createApp()), described)).toEqual({ undescribed: [], unserved: [] });
    // The route catalogue of the isolation and fuzz suites names the same routes.
    expect(described.sort()).toEqual(CATALOGUE.map(routeKey).sort());
  });

  it("a route registered without a description is caught", () => {
    // What the check above sees if someone adds a plain `.get()` instead of `.openapi()`.
    const app = createApp();
    app.get("/v1/undescribed", (c) => c.text("hi"));
    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "t", version: "1" } });
    const described = describedRoutes(doc as unknown as Document);
    expect(drift(servedRoutes(app), described).undescribed).toEqual(["GET /v1/undescribed"]);
    // A plain Hono sub-app mounted with route() is caught the same way.
    const plain = new Hono().post("/thing", (c) => c.text("hi"));
    const mounted = createApp().route("/v1/plain", plain);
    expect(drift(servedRoutes(mounted), described).undescribed).toEqual(["POST /v1/plain/thing"]);
  });

  it("declares every path parameter, and the error shape for 4xx", async () => {
    const doc = await documentOf();
    expect(Object.keys(doc.components.schemas)).toContain("Error");
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["bearer", "rtmTicket", "slackSignature"]);
    for (const [path, item] of Object.entries(doc.paths)) {
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${path}`;
        const inPath = (op.parameters ?? []).filter((p) => p.in === "path");
        expect(inPath.map((p) => p.name).sort(), where).toEqual([...templated].sort());
        expect(
          inPath.every((p) => p.required),
          where,
        ).toBe(true);
        expect(op.security, `${where}: says who may call it`).toBeDefined();
        const success = Object.keys(op.responses).filter((s) => /^[123]/.test(s));
        expect(success.length, `${where}: a success answer`).toBeGreaterThan(0);
        const isPublic = ["/healthz", "/openapi.json", "/docs"].includes(path);
        if (!isPublic) expect(op.responses["4XX"]?.content, `${where}: the error shape`).toBeDefined();
      }
    }
  });

  it("documents request bodies with the schemas that validate them", async () => {
    const doc = await documentOf();
    const body = (path: string, method: string) =>
      doc.paths[path]?.[method]?.requestBody?.content["application/json"] as { schema: Record<string, unknown> };
    // POST /v1/admin/teams: NewTeam of workers/routes/admin.ts, strict (unknown keys are a 400).
    const newTeam = body("/v1/admin/teams", "post").schema;
    expect(newTeam.additionalProperties).toBe(false);
    expect(Object.keys(newTeam.properties as object).sort()).toEqual(["claimed_domains", "id", "name", "plan"]);
    expect(newTeam.required).toEqual(["name"]);
  });
});

describe("GET /docs", () => {
  it("serves the reference page over /openapi.json, without a token", async () => {
    const res = await SELF.fetch("https://edge.test/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await res.text()).toContain("/openapi.json");
  });
});
