import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { depsFor, sharedChannelPortsOf } from "../../platform/deps";
import { finishPending, SWEEP_GRACE_MS } from "../../src/connect/shared-channels-service";
import { d1Driver } from "../../storage/d1-driver";
import { sharedChannelsStore } from "../../storage/shared-channels-sql";
import { addUsers, api, connectTeams, eventually, newTeam, ok, platformToken, token } from "./client";

// Shared channels over Slack Connect connections, end to end on D1: a member
// of host A invites its connected partner B to a channel; B's admin accepts
// (or B's auto-approval pref does) and B's people see the channel; either
// side ends it, or a disconnect ends them all, and B's people no longer see
// it. Prefs decide who of A may share; other teams get nothing and learn
// nothing; a crash between an accept and its share is finished by the sweep.

interface SharedJson {
  id: string;
  connection: string;
  partner: string;
  hosted_by_us: boolean;
  channel: { id: string; name: string };
  status: string;
  answered: { team: string; user: string | null; at: number; auto: boolean } | null;
  ended: { team: string; user: string | null; at: number } | null;
  in_effect: boolean;
}
interface ErrorJson {
  error: { code: string; message: string };
}

async function teamWithMember() {
  const team = await newTeam();
  await addUsers(team.id, [
    ["UMEMBER", "member"],
    ["UOTHER", "member"],
  ]);
  return { ...team, member: await token(team.id, "UMEMBER"), other: await token(team.id, "UOTHER") };
}
type TestTeam = Awaited<ReturnType<typeof teamWithMember>>;

const connect = (a: TestTeam, b: TestTeam) => connectTeams(a.admin, b.admin);

async function channel(team: TestTeam, name: string, isPrivate = false, members: string[] = []): Promise<string> {
  const { channel } = await ok<{ channel: { id: string } }>(
    api("POST", `/v1/admin/teams/${team.id}/channels`, { token: team.admin, json: { name, private: isPrivate } }),
    201,
  );
  if (members.length > 0) {
    await ok(
      api("POST", `/v1/admin/teams/${team.id}/channels/${channel.id}/members`, {
        token: team.admin,
        json: { user_ids: members },
      }),
    );
  }
  return channel.id;
}

/** Two connected teams, and a public channel of A. */
async function world() {
  const a = await teamWithMember();
  const b = await teamWithMember();
  const connection = await connect(a, b);
  const general = await channel(a, `partners-${a.id.slice(-6).toLowerCase()}`);
  return { a, b, connection, general };
}

const share = (as: string, connection: string, channelId: string) =>
  api<{ shared_channel: SharedJson } & Partial<ErrorJson> & { error?: { details?: { invitation?: string } } }>(
    "POST",
    "/v1/connect/shared-channels",
    { token: as, json: { connection, channel: channelId } },
  );
const answer = (as: string, id: string, decision: "accept" | "decline") =>
  api<{ shared_channel: SharedJson } & Partial<ErrorJson>>("POST", `/v1/connect/shared-channels/${id}/answer`, {
    token: as,
    json: { decision },
  });
const withdraw = (as: string, id: string) =>
  api<{ shared_channel: SharedJson } & Partial<ErrorJson>>("DELETE", `/v1/connect/shared-channels/${id}`, {
    token: as,
  });
const listOf = (as: string) =>
  ok<{ shared_channels: SharedJson[]; next_cursor: string | null }>(
    api("GET", "/v1/connect/shared-channels", { token: as }),
  );
/** What a user of `as`'s team sees of the channel (its header in the team's edge cache). */
const header = (as: string, channelId: string) => api("GET", `/v1/directory/channels/${channelId}`, { token: as });
const seesChannel = async (as: string, channelId: string) => (await header(as, channelId)).status === 200;

