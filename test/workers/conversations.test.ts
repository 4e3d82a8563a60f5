import { env, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../durable-objects/team-cache/cache-db";
import { conversationId } from "../../src/conversations/directory-conversations";
import { uniqueTeamId } from "../contract/fixtures";
import { api, ok, platformToken, token } from "./client";

// DMs and group DMs as directory conversations (workers/routes/conversations.ts):
// identity (the same members give the same conversation, whatever the order
// or the race), visibility (members only, everywhere the directory answers),
// leaving a group DM, the guest rule, and bad input. On D1; the same routes
// run on MySQL in the isolation and fuzz suites (workers-mysql), and the
// racing opens on MySQL in test/node/conversations-mysql.test.ts.

interface Conversation {
  id: string;
  kind: "im" | "mpim";
  members: string[];
  created: number;
}
type Card = { id: string; kind?: string; name: string; type?: string; members?: string[]; is_member?: boolean };

interface Fixture {
  team: string;
  ids: Record<string, string>;
  channels: Record<string, string>;
}

async function buildTeam(label: string): Promise<Fixture> {
  const team = uniqueTeamId("T");
  const admin = await platformToken();
  await ok(api("POST", "/v1/admin/teams", { token: admin, json: { id: team, name: `${label} Co` } }), 201);
  const base = `/v1/admin/teams/${team}`;
  const people: Array<[string, string, Record<string, unknown>]> = [
    ["ada", "admin", { real_name: "Ada Lovelace", display_name: "Ada" }],
    ["bob", "member", { real_name: "Bob Builder", display_name: "bobby" }],
    ["zoe", "member", { real_name: "Zoe Zed", display_name: "" }],
    ["amy", "member", { real_name: "Amy Adams", display_name: "" }],
    ["gus", "guest", { real_name: "Gus Guest", display_name: "" }],
    ["dee", "member", { real_name: "Deedee Gone", display_name: "" }],
  ];
  const ids: Record<string, string> = {};
  for (const [handle, role, profile] of people) {
    const id = `U${handle.toUpperCase()}${team.slice(1, 7)}`;
    ids[handle] = id;
    const email = role === "guest" ? `${handle}@outside-${team}.test` : `${handle}@${team.toLowerCase()}.test`;
    await ok(api("POST", `${base}/users`, { token: admin, json: { id, email, role } }), 201);
    await ok(api("PATCH", `${base}/users/${id}/profile`, { token: admin, json: { name: handle, ...profile } }));
  }
  await ok(api("DELETE", `${base}/users/${ids.dee}`, { token: admin }));
  const channels: Record<string, string> = {};
  for (const [key, name, members] of [
    ["general", "general", ["ada", "bob", "zoe", "amy"]],
    ["guests", "guest-room", ["gus", "bob"]],
  ] as const) {
    const made = await ok<{ channel: { id: string } }>(
      api("POST", `${base}/channels`, { token: admin, json: { name } }),
      201,
    );
    channels[key] = made.channel.id;
    await ok(
      api("POST", `${base}/channels/${made.channel.id}/members`, {
        token: admin,
        json: { user_ids: members.map((m) => ids[m]) },
      }),
    );
  }
  return { team, ids, channels };
}

const as = (f: Fixture, who: string) => token(f.team, f.ids[who] ?? who);

async function open(f: Fixture, who: string, users: unknown[]) {
  return api<{ conversation: Conversation }>("POST", "/v1/conversations", {
    token: await as(f, who),
    json: { users },
  });
}

async function listAll(f: Fixture, who: string, types = "im,mpim,channel", limit = 2): Promise<Card[]> {
  const t = await as(f, who);
  const out: Card[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const q = `types=${types}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page: { items: Card[]; next_cursor: string | null } = await ok(
      api("GET", `/v1/conversations?${q}`, { token: t }),
    );
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) return out;
  }
  throw new Error("paging did not end");
}

describe("DM and group DM identity", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await buildTeam("Identity");
  });

  it("the same members give the same conversation, whoever opens it and in any order", async () => {
    const first = await open(f, "bob", [f.ids.ada]);
    expect(first.status).toBe(201);
    const dm = first.body.conversation;
    expect(dm.kind).toBe("im");
    expect(dm.members).toEqual([f.ids.ada, f.ids.bob].sort());
    expect(dm.id).toBe(await conversationId(f.team, [f.ids.bob as string, f.ids.ada as string]));
    expect(dm.id.startsWith("D")).toBe(true);

    const again = await open(f, "bob", [f.ids.ada]);
    expect(again.status).toBe(200);
    expect(again.body.conversation).toEqual(dm);
    const fromAda = await open(f, "ada", [f.ids.bob, { id: f.ids.bob }]);
    expect(fromAda.status).toBe(200);
    expect(fromAda.body.conversation.id).toBe(dm.id);

    const group = await open(f, "bob", [f.ids.zoe, f.ids.ada]);
    expect(group.status).toBe(201);
    expect(group.body.conversation.kind).toBe("mpim");
    expect(group.body.conversation.id.startsWith("G")).toBe(true);
    const reordered = await open(f, "zoe", [f.ids.ada, f.ids.bob, f.ids.zoe]);
    expect(reordered.status).toBe(200);
    expect(reordered.body.conversation.id).toBe(group.body.conversation.id);
    expect(reordered.body.conversation.members).toEqual([f.ids.ada, f.ids.bob, f.ids.zoe].sort());

    const self = await open(f, "amy", [f.ids.amy]);
    expect(self.status).toBe(201);
    expect(self.body.conversation).toMatchObject({ kind: "im", members: [f.ids.amy] });
    expect(self.body.conversation.id).not.toBe(dm.id);
  });

  it("another team's same user ids give another conversation", async () => {
    expect(await conversationId("TONE", ["U1", "U2"])).not.toBe(await conversationId("TTWO", ["U1", "U2"]));
    expect(await conversationId("TONE", ["U1", "U2"])).toBe(await conversationId("TONE", ["U2", "U1", "U2"]));
  });

  it("concurrent opens of the same members make one conversation", async () => {
    const openers = ["amy", "zoe", "ada", "amy", "zoe", "ada"];
    const answers = await Promise.all(openers.map((who) => open(f, who, [f.ids.amy, f.ids.zoe, f.ids.ada])));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    const ids = new Set(answers.map((a) => a.body.conversation.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM channels WHERE team_id = ? AND id = ?")
      .bind(f.team, id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(1);
    const members = await env.DB.prepare("SELECT COUNT(*) AS n FROM memberships WHERE team_id = ? AND channel_id = ?")
      .bind(f.team, id)
      .first<{ n: number }>();
    expect(members?.n).toBe(3);
    const logged = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM directory_changes WHERE team_id = ? AND entity_id = ? AND kind = 'channel'",
    )
      .bind(f.team, id)
      .first<{ n: number }>();
    expect(logged?.n).toBe(1);
    // Every member's cache view has it once.
    for (const who of ["amy", "zoe", "ada"]) {
      expect((await listAll(f, who, "mpim")).filter((c) => c.id === id)).toHaveLength(1);
    }
  });
});

describe("DM visibility", () => {
  let f: Fixture;
  let other: Fixture;
  let dm: Conversation;
  let group: Conversation;
  beforeAll(async () => {
    f = await buildTeam("Visible");
    other = await buildTeam("Other");
    dm = (await ok(open(f, "bob", [f.ids.amy]), 201)).conversation;
    group = (await ok(open(f, "bob", [f.ids.amy, f.ids.zoe]), 201)).conversation;
  });

  it("members list, find and read it, shown by the other members' names", async () => {
    const t = await as(f, "bob");
    const listed = await listAll(f, "bob", "im,mpim");
    expect(listed.map((c) => c.id).sort()).toEqual([dm.id, group.id].sort());
    expect(listed.find((c) => c.id === dm.id)).toMatchObject({ kind: "im", name: "Amy Adams", members: dm.members });
    const channelsToo = await listAll(f, "bob");
    expect(channelsToo.map((c) => c.id)).toEqual(expect.arrayContaining([f.channels.general, dm.id, group.id]));
    expect(channelsToo.find((c) => c.id === f.channels.general)).toMatchObject({ kind: "channel", name: "general" });
    // Paged by id, one at a time: each once.
    const ones = await listAll(f, "bob", "im,mpim,channel", 1);
    expect(ones.map((c) => c.id)).toEqual(channelsToo.map((c) => c.id));
    expect(new Set(ones.map((c) => c.id)).size).toBe(ones.length);

    const found = await ok<{ items: Card[] }>(api("GET", "/v1/directory/switcher?q=amy", { token: t }));
    const convIds = found.items.filter((i) => i.kind === "im" || i.kind === "mpim").map((i) => i.id);
    expect(convIds.sort()).toEqual([dm.id, group.id].sort());
    // Both tokens must match some other member: "amy zoe" is the group DM only.
    const both = await ok<{ items: Card[] }>(api("GET", "/v1/directory/switcher?q=amy%20zoe", { token: t }));
    expect(both.items.filter((i) => i.kind === "mpim" || i.kind === "im").map((i) => i.id)).toEqual([group.id]);
    // The caller's own name finds none of its DMs (it is in all of them).
    const own = await ok<{ items: Card[] }>(api("GET", "/v1/directory/switcher?q=bobby", { token: t }));
    expect(own.items.filter((i) => i.kind === "im" || i.kind === "mpim")).toEqual([]);

    const header = await ok<{ channel: Card }>(api("GET", `/v1/directory/channels/${group.id}`, { token: t }));
    expect(header.channel).toMatchObject({ id: group.id, kind: "mpim", is_member: true, members: group.members });
    expect(header.channel.name.split(", ").sort()).toEqual(["Amy Adams", "Zoe Zed"]);
    const members = await ok<{ items: Card[] }>(api("GET", `/v1/directory/channels/${dm.id}/members`, { token: t }));
    expect(members.items.map((m) => m.id).sort()).toEqual(dm.members);
    const looked = await ok<{ channels: Card[] }>(
      api("POST", "/v1/directory/lookup", { token: t, json: { channels: [dm.id, group.id] } }),
    );
    expect(looked.channels.map((c) => c.id).sort()).toEqual([dm.id, group.id].sort());
  });

  it("a non-member (an admin too) cannot list, find, look up, or read its header, members or mentions", async () => {
    for (const who of ["ada", "zoe"]) {
      const t = await as(f, who);
      const listed = await listAll(f, who);
      expect(listed.map((c) => c.id)).not.toContain(dm.id);
      if (who === "ada") expect(listed.map((c) => c.id)).not.toContain(group.id);
      const found = await ok<{ items: Card[] }>(api("GET", "/v1/directory/switcher?q=amy", { token: t }));
      expect(found.items.map((i) => i.id)).not.toContain(dm.id);
      const looked = await ok<{ channels: Card[] }>(
        api("POST", "/v1/directory/lookup", { token: t, json: { channels: [dm.id] } }),
      );
      expect(looked.channels).toEqual([]);
      for (const path of [
        `/v1/directory/channels/${dm.id}`,
        `/v1/directory/channels/${dm.id}/members`,
        `/v1/directory/mentions?channel=${dm.id}&q=a`,
      ]) {
        const res = await api("GET", path, { token: t });
        expect(res.status, `${who} ${path}`).toBe(404);
      }
      const boot = await ok<{ conversations: Conversation[]; channels: Card[] }>(
        api("GET", "/v1/directory/boot", { token: t }),
      );
      expect(boot.conversations.map((c) => c.id)).not.toContain(dm.id);
    }
  });

  it("is a real-time topic for its members only: they post to it, no one else can", async () => {
    const posted = await api<{ topic: string }>("POST", `/v1/channels/${dm.id}/messages`, {
      token: await as(f, "amy"),
      json: { text: "hi bob" },
    });
    expect(posted.status).toBe(201);
    expect(posted.body.topic).toBe(`channel:${dm.id}`);
    for (const who of ["ada", "zoe"]) {
      const refused = await api("POST", `/v1/channels/${dm.id}/messages`, {
        token: await as(f, who),
        json: { text: "let me in" },
      });
      expect(refused.status, who).toBe(404);
    }
  });

  it("another team's token learns nothing of it", async () => {
    const t = await as(other, "bob");
    const ghost = `D${"Z".repeat(20)}`;
    for (const id of [dm.id, ghost]) {
      expect((await api("GET", `/v1/directory/channels/${id}`, { token: t })).status).toBe(404);
      const looked = await ok<{ channels: Card[] }>(
        api("POST", "/v1/directory/lookup", { token: t, json: { channels: [id] } }),
      );
      expect(looked.channels).toEqual([]);
      const leave = await api("DELETE", `/v1/conversations/${id}/members/me`, { token: t });
      expect(leave.status).toBe(404);
      expect(leave.body).toEqual({ error: expect.objectContaining({ code: "not_found" }) });
    }
    // Naming the first team's user: as unknown as a user that exists nowhere.
    const named = await open(other, "bob", [f.ids.amy]);
    expect(named.status).toBe(404);
  });

  it("boot lists the caller's conversations with their members, apart from its channels", async () => {
    const t = await as(f, "bob");
    const boot = await ok<{
      version: number;
      team: { channels: number };
      channels: Card[];
      conversations: Array<Conversation & { name: string }>;
    }>(api("GET", "/v1/directory/boot", { token: t }));
    expect(boot.conversations.map((c) => c.id).sort()).toEqual([dm.id, group.id].sort());
    expect(boot.conversations.find((c) => c.id === dm.id)).toMatchObject({ kind: "im", members: dm.members });
    expect(boot.channels.map((c) => c.id)).not.toContain(dm.id);
    expect(boot.team.channels).toBe(2);
    // Incremental: zoe leaves the group DM; bob's boot since then shows its new members.
    await ok(api("DELETE", `/v1/conversations/${group.id}/members/me`, { token: await as(f, "zoe") }));
    const since = await ok<{ conversations: Conversation[]; channels_left: string[] }>(
      api("GET", `/v1/directory/boot?since=${boot.version}`, { token: t }),
    );
    expect(since.conversations.map((c) => [c.id, c.members])).toEqual([[group.id, [f.ids.amy, f.ids.bob].sort()]]);
    const zoeSince = await ok<{ conversations: Conversation[]; channels_left: string[] }>(
      api("GET", `/v1/directory/boot?since=${boot.version}`, { token: await as(f, "zoe") }),
    );
    expect(zoeSince.channels_left).toEqual([group.id]);
    // Back in by opening the same members again.
    const back = await open(f, "zoe", [f.ids.bob, f.ids.amy]);
    expect(back.status).toBe(200);
    expect(back.body.conversation.members).toEqual(group.members);
  });
});

describe("leaving a group DM", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await buildTeam("Leave");
  });

  it("the leaver stops seeing it; the others keep it; a DM or a channel cannot be left", async () => {
    const group = (await ok(open(f, "bob", [f.ids.amy, f.ids.zoe]), 201)).conversation;
    const zoe = await as(f, "zoe");
    const left = await ok<{ left: boolean }>(api("DELETE", `/v1/conversations/${group.id}/members/me`, { token: zoe }));
    expect(left.left).toBe(true);
    expect((await listAll(f, "zoe")).map((c) => c.id)).not.toContain(group.id);
    expect((await api("GET", `/v1/directory/channels/${group.id}`, { token: zoe })).status).toBe(404);
    expect((await api("DELETE", `/v1/conversations/${group.id}/members/me`, { token: zoe })).status).toBe(404);
    const bobView = await ok<{ channel: Card }>(
      api("GET", `/v1/directory/channels/${group.id}`, { token: await as(f, "bob") }),
    );
    expect(bobView.channel.members).toEqual([f.ids.amy, f.ids.bob].sort());

    const dm = (await ok(open(f, "bob", [f.ids.amy]), 201)).conversation;
    const bob = await as(f, "bob");
    const im = await api<{ error: { message: string } }>("DELETE", `/v1/conversations/${dm.id}/members/me`, {
      token: bob,
    });
    expect(im.status).toBe(400);
    expect(im.body.error.message).toMatch(/cannot be left/);
    const channel = await api("DELETE", `/v1/conversations/${f.channels.general}/members/me`, { token: bob });
    expect(channel.status).toBe(400);
    expect((await listAll(f, "bob")).map((c) => c.id)).toEqual(expect.arrayContaining([dm.id, f.channels.general]));
  });

  it("the admin channel routes refuse a DM: no rename, no members added or removed", async () => {
    const dm = (await ok(open(f, "ada", [f.ids.amy]), 201)).conversation;
    const admin = await platformToken();
    const base = `/v1/admin/teams/${f.team}/channels/${dm.id}`;
    expect((await api("PATCH", base, { token: admin, json: { name: "renamed" } })).status).toBe(400);
    expect((await api("POST", `${base}/members`, { token: admin, json: { user_ids: [f.ids.zoe] } })).status).toBe(400);
    expect((await api("DELETE", `${base}/members/${f.ids.amy}`, { token: admin })).status).toBe(400);
    const imported = await api("POST", `/v1/admin/teams/${f.team}/memberships/import`, {
      token: admin,
      json: { memberships: [{ channel_id: dm.id, user_id: f.ids.zoe }] },
    });
    expect(imported.status).toBe(404);
    const header = await ok<{ channel: Card }>(
      api("GET", `/v1/directory/channels/${dm.id}`, { token: await as(f, "ada") }),
    );
    expect(header.channel.members).toEqual(dm.members);
  });
});

describe("guests and bad input", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await buildTeam("Rules");
  });

  it("a guest opens DMs only with people it shares a channel with", async () => {
    expect((await open(f, "gus", [f.ids.bob])).status).toBe(201);
    const stranger = await open(f, "gus", [f.ids.ada]);
    expect(stranger.status).toBe(404);
    expect(stranger.body).toMatchObject({ error: { code: "not_found", details: { users: [f.ids.ada] } } });
    expect((await open(f, "gus", [f.ids.bob, f.ids.ada])).status).toBe(404);
    // Nothing was written for the refused ones.
    expect((await listAll(f, "gus", "im,mpim")).map((c) => c.members)).toEqual([[f.ids.bob, f.ids.gus].sort()]);
  });

  it("refuses bad input with a 400 (or 404 for unknown users) and writes nothing", async () => {
    const t = await as(f, "bob");
    const cases: Array<[unknown, number, RegExp?]> = [
      [{ users: [] }, 400],
      [{}, 400],
      [{ users: ["U 1"] }, 400],
      [{ users: [f.ids.ada], extra: 1 }, 400],
      [{ users: [{ id: f.ids.ada, team: "TELSEWHERE" }] }, 400, /Slack Connect/],
      [{ users: [f.ids.dee] }, 400, /deactivated/],
      [{ users: ["UNOBODY1"] }, 404],
      [{ users: Array.from({ length: 8 }, (_, i) => `UX${i}`) }, 400, /at most 8/],
    ];
    const before = await listAll(f, "bob");
    for (const [body, status, message] of cases) {
      const res = await api<{ error: { message: string } }>("POST", "/v1/conversations", { token: t, json: body });
      expect(res.status, JSON.stringify(body)).toBe(status);
      if (message) expect(res.body.error.message).toMatch(message);
    }
    expect(await listAll(f, "bob")).toEqual(before);
    for (const q of ["types=bogus", "types=", "limit=0", "limit=101", "cursor=%25%25"]) {
      expect((await api("GET", `/v1/conversations?${q}`, { token: t })).status, q).toBe(400);
    }
    expect((await api("DELETE", "/v1/conversations/G%201/members/me", { token: t })).status).toBe(404);
  });

  it("a deactivated caller opens nothing", async () => {
    const res = await api("POST", "/v1/conversations", { token: await as(f, "dee"), json: { users: [f.ids.bob] } });
    expect(res.status).toBe(403);
  });
});

describe("the team cache's schema", () => {
  it("a cache made before conversations migrates in place: its channels become kind 'channel'", async () => {
    const stub = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(uniqueTeamId("TMIG")));
    await runInDurableObject(stub, async (_instance, state) => {
      const sql = state.storage.sql;
      // The shape of schema 2: no kind column, one channel row.
      sql.exec("ALTER TABLE channels DROP COLUMN kind");
      sql.exec(
        "INSERT INTO channels (id, host_team, name, topic, purpose, is_private, is_archived, created_at, updated_at, shared_with, search_text, words) VALUES ('C1', 'T1', 'old', '', '', 0, 0, 1, 1, '[]', ' old', '[\"old\"]')",
      );
      sql.exec("UPDATE meta SET value = '2' WHERE key = 'schema'");
      migrate(sql);
      expect(sql.exec<{ kind: string }>("SELECT kind FROM channels WHERE id = 'C1'").one().kind).toBe("channel");
      expect(sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'schema'").one().value).toBe("3");
      // Running it again changes nothing.
      migrate(sql);
      expect(sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM channels").one().n).toBe(1);
    });
  });
});
