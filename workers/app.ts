import { createRoute } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { depsFor } from "../platform/deps";
import { errorBody } from "../platform/error-status";
import { renderMetrics } from "../platform/metrics";
import { MODEL_ONNX_MAX_BYTES } from "../platform/models/model-uploads";
import { mayOperate } from "../src/auth/policy";
import { DomainError, notFound, redactedMessage, tooLarge } from "../src/errors";
import { FILE_MAX_BYTES } from "../src/files/uploads";
import { EVAL_SET_MAX_BYTES } from "../src/recommend/eval-set";
import { DatabaseUnavailable } from "../storage/guarded-driver";
import { authorize, requireToken } from "./auth";
import { corsFromVars } from "./cors";
import { type AppEnv, errorResponse } from "./http";
import { countRequests } from "./metrics";
import { bearer, errors, json, loose, open, openapiDocument, registerSecuritySchemes, routes } from "./openapi";
import { limitPerCaller } from "./rate-limit";
import { adminRoutes } from "./routes/admin";
import { connectRoutes } from "./routes/connect";
import { connectSearchRoutes, feedConnectIndexes } from "./routes/connect-search";
import { conversationAdminRoutes, conversationMessageRoutes } from "./routes/conversation-messages";
import { conversationRoutes } from "./routes/conversations";
import { directoryRoutes } from "./routes/directory";
import { directoryAdminRoutes } from "./routes/directory-admin";
import { fileRoutes } from "./routes/files";
import { inviteRoutes } from "./routes/invites";
import { messageRoutes } from "./routes/messages";
import { modelRegistryRoutes } from "./routes/model-registry";
import { socketRoutes, ticketRoutes } from "./routes/realtime";
import { recExportRoutes } from "./routes/rec-exports";
import { recommendRoutes } from "./routes/recommend";
import { recommendAdminRoutes } from "./routes/recommend-admin";
import { recommendFeatureRoutes } from "./routes/recommend-features";
import { slackAdminRoutes } from "./routes/slack-admin";
import { slackRoutes } from "./routes/slack-events";

/** JSON bodies; the streamed imports (users, channels, memberships) have their own, larger, limit. */
const JSON_LIMIT = 1024 * 1024;
const IMPORT_LIMIT = 64 * 1024 * 1024;

/** White space or a control character: no id or name has one. */
function namesNothing(path: string): boolean {
  for (const ch of path) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f || /\s/.test(ch)) return true;
  }
  return false;
}

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["platform"],
  summary: "Liveness, and which storage the Worker runs on",
  security: open,
  responses: { 200: json(z.object({ ok: z.literal(true), storage: z.string() }), "up") },
});
const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["platform"],
  summary: "Prometheus text for the whole deployment",
  description: "Platform operators only.",
  security: bearer,
  middleware: requireToken,
  responses: {
    200: { description: "Prometheus text format 0.0.4", content: { "text/plain": { schema: z.string() } } },
    ...errors,
  },
});
const documentRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  tags: ["platform"],
  summary: "This document: every route, from the schemas that validate it",
  security: open,
  responses: {
    200: json(loose({ openapi: z.string() }), "the OpenAPI 3.1 document"),
  },
});
const docsRoute = createRoute({
  method: "get",
  path: "/docs",
  tags: ["platform"],
  summary: "A reference page over /openapi.json (Scalar)",
  security: open,
  responses: { 200: { description: "HTML", content: { "text/html": { schema: { type: "string" } } } } },
});

