import { Hono } from "hono";
import { z } from "zod";
import { sharedChannelPortsOf } from "../../platform/deps";
import {
  answerInvitationOnce,
  type ConnectionsPorts,
  cancelInvitation,
  createInvitationOnce,
  listConnections,
  listInvitations,
  newConnectId,
  PAGE_DEFAULT,
  PAGE_MAX,
} from "../../src/connect/connections-service";
import { disconnectWithChannels } from "../../src/connect/shared-channels-service";
import { notFound } from "../../src/errors";
import { type AppContext, type AppEnv, idempotencyOf, jsonBody, queryParams } from "../http";
import { connectAdminOf } from "./connect-admin";
import { connectChannelRoutes } from "./connect-channels";
import { connectPrefsRoutes } from "./connect-prefs";

// Slack Connect connections (docs/connect.md). The team is always the
// caller's own, from the token; only a live owner or admin of it acts
// (mayManageConnections). Each handler authorizes, parses, calls one use case
// of src/connect/connections-service.ts and answers; every lookup is scoped
// to the caller's team there, so another team's ids answer as missing ones.
// Creating and answering an invitation take an Idempotency-Key as the admin
// writes do (src/teams/idempotency.ts): keys are the caller's team's, the
// request hash covers the route and the validated body, and a retry answers
// the first answer with `Idempotent-Replayed: true`.

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
  return queryParams(c, PageQuery);
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
    const by = await connectAdminOf(c);
    const body = await jsonBody(c, AnswerBody);
    const { value: answered, replayed } = await answerInvitationOnce(
      portsOf(c),
      by,
      body.code,
      body.decision,
      await idempotencyOf(c, body),
    );
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json(answered, answered.connection ? 201 : 200);
  })
  .post("/invitations", async (c) => {
    const by = await connectAdminOf(c);
    const body = await jsonBody(c, NewInvitationBody);
    const { value, replayed } = await createInvitationOnce(portsOf(c), by, await idempotencyOf(c, body));
    if (replayed) c.header("idempotent-replayed", "true");
    // The code travels inside the invitation, in this answer only; with an
    // Idempotency-Key, also in the key's record, so that a retry by the same
    // team within the key's lifetime shows it again (docs/connect.md).
    return c.json({ invitation: { ...value.invitation, code: value.code } }, 201);
  })
  .get("/invitations", async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await listInvitations(portsOf(c), team, pageOf(c)));
  })
  .delete("/invitations/:invitation", async (c) => {
    const by = await connectAdminOf(c);
    return c.json({ invitation: await cancelInvitation(portsOf(c), by, idParam(c, "invitation")) });
  })
  .get("/connections", async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await listConnections(portsOf(c), team, pageOf(c)));
  })
  .delete("/connections/:connection", async (c) => {
    const by = await connectAdminOf(c);
    const ended = await disconnectWithChannels(
      portsOf(c),
      sharedChannelPortsOf(c.get("deps")),
      by,
      idParam(c, "connection"),
    );
    return c.json({ connection: ended });
  })
  // The prefs toward each partner, and the org level (./connect-prefs.ts).
  .route("/prefs", connectPrefsRoutes)
  // Channels shared over the connections (./connect-channels.ts).
  .route("/shared-channels", connectChannelRoutes);
