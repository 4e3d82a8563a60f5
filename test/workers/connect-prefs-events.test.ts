import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addUsers, api, newTeam, ok, platformToken, token } from "./client";
import { Client, type Frame, sleep } from "./realtime-fixture";

// A Slack Connect prefs change is published to the team's owners and admins,
// live, on the team topic (`connect_pref_changed`: which pref, which level and
// partner, who, when); every other socket of the team skips it (its seqs jump
// over it), also when it resumes from before it, and an admin demoted while
// connected stops getting them at once.

async function world() {
  const team = await newTeam();
  await addUsers(team.id, [
    ["UADMIN2", "admin"],
    ["UMEMBER", "member"],
    ["UGUEST", "guest"],
  ]);
  const open = async (user: string) => {
    const c = await Client.connect(await token(team.id, user));
    await c.one(); // hello
    expect(await c.subscribe([{ topic: "team" }])).toMatchObject({ type: "subscribed" });
    return c;
  };
  return { team, open };
}

/** Publishes an event every socket of the team sees (as a rename would), answering its seq. */
async function everyoneEvent(team: string): Promise<number> {
  const key = `team:${team}`;
  const published = await env.TOPIC.get(env.TOPIC.idFromName(key)).publish(
    key,
    JSON.stringify({ type: "team_renamed" }),
  );
  if (!published.ok) throw new Error("not published");
  return published.seq;
}

const patchOrg = (as: string, value: string) =>
  ok(api("PATCH", "/v1/connect/prefs/org", { token: as, json: { channel_creation: { who: value } } }));

const events = (frames: Frame[]) => frames.filter((f) => f.type === "event");

describe("connect prefs events", () => {
  it("reach the team's owners and admins only; the others skip over them, live and on resume", async () => {
    const { team, open } = await world();
    const admin = await open("UADMIN");
    const other = await open("UADMIN2");
    const member = await open("UMEMBER");
    const guest = await open("UGUEST");
    const before = await everyoneEvent(team.id);
    for (const c of [admin, other, member, guest]) expect(await c.one()).toMatchObject({ seq: before });

    await patchOrg(team.admin, "admins");
    for (const c of [admin, other]) {
      expect(await c.one()).toMatchObject({
        type: "event",
        topic: "team",
        seq: before + 1,
        event: { type: "connect_pref_changed", key: "channel_creation", level: "org", partner: null, actor: "UADMIN" },
      });
    }
    const after = await everyoneEvent(team.id);
    for (const c of [member, guest]) {
      const [next] = await c.take(1);
      expect(next, "the next event a member or guest gets is the one after the prefs change").toMatchObject({
        type: "event",
        seq: after,
        event: { type: "team_renamed" },
      });
    }
    for (const c of [admin, other]) expect(await c.one()).toMatchObject({ seq: after });

    // Resuming from before the change: the member's replay leaves it out, an admin's keeps it.
    const memberAgain = await Client.connect(await token(team.id, "UMEMBER"));
    await memberAgain.one();
    expect(await memberAgain.subscribe([{ topic: "team", since: before }])).toMatchObject({ type: "subscribed" });
    await sleep(200);
    expect(events(await memberAgain.rest()).map((f) => f.seq)).toEqual([after]);
    const adminAgain = await Client.connect(await token(team.id, "UADMIN"));
    await adminAgain.one();
    expect(await adminAgain.subscribe([{ topic: "team", since: before }])).toMatchObject({ type: "subscribed" });
    await sleep(200);
    expect(events(await adminAgain.rest()).map((f) => f.seq)).toEqual([before + 1, after]);
    for (const c of [admin, other, member, guest, memberAgain, adminAgain]) c.close();
  });

  it("stop at once for an admin demoted while connected", async () => {
    const { team, open } = await world();
    const admin = await open("UADMIN");
    const demoted = await open("UADMIN2");
    const operator = await platformToken();
    await ok(api("PATCH", `/v1/admin/teams/${team.id}/users/UADMIN2`, { token: operator, json: { role: "member" } }));
    // The user_changed event of the demotion reaches both.
    for (const c of [admin, demoted]) expect(await c.one()).toMatchObject({ event: { type: "user_changed" } });
    await patchOrg(team.admin, "members");
    expect(await admin.one()).toMatchObject({ event: { type: "connect_pref_changed" } });
    expect(events(await demoted.rest(300))).toEqual([]);
    for (const c of [admin, demoted]) c.close();
  });
});
