import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { feedbackPortsFor, servePortsFor } from "../../platform/recommend-deps";
import { mayActFor, mayUseTeam } from "../../src/auth/policy";
import { recordFeedback } from "../../src/recommend/feedback";
import { FEEDBACK_ACTIONS } from "../../src/recommend/logs";
import { serveRecommendations, sourceNamed, subjectOf } from "../../src/recommend/serve";
import { authorize } from "../auth";
import { bearer, bodyOf, errors, json, jsonRequest, loose, queryOf, routes } from "../openapi";

// POST /v1/recommend and POST /v1/recommend/feedback. The user and team come
// from the token; the use cases are src/recommend/serve.ts and feedback.ts.

export const MAX_LIMIT = 100;
const ID = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, "ids are 1-40 of A-Z a-z 0-9 _ -");

const Context = z
  .strictObject({
    /** composer_dm: who is already in the conversation. */
    members: z.array(ID).max(50).optional(),
    /** composer_dm: the DM or group DM being written in; its members (read live) are not suggested again. */
    conversation: ID.optional(),
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

/** `?include=profile`: each user or channel item carries its display fields, as the caller may see them. */
const RecommendQuery = z.object({
  include: z.enum(["profile"]).optional().meta({ description: "`profile`: display fields on user and channel items" }),
});

const tags = ["recommend"];

const recommend = createRoute({
  method: "post",
  path: "/",
  tags,
  summary: "Recommendations from one source for the caller (or, for admins, a member they act for)",
  security: bearer,
  request: { query: RecommendQuery, body: jsonRequest(RecommendBody) },
  responses: {
    200: json(
      loose({
        request_id: z.string(),
        source: z.string(),
        user: z.string(),
        items: z.array(
          loose({
            id: z.string(),
            score: z.number(),
            rank: z.number(),
            profile: loose({ name: z.string() }).optional(),
          }),
        ),
        model: loose({ name: z.string(), version: z.string() }),
      }),
      "items best first; request_id names the answer for feedback",
    ),
    ...errors,
  },
});
const feedback = createRoute({
  method: "post",
  path: "/feedback",
  tags,
  summary: "What the caller did with a recommendation answer's items",
  security: bearer,
  request: { body: jsonRequest(FeedbackBody) },
  responses: { 202: json(z.object({ recorded: z.number() }), "events recorded"), ...errors },
});

export const recommendRoutes = routes()
  .openapi(recommend, async (c) => {
    const { source: named, limit, context } = await bodyOf(c, recommend);
    const includeProfile = queryOf(c, recommend).include === "profile";
    const source = sourceNamed(named);
    c.set("recSource", source);
    const { team, user: caller } = c.get("identity");
    const subject = subjectOf(caller, source, context.user);
    await authorize(c, (p) => mayActFor(p, team, subject));
    const ports = servePortsFor(c.env, (work) => c.executionCtx.waitUntil(work));
    return c.json(
      await serveRecommendations(ports, { team, caller, subject, source, limit, context, includeProfile }),
      200,
    );
  })
  .openapi(feedback, async (c) => {
    const body = await bodyOf(c, feedback);
    const { team, user } = c.get("identity");
    await authorize(c, (p) => mayUseTeam(p, team));
    const recorded = await recordFeedback(feedbackPortsFor(c.env), {
      team,
      user,
      requestId: body.request_id,
      events: body.events,
      onSource: (source) => c.set("recSource", source),
    });
    return c.json({ recorded }, 202);
  });
