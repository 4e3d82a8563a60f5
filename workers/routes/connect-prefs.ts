import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { sharedChannelPortsOf, topicPublisher } from "../../platform/deps";
import { reviewPendingInvites } from "../../src/connect/shared-channels-service";
import {
  AUDIT_DEFAULT,
  AUDIT_MAX,
  changeOrgPrefs,
  changePartnerPrefs,
  newAuditId,
  orgPrefs,
  partnerPrefs,
  prefsAudit,
  type TeamPrefsPorts,
} from "../../src/connect/team-prefs";
import { notFound } from "../../src/errors";
import { topicKey } from "../../src/realtime/topics";
import type { AppContext } from "../http";
import { bearer, bodyOf, errors, json, jsonRequest, loose, pathId, queryOf, routes } from "../openapi";
import { connectAdminOf } from "./connect-admin";

// Slack Connect prefs (docs/connect.md#the-prefs-routes), mounted under
// /v1/connect/prefs by routes/connect.ts. As for connections, the team is
// always the caller's own and only its live owners and admins act
// (mayManageConnections); a partner is named only if the team has or had a
// connection with it (src/connect/team-prefs.ts), so every other id answers
// as one that does not exist. Each handler authorizes, parses, calls one use
// case and answers. Of what a change causes (PrefEffect), a widened
// auto-approval answers the team's pending shared-channel invitations again
// (reviewInvitations) and each class's event goes to the team's admins
// (announce); every write clears the team's prefs cache before it returns
// (deps.connectPrefs), and the search index hears of every change through
// its queue (docs/connect.md#admin-search).

/** An id that cannot name a team names nothing: the answer for a missing partner, not a 400 to tell apart. */
const PARTNER_ID = /^[A-Za-z0-9_-]{1,40}$/;

/** More prefs than exist, with room for new ones; a longer name is no pref either. */
const MAX_PREFS = 32;
const MAX_NAME = 64;

/**
 * `{ <pref>: value }` sets, `{ <pref>: null }` clears. Only the shape is
 * checked here; each value is the pref class's to transform and validate
 * (the use case refuses the whole patch, naming every pref that is wrong,
 * unknown names included). Not z.record: it drops a "__proto__" key, which
 * would let the rest of such a patch through instead of refusing it.
 */
const PrefsPatch = z
  .custom<Record<string, unknown>>(
    (v) => typeof v === "object" && v !== null && !Array.isArray(v),
    "expected an object of prefs: { <pref>: value, or null to clear it }",
  )
  .meta({
    type: "object",
    description: "`{ <pref>: value }` sets a pref, `{ <pref>: null }` clears it; docs/connect.md#the-prefs",
  })
  .superRefine((patch, ctx) => {
    const names = Object.keys(patch);
    if (names.length === 0) ctx.addIssue({ code: "custom", message: "name at least one pref" });
    if (names.length > MAX_PREFS) ctx.addIssue({ code: "custom", message: `at most ${MAX_PREFS} prefs at once` });
    if (names.some((n) => n.length > MAX_NAME)) {
      ctx.addIssue({ code: "custom", message: `pref names are at most ${MAX_NAME} characters` });
    }
  });

const AuditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(AUDIT_MAX).default(AUDIT_DEFAULT),
});

function portsOf(c: AppContext): TeamPrefsPorts {
  const deps = c.get("deps");
  return {
    store: deps.connectPrefs,
    connections: deps.connections,
    now: () => deps.clock.now(),
    newId: newAuditId,
    async reviewInvitations(team, host) {
      await reviewPendingInvites(sharedChannelPortsOf(deps), team, host);
    },
    async announce(team, event) {
      await topicPublisher(c.env).publish(topicKey(team, "team"), JSON.stringify(event));
    },
  };
}

function partnerParam(c: AppContext): string {
  const id = c.req.param("partner") ?? "";
  if (!PARTNER_ID.test(id)) throw notFound("no such partner");
  return id;
}

const tags = ["connect prefs"];
const admins = "The caller's own team, its active owners and admins.";
const PartnerParams = z.object({ partner: pathId });
const Prefs = z.record(z.string(), loose({ source: z.string() }));
const OrgView = loose({ prefs: Prefs, problems: z.unknown() });
const PartnerView = loose({ partner: z.string(), prefs: Prefs, problems: z.unknown() });

const readOrg = createRoute({
  method: "get",
  path: "/org",
  tags,
  summary: "The team's prefs at the org level, each with where its value comes from",
  description: admins,
  security: bearer,
  responses: { 200: json(OrgView, "`{ <pref>: { value, source } }`; source org or default"), ...errors },
});
const changeOrg = createRoute({
  method: "patch",
  path: "/org",
  tags,
  summary: "Set (a value) or clear (null) prefs at the org level",
  description: admins,
  security: bearer,
  request: { body: jsonRequest(PrefsPatch) },
  responses: { 200: json(OrgView.extend({ changed: z.array(z.string()) }), "the prefs after the change"), ...errors },
});
const readPartner = createRoute({
  method: "get",
  path: "/partners/{partner}",
  tags,
  summary: "The prefs toward one partner",
  description: admins,
  security: bearer,
  request: { params: PartnerParams },
  responses: { 200: json(PartnerView, "source partner, org or default"), ...errors },
});
const changePartner = createRoute({
  method: "patch",
  path: "/partners/{partner}",
  tags,
  summary: "Set (a value) or clear (null: back to the org level) prefs toward one partner",
  description: admins,
  security: bearer,
  request: { params: PartnerParams, body: jsonRequest(PrefsPatch) },
  responses: {
    200: json(PartnerView.extend({ changed: z.array(z.string()) }), "the prefs after the change"),
    ...errors,
  },
});
const audit = createRoute({
  method: "get",
  path: "/audit",
  tags,
  summary: "The team's pref changes, newest first",
  description: admins,
  security: bearer,
  request: { query: AuditQuery },
  responses: { 200: json(z.object({ audit: z.array(loose({ id: z.string() })) }), "audit lines"), ...errors },
});

export const connectPrefsRoutes = routes()
  .openapi(readOrg, async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await orgPrefs(portsOf(c), team), 200);
  })
  .openapi(changeOrg, async (c) => {
    const by = await connectAdminOf(c);
    const patch = await bodyOf(c, changeOrg);
    return c.json(await changeOrgPrefs(portsOf(c), by, patch), 200);
  })
  .openapi(readPartner, async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await partnerPrefs(portsOf(c), team, partnerParam(c)), 200);
  })
  .openapi(changePartner, async (c) => {
    const by = await connectAdminOf(c);
    const partner = partnerParam(c);
    const patch = await bodyOf(c, changePartner);
    return c.json(await changePartnerPrefs(portsOf(c), by, partner, patch), 200);
  })
  .openapi(audit, async (c) => {
    const { team } = await connectAdminOf(c);
    return c.json(await prefsAudit(portsOf(c), team, queryOf(c, audit).limit), 200);
  });
