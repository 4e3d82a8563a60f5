import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { d1Driver } from "../../storage/d1-driver";
import { directoryStore } from "../../storage/directory-store";
import { uniqueTeamId } from "../contract/fixtures";
import { api, newTeam as createTeam, ok, platformToken, token } from "./client";

// The directory admin routes end to end on D1: auth, validation, 404 / 409,
// idempotent membership calls, all-or-nothing imports, and the change log
// every committed write leaves behind.

type ErrorBody = { error: { code: string; message: string; details?: unknown } };
type ChannelBody = {
  channel: { id: string; name: string; team_id: string; shared_with: string[]; is_archived: boolean };
};

const dir = () => directoryStore(d1Driver(env.DB));

/**
 * A team with `users` users. Its `admin` token is the operator's (which
 * administers any team and adds no user, so change-log versions start at 0),
 * or with `realAdmin` a team admin's (one more user, one more version).
 */
async function newTeam(users = 0, realAdmin = false): Promise<{ id: string; admin: string; users: string[] }> {
  let id: string;
  let admin: string;
  if (realAdmin) ({ id, admin } = await createTeam());
  else {
    id = uniqueTeamId("T");
    admin = await platformToken();
    await ok(api("POST", "/v1/admin/teams", { token: admin, json: { id, name: id } }), 201);
  }
  const ids = Array.from({ length: users }, (_, i) => `U${String(i + 1).padStart(4, "0")}`);
  if (users > 0) {
    const imported = await api("POST", `/v1/admin/teams/${id}/users/import`, {
      token: admin,
      json: { users: ids.map((uid) => ({ id: uid, email: `${uid.toLowerCase()}@${id.toLowerCase()}.test` })) },
    });
    expect(imported.status).toBe(201);
  }
  return { id, admin, users: ids };
}

async function newChannel(teamId: string, admin: string, json: Record<string, unknown>): Promise<string> {
  const res = await api<ChannelBody>("POST", `/v1/admin/teams/${teamId}/channels`, { token: admin, json });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.channel.id;
}

const version = (teamId: string) => dir().version(teamId);

describe("directory admin auth", () => {
  it("needs a token, a live admin role in the same team (or an operator)", async () => {
    const a = await newTeam(0, true);
    const b = await newTeam(0, true);
    const path = `/v1/admin/teams/${a.id}/channels`;
    const json = { name: "general" };
    expect((await api<ErrorBody>("POST", path, { json })).status).toBe(401);
    expect((await api("POST", path, { token: await token(a.id, "U1"), json })).status).toBe(403);
    // Another team's admin: answered as if the team did not exist.
    expect((await api("POST", path, { token: b.admin, json })).status).toBe(404);
    expect(
      (await api("PATCH", `/v1/admin/teams/${a.id}/users/U1/profile`, { token: b.admin, json: { title: "x" } })).status,
    ).toBe(404);
    expect((await api("POST", path, { token: await platformToken(), json })).status).toBe(201);
    expect((await api("POST", path, { token: a.admin, json: { name: "random" } })).status).toBe(201);
    expect(await version(a.id)).toBe(3); // the admin user, then two channels
  });
});

