import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { sharedChannelName } from "../../durable-objects/shared-channel/shared-channel";
import { uniqueTeamId } from "../contract/fixtures";
import { api, ok, platformToken, token } from "./client";

// The edge cache end to end: admin writes to the database publish change
// events to the team's cache; queries go to the cache only.

type Item = { id: string; type?: string; reason?: string; name: string; in_channel?: boolean };
type PageBody = { items: Item[]; next_cursor: string | null };

interface Fixture {
  team: string;
  admin: string;
  ids: Record<string, string>;
  channels: Record<string, string>;
}

async function buildTeam(): Promise<Fixture> {
  const team = uniqueTeamId("T");
  await ok(api("POST", "/v1/admin/teams", { token: await platformToken(), json: { id: team, name: "Cache Co" } }), 201);
  const admin = await platformToken(); // the operator administers any team, adding no user of its own
  const base = `/v1/admin/teams/${team}`;
  const people: Array<[string, string, string, Record<string, unknown>]> = [
    ["ada", "admin", "ada@cache.test", { real_name: "Ada Lovelace", display_name: "Ada" }],
    ["bob", "member", "bob@cache.test", { real_name: "Bob Builder", display_name: "bobby" }],
    ["zoe", "member", "zoe@cache.test", { real_name: "Zoë Ñúñez", display_name: "" }],
    ["gus", "guest", "gus@outside.test", { real_name: "Gus Guest", display_name: "" }],
    ["dee", "member", "dee@cache.test", { real_name: "Deedee Gone", display_name: "" }],
    ["bot", "member", "bot@cache.test", { real_name: "Build Bot", display_name: "", is_bot: true }],
    ["amy", "member", "amy@cache.test", { real_name: "Amy Adams", display_name: "" }],
  ];
  const ids: Record<string, string> = {};
  for (const [handle, role, email, profile] of people) {
    const id = `U${handle.toUpperCase()}${team.slice(1, 5)}`;
    ids[handle] = id;
    await ok(api("POST", `${base}/users`, { token: admin, json: { id, email, role } }), 201);
    await ok(api("PATCH", `${base}/users/${id}/profile`, { token: admin, json: { name: handle, ...profile } }));
  }
  await ok(api("DELETE", `${base}/users/${ids.dee}`, { token: admin }));
  const channels: Record<string, string> = {};
  const make = async (key: string, name: string, isPrivate: boolean, members: string[]) => {
    const body = await ok<{ channel: { id: string } }>(
      api("POST", `${base}/channels`, { token: admin, json: { name, private: isPrivate, topic: `about ${name}` } }),
      201,
    );
    channels[key] = body.channel.id;
    await ok(
      api("POST", `${base}/channels/${body.channel.id}/members`, {
        token: admin,
        json: { user_ids: members.map((m) => ids[m]) },
      }),
    );
  };
  await make("general", "general", false, ["ada", "bob", "zoe", "dee", "bot", "amy"]);
  await make("backend", "eng-backend", false, ["ada", "bob"]);
  await make("secret", "secret-plans", true, ["ada"]);
  await make("guests", "guest-room", false, ["gus", "bob"]);
  await make("pair", "pair-ada-amy", true, ["ada", "amy"]);
  await make("old", "old-stuff", false, ["ada"]);
  await ok(api("PATCH", `${base}/channels/${channels.old}`, { token: admin, json: { archived: true } }));
  return { team, admin, ids, channels };
}

const as = async (f: Fixture, who: string) => token(f.team, f.ids[who] ?? who);

