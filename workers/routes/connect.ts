import { Hono } from "hono";
import { z } from "zod";
import { mayManageConnections } from "../../src/auth/policy";
import type { Actor } from "../../src/connect/connections";
import {
  answerInvitation,
  type ConnectionsPorts,
  cancelInvitation,
  createInvitation,
  disconnectConnection,
  listConnections,
  listInvitations,
  newConnectId,
  PAGE_DEFAULT,
  PAGE_MAX,
} from "../../src/connect/connections-service";
import { badRequest, notFound } from "../../src/errors";
import { authorize } from "../auth";
import { type AppContext, type AppEnv, jsonBody } from "../http";
import { connectPrefsRoutes } from "./connect-prefs";

// Slack Connect connections (docs/connect.md). The team is always the
// caller's own, from the token; only a live owner or admin of it acts
// (mayManageConnections). Each handler authorizes, parses, calls one use case
// of src/connect/connections-service.ts and answers; every lookup is scoped
// to the caller's team there, so another team's ids answer as missing ones.

/** An id that cannot name anything names nothing: the answer for a missing one, not a 400 to tell apart. */
const ID = /^[A-Za-z0-9_-]{1,40}$/;

/** Nothing to say yet when inviting (the other side is never named); a JSON object keeps room for later fields. */
const NewInvitationBody = z.strictObject({});

const AnswerBody = z.strictObject({
  // Any string: one that is no live code answers not_found like every other.
  code: z.string().min(1).max(200),
  decision: z.enum(["accept", "decline"]),
});

const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(PAGE_MAX).default(PAGE_DEFAULT),
  cursor: z.string().max(100).optional(),
});

function pageOf(c: AppContext): { limit: number; cursor?: string } {
  const parsed = PageQuery.safeParse(c.req.query());
  if (!parsed.success) {
    throw badRequest(parsed.error.issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; "));
  }
  return parsed.data;
}

/** The caller, once the policy has found it a live admin of its own team. */
async function adminOf(c: AppContext): Promise<Actor> {
  const { team, user } = c.get("identity");
  await authorize(c, (p) => mayManageConnections(p, team));
  return { team, user };
}

function portsOf(c: AppContext): ConnectionsPorts {
  const deps = c.get("deps");
  return { store: deps.connections, now: () => deps.clock.now(), newId: newConnectId };
}

function idParam(c: AppContext, name: "invitation" | "connection"): string {
  const id = c.req.param(name) ?? "";
  if (!ID.test(id)) throw notFound(`no such ${name}`);
  return id;
}

export const connectRoutes = new Hono<AppEnv>()
  .post("/invitations/answer", async (c) => {
    const by = await adminOf(c);
    const { code, decision } = await jsonBody(c, AnswerBody);
    const answered = await answerInvitation(portsOf(c), by, code, decision);
    return c.json(answered, answered.connection ? 201 : 200);
  })
  .post("/invitations", async (c) => {
    const by = await adminOf(c);
    await jsonBody(c, NewInvitationBody);
    const { invitation, code } = await createInvitation(portsOf(c), by);
    // The code travels inside the invitation, in this one answer only: it is never stored or shown again.
    return c.json({ invitation: { ...invitation, code } }, 201);
  })
  .get("/invitations", async (c) => {
    const { team } = await adminOf(c);
    return c.json(await listInvitations(portsOf(c), team, pageOf(c)));
  })
  .delete("/invitations/:invitation", async (c) => {
    const by = await adminOf(c);
    return c.json({ invitation: await cancelInvitation(portsOf(c), by, idParam(c, "invitation")) });
  })
  .get("/connections", async (c) => {
    const { team } = await adminOf(c);
    return c.json(await listConnections(portsOf(c), team, pageOf(c)));
  })
  .delete("/connections/:connection", async (c) => {
    const by = await adminOf(c);
    return c.json({ connection: await disconnectConnection(portsOf(c), by, idParam(c, "connection")) });
  })
  // The prefs toward each partner, and the org level (./connect-prefs.ts).
  .route("/prefs", connectPrefsRoutes);