describe("channels", () => {
  it("creates with a normalized name and generated id; 409 for a taken name bumps nothing", async () => {
    const a = await newTeam();
    const res = await api<ChannelBody>("POST", `/v1/admin/teams/${a.id}/channels`, {
      token: a.admin,
      json: { name: "  General ", topic: "all hands", private: true },
    });
    expect(res.status).toBe(201);
    expect(res.body.channel).toMatchObject({ name: "general", team_id: a.id, is_private: true, shared_with: [] });
    expect(res.body.channel.id).toMatch(/^C[0-9A-Z]{10}$/);
    const dup = await api<ErrorBody>("POST", `/v1/admin/teams/${a.id}/channels`, {
      token: a.admin,
      json: { name: "GENERAL" },
    });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe("conflict");
    expect(await version(a.id)).toBe(1);
  });

  it("rejects invalid bodies with 400 and writes nothing", async () => {
    const a = await newTeam();
    const path = `/v1/admin/teams/${a.id}/channels`;
    for (const json of [
      { name: "has space" },
      { name: "" },
      { name: "x".repeat(81) },
      { name: "ok", topic: "t".repeat(251) },
      { name: "ok", extra: 1 },
      { name: "ok", id: "lower" },
      { name: "ok", private: "yes" },
    ]) {
      const res = await api<ErrorBody>("POST", path, { token: a.admin, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.body.error.code).toBe("invalid_body");
    }
    expect((await api("POST", path, { token: a.admin, body: "{nope", contentType: "application/json" })).status).toBe(
      400,
    );
    expect((await api("PATCH", `${path}/C1`, { token: a.admin, json: {} })).status).toBe(400);
    expect(await version(a.id)).toBe(0);
  });

  it("renames, archives and unarchives; 404 for an unknown channel or team, 409 for a taken name", async () => {
    const a = await newTeam();
    const general = await newChannel(a.id, a.admin, { id: "CGENERAL", name: "general" });
    await newChannel(a.id, a.admin, { name: "random" });
    const path = `/v1/admin/teams/${a.id}/channels/${general}`;
    const renamed = await api<ChannelBody>("PATCH", path, { token: a.admin, json: { name: "lobby", archived: true } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.channel).toMatchObject({ id: "CGENERAL", name: "lobby", is_archived: true });
    const back = await api<ChannelBody>("PATCH", path, { token: a.admin, json: { archived: false } });
    expect(back.body.channel.is_archived).toBe(false);
    expect((await api("PATCH", path, { token: a.admin, json: { name: "random" } })).status).toBe(409);
    expect((await api("PATCH", `${path}X`, { token: a.admin, json: { topic: "x" } })).status).toBe(404);
    const platform = await platformToken();
    expect(
      (await api("POST", `/v1/admin/teams/${a.id}Z/channels`, { token: platform, json: { name: "x" } })).status,
    ).toBe(404);
    // Same values again: no change, no version.
    expect((await api("PATCH", path, { token: a.admin, json: { name: "lobby" } })).status).toBe(200);
    expect(await version(a.id)).toBe(4);
  });
});

describe("members", () => {
  it("adds and removes idempotently; unknown users and channels are 404", async () => {
    const a = await newTeam(3);
    const ch = await newChannel(a.id, a.admin, { name: "general" });
    const members = `/v1/admin/teams/${a.id}/channels/${ch}/members`;
    const start = await version(a.id);

    const added = await api("POST", members, { token: a.admin, json: { user_ids: ["U0001", "U0002"] } });
    expect(added.status).toBe(200);
    expect(added.body).toEqual({ added: ["U0001", "U0002"], unchanged: 0 });
    const again = await api("POST", members, { token: a.admin, json: { user_ids: ["U0002", "U0003"] } });
    expect(again.body).toEqual({ added: ["U0003"], unchanged: 1 });
    const noop = await api("POST", members, { token: a.admin, json: { user_ids: ["U0001"] } });
    expect(noop.body).toEqual({ added: [], unchanged: 1 });
    expect(await version(a.id)).toBe(start + 3);

    const removed = await api("DELETE", `${members}/U0001`, { token: a.admin });
    expect(removed).toEqual({ status: 200, body: { removed: true } });
    const twice = await api("DELETE", `${members}/U0001`, { token: a.admin });
    expect(twice).toEqual({ status: 200, body: { removed: false } });
    expect(await version(a.id)).toBe(start + 4);

    expect((await api("POST", members, { token: a.admin, json: { user_ids: ["U0001", "UNOBODY"] } })).status).toBe(404);
    expect((await api("DELETE", `${members}/UNOBODY`, { token: a.admin })).status).toBe(404);
    const nowhere = `/v1/admin/teams/${a.id}/channels/CNOPE/members`;
    expect((await api("POST", nowhere, { token: a.admin, json: { user_ids: ["U0001"] } })).status).toBe(404);
    expect((await api("DELETE", `${nowhere}/U0001`, { token: a.admin })).status).toBe(404);
    for (const json of [{ user_ids: [] }, { user_ids: ["u-lower"] }, { user_ids: Array(1001).fill("U0001") }, {}]) {
      expect((await api("POST", members, { token: a.admin, json })).status).toBe(400);
    }
    expect(await version(a.id)).toBe(start + 4);
    expect(await dir().pageMemberships(a.id, null, 10)).toEqual([
      { channelId: ch, userId: "U0002", userTeamId: a.id },
      { channelId: ch, userId: "U0003", userTeamId: a.id },
    ]);
  });
});

describe("sharing", () => {
  it("shares a channel into another team, whose users can then be members", async () => {
    const host = await newTeam(1);
    const other = await newTeam(2, true);
    const ch = await newChannel(host.id, host.admin, { name: "partners" });
    const otherVersion = await version(other.id);
    const share = `/v1/admin/teams/${host.id}/channels/${ch}/share`;
    const shared = await api<ChannelBody>("POST", share, { token: host.admin, json: { team_id: other.id } });
    expect(shared.status).toBe(200);
    expect(shared.body.channel.shared_with).toEqual([other.id]);
    expect((await api("POST", share, { token: host.admin, json: { team_id: other.id } })).status).toBe(200);
    expect((await api("POST", share, { token: host.admin, json: { team_id: host.id } })).status).toBe(400);
    expect((await api("POST", share, { token: host.admin, json: { team_id: `${other.id}Z` } })).status).toBe(404);
    expect((await api("POST", share, { token: host.admin, json: {} })).status).toBe(400);
    expect(await version(other.id)).toBe(otherVersion + 1);

    const members = `/v1/admin/teams/${host.id}/channels/${ch}/members`;
    const cross = await api("POST", members, { token: host.admin, json: { user_ids: ["U0002"], team_id: other.id } });
    expect(cross.body).toEqual({ added: ["U0002"], unchanged: 0 });
    expect((await dir().pageChannels(other.id, null, 10)).map((c) => [c.id, c.teamId])).toEqual([[ch, host.id]]);
    // The other team's admin cannot change the host's channel (nor learn the host team exists).
    expect((await api("POST", members, { token: other.admin, json: { user_ids: ["U0001"] } })).status).toBe(404);
  });
});

describe("profiles and user events", () => {
  it("updates a profile and logs user events for the user routes of admin.ts", async () => {
    const a = await newTeam();
    expect(await version(a.id)).toBe(0);
    const created = await api<{ user: { id: string } }>("POST", `/v1/admin/teams/${a.id}/users`, {
      token: a.admin,
      json: { id: "UADA", email: "ada@acme.test", role: "admin" },
    });
    expect(created.status).toBe(201);
    const profile = await api("PATCH", `/v1/admin/teams/${a.id}/users/UADA/profile`, {
      token: a.admin,
      json: { name: "Ada", real_name: "Ada Lovelace", tz: "Europe/London", is_bot: false, avatar_hash: "abc123" },
    });
    expect(profile.status).toBe(200);
    expect(profile.body.user).toMatchObject({
      id: "UADA",
      name: "ada",
      real_name: "Ada Lovelace",
      tz: "Europe/London",
      role: "admin",
    });
    for (const json of [{}, { tz: "Mars/Olympus" }, { name: "two words" }, { title: "t".repeat(201) }, { is_bot: 1 }]) {
      expect((await api("PATCH", `/v1/admin/teams/${a.id}/users/UADA/profile`, { token: a.admin, json })).status).toBe(
        400,
      );
    }
    expect(
      (await api("PATCH", `/v1/admin/teams/${a.id}/users/UNOPE/profile`, { token: a.admin, json: { title: "x" } }))
        .status,
    ).toBe(404);
    await api("PATCH", `/v1/admin/teams/${a.id}/users/UADA`, { token: a.admin, json: { role: "member" } });
    await api("DELETE", `/v1/admin/teams/${a.id}/users/UADA`, { token: a.admin });
    const changes = await dir().changesSince(a.id, 0, 10);
    expect(changes.map((e) => [e.version, e.change.kind])).toEqual([
      [1, "user"],
      [2, "user"],
      [3, "user"],
      [4, "user"],
    ]);
    expect(changes[0]?.change).toMatchObject({ user: { name: "ada", role: "member", deleted: true } });
    const imported = await api("POST", `/v1/admin/teams/${a.id}/users/import`, {
      token: a.admin,
      json: { users: [{ email: "b@acme.test" }, { email: "c@acme.test" }] },
    });
    expect(imported.status).toBe(201);
    expect((await dir().changesSince(a.id, 4, 10)).map((e) => e.change.kind)).toEqual(["user", "user"]);
  });
});

describe("bulk imports", () => {
  it("imports thousands of channels from NDJSON as one reload change, or nothing", async () => {
    const a = await newTeam();
    await newChannel(a.id, a.admin, { name: "general" });
    const path = `/v1/admin/teams/${a.id}/channels/import`;
    const lines = Array.from({ length: 3_000 }, (_, i) =>
      JSON.stringify({ id: `C${String(i).padStart(6, "0")}`, name: `c-${i}` }),
    );
    const bad = await api<ErrorBody>("POST", path, {
      token: a.admin,
      body: [
        ...lines.slice(0, 10),
        "{nope",
        JSON.stringify({ name: "Bad Name" }),
        JSON.stringify({ name: "ok", x: 1 }),
      ].join("\n"),
      contentType: "application/x-ndjson",
    });
    expect(bad.status).toBe(400);
    expect((bad.body.error.details as { errors: Array<{ line: number }> }).errors.map((e) => e.line)).toEqual([
      11, 12, 13,
    ]);
    const taken = await api("POST", path, {
      token: a.admin,
      json: { channels: [{ name: "fresh" }, { name: "general" }] },
    });
    expect(taken.status).toBe(409);
    expect(await version(a.id)).toBe(1);
    expect(await dir().pageChannels(a.id, null, 10)).toHaveLength(1);

    const res = await api("POST", path, {
      token: a.admin,
      body: lines.join("\n"),
      contentType: "application/x-ndjson",
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toEqual({ imported: 3_000 });
    expect((await dir().changesSince(a.id, 1, 10)).map((e) => [e.version, e.change.kind])).toEqual([[2, "reload"]]);
    expect(await dir().pageChannels(a.id, null, 5_000)).toHaveLength(3_001);
  });

  it("imports memberships all or nothing: unknown channels or users are a 404", async () => {
    const a = await newTeam(50);
    const ch1 = await newChannel(a.id, a.admin, { name: "one" });
    const ch2 = await newChannel(a.id, a.admin, { name: "two" });
    const path = `/v1/admin/teams/${a.id}/memberships/import`;
    const rows = a.users.flatMap((u) => [ch1, ch2].map((c) => ({ channel_id: c, user_id: u })));
    const unknown = await api<ErrorBody>("POST", path, {
      token: a.admin,
      json: {
        memberships: [...rows, { channel_id: "CNOPE", user_id: "U0001" }, { channel_id: ch1, user_id: "UNOPE" }],
      },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details).toEqual({ channels: ["CNOPE"], users: ["UNOPE"] });
    expect((await api("POST", path, { token: a.admin, json: { memberships: [{ channel_id: ch1 }] } })).status).toBe(
      400,
    );
    expect((await api("POST", path, { token: a.admin, json: { memberships: [] } })).status).toBe(400);
    expect(await dir().pageMemberships(a.id, null, 10)).toEqual([]);
    const v = await version(a.id);

    const ok = await api("POST", path, { token: a.admin, json: { memberships: rows } });
    expect(ok).toEqual({ status: 201, body: { imported: 100 } });
    expect(await version(a.id)).toBe(v + 1);
    expect(await dir().pageMemberships(a.id, null, 500)).toHaveLength(100);
  });
});