describe("edge cache", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await buildTeam();
  });

  it("quick switcher matches a prefix of any word, ignoring case and accents", async () => {
    const t = await as(f, "bob");
    const zoe = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=NUN", { token: t }));
    expect(zoe.items.map((i) => i.id)).toContain(f.ids.zoe);
    const back = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=BACK", { token: t }));
    expect(back.items.map((i) => i.name)).toEqual(["eng-backend"]);
    const two = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=ada%20love", { token: t }));
    expect(two.items.map((i) => i.id)).toEqual([f.ids.ada]);
  });

  it("ranks the caller's channels and frequent contacts first, never deactivated or archived", async () => {
    const res = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/switcher?q=a&limit=20", { token: await as(f, "ada") }),
    );
    const first = res.items[0];
    expect(first?.reason).toBe("member");
    const amy = res.items.find((i) => i.id === f.ids.amy);
    expect(amy?.reason).toBe("contact");
    const contactIndex = res.items.findIndex((i) => i.id === f.ids.amy);
    const firstMatch = res.items.findIndex((i) => i.reason === "match");
    expect(firstMatch === -1 || contactIndex < firstMatch).toBe(true);
    const dee = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/switcher?q=deedee", { token: await as(f, "ada") }),
    );
    expect(dee.items).toEqual([]);
    const old = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=old", { token: await as(f, "ada") }));
    expect(old.items).toEqual([]);
  });

  it("hides a private channel and its members from non-members", async () => {
    const bob = await as(f, "bob");
    const s = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=secret", { token: bob }));
    expect(s.items).toEqual([]);
    expect((await api("GET", `/v1/directory/channels/${f.channels.secret}`, { token: bob })).status).toBe(404);
    expect((await api("GET", `/v1/directory/channels/${f.channels.secret}/members`, { token: bob })).status).toBe(404);
    const l = await ok<{ channels: Item[] }>(
      api("POST", "/v1/directory/lookup", { token: bob, json: { channels: [f.channels.secret, f.channels.general] } }),
    );
    expect(l.channels.map((c) => c.id)).toEqual([f.channels.general]);
    const ada = await ok<{ channel: { is_private: boolean } }>(
      api("GET", `/v1/directory/channels/${f.channels.secret}`, { token: await as(f, "ada") }),
    );
    expect(ada.channel.is_private).toBe(true);
  });

  it("answers visible() (recommendation filters) with the same visibility as lookup()", async () => {
    const stub = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(f.team));
    const all = Object.values(f.channels);
    const people = Object.values(f.ids);
    for (const viewer of ["ada", "bob", "gus", "amy"]) {
      const id = f.ids[viewer] as string;
      const [full, lean] = await Promise.all([
        stub.lookup(f.team, id, people, all),
        stub.visible(f.team, id, people, all),
      ]);
      if (!full.ok || !lean.ok) throw new Error("lookup failed");
      const cards = new Map(full.value.channels.map((c) => [c.id, c]));
      expect(new Set(lean.value.channels.ids)).toEqual(new Set(cards.keys()));
      lean.value.channels.ids.forEach((cid, i) => {
        const card = cards.get(cid);
        const flags = lean.value.channels.flags[i] ?? 0;
        expect(lean.value.channels.names[i]).toBe(card?.name);
        expect((flags & 1) !== 0).toBe(card?.is_archived); // archived
        expect((flags & 2) !== 0).toBe(card?.is_member); // member
        expect((flags & 4) !== 0).toBe(card?.is_private); // private
      });
      expect(new Set(lean.value.users.ids)).toEqual(new Set(full.value.users.map((u) => u.id)));
    }
    // a guest sees its own channel only; nobody but members sees secret-plans
    const gus = await stub.visible(f.team, f.ids.gus as string, [], all);
    expect(gus.ok && gus.value.channels.ids).toEqual([f.channels.guests]);
    const bob = await stub.visible(f.team, f.ids.bob as string, [], [f.channels.secret as string]);
    expect(bob.ok && bob.value.channels.ids).toEqual([]);
    const gone = await stub.visible(f.team, f.ids.dee as string, [], all);
    expect(gone.ok).toBe(false);
  });

  it("shows guests only their channels and the people in them", async () => {
    const gus = await as(f, "gus");
    const ch = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=g", { token: gus }));
    expect(ch.items.filter((i) => i.type === "channel").map((i) => i.name)).toEqual(["guest-room"]);
    const people = await ok<PageBody>(api("GET", "/v1/directory/people?limit=50", { token: gus }));
    expect(people.items.map((i) => i.id).sort()).toEqual([f.ids.bob, f.ids.gus].sort());
    expect((await api("GET", `/v1/directory/channels/${f.channels.general}`, { token: gus })).status).toBe(404);
  });

  it("suggests mentions with channel members first and flagged", async () => {
    const res = await ok<{ items: Item[] }>(
      api("GET", `/v1/directory/mentions?channel=${f.channels.backend}&q=b`, { token: await as(f, "ada") }),
    );
    expect(res.items[0]).toMatchObject({ id: f.ids.bob, in_channel: true });
    expect(res.items.find((i) => i.id === f.ids.bot)).toMatchObject({ in_channel: false });
  });

  it("answers the channel header and pages its members by cursor", async () => {
    const t = await as(f, "ada");
    const h = await ok<{ channel: { member_count: number; topic: string; is_member: boolean } }>(
      api("GET", `/v1/directory/channels/${f.channels.general}`, { token: t }),
    );
    expect(h.channel).toMatchObject({ member_count: 6, topic: "about general", is_member: true });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: PageBody = await ok<PageBody>(
        api("GET", `/v1/directory/channels/${f.channels.general}/members?limit=2${cursor ? `&cursor=${cursor}` : ""}`, {
          token: t,
        }),
      );
      seen.push(...page.items.map((i) => i.id));
      cursor = page.next_cursor;
    } while (cursor);
    // deactivated dee is a member but not listed
    expect(seen.sort()).toEqual([f.ids.ada, f.ids.bob, f.ids.zoe, f.ids.bot, f.ids.amy].sort());
  });

  it("filters and sorts the directory, with a cursor that survives a join mid-listing", async () => {
    const t = await as(f, "ada");
    const bots = await ok<PageBody>(api("GET", "/v1/directory/people?bots=only", { token: t }));
    expect(bots.items.map((i) => i.id)).toEqual([f.ids.bot]);
    const gone = await ok<PageBody>(api("GET", "/v1/directory/people?deactivated=only", { token: t }));
    expect(gone.items.map((i) => i.id)).toEqual([f.ids.dee]);
    const admins = await ok<PageBody>(api("GET", "/v1/directory/people?role=admin", { token: t }));
    expect(admins.items.map((i) => i.id)).toEqual([f.ids.ada]);

    const first = await ok<PageBody>(api("GET", "/v1/directory/people?limit=3", { token: t }));
    // someone sorting before the cursor joins between pages
    await ok(
      api("POST", `/v1/admin/teams/${f.team}/users`, { token: f.admin, json: { email: "aaron@cache.test" } }),
      201,
    );
    const rest: Item[] = [];
    let cursor = first.next_cursor;
    while (cursor) {
      const page: PageBody = await ok<PageBody>(
        api("GET", `/v1/directory/people?limit=3&cursor=${cursor}`, { token: t }),
      );
      rest.push(...page.items);
      cursor = page.next_cursor;
    }
    const ids = [...first.items, ...rest].map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const who of ["ada", "bob", "zoe", "gus", "bot", "amy"]) expect(ids).toContain(f.ids[who]);
    expect((await api("GET", "/v1/directory/people?cursor=garbage", { token: t })).status).toBe(400);
  });

  it("resolves deactivated users by id in a batch lookup", async () => {
    const l = await ok<{ users: Item[] }>(
      api("POST", "/v1/directory/lookup", {
        token: await as(f, "bob"),
        json: { users: [f.ids.dee, f.ids.ada, "UNOPE"] },
      }),
    );
    expect(l.users.map((u) => u.id).sort()).toEqual([f.ids.ada, f.ids.dee].sort());
  });

  it("boots small and incrementally", async () => {
    const t = await as(f, "bob");
    const full = await ok<{ version: number; full: boolean; self: { id: string }; channels: Item[] }>(
      api("GET", "/v1/directory/boot", { token: t }),
    );
    expect(full.full).toBe(true);
    expect(full.self.id).toBe(f.ids.bob);
    expect(full.channels.map((c) => c.name).sort()).toEqual(["eng-backend", "general", "guest-room"]);
    await ok(
      api("PATCH", `/v1/admin/teams/${f.team}/channels/${f.channels.backend}`, {
        token: f.admin,
        json: { name: "eng-platform" },
      }),
    );
    await ok(
      api("DELETE", `/v1/admin/teams/${f.team}/channels/${f.channels.guests}/members/${f.ids.bob}`, { token: f.admin }),
    );
    const inc = await ok<{ full: boolean; channels: Item[]; channels_left: string[]; version: number }>(
      api("GET", `/v1/directory/boot?since=${full.version}`, { token: t }),
    );
    expect(inc.full).toBe(false);
    expect(inc.channels.map((c) => c.name)).toEqual(["eng-platform"]);
    expect(inc.channels_left).toEqual([f.channels.guests]);
    expect(inc.version).toBeGreaterThan(full.version);
  });
});

