import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { api, newTeam } from "./client";

// Idempotency-Key on the admin user and directory import routes, through the Worker on D1: a
// retried write answers what the first one did (with Idempotent-Replayed),
// writes nothing more, and a key reused for another request is a 422. The
// storage contract (both databases) checks that the key's record commits in
// the same unit as the write.

type Answer = { status: number; body: Record<string, unknown>; replayed: string | null };

describe("Idempotency-Key", () => {
  let team: { id: string; admin: string };
  const send = async (method: string, path: string, key: string | null, json?: unknown, as = team.admin) => {
    const headers: Record<string, string> = { authorization: `Bearer ${as}` };
    if (key !== null) headers["idempotency-key"] = key;
    if (json !== undefined) headers["content-type"] = "application/json";
    const res = await SELF.fetch(`https://edge.test${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown>,
      replayed: res.headers.get("idempotent-replayed"),
    } as Answer;
  };
  const users = () => `/v1/admin/teams/${team.id}/users`;
  beforeAll(async () => {
    team = await newTeam();
  });

  it("creates a user once: the retry answers the first 201, and a plain retry without the key is a 409", async () => {
    const body = { id: "UIDEM1", email: "idem1@idem.test", role: "member" };
    const first = await send("POST", users(), "create-1", body);
    expect(first.status).toBe(201);
    expect(first.replayed).toBeNull();
    const again = await send("POST", users(), "create-1", body);
    expect(again).toEqual({ ...first, replayed: "true" });
    expect((await send("POST", users(), null, body)).status).toBe(409);
    const fresh = await send("POST", users(), "create-2", body);
    expect(fresh.status).toBe(409); // a new key is a new request: the user exists
  });

  it("answers 422 to a key reused for a different request, and writes nothing", async () => {
    await send("POST", users(), "reuse-1", { id: "UIDEM2", email: "idem2@idem.test", role: "member" });
    const other = await send("POST", users(), "reuse-1", { id: "UIDEM3", email: "idem3@idem.test", role: "member" });
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ error: { code: "idempotency_key_reused" } });
    expect((await api("GET", `${users()}/UIDEM3`, { token: team.admin })).status).toBe(404);
    // The same key on another route is another request too.
    expect((await send("DELETE", `${users()}/UIDEM2`, "reuse-1")).status).toBe(422);
  });

  it("changes and deactivates once: the retry replays the first answer even after later changes", async () => {
    await send("POST", users(), null, { id: "UIDEM4", email: "idem4@idem.test", role: "member" });
    const promote = await send("PATCH", `${users()}/UIDEM4`, "promote-4", { role: "admin" });
    expect(promote.status).toBe(200);
    expect(promote.body).toMatchObject({ user: { id: "UIDEM4", role: "admin" } });
    await send("PATCH", `${users()}/UIDEM4`, null, { role: "guest" });
    const retried = await send("PATCH", `${users()}/UIDEM4`, "promote-4", { role: "admin" });
    expect(retried).toEqual({ ...promote, replayed: "true" });
    // The retry changed nothing: the user is still a guest.
    expect((await api("GET", `${users()}/UIDEM4`, { token: team.admin })).body).toMatchObject({
      user: { role: "guest" },
    });
    const off = await send("DELETE", `${users()}/UIDEM4`, "off-4");
    await send("PATCH", `${users()}/UIDEM4`, null, { deactivated: false });
    expect(await send("DELETE", `${users()}/UIDEM4`, "off-4")).toEqual({ ...off, replayed: "true" });
    expect((await api("GET", `${users()}/UIDEM4`, { token: team.admin })).body).toMatchObject({
      user: { deactivated: false },
    });
  });

  it("keeps keys per team: another team's admin with the same key neither replays nor learns anything", async () => {
    const body = { id: "UIDEM5", email: "idem5@idem.test", role: "member" };
    const mine = await send("POST", users(), "shared-key", body);
    expect(mine.status).toBe(201);
    const other = await newTeam();
    // Its own team: a new write under its own key space.
    const theirs = await send("POST", `/v1/admin/teams/${other.id}/users`, "shared-key", body, other.admin);
    expect(theirs.status).toBe(201);
    expect(theirs.replayed).toBeNull();
    // Our team's route with their token: refused before any key is looked at.
    const probe = await send("POST", users(), "shared-key", body, other.admin);
    expect(probe.status).toBe(404);
    expect(probe.replayed).toBeNull();
    expect(JSON.stringify(probe.body)).not.toContain("UIDEM5");
  });

  it("imports once: the retried import answers its summary and adds nobody", async () => {
    const body = { users: [0, 1, 2].map((i) => ({ id: `UIMP${i}`, email: `imp${i}@idem.test`, role: "member" })) };
    const first = await send("POST", `${users()}/import`, "import-1", body);
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ imported: 3, pages: 1 });
    expect(await send("POST", `${users()}/import`, "import-1", body)).toEqual({ ...first, replayed: "true" });
    expect((await send("POST", `${users()}/import`, null, body)).status).toBe(409);
  });

  it("imports channels and memberships once: the retry answers the first 201 instead of a 409, and writes nothing", async () => {
    const base = `/v1/admin/teams/${team.id}`;
    const channels = { channels: [1, 2].map((i) => ({ id: `CIDEM${i}`, name: `idem-${i}` })) };
    const first = await send("POST", `${base}/channels/import`, "chan-import-1", channels);
    expect(first).toEqual({ status: 201, body: { imported: 2 }, replayed: null });
    expect(await send("POST", `${base}/channels/import`, "chan-import-1", channels)).toEqual({
      ...first,
      replayed: "true",
    });
    // Without the key the same import is a new request: the channels exist.
    expect((await send("POST", `${base}/channels/import`, null, channels)).status).toBe(409);
    const reused = await send("POST", `${base}/channels/import`, "chan-import-1", {
      channels: [{ id: "CIDEM3", name: "idem-3" }],
    });
    expect(reused.status).toBe(422);

    const memberships = { memberships: [{ channel_id: "CIDEM1", user_id: "UIMP0" }] };
    await send("POST", users(), null, { id: "UIMP0", email: "imp0-member@idem.test", role: "member" });
    const added = await send("POST", `${base}/memberships/import`, "members-import-1", memberships);
    expect(added.status).toBe(201);
    expect(await send("POST", `${base}/memberships/import`, "members-import-1", memberships)).toEqual({
      ...added,
      replayed: "true",
    });
    // Another team's admin with the same key: refused before the key is looked at, learns nothing.
    const other = await newTeam();
    const probe = await send("POST", `${base}/channels/import`, "chan-import-1", channels, other.admin);
    expect(probe.status).toBe(404);
    expect(probe.replayed).toBeNull();
    expect(JSON.stringify(probe.body)).not.toContain("imported");
  });

  it("refuses a malformed key with 400 before writing", async () => {
    for (const key of ["has space", "x".repeat(256), "tab\tkey"]) {
      const res = await send("POST", users(), key, { id: "UIDEM6", email: "idem6@idem.test", role: "member" });
      expect(res.status, key).toBe(400);
    }
    expect((await api("GET", `${users()}/UIDEM6`, { token: team.admin })).status).toBe(404);
  });
});
