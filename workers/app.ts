import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { depsFor } from "../platform/deps";
import { errorBody } from "../platform/error-status";
import { renderMetrics } from "../platform/metrics";
import { MODEL_ONNX_MAX_BYTES } from "../platform/models/model-uploads";
import { mayOperate } from "../src/auth/policy";
import { DomainError, notFound, redactedMessage, tooLarge } from "../src/errors";
import { FILE_MAX_BYTES } from "../src/files/uploads";
import { DatabaseUnavailable } from "../storage/guarded-driver";
import { authorize, requireToken } from "./auth";
import { type AppEnv, errorResponse } from "./http";
import { countRequests } from "./metrics";
import { adminRoutes } from "./routes/admin";
import { connectRoutes } from "./routes/connect";
import { connectSearchRoutes, feedConnectIndexes } from "./routes/connect-search";
import { directoryRoutes } from "./routes/directory";
import { directoryAdminRoutes } from "./routes/directory-admin";
import { fileRoutes } from "./routes/files";
import { inviteRoutes } from "./routes/invites";
import { messageRoutes } from "./routes/messages";
import { socketRoutes, ticketRoutes } from "./routes/realtime";
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

export function createApp() {
  const app = new Hono<AppEnv>();

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
  app.notFound((c) => errorResponse(c, notFound(`no route for ${c.req.method} ${c.req.path}`)));

  app.get("/healthz", (c) => c.json({ ok: true, storage: c.env.STORAGE }));
  // Prometheus text for the whole deployment; scrapers send a platform token.
  app.get("/metrics", requireToken, async (c) => {
    await authorize(c, mayOperate);
    return c.text(await renderMetrics(c.env), 200, { "content-type": "text/plain; version=0.0.4" });
  });

  // The socket route first: it has no body and a fixed path, and a team
  // connecting at once sends thousands of upgrades (each middleware skipped
  // is CPU not spent per connect). Ahead of requireToken: a browser
  // WebSocket cannot set headers, so /v1/rtm takes a single-use ticket
  // (?ticket=, from POST /v1/rtm.connect) or a bearer header; never an
  // access token in the URL.
  app.route("/v1/rtm", socketRoutes);
  // The Slack app's endpoints: signed by Slack (or an OAuth state), no platform token.
  app.route("/slack", slackRoutes);

  const bodyTooLarge = (limit: number) => () => {
    throw tooLarge(`request body larger than ${limit} bytes`);
  };
  app.use("/v1/*", async (c, next) => {
    if (c.req.path.endsWith("/import")) {
      return bodyLimit({ maxSize: IMPORT_LIMIT, onError: bodyTooLarge(IMPORT_LIMIT) })(c, next);
    }
    if (c.req.method === "POST" && c.req.path.startsWith("/v1/channels/") && c.req.path.endsWith("/files")) {
      return bodyLimit({ maxSize: FILE_MAX_BYTES, onError: bodyTooLarge(FILE_MAX_BYTES) })(c, next);
    }
    if (c.req.path.endsWith("/model.onnx")) {
      return bodyLimit({ maxSize: MODEL_ONNX_MAX_BYTES, onError: bodyTooLarge(MODEL_ONNX_MAX_BYTES) })(c, next);
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

  app.route("/v1/admin", adminRoutes);
  app.route("/v1/admin", connectSearchRoutes);
  app.route("/v1/admin", directoryAdminRoutes);
  app.route("/v1/admin", recommendAdminRoutes);
  app.route("/v1/admin", recommendFeatureRoutes);
  app.route("/v1/admin", slackAdminRoutes);
  app.route("/v1/invites", inviteRoutes);
  app.route("/v1/connect", connectRoutes);
  app.route("/v1/directory", directoryRoutes);
  app.route("/v1/channels", messageRoutes);
  app.route("/v1/channels", fileRoutes);
  app.route("/v1/recommend", recommendRoutes);
  app.route("/v1/rtm.connect", ticketRoutes);
  return app;
}

/** Cloudflare's ray id when there is one, else a fresh id: what a log line and an answer share. */
function requestIdOf(c: Context<AppEnv>): string {
  return c.req.header("cf-ray") ?? crypto.randomUUID();
}
