import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { mayAdminister, mayChangeUser, mayOperate } from "../../src/auth/policy";
import { invalidBody } from "../../src/errors";
import { parseEmail } from "../../src/invites/email";
import { domainCounts, getTeam, getUser, requestHeal } from "../../src/teams/admin";
import {
  changeUserOnce,
  createTeam,
  createUserOnce,
  importUsersOnce,
  type NewUserInput,
  updateTeam,
} from "../../src/teams/lifecycle";
import { PLANS, ROLES, type Role, type User } from "../../src/teams/model";
import { authorize } from "../auth";
import { type AppContext, idempotencyOf } from "../http";
import { issuesOf, readImport } from "../import-body";
import { bearer, bodyOf, errors, json, jsonRequest, pathId, routes } from "../openapi";

// Admin API over the source of truth. Every user write is one atomic step
// (the users rows, their directory change-log rows and the outbox rows of
// their domain mutations), relayed and pushed to the team caches after the
// commit: see src/teams/lifecycle.ts.

const ID = z
  .string()
  .regex(/^[A-Z0-9][A-Za-z0-9_-]{0,39}$/, "ids are 1-40 of A-Z a-z 0-9 _ - starting upper-case or digit");
const DOMAIN = z
  .string()
  .transform((d) => d.trim().toLowerCase())
  .refine((d) => parseEmail(`x@${d}`).ok, "not a valid domain");

const NewTeam = z.strictObject({
  id: ID.optional(),
  name: z.string().trim().min(1).max(200),
  plan: z.enum(PLANS).default("free"),
  claimed_domains: z.array(DOMAIN).max(100).default([]),
});

const TeamChange = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  plan: z.enum(PLANS).optional(),
  claimed_domains: z.array(DOMAIN).max(100).optional(),
});

const NewUser = z.strictObject({ id: ID.optional(), email: z.string(), role: z.enum(ROLES).default("member") });

const UserChange = z
  .strictObject({ email: z.string().optional(), role: z.enum(ROLES).optional(), deactivated: z.boolean().optional() })
  .refine((v) => Object.keys(v).length > 0, "nothing to change");

/** Users per atomic page of a bulk import. */
export const IMPORT_PAGE_SIZE = 1000;
/** Users per import request; bigger imports are several requests. */
export const IMPORT_MAX_USERS = 50_000;

const Team = z.object({
  id: z.string(),
  name: z.string(),
  plan: z.string(),
  claimed_domains: z.array(z.string()),
  created_at: z.number(),
  healed_at: z.number().nullable(),
});
const UserView = z.object({
  id: z.string(),
  team_id: z.string(),
  email: z.string(),
  domain: z.string(),
  role: z.enum(ROLES),
  deactivated: z.boolean(),
  created_at: z.number(),
  updated_at: z.number(),
});
const TeamAnswer = z.object({ team: Team });
const UserAnswer = z.object({ user: UserView });
const TeamParams = z.object({ team: pathId });
const UserParams = z.object({ team: pathId, user: pathId });
const idempotencyKey = z.object({
  "idempotency-key": z
    .string()
    .optional()
    .meta({ description: "a retry with the same key answers the first answer (Idempotent-Replayed: true)" }),
});
const tags = ["admin"];

