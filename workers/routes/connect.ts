import { createRoute } from "@hono/zod-openapi";
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
import { type AppContext, idempotencyOf } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, queryOf, routes } from "../openapi";
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

function portsOf(c: AppContext): ConnectionsPorts {
  const deps = c.get("deps");
  return { store: deps.connections, now: () => deps.clock.now(), newId: newConnectId };
}

function idParam(c: AppContext, name: "invitation" | "connection"): string {
  const id = c.req.param(name) ?? "";
  if (!ID.test(id)) throw notFound(`no such ${name}`);
  return id;
}

const tags = ["connect"];
const admins = "The caller's own team, its active owners and admins.";
const idempotencyKey = z.object({
  "idempotency-key": z
    .string()
    .optional()
    .meta({ description: "a retry with the same key and body answers the first answer (Idempotent-Replayed: true)" }),
});
const Invitation = loose({ id: z.string(), status: z.string() });
const Decision = z.enum(["accepted", "declined"]);
const Connection = loose({ id: z.string(), partner: z.string(), status: z.string() });

const answerInvitation = createRoute({
  method: "post",
  path: "/invitations/answer",
  tags,
  summary: "Accept or decline another team's invitation, by its code",
  description: admins,
  security: bearer,
  request: { headers: idempotencyKey, body: jsonRequest(AnswerBody) },
  responses: {
    201: json(z.object({ decision: Decision, connection: Connection }), "accepted: the connection"),
    200: json(z.object({ decision: Decision, connection: z.null() }), "declined: no connection"),
    ...errors,
  },
});
const newInvitation = createRoute({
  method: "post",
  path: "/invitations",
  tags,
  summary: "A one-time invitation code for another team",
  description: `${admins} The code is in this answer only (and in its replays with an Idempotency-Key).`,
  security: bearer,
  request: { headers: idempotencyKey, body: jsonRequest(NewInvitationBody) },
  responses: {
    201: json(z.object({ invitation: Invitation.extend({ code: z.string() }) }), "the invitation and its code"),
    ...errors,
  },
});
const invitations = createRoute({
  method: "get",
  path: "/invitations",
  tags,
  summary: "The team's invitations, newest first",
  description: admins,
  security: bearer,
  request: { query: PageQuery },
  responses: {
    200: json(z.object({ invitations: z.array(Invitation), next_cursor: z.string().nullable() }), "a page"),
    ...errors,
  },
});
const cancel = createRoute({
  method: "delete",
  path: "/invitations/{invitation}",
  tags,
  summary: "Cancel a pending invitation",
  description: admins,
  security: bearer,
  request: { params: z.object({ invitation: pathId }) },
  responses: { 200: json(z.object({ invitation: Invitation }), "the invitation, cancelled"), ...errors },
});
const connections = createRoute({
  method: "get",
  path: "/connections",
  tags,
  summary: "The team's connections, newest first",
  description: admins,
  security: bearer,
  request: { query: PageQuery },
  responses: {
    200: json(z.object({ connections: z.array(Connection), next_cursor: z.string().nullable() }), "a page"),
    ...errors,
  },
});
const disconnect = createRoute({
  method: "delete",
  path: "/connections/{connection}",
  tags,
  summary: "End a connection (and the channels shared over it, for both sides)",
  description: admins,
  security: bearer,
  request: { params: z.object({ connection: pathId }) },
  responses: { 200: json(z.object({ connection: Connection }), "the connection, disconnected"), ...errors },
});

export const connectRoutes = routes()
  .openapi(answerInvitation, async (c) => {
    const by = await connectAdminOf(c);
    const body = await bodyOf(c, answerInvitation);
    const { value: answered, replayed } = await answerInvitationOnce(
      portsOf(c),
      by,
      body.code,
      body.decision,
      await idempotencyOf(c, body),
    );
    if (replayed) c.header("idempotent-replayed", "true");
    return answered.connection
      ? c.json({ ...answered, connection: answered.connection }, 201)
      : c.json({ ...answered, connection: null }, 200);
  })
  .openapi(newInvitation, async (c) => {
    const by = await connectAdminOf(c);
    const body = await bodyOf(c, newInvitation);
    const { value, replayed } = await createInvitationOnce(portsOf(c), by, await idempotencyOf(c, body));
    if (replayed) c.header("idempotent-replayed", "true");
    // The code travels inside the invitation, in this answer only; with an
    // Idempotency-Key, also in the key's record, so that a retry by the same
    // team within the key's lifetime shows it again (docs/connect.md).
    return c.json({ invitation: { ...value.invitation, code: value.code } }, 201);
  })
  .openapi(invitations, async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await listInvitations(portsOf(c), team, queryOf(c, invitations)), 200);
  })
  .openapi(cancel, async (c) => {
    const by = await connectAdminOf(c);
    return c.json({ invitation: await cancelInvitation(portsOf(c), by, idParam(c, "invitation")) }, 200);
  })
  .openapi(connections, async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await listConnections(portsOf(c), team, queryOf(c, connections)), 200);
  })
  .openapi(disconnect, async (c) => {
    const by = await connectAdminOf(c);
    const ended = await disconnectWithChannels(
      portsOf(c),
      sharedChannelPortsOf(c.get("deps")),
      by,
      idParam(c, "connection"),
    );
    return c.json({ connection: ended }, 200);
  })
  // The prefs toward each partner, and the org level (./connect-prefs.ts).
  .route("/prefs", connectPrefsRoutes)
  // Channels shared over the connections (./connect-channels.ts).
  .route("/shared-channels", connectChannelRoutes);