describe("change propagation", () => {
  it("shows a rename in the next query", async () => {
    const f = await buildTeam();
    const t = await as(f, "ada");
    await ok(api("GET", "/v1/directory/switcher?q=general", { token: t }));
    await ok(
      api("PATCH", `/v1/admin/teams/${f.team}/channels/${f.channels.general}`, {
        token: f.admin,
        json: { name: "town-square" },
      }),
    );
    const res = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=town", { token: t }));
    expect(res.items.map((i) => i.id)).toEqual([f.channels.general]);
    expect((await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=general", { token: t }))).items).toEqual(
      [],
    );
  });

  it("recovers from a missed event by fetching only what changed", async () => {
    const f = await buildTeam();
    const t = await as(f, "ada");
    await ok(api("GET", "/v1/directory/switcher?q=a", { token: t }));
    const stub = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(f.team));
    const before = await stub.stats();
    // A write whose event never reaches the cache...
    const { directoryStore } = await import("../../storage/directory-store");
    const { d1Driver } = await import("../../storage/d1-driver");
    const store = directoryStore(d1Driver(env.DB));
    await store.updateChannel(f.team, f.channels.backend ?? "", { topic: "lost event" }, Date.now());
    // ...then one that does: the cache sees the gap and catches up.
    await ok(
      api("PATCH", `/v1/admin/teams/${f.team}/channels/${f.channels.general}`, {
        token: f.admin,
        json: { topic: "next" },
      }),
    );
    const backend = await ok<{ channel: { topic: string } }>(
      api("GET", `/v1/directory/channels/${f.channels.backend}`, { token: t }),
    );
    expect(backend.channel.topic).toBe("lost event");
    const after = await stub.stats();
    expect(after.version).toBe(before.version + 2);
    expect(after.loadedAt).toBe(before.loadedAt);
  });

  it("reopens from its own storage after eviction", async () => {
    const f = await buildTeam();
    const t = await as(f, "ada");
    await ok(api("GET", "/v1/directory/switcher?q=ada", { token: t }));
    const stub = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(f.team));
    const before = await stub.stats();
    await evictDurableObject(stub);
    const res = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=ada", { token: t }));
    expect(res.items.length).toBeGreaterThan(0);
    const after = await env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(f.team)).stats();
    expect(after.loadedAt).toBe(before.loadedAt);
    expect(after.loaded).toBe(true);
  });
});

