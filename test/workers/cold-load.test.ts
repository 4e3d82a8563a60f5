import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { LOAD_PAGE, LOAD_STEP, type TeamCache } from "../../durable-objects/team-cache/team-cache";
import { addUsers, api, newTeam, ok, platformToken, token } from "./client";

// A cold team answers its first callers without waiting for the whole team:
// the caller's own rows come from the database, the load goes on in steps
// (one per alarm) and resumes where it stopped. What the cache answers while
// loading, and what it holds once loaded, is what a cache loaded in one go
// answers and holds.

interface Fixture {
  team: string;
  admin: string;
  channels: { general: string; secret: string; guests: string };
  dm: string;
  group: string;
}

const U = { ada: "UADA", bob: "UBOB", amy: "UAMY", gus: "UGUS" } as const;

async function buildTeam(): Promise<Fixture> {
  const { id: team, admin } = await newTeam();
  await addUsers(team, [
    [U.ada, "member"],
    [U.bob, "member"],
    [U.amy, "member"],
    [U.gus, "guest"],
  ]);
  const operator = await platformToken();
  for (const [id, name, real] of [
    [U.ada, "ada", "Ada Lovelace"],
    [U.bob, "bob", "Bob Builder"],
    [U.amy, "amy", "Amy Adams"],
    [U.gus, "gus", "Gus Guest"],
  ] as const)
    await ok(
      api("PATCH", `/v1/admin/teams/${team}/users/${id}/profile`, { token: operator, json: { name, real_name: real } }),
    );
  const channel = async (name: string, isPrivate: boolean, members: string[]) => {
    const body = await ok<{ channel: { id: string } }>(
      api("POST", `/v1/admin/teams/${team}/channels`, { token: admin, json: { name, private: isPrivate } }),
      201,
    );
    await ok(
      api("POST", `/v1/admin/teams/${team}/channels/${body.channel.id}/members`, {
        token: admin,
        json: { user_ids: members },
      }),
    );
    return body.channel.id;
  };
  const channels = {
    general: await channel("general", false, [U.ada, U.bob, U.amy]),
    secret: await channel("secret-plans", true, [U.ada]),
    guests: await channel("guest-room", false, [U.gus, U.bob]),
  };
  const open = async (who: string, users: string[]) =>
    (
      await ok<{ conversation: { id: string } }>(
        api("POST", "/v1/conversations", { token: await token(team, who), json: { users } }),
        201,
      )
    ).conversation.id;
  const dm = await open(U.ada, [U.bob]);
  const group = await open(U.ada, [U.bob, U.amy]);
  return { team, admin, channels, dm, group };
}

const cacheOf = (team: string) => env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(team));

