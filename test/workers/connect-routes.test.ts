import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  codeHashOf,
  INVITATION_TTL_MS,
  invite as invitationOf,
  newInvitationCode,
} from "../../src/connect/connections";
import { connectionsStore } from "../../storage/connections-sql";
import { d1Driver } from "../../storage/d1-driver";
import { api, newTeam, ok, platformToken, token } from "./client";

// The Slack Connect routes end to end, on D1: an admin of A invites, an admin
// of B redeems the code, both see the connection, either ends it, a new
// invitation connects them again. Members, operators and other teams get
// nothing, and every code or id that cannot be used answers as one that
// never existed.

interface InvitationJson {
  id: string;
  status: string;
  created_by: string;
  answered: { team: string; user: string; at: number } | null;
}
interface ConnectionJson {
  id: string;
  partner: string;
  status: string;
  invited_by_us: boolean;
  disconnected: { team: string; user: string; at: number } | null;
}

async function teamWithMember() {
  const team = await newTeam();
  const operator = await platformToken();
  await ok(
    api("POST", `/v1/admin/teams/${team.id}/users`, {
      token: operator,
      json: { id: "UMEMBER", email: `member@${team.id.toLowerCase()}.test`, role: "member" },
    }),
    201,
  );
  return { ...team, member: await token(team.id, "UMEMBER") };
}

const invite = (admin: string) =>
  ok<{ invitation: InvitationJson & { code: string } }>(
    api("POST", "/v1/connect/invitations", { token: admin, json: {} }),
    201,
  );

const answer = (admin: string, code: string, decision: "accept" | "decline" = "accept") =>
  api<{ decision: string; connection: ConnectionJson | null; error?: { code: string; message: string } }>(
    "POST",
    "/v1/connect/invitations/answer",
    { token: admin, json: { code, decision } },
  );

const connectionsOf = (admin: string) =>
  ok<{ connections: ConnectionJson[]; next_cursor: string | null }>(
    api("GET", "/v1/connect/connections", { token: admin }),
  );

const invitationsOf = (admin: string) =>
  ok<{ invitations: InvitationJson[]; next_cursor: string | null }>(
    api("GET", "/v1/connect/invitations", { token: admin }),
  );

/** The answer for a code that never existed: what every unusable code must get, byte for byte. */
async function noSuchCode(admin: string) {
  const res = await answer(admin, newInvitationCode());
  expect(res.status).toBe(404);
  return res.body;
}