describe("a cold cache", () => {
  it("answers who the caller is from the database without waiting for its load, and loads behind", async () => {
    const f = await buildTeam();
    const stub = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(f.team));
    // buildTeam's writes went through the operator and the Worker: nothing has loaded this cache yet.
    expect((await stub.stats()).loaded).toBe(false);
    await ok(
      api("PATCH", `/v1/admin/teams/${f.team}/users/${f.ids.bob}`, {
        token: await platformToken(),
        json: { role: "admin" },
      }),
    );
    await ok(api("DELETE", `/v1/admin/teams/${f.team}/users/${f.ids.dee}`, { token: await platformToken() }));
    // A load that takes forever (a huge team): the answers must not wait for it.
    await runInDurableObject(stub, async (instance) => {
      const cache = instance as unknown as { ready: (team: string) => Promise<void> };
      const load = cache.ready;
      cache.ready = () => new Promise(() => {});
      const inTime = <T>(p: Promise<T>) =>
        Promise.race([p, new Promise<never>((_, no) => setTimeout(() => no(new Error("waited for the load")), 1_000))]);
      expect(await inTime(instance.actor(f.team, f.ids.bob ?? ""))).toEqual({ role: "admin", active: true });
      expect(await inTime(instance.actor(f.team, f.ids.dee ?? ""))).toEqual({ role: "member", active: false });
      expect(await inTime(instance.actor(f.team, "UNOBODY"))).toBeNull();
      expect(await inTime(instance.actors(f.team, [f.ids.bob ?? "", "UNOBODY"]))).toEqual({
        [f.ids.bob ?? ""]: { role: "admin", active: true },
      });
      cache.ready = load;
    });
    expect(await stub.actor(f.team, f.ids.bob ?? "")).toEqual({ role: "admin", active: true });
    // The load started behind those answers.
    for (let i = 0; i < 100 && !(await stub.stats()).loaded; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await stub.stats()).loaded).toBe(true);
    expect(await stub.actor(f.team, f.ids.dee ?? "")).toEqual({ role: "member", active: false });
  });
});

