import { OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { type AppContext, type AppEnv, jsonBody, queryParams } from "./http";

// Routes described by the schemas that validate them (docs/api.md#the-openapi-document).
//
// Every route is a createRoute() config registered with `.openapi(route,
// handler)`: the config's request schemas are the document's, and the
// handler reads its input through bodyOf/queryOf, which hand the config's own
// schemas to jsonBody/queryParams. One schema object, so the document and the
// validation cannot drift. What routes() changes from @hono/zod-openapi: no
// validator middleware in front of the handler. Those would parse before the
// handler authorizes (a member's bad body to an admin route would be a 400,
// not today's 403), answer a wrong content type with their own 415 and
// malformed JSON with their own 400, and skip the depth limit; jsonBody and
// queryParams are the one place the platform reads input, in the order each
// handler chooses.

/** A router whose `.openapi()` registers the description and the handler, and adds no validators. */
export function routes(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  const register = (config: RouteConfig, handler: MiddlewareHandler<AppEnv>) => {
    const { middleware, hide, ...route } = config;
    if (!hide) app.openAPIRegistry.registerPath(route);
    const before = (middleware === undefined ? [] : [middleware].flat()) as MiddlewareHandler<AppEnv>[];
    app.on([route.method.toUpperCase()], [honoPath(route.path)], ...before, handler);
    return app;
  };
  // The typed signature stays the library's: inputs and answers typed from the config, for handlers and hc.
  app.openapi = register as unknown as typeof app.openapi;
  return app;
}

/** `/teams/{team}` (OpenAPI) as `/teams/:team` (Hono). */
export function honoPath(path: string): string {
  return path.replaceAll(/\{([^}]+)\}/g, ":$1");
}

// --- reading input through the route's own schemas ------------------------------

type JsonSchemaOf<R> = R extends { request: { body: { content: { "application/json": { schema: infer S } } } } }
  ? S extends z.ZodType
    ? S
    : never
  : never;
type QuerySchemaOf<R> = R extends { request: { query: infer S } } ? (S extends z.ZodType ? S : never) : never;

function isZod(value: unknown): value is z.ZodType {
  return value instanceof z.ZodType;
}

/** The request's JSON body, by the schema the route declares (jsonBody: 415, depth limit, 400 with issues). */
export function bodyOf<R extends RouteConfig>(c: AppContext, route: R): Promise<z.output<JsonSchemaOf<R>>> {
  const media = route.request?.body?.content["application/json"];
  const schema = media && "schema" in media ? media.schema : undefined;
  if (!isZod(schema)) throw new Error(`${route.method} ${route.path} declares no JSON body schema`);
  return jsonBody(c, schema) as Promise<z.output<JsonSchemaOf<R>>>;
}

/** The request's query string, by the schema the route declares (queryParams: 400 naming each parameter). */
export function queryOf<R extends RouteConfig>(c: AppContext, route: R): z.output<QuerySchemaOf<R>> {
  const schema = route.request?.query;
  if (!isZod(schema)) throw new Error(`${route.method} ${route.path} declares no query schema`);
  return queryParams(c, schema) as z.output<QuerySchemaOf<R>>;
}

// --- pieces of descriptions ---------------------------------------------------------

/** The one error shape (platform/error-status.ts errorBody). */
export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: "what went wrong, e.g. invalid_body, not_found, forbidden" }),
      message: z.string(),
      details: z.unknown().optional().meta({ description: "zod issues, the invalid entries, a limit's name" }),
    }),
  })
  .meta({ id: "Error" });

/** A JSON request body (required: jsonBody refuses anything not declared as JSON with a 415). */
export function jsonRequest<S extends z.ZodType>(schema: S, description?: string) {
  return { required: true, description, content: { "application/json": { schema } } } as const;
}

/** A JSON answer. */
export function json<S extends z.ZodType>(schema: S, description: string) {
  return { description, content: { "application/json": { schema } } } as const;
}

/** The error answers every route may give: 4xx by the route's checks, 5xx when the platform cannot answer. */
export const errors = {
  "4XX": json(
    ErrorBody,
    "refused: 400 bad_request/invalid_body, 401 unauthorized, 403 forbidden, 404 not_found (also another team's ids), 409 conflict, 413 payload_too_large, 415 unsupported_media_type, 422 idempotency_key_reused, 429 rate_limited (Retry-After)",
  ),
  "5XX": json(ErrorBody, "500 internal, or 503 unavailable (Retry-After) while the database does not answer"),
} as const;

/** Bearer access token (docs/api.md#tokens): every /v1 route but the socket's own. */
export const bearer = [{ bearer: [] }];
/** No platform token. */
export const open: Array<Record<string, string[]>> = [];

/** A path parameter's schema: any string; one that names nothing answers 404 (never a 400 to tell apart). */
export const pathId = z.string().meta({ description: "an id; one that names nothing (or another team's) is a 404" });

/** Objects described by their top-level members; members not listed may be present. */
export const loose = z.looseObject;

// --- the document -------------------------------------------------------------------

/** How callers authenticate, named by each route's `security`. */
export function registerSecuritySchemes(app: OpenAPIHono<AppEnv>): void {
  const registry = app.openAPIRegistry;
  registry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "An access token naming team and user (docs/api.md#tokens); what it may do is the user's live role.",
  });
  registry.registerComponent("securitySchemes", "rtmTicket", {
    type: "apiKey",
    in: "query",
    name: "ticket",
    description: "A single-use socket ticket from POST /v1/rtm.connect (GET /v1/rtm only).",
  });
  registry.registerComponent("securitySchemes", "slackSignature", {
    type: "apiKey",
    in: "header",
    name: "x-slack-signature",
    description: "Slack's request signature over the raw body and X-Slack-Request-Timestamp (POST /slack/events).",
  });
}

/** The OpenAPI 3.1 document of every route `app` has registered through `.openapi()`. */
export function openapiDocument(app: OpenAPIHono<AppEnv>) {
  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "Edge collaboration platform",
      version: "1",
      description:
        "Every route of the Worker, generated from the zod schemas that validate its requests. Errors are always `{ error: { code, message, details? } }` (docs/api.md#errors).",
    },
  });
}
