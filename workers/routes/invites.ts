import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { mayUseTeam } from "../../src/auth/policy";
import { classifyInvites, MAX_EMAILS_PER_REQUEST } from "../../src/invites/classify-invites";
import { authorize } from "../auth";
import { bearer, bodyOf, errors, json, jsonRequest, loose, routes } from "../openapi";

const ClassifyBody = z.strictObject({
  // Elements are checked one by one in the domain code so that every invalid
  // address is named in the 400, not only the first.
  emails: z.array(z.unknown()).min(1).max(MAX_EMAILS_PER_REQUEST),
});

const classify = createRoute({
  method: "post",
  path: "/classify",
  tags: ["invites"],
  summary: "Classify invite addresses as internal or external (docs/domain-counts.md)",
  security: bearer,
  request: { body: jsonRequest(ClassifyBody) },
  responses: {
    200: json(
      z.object({ team: z.string(), results: z.array(loose({ email: z.string() })), heal_queued: z.unknown() }),
      "one result per address, in order",
    ),
    ...errors,
  },
});

export const inviteRoutes = routes().openapi(classify, async (c) => {
  const { emails } = await bodyOf(c, classify);
  const { team, user } = c.get("identity");
  await authorize(c, (p) => mayUseTeam(p, team));
  const { results, healQueued } = await classifyInvites(c.get("deps"), team, user, emails);
  return c.json({ team, results, heal_queued: healQueued }, 200);
});
