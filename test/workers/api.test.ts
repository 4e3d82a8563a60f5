import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { depsFor } from "../../platform/deps";
import type { DomainMutationMessage } from "../../src/domains/messages";
import { mutationRow, STRANDED_AFTER_MS } from "../../src/domains/outbox";
import { d1Driver } from "../../storage/d1-driver";
import { sqlStore } from "../../storage/sql-store";
import { sweepOutbox } from "../../workers/scheduled";
import { uniqueTeamId } from "../contract/fixtures";
import { api, newTeam as createTeam, eventually, platformToken, token } from "./client";

// End to end through the Worker: auth, admin API, the real queue consumers
// (Miniflare's local Queues) and classification, on D1.

type Counts = { counts: Array<{ domain: string; role: string; count: number }> };
type ErrorBody = { error: { code: string; message: string; details?: unknown } };

function newTeam(claimed: string[] = []) {
  return createTeam({ claimed });
}

async function addUser(teamId: string, admin: string, email: string, role = "member", id?: string) {
  const res = await api<{ user: { id: string } }>("POST", `/v1/admin/teams/${teamId}/users`, {
    token: admin,
    json: { id, email, role },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.user.id;
}

async function totals(teamId: string, admin: string): Promise<Record<string, number>> {
  const res = await api<Counts>("GET", `/v1/admin/teams/${teamId}/domains`, { token: admin });
  return Object.fromEntries(res.body.counts.map((c) => [`${c.domain}/${c.role}`, c.count]));
}

async function userCount(teamId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM users WHERE team_id = ?")
    .bind(teamId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

describe("auth", () => {
  it("rejects a missing token with 401 JSON", async () => {
    const res = await api<ErrorBody>("POST", "/v1/invites/classify", { json: { emails: ["a@b.test"] } });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthorized");
  });

  it("rejects a token signed with another secret", async () => {
    const { signToken } = await import("../../src/auth/tokens");
    const forged = await signToken({ team: "TPLATFORM", user: "UOPERATOR" }, "not-the-secret-but-32-bytes-long-ok");
    const res = await api<ErrorBody>("POST", "/v1/admin/teams", { token: forged, json: { name: "x" } });
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/signature/);
  });

  it("rejects an expired token", async () => {
    const res = await api<ErrorBody>("POST", "/v1/invites/classify", {
      token: await token("T1", "U1", -10),
      json: { emails: ["a@b.test"] },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/expired/);
  });

  it("forbids team admin routes to non-admins and to admins of another team", async () => {
    const a = await newTeam();
    const b = await newTeam();
    const member = await token(a.id, "U1");
    expect((await api("GET", `/v1/admin/teams/${a.id}`, { token: member })).status).toBe(403);
    // Another team's admin learns nothing: the same answer as for a team that does not exist.
    const other = await api<ErrorBody>("GET", `/v1/admin/teams/${a.id}`, { token: b.admin });
    expect(other.status).toBe(404);
    expect(JSON.stringify(other.body)).not.toContain(`Team ${a.id}`);
    const missing = await api<ErrorBody>("GET", "/v1/admin/teams/TNOSUCHTEAM", { token: b.admin });
    expect({ status: missing.status, code: missing.body.error.code }).toEqual({ status: 404, code: "not_found" });
    expect((await api("GET", `/v1/admin/teams/${a.id}`, { token: a.admin })).status).toBe(200);
  });

  it("keeps team provisioning to the platform scope", async () => {
    const a = await newTeam();
    const res = await api("POST", "/v1/admin/teams", { token: a.admin, json: { name: "mine" } });
    expect(res.status).toBe(403);
  });
});

describe("admin API", () => {
  it("rejects unknown fields, bad plans and bad JSON with 400 and creates nothing", async () => {
    const t = await platformToken();
    const id = uniqueTeamId("T");
    for (const json of [
      { id, name: "x", plan: "gold" },
      { id, name: "x", extra: 1 },
      { id, name: "" },
    ]) {
      const res = await api<ErrorBody>("POST", "/v1/admin/teams", { token: t, json });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_body");
    }
    const bad = await api<ErrorBody>("POST", "/v1/admin/teams", {
      token: t,
      body: "{nope",
      contentType: "application/json",
    });
    expect(bad.status).toBe(400);
    expect((await api("GET", `/v1/admin/teams/${id}`, { token: t })).status).toBe(404);
  });

  it("answers 409 for a taken team id", async () => {
    const a = await newTeam();
    const res = await api("POST", "/v1/admin/teams", {
      token: await platformToken(),
      json: { id: a.id, name: "again" },
    });
    expect(res.status).toBe(409);
  });

  it("creates, changes and deactivates users, normalizing addresses", async () => {
    const a = await newTeam();
    const res = await api<{ user: Record<string, unknown> }>("POST", `/v1/admin/teams/${a.id}/users`, {
      token: a.admin,
      json: { email: "  Ada@Example.TEST ", role: "admin" },
    });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ email: "ada@example.test", domain: "example.test", role: "admin" });
    const uid = String(res.body.user.id);
    const moved = await api<{ user: Record<string, unknown> }>("PATCH", `/v1/admin/teams/${a.id}/users/${uid}`, {
      token: a.admin,
      json: { email: "ada@new.test", role: "member" },
    });
    expect(moved.body.user).toMatchObject({ email: "ada@new.test", domain: "new.test", role: "member" });
    const gone = await api<{ user: Record<string, unknown> }>("DELETE", `/v1/admin/teams/${a.id}/users/${uid}`, {
      token: a.admin,
    });
    expect(gone.body.user.deactivated).toBe(true);
  });

  it("rejects bad user input with 400, duplicates with 409, unknown ids with 404", async () => {
    const a = await newTeam();
    await addUser(a.id, a.admin, "bob@acme.test");
    const base = `/v1/admin/teams/${a.id}/users`;
    const badEmail = await api<ErrorBody>("POST", base, { token: a.admin, json: { email: "bob@@acme" } });
    expect(badEmail.status).toBe(400);
    const badRole = await api("POST", base, { token: a.admin, json: { email: "c@acme.test", role: "king" } });
    expect(badRole.status).toBe(400);
    const dup = await api("POST", base, { token: a.admin, json: { email: "BOB@acme.test" } });
    expect(dup.status).toBe(409);
    expect((await api("PATCH", `${base}/UNOPE`, { token: a.admin, json: { role: "admin" } })).status).toBe(404);
    expect((await api("PATCH", `${base}/UNOPE`, { token: a.admin, json: {} })).status).toBe(400);
    expect(await userCount(a.id)).toBe(2); // the admin and bob
  });

  it("imports thousands of users from streamed NDJSON and keeps the aggregate current", async () => {
    const a = await newTeam();
    const lines = Array.from({ length: 2_500 }, (_, i) =>
      JSON.stringify({
        email: `u${i}@${i % 5 === 0 ? "partner.test" : "acme.test"}`,
        role: i % 50 === 0 ? "admin" : "member",
      }),
    );
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const enc = new TextEncoder();
        for (let i = 0; i < lines.length; i += 300)
          controller.enqueue(enc.encode(`${lines.slice(i, i + 300).join("\n")}\n`));
        controller.close();
      },
    });
    const res = await api("POST", `/v1/admin/teams/${a.id}/users/import`, {
      token: a.admin,
      body: stream,
      contentType: "application/x-ndjson",
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toEqual({ imported: 2_500, pages: 3 });
    const counts = await eventually(
      () => totals(a.id, a.admin),
      // 2,500 imported and the team's admin (newTeam)
      (c) => (c["*/member"] ?? 0) + (c["*/admin"] ?? 0) === 2_501,
    );
    expect(counts["partner.test/admin"]).toBe(50);
    expect(counts["partner.test/member"]).toBe(450);
  });

  it("imports nothing when any line is invalid", async () => {
    const a = await newTeam();
    const body = [
      JSON.stringify({ email: "ok@acme.test" }),
      "{not json",
      JSON.stringify({ email: "nope" }),
      JSON.stringify({ email: "x@acme.test", role: "wizard" }),
    ].join("\n");
    const res = await api<ErrorBody>("POST", `/v1/admin/teams/${a.id}/users/import`, {
      token: a.admin,
      body,
      contentType: "application/x-ndjson",
    });
    expect(res.status).toBe(400);
    const details = res.body.error.details as { errors: Array<{ line: number }> };
    expect(details.errors.map((e) => e.line)).toEqual([2, 3, 4]);
    expect(await userCount(a.id)).toBe(1); // the admin newTeam made
  });

  it("imports nothing when one address already exists", async () => {
    const a = await newTeam();
    await addUser(a.id, a.admin, "taken@acme.test");
    const res = await api("POST", `/v1/admin/teams/${a.id}/users/import`, {
      token: a.admin,
      json: { users: [{ email: "free@acme.test" }, { email: "taken@acme.test" }] },
    });
    expect(res.status).toBe(409);
    expect(await userCount(a.id)).toBe(2); // the admin and taken@
  });
});

describe("classification", () => {
  let team: { id: string; admin: string };
  let inviter: string;
  let guest: string;

  beforeAll(async () => {
    team = await newTeam(["acme.test"]);
    inviter = await addUser(team.id, team.admin, "ann@corp.test", "member");
    guest = await addUser(team.id, team.admin, "gus@corp.test", "guest");
    // 40 acme members, 6 partner.test members (share ~ 6/47 with weights), 1 tiny.test member
    const users = [
      ...Array.from({ length: 40 }, (_, i) => ({ email: `a${i}@acme.test` })),
      ...Array.from({ length: 6 }, (_, i) => ({ email: `p${i}@partner.test` })),
      { email: "t@tiny.test" },
      { email: "g@gmail.com", role: "owner" },
    ];
    const res = await api("POST", `/v1/admin/teams/${team.id}/users/import`, { token: team.admin, json: { users } });
    expect(res.status).toBe(201);
    await eventually(
      () => totals(team.id, team.admin),
      (c) => (c["*/member"] ?? 0) === 48,
    );
  });

  type Classified = {
    results: Array<{
      email: string;
      domain: string;
      classification: string;
      reason: string;
      flow: string;
      share: number;
    }>;
    heal_queued: string | null;
  };

  it("applies settings, inviter, team and provider rules, in input order", async () => {
    const res = await api<Classified>("POST", "/v1/invites/classify", {
      token: await token(team.id, inviter),
      json: {
        emails: [
          "New@Acme.test",
          "x@corp.test",
          "y@partner.test",
          "z@tiny.test",
          "w@gmail.com",
          "v@elsewhere.test",
          "new@acme.test",
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.results.map((r) => [r.email, r.classification, r.reason, r.flow])).toEqual([
      ["new@acme.test", "internal", "claimed_domain", "workspace_invite"],
      ["x@corp.test", "internal", "inviter_domain", "workspace_invite"],
      ["y@partner.test", "internal", "team_share", "workspace_invite"],
      ["z@tiny.test", "external", "below_threshold", "slack_connect"],
      ["w@gmail.com", "external", "public_provider", "slack_connect"],
      ["v@elsewhere.test", "external", "below_threshold", "slack_connect"],
      ["new@acme.test", "internal", "claimed_domain", "workspace_invite"],
    ]);
    expect(res.body.results[2]?.share).toBeGreaterThanOrEqual(0.1);
  });

  it("does not give a guest inviter's domain the inviter context", async () => {
    const res = await api<Classified>("POST", "/v1/invites/classify", {
      token: await token(team.id, guest),
      json: { emails: ["x@corp.test"] },
    });
    expect(res.body.results[0]).toMatchObject({ classification: "external", reason: "below_threshold" });
  });

  it("names every invalid address and classifies nothing", async () => {
    const res = await api<ErrorBody>("POST", "/v1/invites/classify", {
      token: await token(team.id, inviter),
      json: { emails: ["ok@acme.test", "bad", 42, "a@b"] },
    });
    expect(res.status).toBe(400);
    const { invalid } = res.body.error.details as { invalid: Array<{ index: number }> };
    expect(invalid.map((i) => i.index)).toEqual([1, 2, 3]);
  });

  it("rejects empty and oversized requests", async () => {
    const t = await token(team.id, inviter);
    expect((await api("POST", "/v1/invites/classify", { token: t, json: { emails: [] } })).status).toBe(400);
    const many = Array.from({ length: 501 }, (_, i) => `u${i}@acme.test`);
    expect((await api("POST", "/v1/invites/classify", { token: t, json: { emails: many } })).status).toBe(400);
    expect((await api("POST", "/v1/invites/classify", { token: t, json: { email: "a@b.test" } })).status).toBe(400);
  });

  it("refuses an inviter who is not an active member of the token's team", async () => {
    const other = await newTeam();
    const res = await api("POST", "/v1/invites/classify", {
      token: await token(other.id, inviter),
      json: { emails: ["y@partner.test"] },
    });
    expect(res.status).toBe(403);
  });

  it("queues a heal on a team's first classification, and the heal consumer completes it", async () => {
    const t = await newTeam();
    const u = await addUser(t.id, t.admin, "solo@solo.test");
    const res = await api<Classified>("POST", "/v1/invites/classify", {
      token: await token(t.id, u),
      json: { emails: ["a@solo.test"] },
    });
    expect(res.body.heal_queued).toBe("first_classification");
    const healed = await eventually(
      () => api<{ team: { healed_at: number | null } }>("GET", `/v1/admin/teams/${t.id}`, { token: t.admin }),
      (r) => r.body.team.healed_at !== null,
    );
    expect(healed.body.team.healed_at).toBeGreaterThan(0);
    // The heal may have run before the join's mutation landed (counting it
    // twice); the verification heal it scheduled settles the count exactly.
    await eventually(
      () => totals(t.id, t.admin),
      (c) => c["solo.test/member"] === 1 && c["*/member"] === 1,
    );
    expect(await totals(t.id, t.admin)).toEqual({
      "solo.test/member": 1,
      "*/member": 1,
      [`${t.id.toLowerCase()}.admin.test/admin`]: 1,
      "*/admin": 1,
    });
  });

  it("repairs drift when an admin asks for a heal", async () => {
    const t = await newTeam();
    await addUser(t.id, t.admin, "one@drift.test");
    await eventually(
      () => totals(t.id, t.admin),
      (c) => c["drift.test/member"] === 1,
    );
    await env.DB.prepare("UPDATE domains SET count = count + 5 WHERE team_id = ? AND domain = 'drift.test'")
      .bind(t.id)
      .run();
    const res = await api("POST", `/v1/admin/teams/${t.id}/heal`, { token: t.admin });
    expect(res.status).toBe(202);
    await eventually(
      () => totals(t.id, t.admin),
      (c) => c["drift.test/member"] === 1,
    );
  });
});

describe("outbox relay", () => {
  it("relays each write's mutation right after its commit: no row is left unsent", async () => {
    const t = await newTeam();
    const uid = await addUser(t.id, t.admin, "ada@relay.test");
    await api("PATCH", `/v1/admin/teams/${t.id}/users/${uid}`, { token: t.admin, json: { role: "admin" } });
    const { results } = await env.DB.prepare("SELECT `sent_at` FROM outbox WHERE `team_id` = ?")
      .bind(t.id)
      .all<{ sent_at: number | null }>();
    expect(results.length).toBe(3); // the team's admin, ada, ada's role
    expect(results.every((r) => r.sent_at !== null)).toBe(true);
    await eventually(
      () => totals(t.id, t.admin),
      (c) => c["relay.test/admin"] === 1 && c["relay.test/member"] === undefined,
    );
  });

  it("sends what a crash left in the outbox from the cron sweep, once, and the consumer counts it once", async () => {
    const t = await newTeam();
    await addUser(t.id, t.admin, "first@stranded.test");
    await eventually(
      () => totals(t.id, t.admin),
      (c) => c["stranded.test/member"] === 1,
    );
    // What a process that died right after committing a user leaves: the
    // users row, its change-log row and its unsent outbox row.
    const at = Date.now() - STRANDED_AFTER_MS - 1_000;
    const body: DomainMutationMessage = {
      v: 1,
      id: crypto.randomUUID(),
      teamId: t.id,
      cause: "user_created",
      deltas: [
        { domain: "stranded.test", role: "member", delta: 1 },
        { domain: "*", role: "member", delta: 1 },
      ],
      at,
    };
    const user = {
      teamId: t.id,
      id: "USTRANDED",
      email: "second@stranded.test",
      domain: "stranded.test",
      role: "member" as const,
      deactivated: false,
      createdAt: at,
      updatedAt: at,
    };
    await sqlStore(d1Driver(env.DB)).insertUsers([user], { log: "users", outbox: [mutationRow(body, at)], at });

    // The bindings the Worker gets (the test env types only the test-only extras).
    const deps = depsFor(env as unknown as Env);
    expect((await sweepOutbox(deps)).relayed).toBeGreaterThanOrEqual(1);
    await eventually(
      () => totals(t.id, t.admin),
      (c) => c["stranded.test/member"] === 2,
    );
    expect((await deps.store.unsentOutbox({ createdUpTo: Date.now(), limit: 10, teamId: t.id })).length).toBe(0);
    // The queue delivering it again (a relay that crashed before marking it
    // sent) changes nothing; a later write's count lands on top of it.
    await env.DOMAIN_MUTATIONS.send(body);
    await addUser(t.id, t.admin, "third@stranded.test");
    await eventually(
      () => totals(t.id, t.admin),
      (c) => c["stranded.test/member"] === 3,
    );
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await totals(t.id, t.admin))["stranded.test/member"]).toBe(3);
  });
});