describe("shared channels over a connection", () => {
  it("takes effect only when the partner's admin accepts; either side ends it", async () => {
    const { a, b, connection, general } = await world();
    const invited = await share(a.admin, connection, general);
    expect(invited.status, JSON.stringify(invited.body)).toBe(201);
    const id = invited.body.shared_channel.id;
    expect(invited.body.shared_channel).toMatchObject({
      connection,
      partner: b.id,
      hosted_by_us: true,
      status: "pending",
      answered: null,
      in_effect: true,
    });
    // Pending: B's people do not see the channel, and A learns nothing of B's members.
    expect(await seesChannel(b.member, general)).toBe(false);
    expect(JSON.stringify(invited.body)).not.toContain("UMEMBER");
    // B's admin sees the invitation with the channel's name.
    expect((await listOf(b.admin)).shared_channels).toMatchObject([
      { id, partner: a.id, hosted_by_us: false, status: "pending", channel: { id: general } },
    ]);
    // A's own admin cannot answer for B.
    expect((await answer(a.admin, id, "accept")).status).toBe(404);

    const accepted = await answer(b.admin, id, "accept");
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    expect(accepted.body.shared_channel).toMatchObject({
      status: "accepted",
      answered: { team: b.id, user: b.adminId, auto: false },
      in_effect: true,
    });
    expect(await seesChannel(b.member, general)).toBe(true);
    expect((await header(b.member, general)).body).toMatchObject({ channel: { id: general, is_shared: true } });
    // Answered once.
    expect((await answer(b.admin, id, "decline")).status).toBe(409);

    // B's admin ends it: the channel leaves B, and stays A's.
    const ended = await withdraw(b.admin, id);
    expect(ended.status, JSON.stringify(ended.body)).toBe(200);
    expect(ended.body.shared_channel).toMatchObject({ status: "ended", ended: { team: b.id, user: b.adminId } });
    await eventually(
      () => seesChannel(b.member, general),
      (sees) => !sees,
    );
    expect(await seesChannel(a.member, general)).toBe(true);
    // And may be invited again.
    expect((await share(a.admin, connection, general)).status).toBe(201);
  });

  it("the partner puts its own people in once accepted; they leave, and an end takes them all out", async () => {
    const { a, b, connection, general } = await world();
    const invite = (await share(a.admin, connection, general)).body.shared_channel;
    const members = (id: string) => `/v1/connect/shared-channels/${id}/members`;
    const join = (as: string, ids: string[]) =>
      api<{ added: string[]; unchanged: number } & Partial<ErrorJson>>("POST", members(invite.id), {
        token: as,
        json: { user_ids: ids },
      });
    // Not accepted yet: nothing to join.
    expect((await join(b.admin, ["UMEMBER"])).status).toBe(409);
    await ok(answer(b.admin, invite.id, "accept"));
    expect((await join(b.admin, ["UMEMBER"])).body).toEqual({ added: ["UMEMBER"], unchanged: 0 });
    // A member adds itself to a public shared channel, never someone else.
    expect((await join(b.other, ["UOTHER"])).body).toEqual({ added: ["UOTHER"], unchanged: 0 });
    expect((await join(b.other, ["UADMIN"])).status).toBe(403);
    // The host cannot put the partner's people in through this route (nor learn of them).
    const byHost = await join(a.admin, ["UMEMBER"]);
    expect(byHost.status).toBe(404);
    // An id the partner team does not have.
    expect((await join(b.admin, ["UNOBODY"])).status).toBe(404);
    const roster = async () =>
      (
        await ok<{ items: Array<{ id: string }> }>(
          api("GET", `/v1/directory/channels/${general}/members?limit=100`, { token: a.admin }),
        )
      ).items
        .map((m) => m.id)
        .sort();
    expect(await roster()).toEqual(["UMEMBER", "UOTHER"]);

    const leave = await api("DELETE", `${members(invite.id)}/UOTHER`, { token: b.other });
    expect(leave.body).toEqual({ removed: true });
    expect((await api("DELETE", `${members(invite.id)}/UMEMBER`, { token: b.other })).status).toBe(403);
    expect(await roster()).toEqual(["UMEMBER"]);

    // Ending the share takes the partner's remaining people out with it.
    await ok(withdraw(a.admin, invite.id));
    expect(await roster()).toEqual([]);
    expect((await join(b.admin, ["UMEMBER"])).status).toBe(409);
  });

  it("the partner's users see the host's people with the fields the host's profile_fields pref shows them", async () => {
    const { a, b, connection, general } = await world();
    const invite = (await share(a.admin, connection, general)).body.shared_channel;
    await ok(answer(b.admin, invite.id, "accept"));
    await ok(
      api("PATCH", `/v1/admin/teams/${a.id}/users/UMEMBER/profile`, {
        token: a.admin,
        json: { real_name: "Ada Lovelace", title: "Analyst", tz: "Europe/London" },
      }),
    );
    await ok(
      api("POST", `/v1/admin/teams/${a.id}/channels/${general}/members`, {
        token: a.admin,
        json: { user_ids: ["UMEMBER"] },
      }),
    );
    type Card = { id: string; real_name: string; title: string; tz: string; name: string };
    const membersSeenBy = async (as: string) =>
      (await ok<{ items: Card[] }>(api("GET", `/v1/directory/channels/${general}/members?limit=50`, { token: as })))
        .items;
    const mentionsSeenBy = async (as: string) =>
      (await ok<{ items: Card[] }>(api("GET", `/v1/directory/mentions?channel=${general}&q=ada`, { token: as }))).items;
    // The default shows the real name and title, not the time zone.
    expect((await membersSeenBy(b.member)).find((m) => m.id === "UMEMBER")).toMatchObject({
      real_name: "Ada Lovelace",
      title: "Analyst",
      tz: "",
    });
    // A shows B nothing but the name: at once, in the member list and in mentions.
    await ok(
      api("PATCH", `/v1/connect/prefs/partners/${b.id}`, { token: a.admin, json: { profile_fields: { visible: [] } } }),
    );
    const hidden = (await membersSeenBy(b.member)).find((m) => m.id === "UMEMBER");
    expect(hidden).toMatchObject({ real_name: "", title: "", tz: "", name: expect.any(String) });
    expect((await mentionsSeenBy(b.member)).find((m) => m.id === "UMEMBER")).toMatchObject({
      real_name: "",
      title: "",
    });
    // A's own people still see everything.
    expect((await membersSeenBy(a.other)).find((m) => m.id === "UMEMBER")).toMatchObject({
      real_name: "Ada Lovelace",
      tz: "Europe/London",
    });
  });

  it("a decline shares nothing; the host cancels a pending one; one open invitation per channel", async () => {
    const { a, b, connection, general } = await world();
    const first = (await share(a.admin, connection, general)).body.shared_channel;
    const again = await share(a.admin, connection, general);
    expect(again.status).toBe(409);
    expect(again.body.error?.details?.invitation).toBe(first.id);
    const declined = await answer(b.admin, first.id, "decline");
    expect(declined.body.shared_channel).toMatchObject({ status: "declined" });
    expect(await seesChannel(b.member, general)).toBe(false);

    const second = (await share(a.admin, connection, general)).body.shared_channel;
    // B cannot withdraw a pending one (it declines); B's member cannot answer.
    expect((await withdraw(b.admin, second.id)).status).toBe(403);
    expect((await answer(b.member, second.id, "accept")).status).toBe(403);
    const cancelled = await withdraw(a.admin, second.id);
    expect(cancelled.body.shared_channel).toMatchObject({ status: "cancelled" });
    expect((await answer(b.admin, second.id, "accept")).status).toBe(409);
    expect(await seesChannel(b.member, general)).toBe(false);
  });

  it("the partner's auto-approval pref accepts at once: all, or only invitations from listed users", async () => {
    const { a, b, connection, general } = await world();
    const partnerPrefs = `/v1/connect/prefs/partners/${a.id}`;
    await ok(
      api("PATCH", partnerPrefs, { token: b.admin, json: { auto_approval: { mode: "listed", users: ["UELSE"] } } }),
    );
    const pending = await share(a.admin, connection, general);
    expect(pending.body.shared_channel).toMatchObject({ status: "pending", answered: null });
    await withdraw(a.admin, pending.body.shared_channel.id);

    await ok(
      api("PATCH", partnerPrefs, { token: b.admin, json: { auto_approval: { mode: "listed", users: [a.adminId] } } }),
    );
    const listed = await share(a.admin, connection, general);
    expect(listed.body.shared_channel).toMatchObject({
      status: "accepted",
      answered: { team: b.id, user: null, auto: true },
      in_effect: true,
    });
    expect(await seesChannel(b.member, general)).toBe(true);

    const other = await channel(a, `second-${a.id.slice(-6).toLowerCase()}`);
    await ok(api("PATCH", partnerPrefs, { token: b.admin, json: { auto_approval: { mode: "all" } } }));
    expect((await share(a.admin, connection, other)).body.shared_channel).toMatchObject({ status: "accepted" });
    expect(await seesChannel(b.member, other)).toBe(true);
  });

  it("widening auto-approval answers the pending invitations it now approves, and only those", async () => {
    const { a, b, connection, general } = await world();
    const second = await channel(a, `second-${a.id.slice(-6).toLowerCase()}`);
    const fromAdmin = (await share(a.admin, connection, general)).body.shared_channel;
    await ok(api("PATCH", "/v1/connect/prefs/org", { token: a.admin, json: { channel_creation: { who: "members" } } }));
    const fromMember = (await share(a.member, connection, second)).body.shared_channel;
    expect([fromAdmin.status, fromMember.status]).toEqual(["pending", "pending"]);

    // B approves A's admin only: that invitation is accepted and shared now; A's member's stays pending.
    await ok(
      api("PATCH", `/v1/connect/prefs/partners/${a.id}`, {
        token: b.admin,
        json: { auto_approval: { mode: "listed", users: [a.adminId] } },
      }),
    );
    const after = new Map((await listOf(b.admin)).shared_channels.map((s) => [s.id, s]));
    expect(after.get(fromAdmin.id)).toMatchObject({ status: "accepted", answered: { user: null, auto: true } });
    expect(after.get(fromMember.id)).toMatchObject({ status: "pending" });
    expect(await seesChannel(b.member, general)).toBe(true);
    expect(await seesChannel(b.member, second)).toBe(false);

    // The org level widened to everything: the rest follows.
    await ok(api("PATCH", `/v1/connect/prefs/partners/${a.id}`, { token: b.admin, json: { auto_approval: null } }));
    await ok(api("PATCH", "/v1/connect/prefs/org", { token: b.admin, json: { auto_approval: { mode: "all" } } }));
    expect((await listOf(b.admin)).shared_channels.find((s) => s.id === fromMember.id)).toMatchObject({
      status: "accepted",
    });
    expect(await seesChannel(b.member, second)).toBe(true);
  });

  it("the host's channel_creation pref says who may share; a private channel is its members' or an admin's", async () => {
    const { a, connection, general } = await world();
    // Default: admins only.
    const byMember = await share(a.member, connection, general);
    expect(byMember.status).toBe(403);
    expect(byMember.body.error?.message).toContain("channel_creation");
    await ok(api("PATCH", "/v1/connect/prefs/org", { token: a.admin, json: { channel_creation: { who: "members" } } }));
    const allowed = await share(a.member, connection, general);
    expect(allowed.status).toBe(201);
    // The member who sent it may cancel it; another member may not.
    expect((await withdraw(a.other, allowed.body.shared_channel.id)).status).toBe(403);
    expect((await withdraw(a.member, allowed.body.shared_channel.id)).status).toBe(200);

    // A private channel: unknown to a member outside it (as if it did not exist), shareable by one inside.
    const secret = await channel(a, `secret-${a.id.slice(-6).toLowerCase()}`, true, ["UOTHER"]);
    const outside = await share(a.member, connection, secret);
    const ghost = await share(a.member, connection, "CNOSUCHCHANNEL");
    expect(outside.status).toBe(404);
    expect(outside.body).toEqual(ghost.body);
    expect((await share(a.other, connection, secret)).status).toBe(201);

    // The partner level overrides the org level: nobody of A may share with this partner.
    const partner = (await listOf(a.admin)).shared_channels[0]?.partner ?? "";
    await ok(
      api("PATCH", `/v1/connect/prefs/partners/${partner}`, {
        token: a.admin,
        json: { channel_creation: { who: "nobody" } },
      }),
    );
    const third = await channel(a, `third-${a.id.slice(-6).toLowerCase()}`);
    expect((await share(a.admin, connection, third)).status).toBe(403);
  });

  it("a disconnect ends every shared channel of the connection for both teams, and cancels pending ones", async () => {
    const { a, b, connection, general } = await world();
    const live = (await share(a.admin, connection, general)).body.shared_channel;
    await ok(answer(b.admin, live.id, "accept"));
    // B hosts one too, shared with A.
    const bChannel = await channel(b, `bside-${b.id.slice(-6).toLowerCase()}`);
    const fromB = (await share(b.admin, connection, bChannel)).body.shared_channel;
    await ok(answer(a.admin, fromB.id, "accept"));
    const other = await channel(a, `later-${a.id.slice(-6).toLowerCase()}`);
    const pending = (await share(a.admin, connection, other)).body.shared_channel;
    expect(await seesChannel(b.member, general)).toBe(true);
    expect(await seesChannel(a.member, bChannel)).toBe(true);

    await ok(api("DELETE", `/v1/connect/connections/${connection}`, { token: b.admin }));
    expect(await seesChannel(b.member, general)).toBe(false);
    expect(await seesChannel(a.member, bChannel)).toBe(false);
    expect(await seesChannel(a.member, general)).toBe(true);
    const after = new Map((await listOf(a.admin)).shared_channels.map((s) => [s.id, s]));
    expect(after.get(live.id)).toMatchObject({ status: "ended", ended: { team: b.id, user: null }, in_effect: true });
    expect(after.get(fromB.id)).toMatchObject({ status: "ended", in_effect: true });
    expect(after.get(pending.id)).toMatchObject({ status: "cancelled" });
    // Nothing more travels over the ended connection.
    expect((await share(a.admin, connection, other)).status).toBe(409);
    expect((await answer(b.admin, pending.id, "accept")).status).toBe(409);
  });

  it("another team can neither see, answer, end nor learn of an invitation, a connection or a channel", async () => {
    const { a, b, connection, general } = await world();
    const invite = (await share(a.admin, connection, general)).body.shared_channel;
    const c = await teamWithMember();
    expect((await listOf(c.admin)).shared_channels).toEqual([]);
    const ghostId = "HNOSUCHINVITE";
    for (const [what, real, ghost] of [
      ["answer", await answer(c.admin, invite.id, "accept"), await answer(c.admin, ghostId, "accept")],
      ["withdraw", await withdraw(c.admin, invite.id), await withdraw(c.admin, ghostId)],
      [
        "share over A's connection",
        await share(c.admin, connection, general),
        await share(c.admin, "KNOSUCH", general),
      ],
    ] as const) {
      expect(real.status, what).toBe(404);
      expect(real.body, what).toEqual(ghost.body);
    }
    // B's admin naming A's channel over its own connection, as host: no such channel of B's.
    const asHost = await share(b.admin, connection, general);
    expect(asHost.status).toBe(404);
    expect((await listOf(b.admin)).shared_channels.map((s) => s.status)).toEqual(["pending"]);
    expect(await seesChannel(c.member, general)).toBe(false);
  });

  it("refuses bad input with a 4xx and changes nothing; operators get no say", async () => {
    const { a, b, connection, general } = await world();
    const operator = await platformToken();
    for (const json of [
      {},
      { connection },
      { connection, channel: general, extra: 1 },
      { connection: 1, channel: general },
    ]) {
      const res = await api("POST", "/v1/connect/shared-channels", { token: a.admin, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
    }
    expect((await share(operator, connection, general)).status).toBe(403);
    const invite = (await share(a.admin, connection, general)).body.shared_channel;
    expect(
      (
        await api("POST", `/v1/connect/shared-channels/${invite.id}/answer`, {
          token: b.admin,
          json: { decision: "yes" },
        })
      ).status,
    ).toBe(400);
    expect((await listOf(b.admin)).shared_channels).toMatchObject([{ id: invite.id, status: "pending" }]);
  });

  it("an accept whose share a crash cut off is finished by the sweep", async () => {
    const { a, b, connection, general } = await world();
    const invite = (await share(a.admin, connection, general)).body.shared_channel;
    // As a process killed right after the accept's own write: accepted, not applied, a while ago.
    const store = sharedChannelsStore(d1Driver(env.DB));
    const row = await store.inviteFor(a.id, invite.id);
    if (!row) throw new Error("seeded invitation missing");
    const at = Date.now() - SWEEP_GRACE_MS - 1_000;
    const cut = {
      ...row,
      status: "accepted" as const,
      answeredBy: { user: b.adminId, at, auto: false },
      applied: false,
      updatedAt: at,
    };
    expect(await store.update(cut, "pending")).toBe(true);
    expect(await seesChannel(b.member, general)).toBe(false);
    expect((await listOf(b.admin)).shared_channels[0]).toMatchObject({ status: "accepted", in_effect: false });

    const swept = await finishPending(sharedChannelPortsOf(depsFor(env as unknown as Env)));
    expect(swept.finished).toBeGreaterThanOrEqual(1);
    expect(await seesChannel(b.member, general)).toBe(true);
    expect((await listOf(b.admin)).shared_channels[0]).toMatchObject({ status: "accepted", in_effect: true });
  });
});
