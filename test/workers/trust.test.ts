import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { maySeeChannel, maySeeUser } from "../../src/auth/policy";
import { signToken } from "../../src/auth/tokens";
import type { Role } from "../../src/teams/model";
import { createApp } from "../../workers/app";
import { uniqueTeamId } from "../contract/fixtures";
import { api, newTeam, ok, platformToken, SECRET, token } from "./client";

// Issue 13's findings over HTTP, one behaviour per test: each failed on the
// code before the fix (tokens that carried admin rights, the shared-channel
// object named by channel id alone, bodies taken as JSON whatever their type,
// deep bodies that crashed the error path, unchecked nbf / huge exp).

type ErrorBody = { error: { code: string; message: string } };

/** A team whose users are made by the operator: `users` ids with their roles. */
async function teamWith(users: Record<string, string>): Promise<string> {
  const id = uniqueTeamId("T");
  const operator = await platformToken();
  await ok(api("POST", "/v1/admin/teams", { token: operator, json: { id, name: id } }), 201);
  for (const [user, role] of Object.entries(users)) {
    await ok(
      api("POST", `/v1/admin/teams/${id}/users`, {
        token: operator,
        json: { id: user, email: `${user.toLowerCase()}@${id.toLowerCase()}.test`, role },
      }),
      201,
    );
  }
  return id;
}

const userPath = (team: string, user: string) => `/v1/admin/teams/${team}/users/${user}`;