const newTeam = createRoute({
  method: "post",
  path: "/teams",
  tags,
  summary: "Create a team (platform operators)",
  security: bearer,
  request: { body: jsonRequest(NewTeam) },
  responses: { 201: json(TeamAnswer, "the team"), ...errors },
});
const readTeam = createRoute({
  method: "get",
  path: "/teams/{team}",
  tags,
  summary: "A team (its admins, operators)",
  security: bearer,
  request: { params: TeamParams },
  responses: { 200: json(TeamAnswer, "the team"), ...errors },
});
const changeTeam = createRoute({
  method: "patch",
  path: "/teams/{team}",
  tags,
  summary: "Rename a team, change its plan or claimed domains",
  security: bearer,
  request: { params: TeamParams, body: jsonRequest(TeamChange) },
  responses: { 200: json(TeamAnswer, "the team"), ...errors },
});
const newUser = createRoute({
  method: "post",
  path: "/teams/{team}/users",
  tags,
  summary: "Add a user",
  security: bearer,
  request: { params: TeamParams, headers: idempotencyKey, body: jsonRequest(NewUser) },
  responses: { 201: json(UserAnswer, "the user"), ...errors },
});
const userImport = createRoute({
  method: "post",
  path: "/teams/{team}/users/import",
  tags,
  summary: `Import up to ${IMPORT_MAX_USERS} users, validated whole before anything is written`,
  security: bearer,
  request: {
    params: TeamParams,
    headers: idempotencyKey,
    body: {
      required: true,
      description:
        "NDJSON, one user a line (streamed), or JSON `{ users: [...] }`; each user as POST .../users takes it",
      content: {
        "application/x-ndjson": { schema: { type: "string", description: "one NewUser object a line" } },
        "application/json": { schema: z.strictObject({ users: z.array(NewUser).min(1) }) },
      },
    },
  },
  responses: {
    201: json(z.object({ imported: z.number(), pages: z.number() }), "how many, in how many pages"),
    ...errors,
  },
});
const readUser = createRoute({
  method: "get",
  path: "/teams/{team}/users/{user}",
  tags,
  summary: "A user",
  security: bearer,
  request: { params: UserParams },
  responses: { 200: json(UserAnswer, "the user"), ...errors },
});
const changeUser = createRoute({
  method: "patch",
  path: "/teams/{team}/users/{user}",
  tags,
  summary: "Change a user's address, role or active state",
  security: bearer,
  request: { params: UserParams, headers: idempotencyKey, body: jsonRequest(UserChange) },
  responses: { 200: json(UserAnswer, "the user"), ...errors },
});
const deactivateUser = createRoute({
  method: "delete",
  path: "/teams/{team}/users/{user}",
  tags,
  summary: "Deactivate a user",
  security: bearer,
  request: { params: UserParams, headers: idempotencyKey },
  responses: { 200: json(UserAnswer, "the user, deactivated"), ...errors },
});
const readDomains = createRoute({
  method: "get",
  path: "/teams/{team}/domains",
  tags,
  summary: "The team's domain counts",
  security: bearer,
  request: { params: TeamParams },
  responses: {
    200: json(
      z.object({ counts: z.array(z.object({ domain: z.string(), role: z.string(), count: z.number() })) }),
      "one row per domain and role",
    ),
    ...errors,
  },
});
const heal = createRoute({
  method: "post",
  path: "/teams/{team}/heal",
  tags,
  summary: "Queue a recount of the team's domain counts",
  security: bearer,
  request: { params: TeamParams },
  responses: { 202: json(z.object({ queued: z.literal(true) }), "queued"), ...errors },
});

