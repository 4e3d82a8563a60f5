import { Hono } from "hono";
import { z } from "zod";
import { recStoreOf, teamCacheOf } from "../../platform/stubs";
import { mayActFor, mayUseTeam } from "../../src/auth/policy";
import { badRequest, DomainError, forbidden, notFound, unavailable } from "../../src/errors";
import { FEEDBACK_ACTIONS, type RecLogMessage, recLogEnvelope, servedItems } from "../../src/recommend/logs";
import { RecommendError, type RecRequest, runRecommender } from "../../src/recommend/pipeline";
import { recommenders } from "../../src/recommend/recommenders";
import {
  isSource,
  SOURCE_NAMES,
  SOURCES,
  type Source,
  SUBJECT_SOURCES,
  takesSubject,
} from "../../src/recommend/sources";
import { authorize } from "../auth";
import { type AppContext, type AppEnv, jsonBody } from "../http";
import { metrics } from "../metrics";
import { scorerSelectionDeps, selectScorer } from "../models/scorer-selection";
import { recDepsFor } from "../recommend-deps";

// POST /v1/recommend and POST /v1/recommend/feedback. The user and team come
// from the token. An answer names its request id, the model and version that
// scored it, the experiment arm, and any optional step that was skipped.
// What was served (with the features each item was scored on) and every
// piece of feedback go to the rec-logs queue for training.

export const MAX_LIMIT = 100;
const ID = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, "ids are 1-40 of A-Z a-z 0-9 _ -");

const Context = z
  .strictObject({
    /** composer_dm: who is already in the conversation. */
    members: z.array(ID).max(50).optional(),
    /** invite, send_time: the person the answer is for, when not the caller (team admins only). */
    user: ID.optional(),
    /** invite: the new member's first channels (default: their channels now) and who brought them in. */
    channels: z.array(ID).max(200).optional(),
    partners: z.array(ID).max(50).optional(),
  })
  .default({});

const RecommendBody = z.strictObject({
  source: z.string(),
  limit: z.number().int().min(1).max(MAX_LIMIT).default(10),
  context: Context,
});

const FeedbackBody = z.strictObject({
  request_id: z.string().min(1).max(64),
  events: z
    .array(z.strictObject({ item: z.string().min(1).max(40), action: z.enum(FEEDBACK_ACTIONS) }))
    .min(1)
    .max(100),
});

export const recommendRoutes = new Hono<AppEnv>()
  .post("/", async (c) => {
    const body = await jsonBody(c, RecommendBody);
    const source = sourceOf(c, body.source);
    const { team, user: caller } = c.get("identity");
    const subject = subjectOf(c, source, body.context.user);
    await authorize(c, (p) => mayActFor(p, team, subject));
    const cache = teamCacheOf(c.env, team);
    // The subject must be an active member; for invite, the member's channels default to theirs now.
    let context: Record<string, unknown> = body.context;
    const known =
      source === "invite" && body.context.channels === undefined
        ? await cache.boot(team, subject, null).then((b) => {
            if (b.ok) context = { ...body.context, channels: b.value.channels.map((ch) => ch.id) };
            return b;
          })
        : await cache.lookup(team, subject, [], []);
    if (!known.ok) {
      if (subject === caller) throw forbidden(known.message);
      throw notFound(`user ${subject} not found`);
    }
    const rec = recommenders[source];
    const req: RecRequest = { team, user: subject, source, limit: body.limit, context, now: Date.now() };
    const selection = await selectScorer({
      ...scorerSelectionDeps(c.env),
      source,
      user: subject,
      handTuned: rec.handTuned,
    });
    let result: Awaited<ReturnType<typeof runRecommender>>;
    try {
      result = await runRecommender(rec, req, recDepsFor(c.env), selection.scorer);
    } catch (error) {
      if (!(error instanceof RecommendError)) throw error;
      console.error(error);
      throw unavailable(`recommendations for ${source} are unavailable right now (${error.step})`);
    }
    const requestId = crypto.randomUUID();
    const scorer = result.scorer;
    const fallback =
      selection.fallback ?? (result.scoringError ? { code: "scoring_failed", message: result.scoringError } : null);
    if (result.scoringError)
      metrics.inc("rec_model_load_failures_total", { source, model: selection.model.name, code: "scoring_failed" });
    for (const d of result.degraded) metrics.inc("rec_degraded_total", { source, step: d.step });
    metrics.inc("rec_served_items_total", { source, arm: selection.arm }, result.items.length);
    const items = result.items.map((it, i) => ({ id: it.id, score: round(it.score), rank: i + 1 }));
    const store = recStoreOf(c.env, team);
    await store.recordServed({
      requestId,
      user: caller,
      source,
      experiment: selection.experiment,
      arm: selection.arm,
      items: items.map((i) => i.id),
      ts: req.now,
    });
    const served: RecLogMessage = {
      kind: "served",
      request_id: requestId,
      team,
      user: subject,
      source,
      experiment: selection.experiment,
      arm: selection.arm,
      model: scorer.name,
      version: scorer.version,
      fallback: fallback !== null,
      ts: req.now,
      ...servedItems(result.items),
    };
    c.executionCtx.waitUntil(
      c.env.REC_LOGS.send(recLogEnvelope(served)).catch((e: unknown) => console.error("rec-logs send failed", e)),
    );
    return c.json({
      request_id: requestId,
      source,
      user: subject,
      items,
      model: {
        name: scorer.name,
        version: scorer.version,
        kind: scorer.kind,
        engine: scorer.engine ?? "typescript",
        fallback,
      },
      experiment: { name: selection.experiment, arm: selection.arm },
      degraded: result.degraded,
      steps: result.steps.map((s) => ({ step: s.step, kind: s.kind, ms: round(s.ms), out: s.out })),
    });
  })
  .post("/feedback", async (c) => {
    const body = await jsonBody(c, FeedbackBody);
    const { team, user } = c.get("identity");
    await authorize(c, (p) => mayUseTeam(p, team));
    const store = recStoreOf(c.env, team);
    const check = await store.checkFeedback(
      body.request_id,
      user,
      body.events.map((e) => e.item),
    );
    if (!check.ok) {
      throw new DomainError(check.code === "not_found" ? "not_found" : "invalid", check.code, check.message);
    }
    const { source, arm } = check.request;
    c.set("recSource", source);
    const now = Date.now();
    const messages: RecLogMessage[] = body.events.map((e) => ({
      kind: "feedback",
      request_id: body.request_id,
      team,
      user,
      source,
      arm,
      item: e.item,
      action: e.action,
      ts: now,
    }));
    await c.env.REC_LOGS.sendBatch(messages.map((m) => ({ body: recLogEnvelope(m) })));
    for (const e of body.events) metrics.inc("rec_feedback_total", { source, arm, action: e.action });
    return c.json({ recorded: messages.length }, 202);
  });

function sourceOf(c: AppContext, value: string): Source {
  if (!isSource(value)) {
    throw new DomainError(
      "invalid",
      "unknown_source",
      `unknown source "${value.slice(0, 40)}"; one of ${SOURCE_NAMES.join(", ")}`,
    );
  }
  c.set("recSource", value);
  return value;
}

/** Whom the answer is for: the caller, or (invite, send_time) a teammate (the policy decides who may name one). */
function subjectOf(c: AppContext, source: Source, named: string | undefined): string {
  const { user } = c.get("identity");
  if (named === undefined || named === user) return user;
  if (!takesSubject(source)) {
    throw badRequest(`context.user is only for ${SUBJECT_SOURCES.join(" and ")}, not ${source} (${SOURCES[source]}s)`);
  }
  return named;
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