describe("tenant isolation", () => {
  it("never shows another team's channels or people", async () => {
    const a = await buildTeam();
    const b = await buildTeam();
    const tb = await as(b, "ada");
    expect((await api("GET", `/v1/directory/channels/${a.channels.general}`, { token: tb })).status).toBe(404);
    const l = await ok<{ users: Item[]; channels: Item[] }>(
      api("POST", "/v1/directory/lookup", { token: tb, json: { users: [a.ids.ada], channels: [a.channels.general] } }),
    );
    expect(l).toEqual({ users: [], channels: [] });
    const people = await ok<PageBody>(api("GET", "/v1/directory/people?limit=100", { token: tb }));
    expect(people.items.some((i) => Object.values(a.ids).includes(i.id))).toBe(false);
    // a token naming a user of team A but signed for team B is not a member of B
    expect((await api("GET", "/v1/directory/boot", { token: await token(b.team, a.ids.ada ?? "") })).status).toBe(403);
  });
});

describe("shared channels", () => {
  it("live once in their own object and gather members from both teams", async () => {
    const a = await buildTeam();
    const b = await buildTeam();
    const ta = await as(a, "ada");
    const tb = await as(b, "bob");
    // warm both caches so events flow through them
    await ok(api("GET", "/v1/directory/boot", { token: ta }));
    await ok(api("GET", "/v1/directory/boot", { token: tb }));

    const created = await ok<{ channel: { id: string } }>(
      api("POST", `/v1/admin/teams/${a.team}/channels`, { token: a.admin, json: { name: "connect-partners" } }),
      201,
    );
    const id = created.channel.id;
    await ok(
      api("POST", `/v1/admin/teams/${a.team}/channels/${id}/share`, { token: a.admin, json: { team_id: b.team } }),
    );
    await ok(
      api("POST", `/v1/admin/teams/${a.team}/channels/${id}/members`, {
        token: a.admin,
        json: { user_ids: [a.ids.ada, a.ids.amy] },
      }),
    );
    await ok(
      api("POST", `/v1/admin/teams/${a.team}/channels/${id}/members`, {
        token: a.admin,
        json: { user_ids: [b.ids.bob, b.ids.zoe], team_id: b.team },
      }),
    );

    // Team B sees the channel as one of its member's channels...
    const sw = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=connect", { token: tb }));
    expect(sw.items).toEqual([expect.objectContaining({ id, reason: "member" })]);
    const boot = await ok<{ channels: Item[] }>(api("GET", "/v1/directory/boot", { token: tb }));
    expect(boot.channels.map((c) => c.id)).toContain(id);
    // ...with the whole member count and member list, gathered from the shared object and team A's cache.
    const header = await ok<{ channel: { member_count: number; is_shared: boolean } }>(
      api("GET", `/v1/directory/channels/${id}`, { token: tb }),
    );
    expect(header.channel).toMatchObject({ member_count: 4, is_shared: true });
    const members = await ok<PageBody>(api("GET", `/v1/directory/channels/${id}/members?limit=10`, { token: tb }));
    expect(members.items.map((m) => m.id).sort()).toEqual([a.ids.ada, a.ids.amy, b.ids.bob, b.ids.zoe].sort());
    const mention = await ok<{ items: Item[] }>(api("GET", `/v1/directory/mentions?channel=${id}&q=am`, { token: tb }));
    expect(mention.items[0]).toMatchObject({ id: a.ids.amy, in_channel: true });

    // Storage: the member list is held once; each team cache holds only its own users' rows.
    const shared = await env.SHARED_CHANNEL.get(env.SHARED_CHANNEL.idFromName(sharedChannelName(a.team, id))).stats();
    expect(shared.byTeam).toEqual({ [a.team]: 2, [b.team]: 2 });
    const rowsIn = async (team: string) =>
      (
        await runInCache(team, (sql) =>
          sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM members WHERE channel_id = ?", id).one(),
        )
      ).n;
    expect(await rowsIn(a.team)).toBe(2);
    expect(await rowsIn(b.team)).toBe(2);

    // A member of team B leaves: both the shared object and team B's cache follow.
    await ok(api("DELETE", `/v1/admin/teams/${a.team}/channels/${id}/members/${b.ids.zoe}`, { token: a.admin }));
    const after = await ok<{ channel: { member_count: number } }>(
      api("GET", `/v1/directory/channels/${id}`, { token: tb }),
    );
    expect(after.channel.member_count).toBe(3);
    const zoe = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/switcher?q=connect", { token: await as(b, "zoe") }),
    );
    expect(zoe.items[0]?.reason).toBe("match");

    // Team A's other channels stay invisible to team B.
    expect((await api("GET", `/v1/directory/channels/${a.channels.general}`, { token: tb })).status).toBe(404);
  });
});