export function createApp() {
  const app = routes();
  registerSecuritySchemes(app);

  app.onError((err, c) => {
    if (err instanceof DatabaseUnavailable) {
      console.error(`database unavailable (request ${requestIdOf(c)}): ${err.message}`);
    }
    if (err instanceof DomainError) return errorResponse(c, err);
    // The class, a request id and the message with its quoted values blanked:
    // never a stack, SQL values or ids in the log. The id is in the answer too.
    const id = requestIdOf(c);
    c.header("x-request-id", id);
    console.error(`unhandled error (request ${id}): ${err.name}: ${redactedMessage(err.message)}`);
    c.set("errorCode", "internal");
    return c.json(errorBody("internal", "internal error"), 500);
  });
  app.use("*", countRequests);
  // Browsers on other origins (CORS_ORIGINS); answered before any token check.
  app.use("*", corsFromVars);
  app.notFound((c) => errorResponse(c, notFound(`no route for ${c.req.method} ${c.req.path}`)));

  // Built once, on first request: the registry is complete by then.
  let document: ReturnType<typeof openapiDocument> | undefined;
  const scalar = Scalar<AppEnv>({ url: "/openapi.json", pageTitle: "Edge collaboration platform API" });
  const outside = app
    .openapi(healthz, (c) => c.json({ ok: true as const, storage: c.env.STORAGE }, 200))
    // Prometheus text for the whole deployment; scrapers send a platform token.
    .openapi(metricsRoute, async (c) => {
      await authorize(c, mayOperate);
      return c.text(await renderMetrics(c.env), 200, { "content-type": "text/plain; version=0.0.4" });
    })
    // The contract and its reference page are public: they name routes, never data.
    .openapi(documentRoute, (c) => {
      document ??= openapiDocument(app);
      return c.json(document, 200);
    })
    .openapi(docsRoute, async (c, next) => (await scalar(c, next)) ?? c.notFound())
    // The socket route first: it has no body and a fixed path, and a team
    // connecting at once sends thousands of upgrades (each middleware skipped
    // is CPU not spent per connect). Ahead of requireToken: a browser
    // WebSocket cannot set headers, so /v1/rtm takes a single-use ticket
    // (?ticket=, from POST /v1/rtm.connect) or a bearer header; never an
    // access token in the URL.
    .route("/v1/rtm", socketRoutes)
    // The Slack app's endpoints: signed by Slack (or an OAuth state), no platform token.
    .route("/slack", slackRoutes);

  const bodyTooLarge = (limit: number) => () => {
    throw tooLarge(`request body larger than ${limit} bytes`);
  };
  app.use("/v1/*", async (c, next) => {
    // A team's history as raw rows (…/features/history, up to 2,000,000 lines) is streamed as the imports are.
    if (c.req.path.endsWith("/import") || c.req.path.endsWith("/features/history")) {
      return bodyLimit({ maxSize: IMPORT_LIMIT, onError: bodyTooLarge(IMPORT_LIMIT) })(c, next);
    }
    if (c.req.method === "POST" && c.req.path.startsWith("/v1/channels/") && c.req.path.endsWith("/files")) {
      return bodyLimit({ maxSize: FILE_MAX_BYTES, onError: bodyTooLarge(FILE_MAX_BYTES) })(c, next);
    }
    if (c.req.path.endsWith("/model.onnx")) {
      return bodyLimit({ maxSize: MODEL_ONNX_MAX_BYTES, onError: bodyTooLarge(MODEL_ONNX_MAX_BYTES) })(c, next);
    }
    if (c.req.path.endsWith("/eval-set")) {
      return bodyLimit({ maxSize: EVAL_SET_MAX_BYTES, onError: bodyTooLarge(EVAL_SET_MAX_BYTES) })(c, next);
    }
    return bodyLimit({ maxSize: JSON_LIMIT, onError: bodyTooLarge(JSON_LIMIT) })(c, next);
  });
  // Path segments are ids and names. One with white space, control
  // characters or broken escapes names nothing: 404 before any lookup (MySQL
  // would match "U1%20" to "U1", D1 would not).
  app.use("/v1/*", async (c, next) => {
    let path: string | null;
    try {
      path = decodeURIComponent(new URL(c.req.url).pathname);
    } catch {
      path = null;
    }
    if (path === null || namesNothing(path)) return errorResponse(c, notFound("nothing is named like that"));
    await next();
  });
  app.use("/v1/*", requireToken);
  // Requests per caller (API_RATE_LIMIT): 429 with Retry-After, nothing done.
  app.use("/v1/*", limitPerCaller);
  app.use("/v1/*", async (c, next) => {
    c.set(
      "deps",
      depsFor(c.env, (work) => c.executionCtx.waitUntil(work)),
    );
    await next();
  });

  // Connect writes (and a team's new name) queue admin-search refreshes;
  // the indexes take them right after the answer.
  app.use("/v1/connect/*", feedConnectIndexes);
  app.use("/v1/admin/teams/:team", feedConnectIndexes);

  // Chained, so that the app's type (AppType) carries every route for hono/client.
  return outside
    .route("/v1/admin", adminRoutes)
    .route("/v1/admin", connectSearchRoutes)
    .route("/v1/admin", directoryAdminRoutes)
    .route("/v1/admin", recommendAdminRoutes)
    .route("/v1/admin", modelRegistryRoutes)
    .route("/v1/admin", recExportRoutes)
    .route("/v1/admin", recommendFeatureRoutes)
    .route("/v1/admin", slackAdminRoutes)
    .route("/v1/invites", inviteRoutes)
    .route("/v1/connect", connectRoutes)
    .route("/v1/directory", directoryRoutes)
    .route("/v1/channels", messageRoutes)
    .route("/v1/channels", fileRoutes)
    .route("/v1/recommend", recommendRoutes)
    .route("/v1/rtm.connect", ticketRoutes)
    .route("/v1/conversations", conversationMessageRoutes)
    .route("/v1/conversations", conversationRoutes)
    .route("/v1/admin", conversationAdminRoutes);
}

/**
 * The Worker's routes as a type: `hc<AppType>(origin)` from hono/client is a
 * client whose paths, inputs and answers are checked by the compiler
 * (docs/api.md#a-typed-client).
 */
export type AppType = ReturnType<typeof createApp>;

/** Cloudflare's ray id when there is one, else a fresh id: what a log line and an answer share. */
function requestIdOf(c: Context<AppEnv>): string {
  return c.req.header("cf-ray") ?? crypto.randomUUID();
}
