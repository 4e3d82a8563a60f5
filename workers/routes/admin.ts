import { Hono } from "hono";
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
import { type AppContext, type AppEnv, idempotencyOf, jsonBody } from "../http";
import { issuesOf, readImport } from "../import-body";

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

export const adminRoutes = new Hono<AppEnv>()
  .post("/teams", async (c) => {
    await authorize(c, mayOperate);
    const body = await jsonBody(c, NewTeam);
    const team = await createTeam(c.get("deps"), {
      id: body.id,
      name: body.name,
      plan: body.plan,
      claimedDomains: body.claimed_domains,
    });
    return c.json({ team: teamJson(team) }, 201);
  })
  .get("/teams/:team", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    return c.json({ team: teamJson(await getTeam(c.get("deps"), teamId)) });
  })
  .patch("/teams/:team", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await jsonBody(c, TeamChange);
    const team = await updateTeam(c.get("deps"), teamId, {
      name: body.name,
      plan: body.plan,
      claimedDomains: body.claimed_domains,
    });
    return c.json({ team: teamJson(team) });
  })
  .post("/teams/:team/users", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await jsonBody(c, NewUser);
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
  .post("/teams/:team/users/import", async (c) => {
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
  .get("/teams/:team/users/:user", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    return c.json({ user: userJson(await getUser(c.get("deps"), teamId, c.req.param("user"))) });
  })
  .patch("/teams/:team/users/:user", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const body = await jsonBody(c, UserChange);
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
    return c.json({ user: userJson(user) });
  })
  .delete("/teams/:team/users/:user", async (c) => {
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
    return c.json({ user: userJson(user) });
  })
  .get("/teams/:team/domains", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    const counts = await domainCounts(c.get("deps"), teamId);
    return c.json({ counts: counts.map(({ domain, role, count }) => ({ domain, role, count })) });
  })
  .post("/teams/:team/heal", async (c) => {
    const teamId = c.req.param("team");
    await authorize(c, (p) => mayAdminister(p, teamId));
    await requestHeal(c.get("deps"), teamId);
    return c.json({ queued: true }, 202);
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
