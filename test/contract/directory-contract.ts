import { describe, expect, it } from "vitest";
import { importChannelsOnce, importMembershipsOnce } from "../../src/directory/imports";
import type { ChangeEvent, DirChannel, Membership } from "../../src/directory/model";
import type { DirectorySource } from "../../src/directory/source";
import type { DirectoryWriter, NewChannel } from "../../src/directory/writer";
import type { User } from "../../src/teams/model";
import { directoryStore } from "../../storage/directory-store";
import { type Backend, uniqueTeamId } from "./fixtures";

// The directory contract: the edge cache's source of truth behaves the same
// on every adapter. Versions dense, writes atomic, pages complete and ordered,
// change log rebuilt with current state.

const NOW = 1_700_000_000_000;

type Directory = DirectorySource & DirectoryWriter;

const pad = (n: number) => String(n).padStart(7, "0");
const userId = (n: number) => `U${pad(n)}`;
const channelId = (n: number) => `C${pad(n)}`;

function user(teamId: string, n: number): User {
  return {
    teamId,
    id: userId(n),
    email: `user${n}@acme.test`,
    domain: "acme.test",
    role: "member",
    deactivated: false,
    createdAt: NOW,
    updatedAt: NOW,
  };
}

function channel(n: number, extra: Partial<NewChannel> = {}): NewChannel {
  return { id: channelId(n), name: `chan-${n}`, topic: "", purpose: "", isPrivate: false, ...extra };
}

/** A team with `users` users (U0000001...); returns its id and the directory. */
async function setup(open: () => Promise<Backend>, users = 0): Promise<{ dir: Directory; teamId: string }> {
  const { driver, store } = await open();
  const teamId = uniqueTeamId("T");
  await store.createTeam({ id: teamId, name: teamId, plan: "pro", claimedDomains: [], createdAt: NOW, healedAt: null });
  if (users > 0) await store.insertUsers(Array.from({ length: users }, (_, i) => user(teamId, i + 1)));
  return { dir: directoryStore(driver), teamId };
}

async function addTeam(open: () => Promise<Backend>, users: number): Promise<string> {
  const { store } = await open();
  const teamId = uniqueTeamId("T");
  await store.createTeam({ id: teamId, name: teamId, plan: "pro", claimedDomains: [], createdAt: NOW, healedAt: null });
  await store.insertUsers(Array.from({ length: users }, (_, i) => user(teamId, 9_000 + i)));
  return teamId;
}

const versions = (events: ChangeEvent[]) => events.map((e) => e.version);
const kinds = (events: ChangeEvent[]) => events.map((e) => e.change.kind);

async function allChanges(dir: Directory, teamId: string, since = 0): Promise<ChangeEvent[]> {
  return dir.changesSince(teamId, since, 100_000);
}

