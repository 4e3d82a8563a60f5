import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, newTeam, ok } from "./client";

// Idempotency-Key on the Slack Connect writes, through the Worker on D1:
// creating an invitation and answering one, retried with the same key,
// answer what the first attempt did (Idempotent-Replayed: true) and write
// nothing more: the same invitation and code, the same accepted connection,
// never a second invitation or a not_found for a code the first attempt
// redeemed. Keys are the caller's team's; a key reused for another request is
// a 422 like on the admin routes.

type Answer = { status: number; body: Record<string, unknown>; replayed: string | null };

async function send(path: string, token: string, key: string | null, json: unknown): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  if (key !== null) headers["idempotency-key"] = key;
  const res = await SELF.fetch(`https://edge.test${path}`, { method: "POST", headers, body: JSON.stringify(json) });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    replayed: res.headers.get("idempotent-replayed"),
  };
}

const INVITATIONS = "/v1/connect/invitations";
const ANSWER = "/v1/connect/invitations/answer";

const invitationsOf = async (admin: string) =>
  (await ok<{ invitations: { id: string; status: string }[] }>(api("GET", INVITATIONS, { token: admin }))).invitations;

const connectionsOf = async (admin: string) =>
  (await ok<{ connections: { id: string; status: string }[] }>(api("GET", "/v1/connect/connections", { token: admin })))
    .connections;

const codeOf = (answer: Answer) => (answer.body.invitation as { code: string }).code;

describe("Idempotency-Key on Slack Connect", () => {
  it("creates an invitation once: the retry answers the same invitation and code, and adds none", async () => {
    const a = await newTeam();
    const first = await send(INVITATIONS, a.admin, "invite-1", {});
    expect(first.status).toBe(201);
    expect(first.replayed).toBeNull();
    expect(codeOf(first)).toEqual(expect.any(String));
    const again = await send(INVITATIONS, a.admin, "invite-1", {});
    expect(again).toEqual({ ...first, replayed: "true" });
    const listed = await invitationsOf(a.admin);
    expect(listed.map((i) => i.id)).toEqual([(first.body.invitation as { id: string }).id]);
    // A new key is a new request: a second invitation, with another code.
    const fresh = await send(INVITATIONS, a.admin, "invite-2", {});
    expect(fresh.status).toBe(201);
    expect(fresh.replayed).toBeNull();
    expect(codeOf(fresh)).not.toBe(codeOf(first));
    expect(await invitationsOf(a.admin)).toHaveLength(2);
  });

  it("accepts once: the retry answers the same connection instead of a not_found for the redeemed code", async () => {
    const a = await newTeam();
    const b = await newTeam();
    const code = codeOf(await send(INVITATIONS, a.admin, null, {}));
    const body = { code, decision: "accept" };
    const first = await send(ANSWER, b.admin, "accept-1", body);
    expect(first.status).toBe(201);
    expect(first.replayed).toBeNull();
    expect(first.body).toMatchObject({ decision: "accepted", connection: { partner: a.id, status: "accepted" } });
    const again = await send(ANSWER, b.admin, "accept-1", body);
    expect(again).toEqual({ ...first, replayed: "true" });
    // Nothing more was written: one connection on each side, the one answered.
    const id = (first.body.connection as { id: string }).id;
    expect((await connectionsOf(b.admin)).map((c) => c.id)).toEqual([id]);
    expect((await connectionsOf(a.admin)).map((c) => c.id)).toEqual([id]);
    // Without the key the code is spent: the same not_found as any unusable code.
    expect((await send(ANSWER, b.admin, null, body)).status).toBe(404);
    // The replay is the first answer, even after the connection ended.
    await ok(api("DELETE", `/v1/connect/connections/${id}`, { token: a.admin }));
    expect(await send(ANSWER, b.admin, "accept-1", body)).toEqual({ ...first, replayed: "true" });
  });

  it("declines once, and records nothing for an answer that failed", async () => {
    const a = await newTeam();
    const b = await newTeam();
    const code = codeOf(await send(INVITATIONS, a.admin, null, {}));
    const first = await send(ANSWER, b.admin, "decline-1", { code, decision: "decline" });
    expect(first).toEqual({ status: 200, body: { decision: "declined", connection: null }, replayed: null });
    expect(await send(ANSWER, b.admin, "decline-1", { code, decision: "decline" })).toEqual({
      ...first,
      replayed: "true",
    });
    // A failed answer keeps no record: its retry is judged again (still not_found), never replayed.
    const spent = await send(ANSWER, b.admin, "late-1", { code, decision: "accept" });
    expect(spent.status).toBe(404);
    const retried = await send(ANSWER, b.admin, "late-1", { code, decision: "accept" });
    expect(retried).toEqual(spent);
  });

  it("refuses a key reused with a different body or on the other route, with 422, and writes nothing", async () => {
    const a = await newTeam();
    const b = await newTeam();
    const code = codeOf(await send(INVITATIONS, a.admin, null, {}));
    await send(ANSWER, b.admin, "reuse-1", { code, decision: "decline" });
    const other = await send(ANSWER, b.admin, "reuse-1", { code, decision: "accept" });
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ error: { code: "idempotency_key_reused" } });
    expect(other.replayed).toBeNull();
    // The same key on the create route is another request too: no invitation is made.
    const created = await send(INVITATIONS, b.admin, "reuse-1", {});
    expect(created.status).toBe(422);
    expect(created.body).toMatchObject({ error: { code: "idempotency_key_reused" } });
    expect(await invitationsOf(b.admin)).toEqual([]);
    expect(await connectionsOf(b.admin)).toEqual([]);
  });

  it("keeps keys per team: another team's admin with the same key neither replays nor sees the code", async () => {
    const a = await newTeam();
    const b = await newTeam();
    const mine = await send(INVITATIONS, a.admin, "shared-key", {});
    const theirs = await send(INVITATIONS, b.admin, "shared-key", {});
    expect(theirs.status).toBe(201);
    expect(theirs.replayed).toBeNull();
    expect(codeOf(theirs)).not.toBe(codeOf(mine));
    expect((theirs.body.invitation as { id: string }).id).not.toBe((mine.body.invitation as { id: string }).id);
    expect(await invitationsOf(a.admin)).toHaveLength(1);
    expect(await invitationsOf(b.admin)).toHaveLength(1);
    // B answers A's code under the key B already used for its own invitation, on the answer route:
    // a different request of B's (422), whatever A did with that key value.
    const answered = await send(ANSWER, b.admin, "shared-key", { code: codeOf(mine), decision: "accept" });
    expect(answered.status).toBe(422);
    // And under a key A used but B did not: an ordinary first answer.
    const used = await send(INVITATIONS, a.admin, "a-only", {});
    expect(used.status).toBe(201);
    const fresh = await send(ANSWER, b.admin, "a-only", { code: codeOf(mine), decision: "accept" });
    expect(fresh.status).toBe(201);
    expect(fresh.replayed).toBeNull();
    expect(fresh.body).toMatchObject({ decision: "accepted", connection: { partner: a.id } });
  });

  it("refuses a malformed key with 400 before writing", async () => {
    const a = await newTeam();
    for (const key of ["has space", "x".repeat(256)]) {
      expect((await send(INVITATIONS, a.admin, key, {})).status, key).toBe(400);
    }
    expect(await invitationsOf(a.admin)).toEqual([]);
  });
});