/** The loading internals a test drives (private in TypeScript, reachable in the object). */
interface Loader {
  loadStep(team: string): Promise<void>;
  beginLoad(team: string, resyncShared: boolean): Promise<void>;
  serialized<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Empties the team's cache and starts a new load whose steps wait for the
 * returned release (or fail, after `free` steps): a team too big to load
 * before the callers below are answered.
 */
async function coldAndHeld(team: string, free = 0, then: "wait" | "fail" = "wait"): Promise<() => void> {
  const stub = cacheOf(team);
  await stub.warm(team); // whatever load the fixture's writes started is over
  let held = true;
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const release = () => {
    held = false;
    open();
  };
  await runInDurableObject(stub, async (instance: TeamCache) => {
    const loader = instance as unknown as Loader;
    const step = loader.loadStep.bind(loader);
    let taken = 0;
    loader.loadStep = async (t: string) => {
      if (++taken > free && held) {
        // A step that fails is retried by a later alarm (LOAD_RETRY_MS); one
        // that waits holds the cache's queue (events wait behind it too).
        if (then === "fail") throw new Error("held: this step fails");
        await gate;
      }
      return step(t);
    };
    await loader.serialized(() => loader.beginLoad(team, false));
  });
  return release;
}

/** What a viewer's client asks first: boot, its conversations, and access to a channel's topic. */
async function firstAnswers(f: Fixture, viewer: string, channel: string) {
  const team = f.team;
  const stub = cacheOf(team);
  return {
    boot: await stub.boot(team, viewer, null),
    focus: await stub.focusedBoot(team, viewer, channel),
    // Cards of channels (with their member counts) need no one else's rows.
    channels: await stub.lookup(team, viewer, [], [channel, f.dm]),
    conversations: await stub.conversations(team, viewer, ["channel", "im", "mpim"], null, 100),
    access: await stub.channelAccess(team, viewer, channel),
    actor: await stub.actor(team, viewer),
  };
}

const SAVED = { page: { ...LOAD_PAGE }, stepMs: LOAD_STEP.ms };
afterEach(() => {
  Object.assign(LOAD_PAGE, SAVED.page);
  LOAD_STEP.ms = SAVED.stepMs;
});

describe("a cold team", () => {
  it("answers boot, conversations and channel access while it loads, exactly as the loaded cache does", async () => {
    const f = await buildTeam();
    const stub = cacheOf(f.team);
    await stub.warm(f.team);
    const loaded: Record<string, Awaited<ReturnType<typeof firstAnswers>>> = {};
    const viewers = [
      [U.ada, f.channels.secret],
      [U.bob, f.channels.secret],
      [U.gus, f.channels.general],
      [U.gus, f.channels.guests],
    ] as const;
    for (const [viewer, channel] of viewers) loaded[`${viewer}/${channel}`] = await firstAnswers(f, viewer, channel);
    const people = [U.ada, U.bob, U.gus, "UNOBODY"];
    const profiles = {
      ada: await stub.lookup(f.team, U.ada, people, []),
      gus: await stub.lookup(f.team, U.gus, people, []),
    };
    // The focused boot over HTTP: a channel whose newest message mentions bob.
    const ada = await token(f.team, U.ada);
    await ok(
      api("POST", `/v1/conversations/${f.channels.general}/messages`, {
        token: ada,
        json: { text: "hello <@UBOB>", mentions: [U.bob] },
      }),
      201,
    );
    const focusPath = `/v1/directory/boot?focus=${f.channels.general}`;
    const focused = await ok(api("GET", focusPath, { token: ada }));

    const release = await coldAndHeld(f.team);
    const during = await stub.stats();
    expect(during.loaded).toBe(false);
    expect(during.loading).toMatchObject({ phase: "users", steps: 0 });
    for (const [viewer, channel] of viewers)
      expect(await firstAnswers(f, viewer, channel), `${viewer} asking about ${channel}`).toEqual(
        loaded[`${viewer}/${channel}`],
      );
    // People as a member sees them: the profiles come from the database too.
    expect(await stub.lookup(f.team, U.ada, people, [])).toEqual(profiles.ada);
    expect(await ok(api("GET", focusPath, { token: ada }))).toEqual(focused);
    // A guest sees only people it shares a channel with, which takes
    // everyone's memberships: that question waits for the load.
    const guest = stub.lookup(f.team, U.gus, people, []);
    const waited = await Promise.race([guest.then(() => false), new Promise((r) => setTimeout(() => r(true), 300))]);
    expect(waited).toBe(true);
    // Answered without a single load step.
    expect((await stub.stats()).loading).toMatchObject({ phase: "users", steps: 0 });
    release();
    expect(await guest).toEqual(profiles.gus);
    // Someone outside the team, or deactivated, is refused as on a loaded cache.
    expect(await stub.boot(f.team, "UNOBODY", null)).toMatchObject({ ok: false, kind: "forbidden" });
    await stub.warm(f.team);
  });

  it("answers from the database as it is now while loading, and ends with what a load in one go holds", async () => {
    const f = await buildTeam();
    const stub = cacheOf(f.team);
    // Held by failing steps: writes during the load apply their events, which
    // queue behind a step, so a step that waited forever would hold them.
    const release = await coldAndHeld(f.team, 0, "fail");
    await stub.boot(f.team, U.ada, null);
    // Writes while the load waits (through admin routes, which never wait for
    // a load): a rename, a DM member's new name, a member leaving, one joining.
    await ok(
      api("PATCH", `/v1/admin/teams/${f.team}/channels/${f.channels.general}`, {
        token: f.admin,
        json: { name: "town-square" },
      }),
    );
    await ok(
      api("PATCH", `/v1/admin/teams/${f.team}/users/${U.bob}/profile`, {
        token: f.admin,
        json: { name: "rob", real_name: "Robert Builder", display_name: "robert" },
      }),
    );
    await ok(
      api("DELETE", `/v1/admin/teams/${f.team}/channels/${f.channels.general}/members/${U.amy}`, { token: f.admin }),
    );
    await ok(
      api("POST", `/v1/admin/teams/${f.team}/channels/${f.channels.secret}/members`, {
        token: f.admin,
        json: { user_ids: [U.bob] },
      }),
    );
    const boot = await stub.boot(f.team, U.ada, null);
    if (!boot.ok) throw new Error(boot.message);
    expect(boot.value.channels.map((c) => c.name)).toContain("town-square");
    expect(boot.value.conversations.find((c) => c.id === f.dm)?.name).toBe("robert");
    expect(boot.value.conversations.find((c) => c.id === f.group)?.name).toMatch(/robert/);
    expect(await stub.channelAccess(f.team, U.amy, f.channels.general)).toEqual({ ok: true, value: { host: f.team } });
    const amy = await stub.conversations(f.team, U.amy, ["channel"], null, 10);
    expect(amy.ok && amy.value.items.map((c) => c.id)).not.toContain(f.channels.general);
    expect(await stub.channelAccess(f.team, U.bob, f.channels.secret)).toEqual({ ok: true, value: { host: f.team } });
    expect((await stub.stats()).loaded).toBe(false);
    // One more change of a row the cache took for a caller: the load's page
    // overwrites that row, and its old words must not stay behind.
    await ok(
      api("PATCH", `/v1/admin/teams/${f.team}/users/${U.bob}/profile`, { token: f.admin, json: { name: "robbie" } }),
    );

    release();
    await stub.warm(f.team);
    const after = await stub.boot(f.team, U.ada, null);
    if (!after.ok) throw new Error(after.message);
    expect({ ...after.value, version: 0 }).toEqual({ ...boot.value, version: 0 });

    // A cache loaded in one go, now, holds the same: every query answers alike.
    const fresh = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(`${f.team}#fresh`));
    await fresh.warm(f.team);
    await expectSameAnswers(stub, fresh, f);
    const [a, b] = [await stub.stats(), await fresh.stats()];
    expect(a.rows).toEqual(b.rows);
    expect(a.version).toBe(b.version);
  });

  it("loads in steps that resume where they stopped after an eviction", async () => {
    const f = await buildTeam();
    Object.assign(LOAD_PAGE, { users: 2, channels: 2, memberships: 3 });
    LOAD_STEP.ms = 0; // one page per step
    const fresh = env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(`${f.team}#steps`));
    await fresh.warm(f.team);
    const oneGo = await fresh.stats();
    expect(oneGo.loadSteps).toBeGreaterThan(5);

    const stub = cacheOf(f.team);
    await coldAndHeld(f.team, 3, "fail");
    // Three steps run (by the alarm), the fourth fails: then the object goes away.
    for (let i = 0; i < 200 && ((await stub.stats()).loading?.steps ?? 0) < 3; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect((await stub.stats()).loading).toMatchObject({ steps: 3 });
    await evictDurableObject(stub);
    // A new instance goes on from the saved cursor (its alarm, or a caller that needs the whole team).
    const res = await ok<{ items: Array<{ id: string }> }>(
      api("GET", "/v1/directory/switcher?q=town", { token: await token(f.team, U.ada) }),
    );
    expect(res.items).toEqual([]);
    const done = await stub.stats();
    expect(done.loaded).toBe(true);
    // Resumed, not restarted: the same number of steps as a load in one go.
    expect(done.loadSteps).toBe(oneGo.loadSteps);
    expect(done.loadMaxStepMs).not.toBeNull();
    expect(done.rows).toEqual(oneGo.rows);
    await expectSameAnswers(stub, fresh, f);
  });
});