export function directoryContract(open: () => Promise<Backend>): void {
  describe("directory versions", () => {
    it("gives every event the next version, and no-op writes none", async () => {
      const { dir, teamId } = await setup(open, 5);
      expect(await dir.version(teamId)).toBe(0);

      const created = await dir.createChannel(teamId, channel(1, { name: "general" }), NOW);
      expect(versions(created.events)).toEqual([1]);
      expect(created.channel).toMatchObject({ teamId, id: channelId(1), name: "general", sharedWith: [] });

      const topic = await dir.updateChannel(teamId, channelId(1), { topic: "hello" }, NOW + 1);
      expect(versions(topic.events)).toEqual([2]);
      expect(topic.channel).toMatchObject({ topic: "hello", updatedAt: NOW + 1 });

      const added = await dir.addMembers(
        teamId,
        channelId(1),
        [1, 2, 3].map((n) => ({ userId: userId(n) })),
        NOW + 2,
      );
      expect(versions(added.events)).toEqual([3, 4, 5]);
      expect(kinds(added.events)).toEqual(["member_added", "member_added", "member_added"]);

      const removed = await dir.removeMembers(teamId, channelId(1), [userId(2)], NOW + 3);
      expect(removed.events).toEqual([
        {
          teamId,
          version: 6,
          change: {
            kind: "member_removed",
            membership: { channelId: channelId(1), userId: userId(2), userTeamId: teamId },
          },
        },
      ]);

      const profile = await dir.updateProfile(
        teamId,
        userId(1),
        { name: "ada", realName: "Ada Lovelace ✨", isBot: true },
        NOW + 4,
      );
      expect(versions(profile.events)).toEqual([7]);
      expect(profile.user).toMatchObject({
        name: "ada",
        realName: "Ada Lovelace ✨",
        isBot: true,
        tz: "UTC",
        role: "member",
      });

      const users = await dir.recordUserChanges(teamId, [userId(4), userId(5), userId(4)], NOW + 5);
      expect(versions(users)).toEqual([8, 9]);

      // Writes that change nothing bump nothing.
      expect((await dir.updateChannel(teamId, channelId(1), { topic: "hello" }, NOW + 6)).events).toEqual([]);
      expect((await dir.addMembers(teamId, channelId(1), [{ userId: userId(1) }], NOW + 6)).events).toEqual([]);
      expect((await dir.removeMembers(teamId, channelId(1), [userId(2)], NOW + 6)).events).toEqual([]);
      expect((await dir.updateProfile(teamId, userId(1), { name: "ada" }, NOW + 6)).events).toEqual([]);

      expect(await dir.version(teamId)).toBe(9);
      expect(versions(await allChanges(dir, teamId))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    it("gives concurrent writers distinct, dense versions", async () => {
      const { dir, teamId } = await setup(open, 20);
      await dir.createChannel(teamId, channel(1), NOW);
      const results = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) => dir.createChannel(teamId, channel(i + 2), NOW).then((r) => r.events)),
        ...Array.from({ length: 10 }, (_, i) =>
          dir
            .addMembers(teamId, channelId(1), [{ userId: userId(i + 1) }, { userId: userId(i + 11) }], NOW)
            .then((r) => r.events),
        ),
      ]);
      const returned = results.flat().map((e) => e.version);
      expect([...returned].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 2));
      expect(versions(await allChanges(dir, teamId))).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
      expect(await dir.pageMemberships(teamId, null, 100)).toHaveLength(20);
    });

    it("keeps each team's versions to itself", async () => {
      const a = await setup(open);
      const b = await setup(open);
      await a.dir.createChannel(a.teamId, channel(1), NOW);
      await a.dir.createChannel(a.teamId, channel(2), NOW);
      const inB = await b.dir.createChannel(b.teamId, channel(1), NOW);
      expect(versions(inB.events)).toEqual([1]);
      expect(await a.dir.version(a.teamId)).toBe(2);
    });
  });

  describe("atomic writes", () => {
    it("bumps nothing when a write fails: taken name, taken id, rename onto a taken name", async () => {
      const { dir, teamId } = await setup(open);
      await dir.createChannel(teamId, channel(1, { name: "general" }), NOW);
      await dir.createChannel(teamId, channel(2, { name: "random" }), NOW);
      await expect(dir.createChannel(teamId, channel(3, { name: "general" }), NOW)).rejects.toMatchObject({
        kind: "conflict",
        details: { names: ["general"] },
      });
      await expect(dir.createChannel(teamId, channel(1, { name: "fresh" }), NOW)).rejects.toMatchObject({
        kind: "conflict",
        details: { ids: [channelId(1)] },
      });
      await expect(dir.updateChannel(teamId, channelId(2), { name: "general", topic: "x" }, NOW)).rejects.toMatchObject(
        { kind: "conflict" },
      );
      expect(await dir.version(teamId)).toBe(2);
      expect(versions(await allChanges(dir, teamId))).toEqual([1, 2]);
      const [random] = await dir.pageChannels(teamId, channelId(1), 1);
      expect(random).toMatchObject({ name: "random", topic: "" });
    });

    it("rejects invalid names and unknown teams, channels and users", async () => {
      const { dir, teamId } = await setup(open, 1);
      await expect(dir.createChannel(teamId, channel(1, { name: "Not Valid" }), NOW)).rejects.toMatchObject({
        kind: "invalid",
      });
      await expect(dir.createChannel(`${teamId}X`, channel(1), NOW)).rejects.toMatchObject({ kind: "not_found" });
      await expect(dir.updateChannel(teamId, channelId(9), { topic: "x" }, NOW)).rejects.toMatchObject({
        kind: "not_found",
      });
      await dir.createChannel(teamId, channel(1), NOW);
      await expect(dir.addMembers(teamId, channelId(1), [{ userId: "UNOBODY" }], NOW)).rejects.toMatchObject({
        kind: "not_found",
        details: { users: ["UNOBODY"] },
      });
      await expect(dir.removeMembers(teamId, channelId(1), ["UNOBODY"], NOW)).rejects.toMatchObject({
        kind: "not_found",
      });
      await expect(dir.updateProfile(teamId, "UNOBODY", { title: "x" }, NOW)).rejects.toMatchObject({
        kind: "not_found",
      });
      expect(await dir.version(teamId)).toBe(1);
    });
  });

  describe("paging", () => {
    it("pages thousands of users, channels and memberships completely, in order", async () => {
      const { dir, teamId } = await setup(open, 2_500);
      const channels = Array.from({ length: 2_100 }, (_, i) => channel(i + 1, { isPrivate: i % 7 === 0 }));
      const imported = await dir.importChannels(teamId, [...channels].reverse(), NOW);
      expect(imported.imported).toBe(2_100);
      const members: Membership[] = [];
      for (let c = 1; c <= 30; c++) {
        for (let u = 1; u <= 100; u++)
          members.push({ channelId: channelId(c), userId: userId(c * 50 + u), userTeamId: teamId });
      }
      await dir.importMemberships(teamId, members, NOW);

      const users: string[] = [];
      for (let after: string | null = null; ; ) {
        const page = await dir.pageUsers(teamId, after, 700);
        users.push(...page.map((u) => u.id));
        if (page.length < 700) break;
        after = page.at(-1)?.id ?? null;
      }
      expect(users).toEqual(Array.from({ length: 2_500 }, (_, i) => userId(i + 1)));

      const seen: DirChannel[] = [];
      for (let after: string | null = null; ; ) {
        const page = await dir.pageChannels(teamId, after, 700);
        seen.push(...page);
        if (page.length < 700) break;
        after = page.at(-1)?.id ?? null;
      }
      expect(seen.map((c) => c.id)).toEqual(channels.map((c) => c.id));
      expect(seen.filter((c) => c.isPrivate)).toHaveLength(300);

      const paged: Membership[] = [];
      for (let after: { channelId: string; userId: string } | null = null; ; ) {
        const page = await dir.pageMemberships(teamId, after, 700);
        paged.push(...page);
        if (page.length < 700) break;
        after = page.at(-1) ?? null;
      }
      const key = (m: Membership) => `${m.channelId}/${m.userId}`;
      expect(paged.map(key)).toEqual(members.map(key).sort());
    });
  });

  describe("bulk imports", () => {
    it("log one reload change per import, all or nothing", async () => {
      const { dir, teamId } = await setup(open, 10);
      await dir.createChannel(teamId, channel(1, { name: "general" }), NOW);
      const channels = await dir.importChannels(teamId, [channel(2), channel(3)], NOW);
      expect(channels.events).toEqual([{ teamId, version: 2, change: { kind: "reload" } }]);

      // One taken name: nothing written, nothing bumped.
      await expect(
        dir.importChannels(teamId, [channel(4), channel(5, { name: "general" })], NOW),
      ).rejects.toMatchObject({ kind: "conflict", details: { names: ["general"] } });
      await expect(dir.importChannels(teamId, [channel(6), channel(6, { name: "other" })], NOW)).rejects.toMatchObject({
        kind: "invalid",
      });
      expect(await dir.pageChannels(teamId, channelId(3), 10)).toEqual([]);

      // Unknown channel or user: nothing written. An existing membership is kept.
      await dir.addMembers(teamId, channelId(1), [{ userId: userId(1) }], NOW);
      await expect(
        dir.importMemberships(
          teamId,
          [
            { channelId: channelId(1), userId: userId(2) },
            { channelId: channelId(9), userId: userId(2) },
            { channelId: channelId(2), userId: "UNOBODY" },
          ],
          NOW,
        ),
      ).rejects.toMatchObject({ kind: "not_found", details: { channels: [channelId(9)], users: ["UNOBODY"] } });
      const rows = [1, 2, 3].flatMap((u) =>
        [channelId(1), channelId(2)].map((c) => ({ channelId: c, userId: userId(u) })),
      );
      const memberships = await dir.importMemberships(teamId, [...rows, ...rows], NOW);
      expect(memberships).toEqual({ imported: 6, events: [{ teamId, version: 4, change: { kind: "reload" } }] });
      expect(await dir.pageMemberships(teamId, null, 100)).toHaveLength(6);

      expect(kinds(await allChanges(dir, teamId))).toEqual(["channel", "reload", "member_added", "reload"]);
      expect((await dir.recordReload(teamId, NOW)).map((e) => e.version)).toEqual([5]);
    });
  });

  describe("imports with an Idempotency-Key", () => {
    it("commit the key's record with the import: a retry replays it, a twin racing with the key writes nothing", async () => {
      const { dir, teamId } = await setup(open, 3);
      const { store } = await open();
      const deps = { store, directory: dir, clock: { now: () => NOW } };
      const channels = [channel(1), channel(2)];
      const first = await importChannelsOnce(deps, teamId, channels, { key: "k-chan", requestHash: "h1" });
      expect(first).toMatchObject({ value: { imported: 2 }, replayed: false });
      expect(kinds(first.events)).toEqual(["reload"]);
      const version = await dir.version(teamId);
      // The client lost the answer and sends it again: the first answer, nothing written or published.
      expect(await importChannelsOnce(deps, teamId, channels, { key: "k-chan", requestHash: "h1" })).toEqual({
        value: { imported: 2 },
        replayed: true,
        events: [],
      });
      expect(await dir.version(teamId)).toBe(version);
      expect((await store.idempotencyRecord(teamId, "k-chan"))?.result).toBe(JSON.stringify({ imported: 2 }));
      // A twin that passed the lookup before the first committed: its unit fails on the key, whole.
      const record = (answer: { imported: number }) => ({
        key: "k-chan",
        requestHash: "h1",
        result: "{}",
        at: NOW,
        ...answer,
      });
      await expect(dir.importChannels(teamId, [channel(3)], NOW, record)).rejects.toMatchObject({ kind: "conflict" });
      expect(await dir.pageChannels(teamId, channelId(2), 10)).toEqual([]);

      const rows = [1, 2, 3].map((u) => ({ channelId: channelId(1), userId: userId(u) }));
      const idem = { key: "k-members", requestHash: "h2" };
      expect(await importMembershipsOnce(deps, teamId, [...rows, ...rows], idem)).toMatchObject({
        value: { imported: 3 },
        replayed: false,
      });
      expect(await importMembershipsOnce(deps, teamId, [...rows, ...rows], idem)).toEqual({
        value: { imported: 3 },
        replayed: true,
        events: [],
      });
      const twin = (answer: { imported: number }) => ({
        key: "k-members",
        requestHash: "h2",
        result: "{}",
        at: NOW,
        ...answer,
      });
      await expect(
        dir.importMemberships(teamId, [{ channelId: channelId(2), userId: userId(1) }], NOW, twin),
      ).rejects.toMatchObject({ kind: "conflict" });
      expect(await dir.pageMemberships(teamId, null, 100)).toHaveLength(3);
      expect(kinds(await allChanges(dir, teamId))).toEqual(["reload", "reload"]);
    });
  });

  describe("shared channels", () => {
    it("appear in every team's pageChannels with the host and sharedWith; events fan out", async () => {
      const { dir, teamId: host } = await setup(open, 3);
      const x = await addTeam(open, 2);
      const y = await addTeam(open, 1);
      await dir.createChannel(host, channel(1, { name: "partners" }), NOW);
      await dir.createChannel(host, channel(2, { name: "internal" }), NOW);
      await dir.createChannel(x, channel(5, { name: "x-own" }), NOW);

      const shared = await dir.shareChannel(host, channelId(1), x, NOW + 1);
      expect(shared.channel.sharedWith).toEqual([x]);
      expect(shared.events.map((e) => [e.teamId, e.version, e.change.kind]).sort()).toEqual(
        [
          [host, 3, "channel"],
          [x, 2, "channel"],
        ].sort(),
      );
      expect((await dir.shareChannel(host, channelId(1), x, NOW + 2)).events).toEqual([]);
      await dir.shareChannel(host, channelId(1), y, NOW + 3);

      const inX = await dir.pageChannels(x, null, 10);
      expect(inX.map((c) => [c.id, c.teamId])).toEqual([
        [channelId(1), host],
        [channelId(5), x],
      ]);
      expect(inX[0]?.sharedWith).toEqual([x, y].sort());
      const inHost = await dir.pageChannels(host, null, 10);
      expect(inHost.map((c) => [c.id, c.sharedWith])).toEqual([
        [channelId(1), [x, y].sort()],
        [channelId(2), []],
      ]);

      // One id per team's view; no sharing with oneself.
      await expect(dir.createChannel(x, channel(1, { name: "clash" }), NOW)).rejects.toMatchObject({
        kind: "conflict",
      });
      await dir.createChannel(y, channel(2, { name: "y-two" }), NOW);
      await expect(dir.shareChannel(host, channelId(2), y, NOW)).rejects.toMatchObject({ kind: "conflict" });
      await expect(dir.shareChannel(host, channelId(2), host, NOW)).rejects.toMatchObject({ kind: "invalid" });
      await expect(dir.shareChannel(host, channelId(2), `${x}Z`, NOW)).rejects.toMatchObject({ kind: "not_found" });

      // A change to the channel is an event in all three teams.
      const renamed = await dir.updateChannel(host, channelId(1), { name: "partners-2" }, NOW + 4);
      expect(renamed.events.map((e) => e.teamId).sort()).toEqual([host, x, y].sort());
      for (const e of renamed.events)
        expect(e.change).toMatchObject({ kind: "channel", channel: { name: "partners-2" } });
      expect((await dir.changesSince(x, 0, 10)).map((e) => e.change.kind)).toEqual(["channel", "channel", "channel"]);
    });

    it("holds members from several teams, in the host's memberships and log only", async () => {
      const { dir, teamId: host } = await setup(open, 2);
      const x = await addTeam(open, 2);
      const stranger = await addTeam(open, 1);
      await dir.createChannel(host, channel(1), NOW);
      await dir.createChannel(host, channel(2), NOW);
      await dir.shareChannel(host, channelId(1), x, NOW);
      const xVersion = await dir.version(x);

      const added = await dir.addMembers(
        host,
        channelId(1),
        [{ userId: userId(1) }, { userId: userId(9_000), userTeamId: x }],
        NOW,
      );
      expect(added.events.map((e) => [e.teamId, e.change])).toEqual([
        [host, { kind: "member_added", membership: { channelId: channelId(1), userId: userId(1), userTeamId: host } }],
        [host, { kind: "member_added", membership: { channelId: channelId(1), userId: userId(9_000), userTeamId: x } }],
      ]);
      expect(await dir.pageMemberships(host, null, 10)).toEqual([
        { channelId: channelId(1), userId: userId(1), userTeamId: host },
        { channelId: channelId(1), userId: userId(9_000), userTeamId: x },
      ]);
      expect(await dir.pageMemberships(x, null, 10)).toEqual([]);
      expect(await dir.version(x)).toBe(xVersion);
      // The shared channel's object loads the whole list; team x's cache only its own users' rows.
      expect(await dir.pageChannelMembers(host, channelId(1), null, 10)).toEqual([
        { channelId: channelId(1), userId: userId(1), userTeamId: host },
        { channelId: channelId(1), userId: userId(9_000), userTeamId: x },
      ]);
      expect(await dir.pageChannelMembers(host, channelId(1), userId(1), 10)).toHaveLength(1);
      expect(await dir.pageForeignMemberships(x, null, 10)).toEqual([
        { channelId: channelId(1), userId: userId(9_000), userTeamId: x },
      ]);
      expect(await dir.pageForeignMemberships(host, null, 10)).toEqual([]);

      // Not shared with that team, or not shared at all: the user is unknown here.
      await expect(
        dir.addMembers(host, channelId(1), [{ userId: userId(9_000), userTeamId: stranger }], NOW),
      ).rejects.toMatchObject({ kind: "not_found" });
      await expect(
        dir.addMembers(host, channelId(2), [{ userId: userId(9_000), userTeamId: x }], NOW),
      ).rejects.toMatchObject({ kind: "not_found" });

      const removed = await dir.removeMembers(host, channelId(1), [userId(9_000)], NOW);
      expect(removed.events[0]?.change).toEqual({
        kind: "member_removed",
        membership: { channelId: channelId(1), userId: userId(9_000), userTeamId: x },
      });
    });

    it("gives one caller's rows as a load would: memberships, channels, DM members, counts", async () => {
      const { dir, teamId: host } = await setup(open, 3);
      const x = await addTeam(open, 2);
      await dir.createChannel(host, channel(1, { name: "partners" }), NOW);
      await dir.createChannel(host, channel(2, { name: "internal", isPrivate: true }), NOW);
      await dir.createChannel(x, channel(5, { name: "x-own" }), NOW);
      await dir.shareChannel(host, channelId(1), x, NOW);
      await dir.addMembers(host, channelId(1), [{ userId: userId(1) }, { userId: userId(9_000), userTeamId: x }], NOW);
      await dir.addMembers(host, channelId(2), [{ userId: userId(1) }, { userId: userId(2) }], NOW);
      await dir.addMembers(x, channelId(5), [{ userId: userId(9_000) }], NOW);
      // A deactivated user is not counted.
      await (await open()).store.insertUsers([{ ...user(host, 50), deactivated: true }]);

      // Exactly the rows pageMemberships and pageForeignMemberships hold for the user.
      const loaded = async (team: string) => [
        ...(await dir.pageMemberships(team, null, 100)),
        ...(await dir.pageForeignMemberships(team, null, 100)),
      ];
      for (const [team, user] of [
        [host, userId(1)],
        [host, userId(2)],
        [x, userId(9_000)],
        [x, userId(9_001)],
      ] as const) {
        const expected = (await loaded(team))
          .filter((m) => m.userId === user && m.userTeamId === team)
          .sort((a, b) => a.channelId.localeCompare(b.channelId));
        expect(await dir.membershipsOfUser(team, user)).toEqual(expected);
      }
      // Another team's id for the user: nothing.
      expect(await dir.membershipsOfUser(x, userId(1))).toEqual([]);

      // Channels as the team sees them: its own and those shared in, never another team's.
      const inX = await dir.channels(x, [channelId(1), channelId(5), channelId(2)]);
      expect(inX).toEqual((await dir.pageChannels(x, null, 10)).filter((c) => c.id !== channelId(2)));
      expect(await dir.channels(host, [channelId(5)])).toEqual([]);
      expect(await dir.membersOf(host, [channelId(2)])).toEqual([
        { channelId: channelId(2), userId: userId(1), userTeamId: host },
        { channelId: channelId(2), userId: userId(2), userTeamId: host },
      ]);
      expect(await dir.membersOf(x, [channelId(2)])).toEqual([]);
      // The team's own users only: x's member of the shared channel is not the host's to count.
      expect(await dir.memberCounts(host, [channelId(1), channelId(2), channelId(5)])).toEqual({
        [channelId(1)]: 1,
        [channelId(2)]: 2,
      });
      expect(await dir.memberCounts(x, [channelId(1), channelId(5)])).toEqual({ [channelId(5)]: 1 });
      expect(await dir.counts(host)).toEqual({ activeUsers: 3, channels: 2 });
      expect(await dir.counts(x)).toEqual({ activeUsers: 2, channels: 2 });
    });

    it("unshare ends the share and removes the other team's members only, logged in both teams", async () => {
      const { dir, teamId: host } = await setup(open, 2);
      const x = await addTeam(open, 2);
      const y = await addTeam(open, 3);
      await dir.createChannel(host, channel(1, { name: "partners" }), NOW);
      await dir.createChannel(host, channel(2, { name: "other" }), NOW);
      await dir.shareChannel(host, channelId(1), x, NOW);
      await dir.shareChannel(host, channelId(1), y, NOW);
      await dir.shareChannel(host, channelId(2), x, NOW);
      const member = (u: number, team: string, c = 1): Membership => ({
        channelId: channelId(c),
        userId: userId(u),
        userTeamId: team,
      });
      await dir.addMembers(
        host,
        channelId(1),
        [
          { userId: userId(1) },
          { userId: userId(9_000), userTeamId: x },
          { userId: userId(9_001), userTeamId: x },
          { userId: userId(9_002), userTeamId: y },
        ],
        NOW,
      );
      await dir.addMembers(host, channelId(2), [{ userId: userId(9_000), userTeamId: x }], NOW);
      const [hostV, xV, yV] = [await dir.version(host), await dir.version(x), await dir.version(y)];

      const r = await dir.unshareChannel(host, channelId(1), x, NOW + 5);
      expect(r.channel).toMatchObject({ teamId: host, id: channelId(1), sharedWith: [y], updatedAt: NOW + 5 });
      expect(r.removed).toEqual([member(9_000, x), member(9_001, x)]);
      expect(r.events.map((e) => [e.teamId, e.version, e.change.kind]).sort()).toEqual(
        [
          [host, hostV + 1, "member_removed"],
          [host, hostV + 2, "member_removed"],
          [host, hostV + 3, "channel"],
          [x, xV + 1, "channel"],
        ].sort(),
      );
      const inHost = r.events.filter((e) => e.teamId === host);
      expect(inHost.slice(0, 2).map((e) => e.change)).toEqual([
        { kind: "member_removed", membership: member(9_000, x) },
        { kind: "member_removed", membership: member(9_001, x) },
      ]);
      // The log says the same to a cache catching up: the channel as it is now, in both teams.
      expect(await dir.changesSince(host, hostV, 10)).toEqual(inHost);
      expect(await dir.changesSince(x, xV, 10)).toEqual(r.events.filter((e) => e.teamId === x));
      for (const e of r.events.filter((e) => e.change.kind === "channel"))
        expect(e.change).toMatchObject({ channel: { sharedWith: [y] } });
      expect(await dir.version(y)).toBe(yV);

      // Team x no longer sees the channel nor its members' rows; the host and y still do.
      expect((await dir.pageChannels(x, null, 10)).map((c) => c.id)).toEqual([channelId(2)]);
      expect((await dir.pageChannels(y, null, 10)).map((c) => [c.id, c.sharedWith])).toEqual([[channelId(1), [y]]]);
      expect((await dir.pageChannels(host, null, 10)).map((c) => [c.id, c.sharedWith])).toEqual([
        [channelId(1), [y]],
        [channelId(2), [x]],
      ]);
      expect(await dir.pageChannelMembers(host, channelId(1), null, 10)).toEqual([member(1, host), member(9_002, y)]);
      expect(await dir.pageForeignMemberships(x, null, 10)).toEqual([member(9_000, x, 2)]);
      expect(await dir.pageForeignMemberships(y, null, 10)).toEqual([member(9_002, y)]);
      await expect(
        dir.addMembers(host, channelId(1), [{ userId: userId(9_001), userTeamId: x }], NOW),
      ).rejects.toMatchObject({ kind: "not_found" });

      // Not shared (any more, or ever): a no-op that bumps nothing.
      for (const [c, team] of [
        [1, x],
        [2, y],
      ] as const) {
        const again = await dir.unshareChannel(host, channelId(c), team, NOW + 6);
        expect(again).toMatchObject({ removed: [], events: [] });
        expect(again.channel.id).toBe(channelId(c));
      }
      expect([await dir.version(host), await dir.version(x)]).toEqual([hostV + 3, xV + 1]);
      await expect(dir.unshareChannel(host, channelId(9), x, NOW)).rejects.toMatchObject({ kind: "not_found" });
      await expect(dir.unshareChannel(x, channelId(1), host, NOW)).rejects.toMatchObject({ kind: "not_found" });
      await expect(dir.unshareChannel(host, channelId(1), host, NOW)).rejects.toMatchObject({ kind: "invalid" });

      // Sharing again works as the first time; the old members are not back.
      const reshared = await dir.shareChannel(host, channelId(1), x, NOW + 7);
      expect(reshared.channel.sharedWith).toEqual([x, y].sort());
      expect(reshared.events.map((e) => e.teamId).sort()).toEqual([host, x].sort());
      expect((await dir.pageChannels(x, null, 10)).map((c) => c.id)).toEqual([channelId(1), channelId(2)]);
      expect(await dir.pageForeignMemberships(x, null, 10)).toEqual([member(9_000, x, 2)]);
      const back = await dir.addMembers(host, channelId(1), [{ userId: userId(9_001), userTeamId: x }], NOW + 8);
      expect(back.added).toEqual([member(9_001, x)]);
    });

    it("unshare racing another unshare, or an add of that team's users, leaves no orphan", async () => {
      const { dir, teamId: host } = await setup(open, 1);
      const x = await addTeam(open, 3);
      await dir.createChannel(host, channel(1), NOW);
      await dir.shareChannel(host, channelId(1), x, NOW);
      await dir.addMembers(host, channelId(1), [{ userId: userId(9_000), userTeamId: x }], NOW);
      const hostV = await dir.version(host);

      const [a, b] = await Promise.all([
        dir.unshareChannel(host, channelId(1), x, NOW + 1),
        dir.unshareChannel(host, channelId(1), x, NOW + 1),
      ]);
      // One of them ended the share; the other found it ended and wrote nothing.
      expect([a, b].map((r) => r.events.length).sort()).toEqual([0, 3]);
      expect([...a.removed, ...b.removed]).toEqual([{ channelId: channelId(1), userId: userId(9_000), userTeamId: x }]);
      expect(await dir.version(host)).toBe(hostV + 2);

      for (let round = 0; round < 3; round++) {
        await dir.shareChannel(host, channelId(1), x, NOW + 2);
        const added = dir.addMembers(
          host,
          channelId(1),
          [
            { userId: userId(9_001), userTeamId: x },
            { userId: userId(9_002), userTeamId: x },
          ],
          NOW + 3,
        );
        const [add, unshare] = await Promise.allSettled([added, dir.unshareChannel(host, channelId(1), x, NOW + 3)]);
        expect(unshare.status).toBe("fulfilled");
        // The add either came first (and the unshare removed its members) or found the share gone.
        if (add.status === "rejected") expect(add.reason).toMatchObject({ kind: "not_found" });
        expect(await dir.pageForeignMemberships(x, null, 10)).toEqual([]);

        // The same with an import: it commits first, or writes nothing.
        await dir.shareChannel(host, channelId(1), x, NOW + 4);
        const imported = dir.importMemberships(
          host,
          [
            { channelId: channelId(1), userId: userId(1) },
            { channelId: channelId(1), userId: userId(9_001), userTeamId: x },
          ],
          NOW + 5,
        );
        const [bulk, again] = await Promise.allSettled([imported, dir.unshareChannel(host, channelId(1), x, NOW + 5)]);
        expect(again.status).toBe("fulfilled");
        if (bulk.status === "rejected") expect(["conflict", "not_found"]).toContain(bulk.reason.kind);
        expect(await dir.pageForeignMemberships(x, null, 10)).toEqual([]);
        expect((await dir.pageChannelMembers(host, channelId(1), null, 10)).filter((m) => m.userTeamId === x)).toEqual(
          [],
        );
      }
      // Replaying the host's log ends with every one of x's users removed.
      const last = new Map<string, string>();
      for (const e of await allChanges(dir, host))
        if (e.change.kind === "member_added" || e.change.kind === "member_removed")
          last.set(e.change.membership.userId, e.change.kind);
      for (const kind of last.values()) expect(kind).toBe("member_removed");
    });
  });

  describe("changesSince", () => {
    it("returns exactly the missed events, each with the current state", async () => {
      const { dir, teamId } = await setup(open, 4);
      await dir.createChannel(teamId, channel(1, { name: "general" }), NOW);
      await dir.addMembers(teamId, channelId(1), [{ userId: userId(1) }], NOW);
      const seen = await dir.version(teamId);

      // What a cache misses:
      await dir.updateChannel(teamId, channelId(1), { name: "lobby" }, NOW + 1); // 3
      await dir.addMembers(teamId, channelId(1), [{ userId: userId(2) }, { userId: userId(3) }], NOW + 2); // 4, 5
      await dir.removeMembers(teamId, channelId(1), [userId(2)], NOW + 3); // 6
      await dir.updateProfile(teamId, userId(3), { displayName: "Tri" }, NOW + 4); // 7
      await dir.updateChannel(teamId, channelId(1), { isArchived: true }, NOW + 5); // 8
      await dir.updateProfile(teamId, userId(3), { tz: "Europe/Paris" }, NOW + 6); // 9

      const missed = await dir.changesSince(teamId, seen, 100);
      expect(versions(missed)).toEqual([3, 4, 5, 6, 7, 8, 9]);
      const m = (u: number) => ({ channelId: channelId(1), userId: userId(u), userTeamId: teamId });
      expect(missed.map((e) => e.change)).toEqual([
        { kind: "channel", channel: expect.objectContaining({ name: "lobby", isArchived: true, updatedAt: NOW + 5 }) },
        // Added then removed: the current state of the pair is "not a member".
        { kind: "member_removed", membership: m(2) },
        { kind: "member_added", membership: m(3) },
        { kind: "member_removed", membership: m(2) },
        { kind: "user", user: expect.objectContaining({ id: userId(3), displayName: "Tri", tz: "Europe/Paris" }) },
        { kind: "channel", channel: expect.objectContaining({ name: "lobby", isArchived: true }) },
        { kind: "user", user: expect.objectContaining({ id: userId(3), displayName: "Tri", tz: "Europe/Paris" }) },
      ]);
      expect(versions(await dir.changesSince(teamId, seen, 2))).toEqual([3, 4]);
      expect(versions(await dir.changesSince(teamId, 8, 100))).toEqual([9]);
      expect(await dir.changesSince(teamId, 9, 100)).toEqual([]);
      expect(await dir.changesSince(`${teamId}X`, 0, 100)).toEqual([]);
    });

    it("turns many user changes into one reload", async () => {
      const { dir, teamId } = await setup(open, 1_200);
      const events = await dir.recordUserChanges(
        teamId,
        Array.from({ length: 1_200 }, (_, i) => userId(i + 1)),
        NOW,
      );
      expect(events).toEqual([{ teamId, version: 1, change: { kind: "reload" } }]);
      const few = await dir.recordUserChanges(
        teamId,
        Array.from({ length: 600 }, (_, i) => userId(i + 1)),
        NOW,
      );
      expect(versions(few)).toEqual(Array.from({ length: 600 }, (_, i) => i + 2));
      expect(few[599]?.change).toMatchObject({ kind: "user", user: { id: userId(600), deleted: false } });
    });
  });
}
