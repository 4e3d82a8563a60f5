import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { sharedChannelName } from "../../durable-objects/shared-channel/shared-channel";
import { depsFor } from "../../platform/deps";
import { shareChannel, unshareChannel } from "../../src/directory/admin";
import { api, ok, platformToken, token } from "./client";
import { buildTeam, Client, type Fixture, type Frame } from "./realtime-fixture";

// Ending a share end to end, through the use case (there is no route for it
// yet): the database, both team caches, the shared channel's object, and the
// sockets of the team that lost the channel, which lose its topic at once.

type Item = { id: string; name?: string; reason?: string };
type Header = { channel: { id: string; member_count: number; is_shared: boolean } };
type BootBody = {
  version: number;
  full: boolean;
  team: { channels: number };
  channels: Item[];
  channels_left?: string[];
};

const deps = () => depsFor(env as unknown as Env);
const cacheOf = (team: string) => env.TEAM_CACHE.get(env.TEAM_CACHE.idFromName(team));

describe("unsharing a channel", () => {
  let a: Fixture;
  let b: Fixture;
  let channel: string;
  const as = (f: Fixture, who: string) => token(f.team, f.ids[who] ?? who);
  const get = async <T>(f: Fixture, who: string, path: string) => api<T>("GET", path, { token: await as(f, who) });
  const connect = async (f: Fixture, who: string) => {
    const c = await Client.connect(await as(f, who));
    expect((await c.one()).type).toBe("hello");
    return c;
  };
  /** Frames until `unsubscribed` (at most `ms`), the unsubscribed frame last. */
  const untilUnsubscribed = async (c: Client, ms: number): Promise<Frame[]> => {
    const out: Frame[] = [];
    const deadline = Date.now() + ms;
    while (out.at(-1)?.type !== "unsubscribed") out.push(...(await c.take(1, Math.max(1, deadline - Date.now()))));
    return out;
  };

  beforeAll(async () => {
    a = await buildTeam();
    b = await buildTeam();
    // Warm caches: events flow through them.
    await ok(get(a, "ada", "/v1/directory/boot"));
    await ok(get(b, "bob", "/v1/directory/boot"));
    const created = await ok<{ channel: { id: string } }>(
      api("POST", `/v1/admin/teams/${a.team}/channels`, { token: a.admin, json: { name: "partners-unshare" } }),
      201,
    );
    channel = created.channel.id;
    await ok(
      api("POST", `/v1/admin/teams/${a.team}/channels/${channel}/share`, {
        token: await platformToken(),
        json: { team_id: b.team },
      }),
    );
    await ok(
      api("POST", `/v1/admin/teams/${a.team}/channels/${channel}/members`, {
        token: a.admin,
        json: { user_ids: [a.ids.ada, a.ids.bob] },
      }),
    );
    await ok(
      api("POST", `/v1/admin/teams/${a.team}/channels/${channel}/members`, {
        token: await platformToken(),
        json: { user_ids: [b.ids.bob, b.ids.cat], team_id: b.team },
      }),
    );
  });

  it("takes the channel from the other team's cache and sockets; the host keeps it with its own members", async () => {
    const topic = `channel:${channel}`;
    // Before: team B sees the channel, its members from both teams.
    const sw = await ok<{ items: Item[] }>(get(b, "bob", "/v1/directory/switcher?q=partners"));
    expect(sw.items).toEqual([expect.objectContaining({ id: channel, reason: "member" })]);
    expect((await ok<Header>(get(b, "dan", `/v1/directory/channels/${channel}`))).channel).toMatchObject({
      member_count: 4,
      is_shared: true,
    });
    const bootBefore = await ok<BootBody>(get(b, "bob", "/v1/directory/boot"));
    expect(bootBefore.channels.map((c) => c.id)).toContain(channel);

    // Sockets on the channel's topic: a member and a non-member of team B, a member of the host.
    const member = await connect(b, "bob");
    const reader = await connect(b, "dan");
    const host = await connect(a, "ada");
    for (const c of [member, reader, host])
      expect(await c.subscribe([{ topic }])).toMatchObject({ type: "subscribed" });

    const started = Date.now();
    const result = await unshareChannel(deps(), a.team, channel, b.team);
    expect(result.channel).toMatchObject({ teamId: a.team, id: channel, sharedWith: [] });
    expect(result.removed.map((m) => [m.userId, m.userTeamId]).sort()).toEqual(
      [
        [b.ids.bob, b.team],
        [b.ids.cat, b.team],
      ].sort(),
    );

    // Team B's sockets lose the topic within a second, members or not.
    for (const c of [member, reader]) {
      const frames = await untilUnsubscribed(c, 1_000 - (Date.now() - started));
      expect(frames.at(-1)).toEqual({ v: 1, type: "unsubscribed", topics: [topic], reason: "access_revoked" });
    }
    await ok(
      api("POST", `/v1/channels/${channel}/messages`, { token: await as(a, "ada"), json: { text: "hosts only" } }),
      201,
    );
    const hostFrames: Frame[] = [];
    while (!hostFrames.some((f) => (f.event as { text?: string } | undefined)?.text === "hosts only"))
      hostFrames.push(...(await host.take(1)));
    expect(hostFrames.some((f) => f.type === "unsubscribed")).toBe(false);
    expect(await member.rest()).toEqual([]);
    expect(await reader.rest()).toEqual([]);
    // Subscribing again is refused: the channel is unknown to team B.
    member.send({ v: 1, type: "subscribe", topics: [{ topic }] });
    expect(await member.one()).toMatchObject({ type: "error", code: "not_found", topic });
    for (const c of [member, reader, host]) c.close();

    // Team B's queries: the channel is unknown.
    for (const who of ["bob", "dan"]) {
      const items = (await ok<{ items: Item[] }>(get(b, who, "/v1/directory/switcher?q=partners"))).items;
      expect(items.map((i) => i.id)).not.toContain(channel);
      expect((await get(b, who, `/v1/directory/channels/${channel}`)).status).toBe(404);
      expect((await get(b, who, `/v1/directory/channels/${channel}/members`)).status).toBe(404);
      expect((await get(b, who, `/v1/directory/mentions?channel=${channel}&q=a`)).status).toBe(404);
    }
    const looked = await ok<{ channels: Item[] }>(
      api("POST", "/v1/directory/lookup", { token: await as(b, "bob"), json: { channels: [channel] } }),
    );
    expect(looked.channels).toEqual([]);
    const full = await ok<BootBody>(get(b, "bob", "/v1/directory/boot"));
    expect(full.channels.map((c) => c.id)).not.toContain(channel);
    expect(full.team.channels).toBe(bootBefore.team.channels - 1);
    const since = await ok<BootBody>(get(b, "bob", `/v1/directory/boot?since=${bootBefore.version}`));
    expect(since).toMatchObject({ full: false, channels: [], channels_left: [channel] });
    const cached = await runInDurableObject(cacheOf(b.team), (_i, state) => {
      const n = (q: string) => Number(state.storage.sql.exec<{ n: number }>(q, channel).one().n);
      return {
        channels: n("SELECT COUNT(*) AS n FROM channels WHERE id = ?"),
        members: n("SELECT COUNT(*) AS n FROM members WHERE channel_id = ?"),
        words: n("SELECT COUNT(*) AS n FROM channel_words WHERE channel_id = ?"),
        prefixes: n("SELECT COUNT(*) AS n FROM channel_prefixes WHERE channel_id = ?"),
      };
    });
    expect(cached).toEqual({ channels: 0, members: 0, words: 0, prefixes: 0 });

    // The host still has it, team-local now, with its own members only.
    expect((await ok<Header>(get(a, "ada", `/v1/directory/channels/${channel}`))).channel).toMatchObject({
      id: channel,
      member_count: 2,
      is_shared: false,
    });
    const members = await ok<{ items: Item[] }>(get(a, "ada", `/v1/directory/channels/${channel}/members?limit=10`));
    expect(members.items.map((m) => m.id).sort()).toEqual([a.ids.ada, a.ids.bob].sort());
    const hostSw = await ok<{ items: Item[] }>(get(a, "ada", "/v1/directory/switcher?q=partners"));
    expect(hostSw.items).toEqual([expect.objectContaining({ id: channel, reason: "member" })]);
    const object = env.SHARED_CHANNEL.get(env.SHARED_CHANNEL.idFromName(sharedChannelName(a.team, channel)));
    expect((await object.stats()).byTeam).toEqual({ [a.team]: 2 });

    // A full load of team B's cache reads the same from the database.
    await runInDurableObject(cacheOf(b.team), (_i, state) => {
      state.storage.sql.exec("UPDATE meta SET value = '0' WHERE key = 'loaded'");
    });
    await evictDurableObject(cacheOf(b.team));
    expect((await get(b, "bob", `/v1/directory/channels/${channel}`)).status).toBe(404);
    const reloaded = await ok<BootBody>(get(b, "bob", "/v1/directory/boot"));
    expect(reloaded.full).toBe(true);
    expect(reloaded.channels.map((c) => c.id)).not.toContain(channel);
    expect(reloaded.team.channels).toBe(full.team.channels);

    // Unsharing again changes nothing.
    const again = await unshareChannel(deps(), a.team, channel, b.team);
    expect(again.removed).toEqual([]);
  });

  it("shares again afterwards: the channel is back for team B, without its old members", async () => {
    // A member joins while the channel is the host's alone: no shared object follows it then.
    await ok(
      api("POST", `/v1/admin/teams/${a.team}/channels/${channel}/members`, {
        token: a.admin,
        json: { user_ids: [a.ids.cat] },
      }),
    );
    await shareChannel(deps(), a.team, channel, b.team);
    const header = await ok<Header>(get(b, "dan", `/v1/directory/channels/${channel}`));
    expect(header.channel).toMatchObject({ is_shared: true, member_count: 3 });
    const sw = await ok<{ items: Item[] }>(get(b, "bob", "/v1/directory/switcher?q=partners"));
    expect(sw.items).toEqual([expect.objectContaining({ id: channel, reason: "match" })]);
    const members = await ok<{ items: Item[] }>(get(b, "bob", `/v1/directory/channels/${channel}/members?limit=10`));
    expect(members.items.map((m) => m.id).sort()).toEqual([a.ids.ada, a.ids.bob, a.ids.cat].sort());
  });
});