async function runInCache<T>(team: string, fn: (sql: SqlStorage) => T): Promise<T> {
  const { runInDurableObject } = await import("cloudflare:test");
  const stub = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(team));
  return runInDurableObject(stub, (_instance, state) => fn(state.storage.sql));
}

describe("bulk changes", () => {
  it("reloads a warm cache after a bulk membership import", async () => {
    const f = await buildTeam();
    const t = await as(f, "zoe");
    const before = await ok<{ channels: Item[] }>(api("GET", "/v1/directory/boot", { token: t }));
    expect(before.channels.map((c) => c.name)).toEqual(["general"]);
    await ok(
      api("POST", `/v1/admin/teams/${f.team}/memberships/import`, {
        token: f.admin,
        json: {
          memberships: [
            { channel_id: f.channels.backend, user_id: f.ids.zoe },
            { channel_id: f.channels.secret, user_id: f.ids.zoe },
          ],
        },
      }),
      201,
    );
    const after = await ok<{ channels: Item[] }>(api("GET", "/v1/directory/boot", { token: t }));
    expect(after.channels.map((c) => c.name)).toEqual(["eng-backend", "general", "secret-plans"]);
    const header = await ok<{ channel: { member_count: number } }>(
      api("GET", `/v1/directory/channels/${f.channels.secret}`, { token: t }),
    );
    expect(header.channel.member_count).toBe(2);
  });
});