describe("admin rights come from live state, not the token", () => {
  it("a deactivated admin can no longer reactivate itself, promote, create owners or deactivate the owner", async () => {
    const team = await teamWith({ UOWNER: "owner", UADM: "admin", UMEM: "member" });
    const operator = await platformToken();
    const adm = await token(team, "UADM"); // minted while UADM is an admin, used after
    await ok(api("DELETE", userPath(team, "UADM"), { token: operator }));
    const attempts: Array<[string, string, unknown]> = [
      ["PATCH", userPath(team, "UADM"), { deactivated: false }],
      ["PATCH", userPath(team, "UMEM"), { role: "admin" }],
      ["POST", `/v1/admin/teams/${team}/users`, { id: "UNEW", email: "new@x.test", role: "owner" }],
      ["DELETE", userPath(team, "UOWNER"), undefined],
      ["GET", `/v1/admin/teams/${team}`, undefined],
    ];
    for (const [method, path, json] of attempts) {
      const res = await api<ErrorBody>(method, path, { token: adm, json });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    const state = await env.DB.prepare("SELECT id, role, deactivated FROM users WHERE team_id = ? ORDER BY id")
      .bind(team)
      .all<{ id: string; role: string; deactivated: number }>();
    expect(state.results).toEqual([
      { id: "UADM", role: "admin", deactivated: 1 },
      { id: "UMEM", role: "member", deactivated: 0 },
      { id: "UOWNER", role: "owner", deactivated: 0 },
    ]);
  });

  it("a demoted admin loses admin rights at once", async () => {
    const team = await teamWith({ UADM: "admin", UMEM: "member" });
    const adm = await token(team, "UADM");
    expect((await api("GET", `/v1/admin/teams/${team}`, { token: adm })).status).toBe(200);
    await ok(api("PATCH", userPath(team, "UADM"), { token: await platformToken(), json: { role: "member" } }));
    expect((await api("GET", `/v1/admin/teams/${team}`, { token: adm })).status).toBe(403);
    expect((await api("PATCH", userPath(team, "UMEM"), { token: adm, json: { role: "admin" } })).status).toBe(403);
  });

  it("owners are managed by owners: an admin can neither create, demote nor deactivate one", async () => {
    const team = await teamWith({ UOWNER: "owner", UADM: "admin", UMEM: "member" });
    const adm = await token(team, "UADM");
    const owner = await token(team, "UOWNER");
    expect((await api("PATCH", userPath(team, "UMEM"), { token: adm, json: { role: "owner" } })).status).toBe(403);
    expect((await api("PATCH", userPath(team, "UOWNER"), { token: adm, json: { role: "member" } })).status).toBe(403);
    expect((await api("DELETE", userPath(team, "UOWNER"), { token: adm })).status).toBe(403);
    expect(
      (await api("POST", `/v1/admin/teams/${team}/users`, { token: adm, json: { email: "o@x.test", role: "owner" } }))
        .status,
    ).toBe(403);
    // Nobody changes their own role or active state (an operator or another admin does).
    expect((await api("PATCH", userPath(team, "UADM"), { token: adm, json: { role: "owner" } })).status).toBe(403);
    // What admins may do, they still do; owners may manage owners.
    expect((await api("PATCH", userPath(team, "UMEM"), { token: adm, json: { role: "guest" } })).status).toBe(200);
    expect((await api("PATCH", userPath(team, "UMEM"), { token: owner, json: { role: "owner" } })).status).toBe(200);
  });

  it("a token for a user its team does not have administers nothing", async () => {
    const team = await teamWith({});
    const ghost = await token(team, "UGHOST");
    expect((await api("GET", `/v1/admin/teams/${team}`, { token: ghost })).status).toBe(403);
    expect((await api("POST", "/v1/invites/classify", { token: ghost, json: { emails: ["a@b.test"] } })).status).toBe(
      403,
    );
  });

  it("an old-style token claiming the admin or platform scope gets nothing from it", async () => {
    const team = await teamWith({ UMEM: "member" });
    const { sign } = await import("hono/jwt");
    const now = Math.floor(Date.now() / 1000);
    const claims = { team, sub: "UMEM", use: "access", iat: now, nbf: now, exp: now + 600 };
    const scoped = await sign({ ...claims, scope: ["admin", "platform"], role: "owner" }, SECRET, "HS256");
    expect((await api("GET", `/v1/admin/teams/${team}`, { token: scoped })).status).toBe(403);
    expect((await api("POST", "/v1/admin/teams", { token: scoped, json: { name: "x" } })).status).toBe(403);
  });
});

describe("shared channels are named by their host team", () => {
  it("a channel id another team also uses never reaches that team's shared member list", async () => {
    // Team B hosts CSAME, shared with C, with members; B's member list is loaded.
    const b = await teamWith({ UB1: "member", UB2: "member", UB3: "member" });
    const c = await teamWith({ UC1: "member" });
    const operator = await platformToken();
    await ok(
      api("POST", `/v1/admin/teams/${b}/channels`, { token: operator, json: { id: "CSAME", name: "b-chan" } }),
      201,
    );
    await ok(api("POST", `/v1/admin/teams/${b}/channels/CSAME/share`, { token: operator, json: { team_id: c } }));
    await ok(
      api("POST", `/v1/admin/teams/${b}/channels/CSAME/members`, {
        token: operator,
        json: { user_ids: ["UB1", "UB2", "UB3"] },
      }),
    );
    const bMembers = await ok<{ items: Array<{ id: string }> }>(
      api("GET", "/v1/directory/channels/CSAME/members", { token: await token(b, "UB1") }),
    );
    expect(bMembers.items.map((m) => m.id).sort()).toEqual(["UB1", "UB2", "UB3"]);

    // Team A (its own admin) makes a channel with the same id, shares it, adds a member.
    const a = await newTeam({ role: "admin" });
    const d = await teamWith({ UD1: "member" });
    await ok(
      api("POST", `/v1/admin/teams/${a.id}/channels`, { token: a.admin, json: { id: "CSAME", name: "a-chan" } }),
      201,
    );
    await ok(api("POST", `/v1/admin/teams/${a.id}/channels/CSAME/share`, { token: operator, json: { team_id: d } }));
    await ok(
      api("POST", `/v1/admin/teams/${a.id}/channels/CSAME/members`, {
        token: a.admin,
        json: { user_ids: [a.adminId] },
      }),
    );
    const aMembers = await ok<{ items: Array<{ id: string }> }>(
      api("GET", "/v1/directory/channels/CSAME/members", { token: a.admin }),
    );
    expect(aMembers.items.map((m) => m.id)).toEqual([a.adminId]);
    const header = await ok<{ channel: { member_count: number } }>(
      api("GET", "/v1/directory/channels/CSAME", { token: a.admin }),
    );
    expect(header.channel.member_count).toBe(1);
  });
});

describe("sharing across teams", () => {
  it("is not a team admin's alone, and answers the same whether the other team exists or not", async () => {
    const a = await newTeam({ role: "owner" });
    const other = await teamWith({ UO1: "member" });
    await ok(api("POST", `/v1/admin/teams/${a.id}/channels`, { token: a.admin, json: { id: "CX", name: "cx" } }), 201);
    const share = (team: string) =>
      api<ErrorBody>("POST", `/v1/admin/teams/${a.id}/channels/CX/share`, { token: a.admin, json: { team_id: team } });
    const existing = await share(other);
    const missing = await share("TNOSUCHTEAM");
    expect(existing).toEqual(missing);
    expect(existing.status).toBe(403);
    const add = (team: string) =>
      api<ErrorBody>("POST", `/v1/admin/teams/${a.id}/channels/CX/members`, {
        token: a.admin,
        json: { user_ids: ["UO1"], team_id: team },
      });
    expect(await add(other)).toEqual(await add("TNOSUCHTEAM"));
    expect((await add(other)).status).toBe(403);
  });
});

describe("bad input is a 4xx that changes nothing", () => {
  it("a deeply nested body is 400, not a 500", async () => {
    const team = await teamWith({ UMEM: "member" });
    const deep = `{"emails":[${"[".repeat(5000)}"a@b.test"${"]".repeat(5000)}]}`;
    const res = await api<ErrorBody>("POST", "/v1/invites/classify", {
      token: await token(team, "UMEM"),
      body: deep,
      contentType: "application/json",
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/nested deeper/);
    // Elements of the wrong type are named, not echoed back.
    const typed = await api<{ error: { details: { invalid: Array<{ value: string }> } } }>(
      "POST",
      "/v1/invites/classify",
      {
        token: await token(team, "UMEM"),
        json: { emails: [{ a: [1, 2, 3] }, "x"] },
      },
    );
    expect(typed.status).toBe(400);
    expect(typed.body.error.details.invalid.map((i) => i.value)).toEqual(["(object)", "x"]);
  });

  it("a body not sent as JSON is 415 and writes nothing", async () => {
    const operator = await platformToken();
    const id = uniqueTeamId("T");
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await api<ErrorBody>("POST", "/v1/admin/teams", {
        token: operator,
        body: JSON.stringify({ id, name: "plain" }),
        contentType,
      });
      expect(res.status, contentType).toBe(415);
      expect(res.body.error.code).toBe("unsupported_media_type");
    }
    expect((await api("GET", `/v1/admin/teams/${id}`, { token: operator })).status).toBe(404);
  });

  it("tokens not yet valid, from the future, or that never expire are 401", async () => {
    const team = await teamWith({ UMEM: "member" });
    const { sign } = await import("hono/jwt");
    const now = Math.floor(Date.now() / 1000);
    const base = { team, sub: "UMEM", use: "access", iat: now, nbf: now, exp: now + 600 };
    const cases: Array<[string, Record<string, unknown>]> = [
      ["nbf", { nbf: now + 3600 }],
      ["iat", { iat: now + 3600, exp: now + 4000 }],
      ["exp forever", { exp: 1e300 }],
      ["exp too far", { exp: now + 30 * 24 * 3600 }],
      ["no exp", { exp: undefined }],
    ];
    for (const [name, claims] of cases) {
      const t = await sign({ ...base, ...claims }, SECRET, "HS256");
      const res = await api<ErrorBody>("GET", "/v1/directory/boot", { token: t });
      expect(res.status, name).toBe(401);
    }
    // 1e309 does not survive JSON.parse as a number: the same 401.
    const t = await sign(base, SECRET, "HS256");
    const [h, , s] = t.split(".");
    const payload = Buffer.from(JSON.stringify(base).replace(`"exp":${now + 600}`, '"exp":1e309')).toString(
      "base64url",
    );
    expect((await api("GET", "/v1/directory/boot", { token: `${h}.${payload}.${s}` })).status).toBe(401);
  });

  it("ids with white space or control characters name nothing, in paths and queries", async () => {
    const team = await teamWith({ UADM: "admin", U1: "member" });
    const adm = await token(team, "UADM");
    expect((await api("GET", userPath(team, "U1"), { token: adm })).status).toBe(200);
    for (const id of ["U1%20", "U1%09", "%20U1", "U1%00", "U1%E0%A4%A"]) {
      const res = await api<ErrorBody>("GET", `/v1/admin/teams/${team}/users/${id}`, { token: adm });
      expect(res.status, id).toBe(404);
    }
    const mentions = await api<ErrorBody>("GET", "/v1/directory/mentions?channel=C1%20", { token: adm });
    expect(mentions.status).toBe(400);
  });

  it("a secret shorter than 32 bytes refuses to serve", async () => {
    const app = createApp();
    const shortEnv = { ...env, JWT_SECRET: "short-secret" } as Env;
    const t = await signToken({ team: "T1", user: "U1" }, SECRET);
    const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
    const res = await app.fetch(
      new Request("https://edge.test/v1/directory/boot", { headers: { authorization: `Bearer ${t}` } }),
      shortEnv,
      ctx,
    );
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorBody).error.code).toBe("unavailable");
    // The real deployment's secret is long enough.
    expect((await SELF.fetch("https://edge.test/healthz")).status).toBe(200);
  });
});