describe("Slack Connect routes", () => {
  it("connects two teams: A's admin invites, B's admin accepts with the code, both list the connection", async () => {
    const a = await teamWithMember();
    const b = await teamWithMember();
    const { invitation } = await invite(a.admin);
    expect(invitation).toMatchObject({ status: "pending", created_by: a.adminId, answered: null });
    expect(invitation.code).toMatch(/^[0-9a-f]{40}$/);
    // The code is shown once: the listing has the invitation, never its code.
    const listed = await invitationsOf(a.admin);
    expect(listed.invitations.map((i) => i.id)).toEqual([invitation.id]);
    expect(JSON.stringify(listed)).not.toContain(invitation.code);

    const accepted = await answer(b.admin, invitation.code);
    expect(accepted.status).toBe(201);
    expect(accepted.body).toMatchObject({
      decision: "accepted",
      connection: { partner: a.id, status: "accepted", invited_by_us: false },
    });
    const id = accepted.body.connection?.id;
    const ofA = await connectionsOf(a.admin);
    expect(ofA.connections).toMatchObject([{ id, partner: b.id, invited_by_us: true, status: "accepted" }]);
    expect((await connectionsOf(b.admin)).connections).toMatchObject([{ id, partner: a.id }]);
    expect((await invitationsOf(a.admin)).invitations).toMatchObject([
      { id: invitation.id, status: "accepted", answered: { team: b.id, user: b.adminId } },
    ]);
  });

  it("lets only the team's live owners and admins act", async () => {
    const a = await teamWithMember();
    const { invitation } = await invite(a.admin);
    const operator = await platformToken();
    const calls: Array<[string, string, unknown?]> = [
      ["POST", "/v1/connect/invitations", {}],
      ["GET", "/v1/connect/invitations"],
      ["DELETE", `/v1/connect/invitations/${invitation.id}`],
      ["POST", "/v1/connect/invitations/answer", { code: invitation.code, decision: "accept" }],
      ["GET", "/v1/connect/connections"],
      ["DELETE", "/v1/connect/connections/KNOSUCHCONNECT"],
    ];
    for (const [method, path, json] of calls) {
      for (const [who, t] of [
        ["member", a.member],
        ["operator", operator],
      ] as const) {
        const res = await api<{ error: { code: string } }>(method, path, { token: t, json });
        expect(res.status, `${who} ${method} ${path}`).toBe(403);
        expect(res.body.error.code).toBe("forbidden");
      }
    }
    // Nothing changed: the invitation is still pending, and A's own admin can still cancel it.
    expect((await invitationsOf(a.admin)).invitations).toMatchObject([{ id: invitation.id, status: "pending" }]);
    // The role is read live: the member made admin may act, and not once deactivated.
    await ok(api("PATCH", `/v1/admin/teams/${a.id}/users/UMEMBER`, { token: operator, json: { role: "admin" } }));
    expect((await api("GET", "/v1/connect/invitations", { token: a.member })).status).toBe(200);
    await ok(api("DELETE", `/v1/admin/teams/${a.id}/users/UMEMBER`, { token: operator }));
    expect((await api("GET", "/v1/connect/invitations", { token: a.member })).status).toBe(403);
  });

  it("shows another team's admin nothing, and answers its ids as ones that do not exist", async () => {
    const a = await teamWithMember();
    const b = await newTeam();
    const c = await newTeam({ admin: "UCADMIN" });
    const pending = await invite(a.admin);
    const { connection } = (await answer(b.admin, (await invite(a.admin)).invitation.code)).body;
    const connectionId = connection?.id ?? "";
    expect((await connectionsOf(c.admin)).connections).toEqual([]);
    expect((await invitationsOf(c.admin)).invitations).toEqual([]);
    const cases: Array<[string, string]> = [
      [`/v1/connect/invitations/${pending.invitation.id}`, "/v1/connect/invitations/INOSUCHINVITE"],
      [`/v1/connect/connections/${connectionId}`, "/v1/connect/connections/KNOSUCHCONNECT"],
    ];
    for (const [real, ghost] of cases) {
      const got = await api("DELETE", real, { token: c.admin });
      const none = await api("DELETE", ghost, { token: c.admin });
      expect(got.status).toBe(404);
      expect(got).toEqual(none);
    }
    // B, a party to the connection, does not own A's invitations either.
    const byB = await api("DELETE", `/v1/connect/invitations/${pending.invitation.id}`, { token: b.admin });
    expect(byB).toEqual(await api("DELETE", "/v1/connect/invitations/INOSUCHINVITE", { token: b.admin }));
    // Nothing of A's changed.
    expect((await invitationsOf(a.admin)).invitations.find((i) => i.id === pending.invitation.id)?.status).toBe(
      "pending",
    );
    expect((await connectionsOf(a.admin)).connections).toMatchObject([{ id: connectionId, status: "accepted" }]);
  });

  it("answers a redeemed, declined, cancelled, expired or own code exactly as one that never existed", async () => {
    const a = await teamWithMember();
    const b = await newTeam();
    const c = await newTeam({ admin: "UCADMIN" });
    const none = await noSuchCode(b.admin);
    const expectNone = async (admin: string, code: string) => {
      const res = await answer(admin, code);
      expect(res.status).toBe(404);
      expect(res.body).toEqual(none);
    };
    // Own code.
    const own = await invite(a.admin);
    await expectNone(a.admin, own.invitation.code);
    // Redeemed.
    expect((await answer(b.admin, own.invitation.code)).status).toBe(201);
    await expectNone(c.admin, own.invitation.code);
    await expectNone(b.admin, own.invitation.code);
    // Declined.
    const declined = await invite(a.admin);
    const decline = await answer(c.admin, declined.invitation.code, "decline");
    expect(decline.status).toBe(200);
    expect(decline.body).toEqual({ decision: "declined", connection: null });
    await expectNone(c.admin, declined.invitation.code);
    // Cancelled.
    const cancelled = await invite(a.admin);
    const cancel = await ok<{ invitation: InvitationJson }>(
      api("DELETE", `/v1/connect/invitations/${cancelled.invitation.id}`, { token: a.admin }),
    );
    expect(cancel.invitation.status).toBe("cancelled");
    expect((await api("DELETE", `/v1/connect/invitations/${cancelled.invitation.id}`, { token: a.admin })).status).toBe(
      409,
    );
    await expectNone(c.admin, cancelled.invitation.code);
    // Expired: written as the store would have 14 days ago.
    const code = newInvitationCode();
    const longAgo = Date.now() - INVITATION_TTL_MS - 1000;
    await connectionsStore(d1Driver(env.DB)).insertInvitation(
      invitationOf("IEXPIRED1", { team: a.id, user: a.adminId }, await codeHashOf(code), longAgo),
    );
    await expectNone(c.admin, code);
    expect((await invitationsOf(a.admin)).invitations.find((i) => i.id === "IEXPIRED1")?.status).toBe("expired");
    // None of it connected C.
    expect((await connectionsOf(c.admin)).connections).toEqual([]);
  });

  it("disconnects from either side once, and a new invitation connects the pair again", async () => {
    const a = await teamWithMember();
    const b = await newTeam();
    const first = (await answer(b.admin, (await invite(a.admin)).invitation.code)).body.connection;
    // Connected already: another code between them is refused while the connection stands.
    const early = await invite(b.admin);
    const refused = await answer(a.admin, early.invitation.code);
    expect(refused.status).toBe(409);
    const ended = await ok<{ connection: ConnectionJson }>(
      api("DELETE", `/v1/connect/connections/${first?.id}`, { token: b.admin }),
    );
    expect(ended.connection).toMatchObject({
      status: "disconnected",
      partner: a.id,
      disconnected: { team: b.id, user: b.adminId },
    });
    expect((await api("DELETE", `/v1/connect/connections/${first?.id}`, { token: a.admin })).status).toBe(409);
    // The refused code is still good, and connects them again.
    const again = await answer(a.admin, early.invitation.code);
    expect(again.status).toBe(201);
    expect((await connectionsOf(a.admin)).connections.map((c) => [c.id, c.status])).toEqual([
      [again.body.connection?.id, "accepted"],
      [first?.id, "disconnected"],
    ]);
  });

  it("refuses malformed input with the error shape", async () => {
    const a = await newTeam();
    const bad = await api<{ error: { code: string } }>("POST", "/v1/connect/invitations/answer", {
      token: a.admin,
      json: { code: "x", decision: "maybe" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_body");
    const noBody = await api("POST", "/v1/connect/invitations", { token: a.admin });
    expect(noBody.status).toBe(415);
    const cursor = await api<{ error: { code: string } }>("GET", "/v1/connect/connections?cursor=nope", {
      token: a.admin,
    });
    expect(cursor.status).toBe(400);
    expect((await api("GET", "/v1/connect/connections?limit=1000", { token: a.admin })).status).toBe(400);
  });
});
