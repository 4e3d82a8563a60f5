import { Hono } from "hono";
import { z } from "zod";
import { mayUseTeam } from "../../src/auth/policy";
import { classifyInvites, MAX_EMAILS_PER_REQUEST } from "../../src/invites/classify-invites";
import { authorize } from "../auth";
import { type AppEnv, jsonBody } from "../http";

const ClassifyBody = z.strictObject({
  // Elements are checked one by one in the domain code so that every invalid
  // address is named in the 400, not only the first.
  emails: z.array(z.unknown()).min(1).max(MAX_EMAILS_PER_REQUEST),
});

export const inviteRoutes = new Hono<AppEnv>().post("/classify", async (c) => {
  const { emails } = await jsonBody(c, ClassifyBody);
  const { team, user } = c.get("identity");
  await authorize(c, (p) => mayUseTeam(p, team));
  const { results, healQueued } = await classifyInvites(c.get("deps"), team, user, emails);
  return c.json({ team, results, heal_queued: healQueued });
});