type CacheStub = ReturnType<typeof cacheOf>;

/** The same answers from two caches of one team, for every viewer and query kind. */
async function expectSameAnswers(a: CacheStub, b: CacheStub, f: Fixture): Promise<void> {
  const t = f.team;
  for (const viewer of [U.ada, U.bob, U.amy, U.gus]) {
    for (const q of ["a", "b", "town", "gen", "general", "robert", "secret", "gus", "bob am"])
      expect(await a.quickSwitcher(t, viewer, q, 10), `${viewer} switcher ${q}`).toEqual(
        await b.quickSwitcher(t, viewer, q, 10),
      );
    for (const q of ["", "a", "b"])
      expect(await a.mentions(t, viewer, f.channels.general, q, 10)).toEqual(
        await b.mentions(t, viewer, f.channels.general, q, 10),
      );
    for (const filter of [{ limit: 20 }, { q: "rob", limit: 20 }, { deactivated: "include" as const, limit: 20 }])
      expect(await a.directory(t, viewer, filter)).toEqual(await b.directory(t, viewer, filter));
    for (const c of Object.values(f.channels)) {
      expect(await a.channel(t, viewer, c)).toEqual(await b.channel(t, viewer, c));
      expect(await a.channelMembers(t, viewer, c, null, 20)).toEqual(await b.channelMembers(t, viewer, c, null, 20));
    }
    const boots = [await a.boot(t, viewer, null), await b.boot(t, viewer, null)];
    expect(boots[0]).toEqual(boots[1]);
    expect(await a.conversations(t, viewer, ["channel", "im", "mpim"], null, 100)).toEqual(
      await b.conversations(t, viewer, ["channel", "im", "mpim"], null, 100),
    );
  }
}
