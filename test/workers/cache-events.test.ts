import { env, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { memberAudience } from "../../durable-objects/gateway/audience";
import { membersAmong } from "../../durable-objects/team-cache/queries";
import { teamCacheOf } from "../../platform/stubs";
import { teamCacheLiveState } from "../../platform/team-cache-access";
import type { ChangeEvent, DirChannel } from "../../src/directory/model";
import { directoryTopicEvents } from "../../src/realtime/directory-events";
import type { LiveState } from "../../src/realtime/ports";
import { api, newTeam, ok, token } from "./client";
import { buildTeam, Client, type Fixture, type Frame } from "./realtime-fixture";

// Every change the team cache keeps is an event someone hears, inside workerd
// through the Worker: a profile change reaches only the sockets whose user
// may see that user (decided from live state); a DM or group DM opened, or
// left, is announced on the team topic to its members only, whatever their
// role (nobody follows a conversation's own topic before it exists); its
// messages and reactions come on its own topic; another team hears nothing
// of any of it, live or on resume.

type Opened = { conversation: { id: string; members: string[] } };

describe("cache events", () => {
  let f: Fixture;
  let other: { team: string; admin: string };
  const id = (who: string) => f.ids[who] ?? who;
  const as = (who: string) => (who === "admin" ? Promise.resolve(f.admin) : token(f.team, id(who)));
  const base = () => `/v1/admin/teams/${f.team}`;
  /** A socket of `who` following the team topic (and `topics`); its team-topic seq when subscribed. */
  const teamSocket = async (who: string, t?: string, since?: number) => {
    const c = await Client.connect(t ?? (await as(who)));
    expect((await c.one()).type).toBe("hello");
    const sub = await c.subscribe([since === undefined ? { topic: "team" } : { topic: "team", since }]);
    expect(sub.type).toBe("subscribed");
    return { c, seq: (sub.topics as Array<{ seq: number }>)[0]?.seq ?? 0 };
  };
  const profile = (who: string, title: string) =>
    ok(api("PATCH", `${base()}/users/${id(who)}/profile`, { token: f.admin, json: { title } }));
  const open = async (who: string, users: string[]) =>
    (await ok<Opened>(api("POST", "/v1/conversations", { token: await as(who), json: { users: users.map(id) } }), 201))
      .conversation;
  /** The event frames up to and including the marker (a profile change of `marker` titled `title`). */
  const until = async (c: Client, title: string) => {
    const seen: Frame[] = [];
    for (;;) {
      const x = await c.one();
      seen.push(x);
      const e = x.event as { type?: string; user?: { title?: string } } | undefined;
      if (e?.type === "user_changed" && e.user?.title === title) return seen;
    }
  };
  const types = (frames: Frame[]) => frames.map((x) => (x.event as { type: string }).type);

  beforeAll(async () => {
    f = await buildTeam();
    const t = await newTeam();
    other = { team: t.id, admin: t.admin };
  });

  it("sends a profile change only to sockets that may see that user: a guest not, a full member yes", async () => {
    const gus = await teamSocket("gus");
    const dan = await teamSocket("dan");
    await profile("hal", "Unseen by gus"); // gus shares no channel with hal
    await profile("bob", "Seen by gus"); // bob is in "guests" with gus
    expect((await dan.c.take(2)).map((x) => x.event)).toMatchObject([
      { type: "user_changed", user: { id: id("hal"), title: "Unseen by gus" } },
      { type: "user_changed", user: { id: id("bob"), title: "Seen by gus" } },
    ]);
    const seen = await gus.c.one();
    expect(seen.event).toMatchObject({ type: "user_changed", user: { id: id("bob"), title: "Seen by gus" } });
    expect(await gus.c.rest()).toEqual([]);
    for (const s of [gus, dan]) s.c.close();
  });

  it("announces a DM to both its members on the team topic, and to nobody else, live and on resume", async () => {
    const watchers = Object.fromEntries(
      await Promise.all(["ada", "bob", "cat", "admin", "gus"].map(async (w) => [w, await teamSocket(w)] as const)),
    );
    const from = watchers.cat?.seq ?? 0;
    const outsider = await teamSocket("", other.admin);
    const dm = await open("ada", ["bob"]);
    await profile("bob", "after the DM"); // a marker every socket here gets (gus shares a channel with bob)
    await ok(
      api("PATCH", `/v1/admin/teams/${other.team}/users/UADMIN/profile`, {
        token: other.admin,
        json: { title: "other marker" },
      }),
    );
    for (const who of ["ada", "bob"]) {
      const frames = await until(watchers[who]?.c as Client, "after the DM");
      expect(frames.map((x) => x.event)).toMatchObject([
        {
          type: "conversation_opened",
          channel: { id: dm.id, kind: "im", is_private: true },
          members: [id("ada"), id("bob")].sort(),
        },
        { type: "user_changed" },
      ]);
      expect(frames[0]?.topic).toBe("team");
    }
    // Not members: a full member, an admin, a guest. Their seqs jump past it.
    for (const who of ["cat", "admin", "gus"]) {
      expect(types(await until(watchers[who]?.c as Client, "after the DM"))).toEqual(["user_changed"]);
    }
    // Another team's socket hears only its own team.
    expect(types(await until(outsider.c, "other marker"))).toEqual(["user_changed"]);
    expect(await outsider.c.rest()).toEqual([]);
    // Resuming the team topic replays the announcement to a member only.
    const bobAgain = await teamSocket("bob", undefined, from);
    expect(types(await until(bobAgain.c, "after the DM"))).toContain("conversation_opened");
    const catAgain = await teamSocket("cat", undefined, from);
    expect(types(await until(catAgain.c, "after the DM"))).not.toContain("conversation_opened");
    for (const s of [...Object.values(watchers), outsider, bobAgain, catAgain]) s.c.close();
  });

  it("announces leaving a group DM to the remaining members and the one who left, and to nobody else", async () => {
    const group = await open("ada", ["bob", "cat", "dan"]);
    expect(group.members).toHaveLength(4);
    const watchers = Object.fromEntries(
      await Promise.all(
        ["ada", "bob", "cat", "dan", "eve", "admin"].map(async (w) => [w, await teamSocket(w)] as const),
      ),
    );
    const outsider = await teamSocket("", other.admin);
    await ok(api("DELETE", `/v1/conversations/${group.id}/members/me`, { token: await as("cat") }));
    await profile("ada", "after the leave");
    for (const who of ["ada", "bob", "dan", "cat"]) {
      const frames = await until(watchers[who]?.c as Client, "after the leave");
      expect(frames.map((x) => x.event)).toMatchObject([
        { type: "conversation_left", channel: group.id, user: id("cat") },
        { type: "user_changed" },
      ]);
    }
    for (const who of ["eve", "admin"]) {
      expect(types(await until(watchers[who]?.c as Client, "after the leave"))).toEqual(["user_changed"]);
    }
    // Coming back (opening the same members again) is announced to the members, cat among them.
    await ok(
      api("POST", "/v1/conversations", { token: await as("cat"), json: { users: [id("ada"), id("bob"), id("dan")] } }),
    );
    await profile("ada", "after the return");
    for (const who of ["ada", "cat"]) {
      expect((await until(watchers[who]?.c as Client, "after the return")).map((x) => x.event)).toMatchObject([
        { type: "conversation_joined", channel: group.id, user: id("cat") },
        { type: "user_changed" },
      ]);
    }
    expect(types(await until(watchers.eve?.c as Client, "after the return"))).toEqual(["user_changed"]);
    expect(await outsider.c.rest()).toEqual([]);
    for (const s of [...Object.values(watchers), outsider]) s.c.close();
  });

  it("turns conversation changes into team-topic announcements, and plain channels' memberships into none", () => {
    const ev = (version: number, change: ChangeEvent["change"]): ChangeEvent => ({ teamId: "T1", version, change });
    const dm: DirChannel = {
      teamId: "T1",
      id: "GABCDEFGHIJKLMNOPQRST",
      kind: "mpim",
      name: "GABCDEFGHIJKLMNOPQRST",
      topic: "",
      purpose: "",
      isPrivate: true,
      isArchived: false,
      createdAt: 1,
      updatedAt: 1,
      sharedWith: [],
    };
    const member = (kind: "member_added" | "member_removed", channelId: string, userId: string) =>
      ({ kind, membership: { channelId, userId, userTeamId: "T1" } }) as const;
    const opening = [
      ev(1, { kind: "channel", channel: dm }),
      ev(2, member("member_added", dm.id, "U2")),
      ev(3, member("member_added", dm.id, "U1")),
    ];
    const out = opening.flatMap((e) => directoryTopicEvents(e, opening));
    expect(out.filter((o) => o.key === "team:T1").map((o) => JSON.parse(o.json))).toEqual([
      {
        type: "conversation_opened",
        channel: expect.objectContaining({ id: dm.id, kind: "mpim", is_private: true }),
        members: ["U1", "U2"],
      },
    ]);
    expect(out.filter((o) => o.key === `ch:T1:${dm.id}`)).toHaveLength(3);
    const left = directoryTopicEvents(ev(4, member("member_removed", dm.id, "U2")));
    expect(left.map((o) => [o.key, JSON.parse(o.json).type])).toEqual([
      [`ch:T1:${dm.id}`, "member_left"],
      ["team:T1", "conversation_left"],
    ]);
    const back = directoryTopicEvents(ev(5, member("member_added", dm.id, "U2")));
    expect(back.map((o) => JSON.parse(o.json).type)).toEqual(["member_joined", "conversation_joined"]);
    // A channel's memberships stay on its own topic.
    const plain = directoryTopicEvents(ev(6, member("member_removed", "CGENERAL", "U2")));
    expect(plain.map((o) => o.key)).toEqual(["ch:T1:CGENERAL"]);
  });

  it("reads a conversation's audience in one call as viewer by viewer, active members only", async () => {
    const group = await open("bob", ["cat", "dan"]);
    await ok(api("PATCH", `${base()}/users/${id("dan")}`, { token: f.admin, json: { deactivated: true } }));
    const cache = teamCacheOf(env, f.team);
    const live = teamCacheLiveState(env);
    const batched: LiveState = {
      ...live,
      membersAmong: (_team, channels, users) =>
        runInDurableObject(cache, (instance) => {
          const found = membersAmong(Reflect.get(instance, "sql") as SqlStorage, channels, users);
          return new Map(Object.entries(found).map(([c, list]) => [c, new Set(list)]));
        }),
    };
    const events = [
      { seq: 7, json: JSON.stringify({ type: "conversation_joined", channel: group.id, user: id("cat") }) },
      { seq: 8, json: JSON.stringify({ type: "conversation_left", channel: group.id, user: id("eve") }) },
      { seq: 9, json: JSON.stringify({ type: "user_changed", user: { id: id("bob") } }) },
      { seq: 10, json: '{"type":"conversation_opened","channel":' },
    ];
    const viewers = new Set(["bob", "cat", "dan", "eve", "gus", "admin"].map(id));
    const one = await memberAudience({ live: batched }, f.team, viewers, events);
    const each = await memberAudience({ live }, f.team, viewers, events);
    const sorted = (a: typeof one) =>
      [...(a?.allowed ?? [])].map(([seq, users]) => [seq, [...users].sort()] as const).sort((x, y) => x[0] - y[0]);
    // dan is deactivated: a member of nothing. eve left (in the event): she gets her own leave.
    expect(sorted(one)).toEqual([
      [7, [id("bob"), id("cat")].sort()],
      [8, [id("bob"), id("cat"), id("eve")].sort()],
      [10, []],
    ]);
    expect(sorted(each)).toEqual(sorted(one));
    expect([...(one?.about ?? [])]).toEqual([7, 8, 10]);
  });

  it("carries a DM's messages, edits, reactions and deletions on its own topic, which another team cannot follow", async () => {
    const dm = await open("eve", ["fay"]);
    const fay = await Client.connect(await as("fay"));
    await fay.one();
    expect(await fay.subscribe([{ topic: `channel:${dm.id}` }])).toMatchObject({ type: "subscribed" });
    const path = `/v1/conversations/${dm.id}/messages`;
    const posted = await ok<{ message: { id: string } }>(
      api("POST", path, { token: await as("eve"), json: { text: "hello fay" } }),
      201,
    );
    const m = `${path}/${posted.message.id}`;
    await ok(api("PATCH", m, { token: await as("eve"), json: { text: "hello, fay" } }));
    await ok(api("POST", `${m}/reactions/wave`, { token: await as("fay") }));
    await ok(api("DELETE", `${m}/reactions/wave`, { token: await as("fay") }));
    await ok(api("DELETE", m, { token: await as("eve") }));
    const frames = await fay.take(5);
    expect(frames.every((x) => x.topic === `channel:${dm.id}`)).toBe(true);
    expect(frames.map((x) => x.event)).toMatchObject([
      { type: "message", channel: dm.id, id: posted.message.id, user: id("eve"), text: "hello fay" },
      { type: "message_changed", id: posted.message.id, text: "hello, fay" },
      { type: "reaction_added", message: posted.message.id, user: id("fay"), name: "wave" },
      { type: "reaction_removed", message: posted.message.id, user: id("fay"), name: "wave" },
      { type: "message_deleted", id: posted.message.id },
    ]);
    // Another team's socket: exactly as a conversation that does not exist.
    const outsider = await Client.connect(other.admin);
    await outsider.one();
    const real = await outsider.subscribe([{ topic: `channel:${dm.id}` }]);
    const ghost = await outsider.subscribe([{ topic: "channel:DAAAAAAAAAAAAAAAAAAAA" }]);
    expect(real).toMatchObject({ type: "error", code: "not_found" });
    expect(JSON.stringify(real).replaceAll(dm.id, "<c>")).toBe(
      JSON.stringify(ghost).replaceAll("DAAAAAAAAAAAAAAAAAAAA", "<c>"),
    );
    // Nor does it hear of the DM on its own team topic.
    expect(await outsider.subscribe([{ topic: "team" }])).toMatchObject({ type: "subscribed" });
    await open("eve", ["gil"]);
    expect(await outsider.rest()).toEqual([]);
    for (const c of [fay, outsider]) c.close();
  });
});