export const adminRoutes = routes()
  .openapi(newTeam, async (c) => {
    await authorize(c, mayOperate);
    const body = await bodyOf(c, newTeam);
    const team = await createTeam(c.get("deps"), {
      id: body.id,
      name: body.name,
      plan: body.plan,
      claimedDomains: body.claimed_domains,
    });
    return c.json({ team: teamJson(team) }, 201);
  })
  .openapi(readTeam, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    return c.json({ team: teamJson(await getTeam(c.get("deps"), teamId)) }, 200);
  })
  .openapi(changeTeam, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await bodyOf(c, changeTeam);
    const team = await updateTeam(c.get("deps"), teamId, {
      name: body.name,
      plan: body.plan,
      claimedDomains: body.claimed_domains,
    });
    return c.json({ team: teamJson(team) }, 200);
  })
  .openapi(newUser, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await bodyOf(c, newUser);
    await authorize(c, (p) => mayChangeUser(p, teamId, null, { role: body.role }));
    const { value: user, replayed } = await createUserOnce(
      c.get("deps"),
      teamId,
      { id: body.id, ...addressOf(body.email), role: body.role },
      await idempotencyOf(c, body),
    );
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json({ user: userJson(user) }, 201);
  })
  .openapi(userImport, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const inputs = await readUsers(c);
    const { value, replayed } = await importUsersOnce(
      c.get("deps"),
      teamId,
      inputs,
      IMPORT_PAGE_SIZE,
      await idempotencyOf(c, inputs),
    );
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json(value, 201);
  })
  .openapi(readUser, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    return c.json({ user: userJson(await getUser(c.get("deps"), teamId, c.req.param("user"))) }, 200);
  })
  .openapi(changeUser, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await bodyOf(c, changeUser);
    await authorizeUserChange(c, teamId, c.req.param("user"), { role: body.role, deactivated: body.deactivated });
    const address = body.email === undefined ? {} : addressOf(body.email);
    const { value: user, replayed } = await changeUserOnce(
      c.get("deps"),
      teamId,
      c.req.param("user"),
      { ...address, role: body.role, deactivated: body.deactivated },
      await idempotencyOf(c, body),
    );
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json({ user: userJson(user) }, 200);
  })
  .openapi(deactivateUser, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    await authorizeUserChange(c, teamId, c.req.param("user"), { deactivated: true });
    const { value: user, replayed } = await changeUserOnce(
      c.get("deps"),
      teamId,
      c.req.param("user"),
      { deactivated: true },
      await idempotencyOf(c, null),
    );
    if (replayed) c.header("idempotent-replayed", "true");
    return c.json({ user: userJson(user) }, 200);
  })
  .openapi(readDomains, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const counts = await domainCounts(c.get("deps"), teamId);
    return c.json({ counts: counts.map(({ domain, role, count }) => ({ domain, role, count })) }, 200);
  })
  .openapi(heal, async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    await requestHeal(c.get("deps"), teamId);
    return c.json({ queued: true as const }, 202);
  });

/** Role and active-state changes go by the target's live role too (owners are managed by owners). */
async function authorizeUserChange(
  c: AppContext,
  teamId: string,
  userId: string,
  change: { role?: Role; deactivated?: boolean },
): Promise<void> {
  const target = await c.get("deps").store.getUser(teamId, userId);
  await authorize(c, (p) => mayChangeUser(p, teamId, target, change));
}

/** Longest part of a refused address echoed back (an address is at most 254): a 1 MB one is not reflected whole. */
const ECHO_MAX = 320;

function addressOf(raw: string): { email: string; domain: string } {
  const parsed = parseEmail(raw);
  if (!parsed.ok) throw invalidBody(`email: ${parsed.reason}`, { value: raw.slice(0, ECHO_MAX) });
  return { email: parsed.email, domain: parsed.domain };
}

/** Users of an import: the shape checked by zod, the address by parseEmail. */
function readUsers(c: AppContext): Promise<NewUserInput[]> {
  return readImport(c, "users", IMPORT_MAX_USERS, (value) => {
    const parsed = NewUser.safeParse(value);
    if (!parsed.success) return issuesOf(parsed.error);
    const address = parseEmail(parsed.data.email);
    if (!address.ok) return { ok: false, message: `email: ${address.reason}` };
    return {
      ok: true,
      value: { id: parsed.data.id, email: address.email, domain: address.domain, role: parsed.data.role },
    };
  });
}

function teamJson(t: {
  id: string;
  name: string;
  plan: string;
  claimedDomains: string[];
  createdAt: number;
  healedAt: number | null;
}) {
  return {
    id: t.id,
    name: t.name,
    plan: t.plan,
    claimed_domains: t.claimedDomains,
    created_at: t.createdAt,
    healed_at: t.healedAt,
  };
}

function userJson(u: User) {
  return {
    id: u.id,
    team_id: u.teamId,
    email: u.email,
    domain: u.domain,
    role: u.role,
    deactivated: u.deactivated,
    created_at: u.createdAt,
    updated_at: u.updatedAt,
  };
}