describe("the cache's SQL visibility is the policy's", () => {
  it("agrees with maySeeChannel and maySeeUser for every viewer, channel and user of a small team", async () => {
    const roles: Record<string, Role> = {
      UOWN: "owner",
      UMEM: "member",
      UGST: "guest",
      UMEM2: "member",
      UGST2: "guest",
    };
    const team = await teamWith(roles);
    const operator = await platformToken();
    const channels: Record<string, { isPrivate: boolean; members: string[] }> = {
      CPUB: { isPrivate: false, members: ["UMEM", "UGST"] },
      CPUB2: { isPrivate: false, members: ["UMEM2"] },
      CPRIV: { isPrivate: true, members: ["UOWN", "UGST2"] },
      CPRIV2: { isPrivate: true, members: ["UMEM2"] },
    };
    for (const [id, ch] of Object.entries(channels)) {
      await ok(
        api("POST", `/v1/admin/teams/${team}/channels`, {
          token: operator,
          json: { id, name: id.toLowerCase(), private: ch.isPrivate },
        }),
        201,
      );
      await ok(
        api("POST", `/v1/admin/teams/${team}/channels/${id}/members`, {
          token: operator,
          json: { user_ids: ch.members },
        }),
      );
    }
    const cache = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(team));
    const users = Object.keys(roles);
    for (const viewer of users) {
      const v = { role: roles[viewer] as Role, active: true };
      const mine = new Set(Object.entries(channels).flatMap(([id, ch]) => (ch.members.includes(viewer) ? [id] : [])));
      const answer = await cache.visible(team, viewer, users, Object.keys(channels));
      expect(answer.ok).toBe(true);
      if (!answer.ok) continue;
      const expectedChannels = Object.entries(channels)
        .filter(([id, ch]) => maySeeChannel(v, { isPrivate: ch.isPrivate, viewerIsMember: mine.has(id) }))
        .map(([id]) => id);
      expect(answer.value.channels.ids.sort(), viewer).toEqual(expectedChannels.sort());
      const expectedUsers = users.filter((u) =>
        maySeeUser(v, {
          isSelf: u === viewer,
          sharesChannel: [...mine].some((c) => channels[c]?.members.includes(u)),
        }),
      );
      expect(answer.value.users.ids.sort(), viewer).toEqual(expectedUsers.sort());
    }
  });
});