describe("bigger team: both query plans", () => {
  it("pages a common prefix (ordered walk) and a rare one (collect and sort) identically", async () => {
    const team = uniqueTeamId("T");
    await ok(api("POST", "/v1/admin/teams", { token: await platformToken(), json: { id: team, name: "Big" } }), 201);
    const admin = await platformToken(); // the operator administers any team, adding no user of its own
    const users = Array.from({ length: 2_600 }, (_, i) => ({
      id: `U${String(i).padStart(6, "0")}`,
      email: `${i % 7 === 0 ? "rare" : "common"}${i}@big.test`,
    }));
    await ok(api("POST", `/v1/admin/teams/${team}/users/import`, { token: admin, json: { users } }), 201);
    await ok(api("POST", `/v1/admin/teams/${team}/channels`, { token: admin, json: { id: "CBIG", name: "big" } }), 201);
    await ok(
      api("POST", `/v1/admin/teams/${team}/memberships/import`, {
        token: admin,
        json: { memberships: users.map((u) => ({ channel_id: "CBIG", user_id: u.id })) },
      }),
      201,
    );
    const t = await token(team, "U000001");
    const walk = async (q: string) => {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const page: PageBody = await ok<PageBody>(
          api("GET", `/v1/directory/people?q=${q}&limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token: t }),
        );
        ids.push(...page.items.map((i) => i.id));
        cursor = page.next_cursor;
      } while (cursor);
      return ids;
    };
    const common = await walk("comm");
    const rare = await walk("rare");
    expect(common).toHaveLength(users.filter((u) => u.email.startsWith("common")).length);
    expect(rare).toHaveLength(users.filter((u) => u.email.startsWith("rare")).length);
    expect(new Set(common).size).toBe(common.length);
    // a big channel: mentions walk the word index and still find members first
    const m = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/mentions?channel=CBIG&q=rare7&limit=5", { token: t }),
    );
    expect(m.items.map((i) => i.in_channel)).toEqual(m.items.map(() => true));
    expect(m.items[0]?.name).toMatch(/^rare7/);
  });

  // Matches beyond the page: the answer is the top of the documented rank
  // over ALL matches, not the first rows the word index happens to hold.
  // Ids run opposite to names, so word-index order (word, then id) is the
  // reverse of rank order (name, then id) and a ranking that cuts first and
  // sorts second returns the wrong people.
  it("ranks over all matches, then pages (short, long dense and long rare tokens)", async () => {
    const team = uniqueTeamId("T");
    await ok(api("POST", "/v1/admin/teams", { token: await platformToken(), json: { id: team, name: "Rank" } }), 201);
    const admin = await platformToken();
    const base = `/v1/admin/teams/${team}`;
    const N = 2_200;
    const pad = (n: number) => String(n).padStart(4, "0");
    // i = rank; handle (the local part) n0000.smith, n0001.smith, ...; every tenth a smithson.
    const people = Array.from({ length: N }, (_, i) => ({
      id: `UR${pad(N - 1 - i)}`,
      handle: `n${pad(i)}.${i % 10 === 3 ? "smithson" : "smith"}`,
    }));
    const viewer = "URVIEWER";
    await ok(
      api("POST", `${base}/users/import`, {
        token: admin,
        json: {
          users: [
            { id: viewer, email: "viewer@rank.test" },
            ...people.map((p) => ({ id: p.id, email: `${p.handle}@rank.test` })),
          ],
        },
      }),
      201,
    );
    // 15 channels smith-00 .. smith-14, ids again opposite to names; the viewer is in two.
    const channels = Array.from({ length: 15 }, (_, k) => ({
      id: `CR${pad(99 - k)}`,
      name: `smith-${String(k).padStart(2, "0")}`,
    }));
    for (const c of channels) await ok(api("POST", `${base}/channels`, { token: admin, json: c }), 201);
    await ok(api("POST", `${base}/channels`, { token: admin, json: { id: "CRBIG", name: "everyone" } }), 201);
    await ok(api("POST", `${base}/channels`, { token: admin, json: { id: "CRSMALL", name: "few" } }), 201);
    await ok(api("POST", `${base}/channels`, { token: admin, json: { id: "CRMID", name: "some" } }), 201);
    await ok(api("POST", `${base}/channels`, { token: admin, json: { id: "CRPAIR", name: "pair" } }), 201);
    const at = (i: number) => people[i] as { id: string; handle: string };
    const memberships = [
      ...[viewer, ...people.map((p) => p.id)].map((u) => ({ channel_id: "CRBIG", user_id: u })),
      ...[viewer, ...Array.from({ length: 10 }, (_, k) => at(1500 + k).id)].map((u) => ({
        channel_id: "CRSMALL",
        user_id: u,
      })),
      ...Array.from({ length: N / 10 }, (_, k) => ({ channel_id: "CRMID", user_id: at(k * 10).id })),
      { channel_id: "CRPAIR", user_id: viewer },
      { channel_id: "CRPAIR", user_id: at(2000).id },
      { channel_id: "CR0087", user_id: viewer }, // smith-12
      { channel_id: "CR0092", user_id: viewer }, // smith-07
    ];
    await ok(api("POST", `${base}/memberships/import`, { token: admin, json: { memberships } }), 201);
    const t = await token(team, viewer);

    const ranked = (word: string) =>
      people.filter((p) => p.handle.split(".").some((w) => w.startsWith(word))).map((p) => p.id);
    const ids = (items: Item[]) => items.map((i) => i.id);

    // Quick switcher: own channels, the frequent contact, other channels, people; each tier by name.
    const sw = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=smi&limit=30", { token: t }));
    const others = channels.filter((c) => !["CR0087", "CR0092"].includes(c.id)).map((c) => c.id);
    const contact = at(2000).id;
    expect(ids(sw.items)).toEqual([
      "CR0092",
      "CR0087",
      contact,
      ...others,
      ...ranked("smi")
        .filter((id) => id !== contact)
        .slice(0, 30 - 3 - others.length),
    ]);
    expect(sw.items.map((i) => i.reason)).toEqual([
      "member",
      "member",
      "contact",
      ...others.map(() => "match"),
      ...Array.from({ length: 30 - 3 - others.length }, () => "match"),
    ]);
    for (const q of ["smith", "smithson"]) {
      const res = await ok<{ items: Item[] }>(api("GET", `/v1/directory/switcher?q=${q}&limit=5`, { token: t }));
      const expected = q === "smith" ? ["CR0092", "CR0087", contact, others[0], others[1]] : ranked(q).slice(0, 5);
      expect(ids(res.items)).toEqual(expected);
    }
    const n07 = await ok<{ items: Item[] }>(api("GET", "/v1/directory/switcher?q=n07&limit=10", { token: t }));
    expect(ids(n07.items)).toEqual(ranked("n07").slice(0, 10));

    // Mentions, under each of queries.ts memberPlan's plans: a channel of
    // 2,201 (walk, probing membership), of 220 (walk, against its gathered
    // ids), of 11 (its members sorted).
    const big = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/mentions?channel=CRBIG&q=smi&limit=5", { token: t }),
    );
    expect(ids(big.items)).toEqual(ranked("smi").slice(0, 5));
    expect(big.items.every((i) => i.in_channel)).toBe(true);
    const mid = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/mentions?channel=CRMID&q=smi&limit=10", { token: t }),
    );
    expect(ids(mid.items)).toEqual(Array.from({ length: 10 }, (_, k) => at(k * 10).id));
    const midOthers = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/mentions?channel=CRMID&q=smithson&limit=10", { token: t }),
    );
    expect(ids(midOthers.items)).toEqual(ranked("smithson").slice(0, 10));
    expect(midOthers.items.every((i) => i.in_channel === false)).toBe(true);
    const small = await ok<{ items: Item[] }>(
      api("GET", "/v1/directory/mentions?channel=CRSMALL&q=smithson&limit=4", { token: t }),
    );
    expect(ids(small.items)).toEqual([at(1503).id, ...ranked("smithson").slice(0, 3)]);
    expect(small.items.map((i) => i.in_channel)).toEqual([true, false, false, false]);

    // Directory: every page, in rank order, for each plan.
    for (const q of ["smi", "smith", "smithson", "n2"]) {
      const all: string[] = [];
      let cursor: string | null = null;
      do {
        const page: PageBody = await ok<PageBody>(
          api("GET", `/v1/directory/people?q=${q}&limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token: t }),
        );
        all.push(...ids(page.items));
        cursor = page.next_cursor;
      } while (cursor);
      expect(all).toEqual(ranked(q));
    }
  });
});
