import { describe, expect, it } from "vitest";
import type { DomainMutationMessage } from "../../src/domains/messages";
import { TEAM_TOTAL_DOMAIN } from "../../src/domains/model";
import { mutationRow, relayOutbox, relayStranded } from "../../src/domains/outbox";
import { importUsers, type NewUserInput } from "../../src/teams/lifecycle";
import type { Team, User } from "../../src/teams/model";
import type { TeamStore } from "../../src/teams/team-store";
import { directoryStore } from "../../storage/directory-store";
import { UniqueViolation } from "../../storage/sql-driver";
import { type Backend, fixedClock, HeldQueue, rejection, uniqueTeamId } from "./fixtures";

// The storage contract: every adapter must pass it unchanged.

const NOW = 1_700_000_000_000;

function team(id: string, extra: Partial<Team> = {}): Team {
  return { id, name: `Team ${id}`, plan: "free", claimedDomains: [], createdAt: NOW, healedAt: null, ...extra };
}

function message(teamId: string, id: string, delta = 1): DomainMutationMessage {
  return { v: 1, id, teamId, cause: "user_created", deltas: [{ domain: "acme.test", role: "member", delta }], at: NOW };
}

function user(teamId: string, n: number, extra: Partial<User> = {}): User {
  const id = `U${String(n).padStart(7, "0")}`;
  return {
    teamId,
    id,
    email: `user${n}@acme.test`,
    domain: "acme.test",
    role: "member",
    deactivated: false,
    createdAt: NOW,
    updatedAt: NOW,
    ...extra,
  };
}

/** Every active user id of a team, paged the way the healer reads them. */
async function allActiveIds(store: TeamStore, teamId: string): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await store.listActiveUsers(teamId, after, 500);
    ids.push(...page.map((u) => u.id));
    if (page.length < 500) return ids;
    after = page.at(-1)?.id ?? null;
  }
}

export function storageContract(open: () => Promise<Backend>): void {
  describe("teams", () => {
    it("creates a team once and reads it back", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      expect(await store.createTeam(team(id, { plan: "pro", claimedDomains: ["acme.test", "acme.dev"] }))).toBe(true);
      expect(await store.createTeam(team(id))).toBe(false);
      expect(await store.getTeam(id)).toEqual(team(id, { plan: "pro", claimedDomains: ["acme.test", "acme.dev"] }));
      expect(await store.getTeam(`${id}X`)).toBeNull();
    });

    it("patches only the fields given", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      const updated = await store.updateTeam(id, { plan: "enterprise" });
      expect(updated).toMatchObject({ name: `Team ${id}`, plan: "enterprise", claimedDomains: [] });
    });
  });

  describe("users", () => {
    it("inserts atomically: one duplicate email fails the whole call", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([user(id, 1)]);
      const clash = user(id, 3, { email: "user1@acme.test" });
      await expect(store.insertUsers([user(id, 2), clash])).rejects.toBeInstanceOf(UniqueViolation);
      expect(await store.getUser(id, "U0000002")).toBeNull();
    });

    it("inserts thousands of users in one call and pages through them by id", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      const users = Array.from({ length: 2_500 }, (_, i) => user(id, i + 1, { deactivated: i % 10 === 0 }));
      await store.insertUsers(users);
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await store.listActiveUsers(id, after, 700);
        seen.push(...page.map((u) => u.id));
        if (page.length < 700) break;
        after = page.at(-1)?.id ?? null;
      }
      const expected = users.filter((u) => !u.deactivated).map((u) => u.id);
      expect(seen).toEqual(expected);
    });

    it("finds which emails and ids already exist", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([user(id, 1), user(id, 2)]);
      const found = await store.findExisting(id, ["user2@acme.test", "new@acme.test"], ["U0000001", "U9999999"]);
      expect(found).toEqual({ emails: ["user2@acme.test"], ids: ["U0000001"] });
    });

    it("compare-and-sets on the version", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([user(id, 1), user(id, 2)]);
      const before = await store.getUser(id, "U0000001");
      expect(before?.version).toBe(1);
      expect(await store.updateUser(id, "U0000001", 1, { role: "admin" }, NOW + 1)).toEqual({ logged: null });
      expect(await store.updateUser(id, "U0000001", 1, { role: "guest" }, NOW + 2)).toBeNull();
      expect(await store.getUser(id, "U0000001")).toMatchObject({ role: "admin", version: 2, updatedAt: NOW + 1 });
      await expect(
        store.updateUser(id, "U0000001", 2, { email: "user2@acme.test", domain: "acme.test" }, NOW + 3),
      ).rejects.toBeInstanceOf(UniqueViolation);
    });

    it("reads the team and a user in one call", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id, { claimedDomains: ["acme.test"] }));
      await store.insertUsers([user(id, 1, { role: "owner" })]);
      const found = await store.getTeamAndUser(id, "U0000001");
      expect(found?.team.claimedDomains).toEqual(["acme.test"]);
      expect(found?.user).toMatchObject({ id: "U0000001", role: "owner", deactivated: false });
      expect(await store.getTeamAndUser(id, "U0000009")).toBeNull();
    });
  });

  describe("domain counts", () => {
    it("adds relative deltas and reports rows that went negative", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      const first = await store.applyDeltas(
        [
          { teamId: id, domain: "acme.test", role: "member", delta: 3 },
          { teamId: id, domain: "other.test", role: "guest", delta: -1 },
        ],
        NOW,
      );
      expect(first.negative).toEqual([{ teamId: id, domain: "other.test", role: "guest", count: -1 }]);
      const second = await store.applyDeltas([{ teamId: id, domain: "acme.test", role: "member", delta: -1 }], NOW);
      expect(second.negative).toEqual([]);
      // Flagged for the sweep's heal in the same unit: a heal request lost in a crash is still made.
      expect(await store.teamsNeedingHeal(0, 1_000)).toContain(id);
      const calm = uniqueTeamId("T");
      await store.createTeam(team(calm));
      await store.applyDeltas([{ teamId: calm, domain: "acme.test", role: "member", delta: 2 }], NOW);
      await store.applyDeltas([{ teamId: calm, domain: "acme.test", role: "member", delta: -1 }], NOW);
      expect(await store.teamsNeedingHeal(0, 1_000)).not.toContain(calm);
      expect(await store.readAllCounts(id)).toEqual([
        { teamId: id, domain: "acme.test", role: "member", count: 2 },
        { teamId: id, domain: "other.test", role: "guest", count: -1 },
      ]);
    });

    it("applies thousands of keys atomically in few statements", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      const deltas = Array.from({ length: 4_500 }, (_, i) => ({
        teamId: id,
        domain: `d${i}.test`,
        role: "member" as const,
        delta: i === 4_499 ? -2 : 1,
      }));
      const result = await store.applyDeltas(deltas, NOW);
      expect(result.statements).toBeLessThanOrEqual(7);
      expect(result.negative).toEqual([{ teamId: id, domain: "d4499.test", role: "member", count: -2 }]);
      expect(await store.readAllCounts(id)).toHaveLength(4_500);
    });

    it("reads the requested domains and the team totals in one call", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.applyDeltas(
        [
          { teamId: id, domain: "a.test", role: "member", delta: 2 },
          { teamId: id, domain: "b.test", role: "admin", delta: 1 },
          { teamId: id, domain: "c.test", role: "member", delta: 5 },
          { teamId: id, domain: TEAM_TOTAL_DOMAIN, role: "member", delta: 7 },
          { teamId: id, domain: TEAM_TOTAL_DOMAIN, role: "admin", delta: 1 },
          { teamId: `${id}Z`, domain: "a.test", role: "member", delta: 9 },
        ],
        NOW,
      );
      const rows = await store.readCounts(id, ["a.test", "b.test", "a.test", "missing.test"]);
      const byKey = Object.fromEntries(rows.map((r) => [`${r.domain}/${r.role}`, r.count]));
      expect(byKey).toEqual({ "a.test/member": 2, "b.test/admin": 1, "*/member": 7, "*/admin": 1 });
    });

    it("deletes rows that healed to zero", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.applyDeltas(
        [
          { teamId: id, domain: "a.test", role: "member", delta: 1 },
          { teamId: id, domain: "b.test", role: "member", delta: 1 },
        ],
        NOW,
      );
      await store.applyDeltas([{ teamId: id, domain: "a.test", role: "member", delta: -1 }], NOW);
      await store.deleteZeroRows(id);
      expect((await store.readAllCounts(id)).map((r) => r.domain)).toEqual(["b.test"]);
    });
  });

  describe("user writes with what they derive", () => {
    it("commits the users, their change-log rows and their outbox rows as one unit, or nothing", async () => {
      const { driver, store } = await open();
      const dir = directoryStore(driver);
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      const outbox = [mutationRow(message(id, `${id}-m1`, 2), NOW)];
      const written = await store.insertUsers([user(id, 1), user(id, 2)], { log: "users", outbox, at: NOW });
      expect(written.logged).toEqual({ teamId: id, after: 0, upTo: 2 });
      expect((await dir.changesSince(id, 0, 10)).map((e) => [e.version, e.change.kind])).toEqual([
        [1, "user"],
        [2, "user"],
      ]);
      expect(await store.unsentOutbox({ createdUpTo: NOW, limit: 10, teamId: id })).toEqual(outbox);

      // A taken email: no users, no version, no outbox row.
      const clash = [user(id, 3), user(id, 4, { email: "user1@acme.test" })];
      const failed = { log: "users" as const, outbox: [mutationRow(message(id, `${id}-m2`), NOW)], at: NOW };
      expect(await rejection(store.insertUsers(clash, failed))).toBeInstanceOf(UniqueViolation);
      expect(await store.getUser(id, "U0000003")).toBeNull();
      expect(await dir.version(id)).toBe(2);
      expect((await store.unsentOutbox({ createdUpTo: NOW, limit: 10, teamId: id })).map((r) => r.id)).toEqual([
        `${id}-m1`,
      ]);

      // A page of a big import logs one reload.
      const page = await store.insertUsers([user(id, 5), user(id, 6)], { log: "reload", outbox: [], at: NOW });
      expect(page.logged).toEqual({ teamId: id, after: 2, upTo: 3 });
      expect((await dir.changesSince(id, 2, 10)).map((e) => e.change.kind)).toEqual(["reload"]);
    });

    it("writes nothing derived when the compare-and-set loses", async () => {
      const { driver, store } = await open();
      const dir = directoryStore(driver);
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([user(id, 1)]);
      const derived = (m: string) => ({ log: "users" as const, outbox: [mutationRow(message(id, m), NOW)], at: NOW });
      expect(await store.updateUser(id, "U0000001", 1, { role: "admin" }, NOW + 1, derived("won"))).toEqual({
        logged: { teamId: id, after: 0, upTo: 1 },
      });
      expect(await store.updateUser(id, "U0000001", 1, { role: "guest" }, NOW + 2, derived("lost"))).toBeNull();
      expect(await store.getUser(id, "U0000001")).toMatchObject({ role: "admin", version: 2 });
      expect(await dir.version(id)).toBe(1);
      expect((await store.unsentOutbox({ createdUpTo: NOW, limit: 10, teamId: id })).map((r) => r.id)).toEqual(["won"]);
      const [event] = await dir.changesSince(id, 0, 10);
      expect(event?.change).toMatchObject({ kind: "user", user: { id: "U0000001", role: "admin" } });
      // A taken email fails the whole unit too.
      await store.insertUsers([user(id, 2)]);
      const taken = { email: "user2@acme.test", domain: "acme.test" };
      expect(await rejection(store.updateUser(id, "U0000001", 2, taken, NOW + 3, derived("taken")))).toBeInstanceOf(
        UniqueViolation,
      );
      expect(await dir.version(id)).toBe(1);
      expect((await store.unsentOutbox({ createdUpTo: NOW, limit: 10, teamId: id })).map((r) => r.id)).toEqual(["won"]);
    });
  });

  describe("idempotency records", () => {
    it("commit with their write or not at all, and a repeated key takes its write down with it", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      const rec = (key: string, result: string, at = NOW) => ({ key, requestHash: `h-${key}`, result, at });
      const derived = (m: string, key: string) => ({
        log: "users" as const,
        outbox: [mutationRow(message(id, m), NOW)],
        at: NOW,
        idempotency: rec(key, `{"m":"${m}"}`),
      });
      await store.insertUsers([user(id, 1)], derived("create", "K1"));
      expect(await store.idempotencyRecord(id, "K1")).toEqual(rec("K1", '{"m":"create"}'));
      expect(await store.idempotencyRecord(id, "k1")).toBeNull(); // keys compare byte for byte
      expect(await store.idempotencyRecord(uniqueTeamId("T"), "K1")).toBeNull(); // and per team
      // The same key again: the unit fails whole, the second user is not there.
      expect(await rejection(store.insertUsers([user(id, 2)], derived("again", "K1")))).toBeInstanceOf(UniqueViolation);
      expect(await store.getUser(id, "U0000002")).toBeNull();
      // A compare-and-set that loses writes no record; the one that wins does.
      expect(
        await store.updateUser(id, "U0000001", 1, { role: "admin" }, NOW + 1, derived("won", "K2")),
      ).not.toBeNull();
      expect(await store.updateUser(id, "U0000001", 1, { role: "guest" }, NOW + 2, derived("lost", "K3"))).toBeNull();
      expect(await store.idempotencyRecord(id, "K2")).toMatchObject({ result: '{"m":"won"}' });
      expect(await store.idempotencyRecord(id, "K3")).toBeNull();
      // A swap under a key already used fails whole: the role stays.
      expect(
        await rejection(store.updateUser(id, "U0000001", 2, { role: "guest" }, NOW + 3, derived("dup", "K2"))),
      ).toBeInstanceOf(UniqueViolation);
      expect(await store.getUser(id, "U0000001")).toMatchObject({ role: "admin", version: 2 });
      expect((await store.unsentOutbox({ createdUpTo: NOW, limit: 10, teamId: id })).map((r) => r.id).sort()).toEqual([
        "create",
        "won",
      ]);
    });

    it("are pruned oldest first", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      const far = NOW - 10 * 86_400_000; // older than any other test's records in this database
      for (const [n, at] of [
        [1, far],
        [2, far + 1],
        [3, NOW],
      ] as const) {
        await store.insertUsers([user(id, n)], {
          log: "users",
          outbox: [],
          at,
          idempotency: { key: `P${n}`, requestHash: "h", result: "{}", at },
        });
      }
      expect(await store.pruneIdempotencyKeys(far + 1, 10)).toBeGreaterThanOrEqual(1);
      expect(await store.idempotencyRecord(id, "P1")).toBeNull();
      expect(await store.idempotencyRecord(id, "P2")).not.toBeNull();
      expect(await store.pruneIdempotencyKeys(far + 2, 10)).toBeGreaterThanOrEqual(1);
      expect(await store.idempotencyRecord(id, "P2")).toBeNull();
      expect(await store.idempotencyRecord(id, "P3")).not.toBeNull();
    });
  });

  describe("outbox", () => {
    it("lists unsent rows oldest first (by team or all), marks them sent once, prunes sent rows", async () => {
      const { driver, store } = await open();
      const a = uniqueTeamId("T");
      const b = uniqueTeamId("T");
      for (const id of [a, b]) await store.createTeam(team(id));
      const row = (teamId: string, n: number, at: number) => mutationRow(message(teamId, `${teamId}-${n}`), at);
      await store.insertUsers([user(a, 1)], { log: "users", outbox: [row(a, 1, NOW + 2)], at: NOW });
      await store.insertUsers([user(b, 1)], { log: "users", outbox: [row(b, 1, NOW + 1)], at: NOW });
      await store.insertUsers([user(a, 2)], { log: "users", outbox: [row(a, 2, NOW + 3)], at: NOW });
      const ours = (rows: Array<{ teamId: string; id: string }>) =>
        rows.filter((r) => r.teamId === a || r.teamId === b).map((r) => r.id);
      expect(ours(await store.unsentOutbox({ createdUpTo: NOW + 2, limit: 1000 }))).toEqual([`${b}-1`, `${a}-1`]);
      expect(await store.unsentOutbox({ createdUpTo: NOW + 3, limit: 10, teamId: a })).toEqual([
        row(a, 1, NOW + 2),
        row(a, 2, NOW + 3),
      ]);

      // Keyset paging: the rows after a given one.
      const [first] = await store.unsentOutbox({ createdUpTo: NOW + 3, limit: 1, teamId: a });
      expect(first?.id).toBe(`${a}-1`);
      const next = first && (await store.unsentOutbox({ createdUpTo: NOW + 3, limit: 10, teamId: a, after: first }));
      expect(next?.map((r) => r.id)).toEqual([`${a}-2`]);

      await store.markOutboxSent([{ teamId: a, id: `${a}-1` }], NOW + 10);
      await store.markOutboxSent([{ teamId: a, id: `${a}-1` }], NOW + 20); // keeps the first time
      expect(ours(await store.unsentOutbox({ createdUpTo: NOW + 100, limit: 1000 }))).toEqual([`${b}-1`, `${a}-2`]);
      const ids = async () =>
        (await driver.all("SELECT `id` FROM outbox WHERE `team_id` = ? ORDER BY `id`", [a])).map((r) => String(r.id));
      // Sent but never applied: still owed, so not pruned.
      await store.pruneSentOutbox(NOW + 15, 1000);
      expect(await ids()).toEqual([`${a}-1`, `${a}-2`]);
      await store.applyDeltas([], NOW + 12, [{ teamId: a, id: `${a}-1` }]);
      expect(await store.pruneSentOutbox(NOW + 15, 1000)).toBeGreaterThanOrEqual(1);
      expect(await ids()).toEqual([`${a}-2`]);
    });

    it("lists rows sent long ago and never applied, oldest send first, and stamps them sent again", async () => {
      const { store } = await open();
      const a = uniqueTeamId("T");
      await store.createTeam(team(a));
      const row = (n: number) => mutationRow(message(a, `${a}-${n}`), NOW);
      await store.insertUsers([user(a, 1)], { log: "users", outbox: [row(1), row(2), row(3)], at: NOW });
      await store.markOutboxSent([{ teamId: a, id: `${a}-2` }], NOW + 5);
      await store.markOutboxSent([{ teamId: a, id: `${a}-1` }], NOW + 6);
      await store.markOutboxSent([{ teamId: a, id: `${a}-3` }], NOW + 50);
      await store.applyDeltas([], NOW + 7, [{ teamId: a, id: `${a}-1` }]);
      const unapplied = (before: number) => store.unappliedOutbox({ sentBefore: before, limit: 10, teamId: a });
      // 1 was applied; 3 was sent too recently; 2 is lost.
      expect((await unapplied(NOW + 40)).map((r) => r.id)).toEqual([`${a}-2`]);
      expect(await unapplied(NOW + 40)).toEqual([row(2)]);
      await store.markOutboxResent([{ teamId: a, id: `${a}-2` }], NOW + 60);
      expect(await unapplied(NOW + 40)).toEqual([]);
      expect((await unapplied(NOW + 61)).map((r) => r.id)).toEqual([`${a}-3`, `${a}-2`]);
      expect(await store.unsentOutbox({ createdUpTo: NOW + 100, limit: 10, teamId: a })).toEqual([]);
    });
  });

  describe("relay", () => {
    it("sends in groups under the queue's limits; a group that fails stays unsent and holds back no other", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      // ~140 KB each: a send takes one of them (sendBatch takes 256 KB at most).
      const long = (n: number, i: number) => `${String(n).repeat(200)}.d${i}.test`;
      const big = (n: number): DomainMutationMessage => ({
        ...message(id, `${id}-big${n}`),
        deltas: Array.from({ length: 500 }, (_, i) => ({ domain: long(n, i), role: "member" as const, delta: 1 })),
      });
      const rows = [1, 2, 3].map((n) => mutationRow(big(n), NOW));
      await store.insertUsers([user(id, 1)], { log: "users", outbox: rows, at: NOW });
      const sends: string[][] = [];
      const flaky = {
        async publish(messages: DomainMutationMessage[]) {
          sends.push(messages.map((m) => m.id));
          if (sends.length === 2) throw new Error("queue refused the send");
        },
      };
      const clock = fixedClock(NOW + 60_000);
      const outcome = await relayOutbox(rows, { outbox: store, mutations: flaky, clock });
      expect(sends).toEqual([[`${id}-big1`], [`${id}-big2`], [`${id}-big3`]]);
      expect({ sent: outcome.sent, failed: outcome.failed.length }).toEqual({ sent: 2, failed: 1 });
      expect((await store.unsentOutbox({ createdUpTo: NOW, limit: 10, teamId: id })).map((r) => r.id)).toEqual([
        `${id}-big2`,
      ]);
      // The sweep finds it (old enough) and sends it.
      const swept = await relayStranded({ outbox: store, mutations: flaky, clock }, { teamId: id });
      expect({ found: swept.found, sent: swept.sent }).toEqual({ found: 1, sent: 1 });
      expect(await store.unsentOutbox({ createdUpTo: NOW, limit: 10, teamId: id })).toEqual([]);
    });
  });

  describe("applied mutations", () => {
    it("records ids with their upserts; an id applied again fails the unit and changes nothing", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      const delta = { teamId: id, domain: "acme.test", role: "member" as const, delta: 1 };
      await store.applyDeltas([delta], NOW, [{ teamId: id, id: "m1" }]);
      expect(
        await store.appliedMutations([
          { teamId: id, id: "m1" },
          { teamId: id, id: "m2" },
        ]),
      ).toEqual([{ teamId: id, id: "m1" }]);
      // Same id in the next unit (a concurrent batch got there first): nothing of it lands.
      const again = store.applyDeltas([{ ...delta, delta: 5 }], NOW, [
        { teamId: id, id: "m2" },
        { teamId: id, id: "m1" },
      ]);
      expect(await rejection(again)).toBeInstanceOf(UniqueViolation);
      expect(await store.readAllCounts(id)).toEqual([{ teamId: id, domain: "acme.test", role: "member", count: 1 }]);
      expect(await store.appliedMutations([{ teamId: id, id: "m2" }])).toEqual([]);
      // Ids are per team and byte for byte.
      expect(
        await store.appliedMutations([
          { teamId: `${id}X`, id: "m1" },
          { teamId: id, id: "M1" },
        ]),
      ).toEqual([]);
      // Marks alone (mutations whose deltas cancelled out) are still recorded.
      await store.applyDeltas([], NOW + 5, [{ teamId: id, id: "m3" }]);
      expect(await store.appliedMutations([{ teamId: id, id: "m3" }])).toHaveLength(1);
      expect(await store.pruneAppliedMutations(NOW + 1, 100_000)).toBeGreaterThanOrEqual(1);
      expect(
        await store.appliedMutations([
          { teamId: id, id: "m1" },
          { teamId: id, id: "m3" },
        ]),
      ).toEqual([{ teamId: id, id: "m3" }]);
    });
  });

  describe("heal lease and sweep", () => {
    it("lets one owner hold the lease until it expires or is released", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      expect(await store.acquireHealLease(id, "a", NOW, 1_000)).toBe(true);
      expect(await store.acquireHealLease(id, "b", NOW + 500, 1_000)).toBe(false);
      expect(await store.acquireHealLease(id, "b", NOW + 1_001, 1_000)).toBe(true);
      await store.releaseHealLease(id, "a", NOW + 2_000); // not the holder: no effect
      expect((await store.getTeam(id))?.healedAt).toBeNull();
      await store.releaseHealLease(id, "b", NOW + 2_000);
      expect((await store.getTeam(id))?.healedAt).toBe(NOW + 2_000);
      expect(await store.acquireHealLease(id, "c", NOW + 2_001, 1_000)).toBe(true);
    });

    it("renews a lease only for its holder, only while it holds it, and says until when it runs", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      expect(await store.healLeaseUntil(id)).toBeNull();
      expect(await store.acquireHealLease(id, "a", NOW, 1_000)).toBe(true);
      expect(await store.healLeaseUntil(id)).toBe(NOW + 1_000);
      expect(await store.renewHealLease(id, "a", NOW, 1_000)).toBe(true); // same millisecond: nothing changes, still held
      expect(await store.renewHealLease(id, "b", NOW + 500, 1_000)).toBe(false);
      expect(await store.renewHealLease(id, "a", NOW + 900, 1_000)).toBe(true);
      expect(await store.healLeaseUntil(id)).toBe(NOW + 1_900);
      // Held past its end by nobody: "a" lost it, and "b" may take it.
      expect(await store.acquireHealLease(id, "b", NOW + 1_850, 1_000)).toBe(false);
      expect(await store.renewHealLease(id, "a", NOW + 1_901, 1_000)).toBe(false);
      expect(await store.acquireHealLease(id, "b", NOW + 1_901, 1_000)).toBe(true);
      expect(await store.renewHealLease(id, "a", NOW + 1_950, 1_000)).toBe(false);
      await store.releaseHealLease(id, "b", null);
      expect(await store.healLeaseUntil(id)).toBeNull();
      expect(await store.renewHealLease(id, "b", NOW + 2_000, 1_000)).toBe(false);
    });

    it("lists stale and marked teams for the sweep", async () => {
      const { store } = await open();
      const stale = uniqueTeamId("T");
      const fresh = uniqueTeamId("T");
      const marked = uniqueTeamId("T");
      for (const id of [stale, fresh, marked]) await store.createTeam(team(id));
      for (const [id, at] of [
        [stale, NOW - 10_000],
        [fresh, NOW],
      ] as const) {
        await store.acquireHealLease(id, "x", at, 1);
        await store.releaseHealLease(id, "x", at);
      }
      await store.markHealNeeded(marked, NOW);
      const due = await store.teamsNeedingHeal(NOW - 5_000, 10_000);
      expect(due).toContain(stale);
      expect(due).toContain(marked);
      expect(due).not.toContain(fresh);
    });
  });

  // Ids are opaque bytes on every backend (docs/storage.md): D1 compares TEXT
  // with BINARY, and the MySQL schema declares utf8mb4_bin for that reason. A
  // case-insensitive collation would make ids that differ only in case one key.
  describe("ids compare byte for byte", () => {
    it("keeps users whose ids differ only in case apart", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([
        user(id, 1, { id: "UPAGEa", email: "lower@acme.test" }),
        user(id, 2, { id: "UPAGEA", email: "upper@acme.test" }),
      ]);
      expect(await store.getUser(id, "UPAGEa")).toMatchObject({ id: "UPAGEa", email: "lower@acme.test" });
      expect(await store.getUser(id, "UPAGEA")).toMatchObject({ id: "UPAGEA", email: "upper@acme.test" });
      expect(await store.getUser(id, "upagea")).toBeNull();
      expect((await store.getTeamAndUser(id, "UPAGEA"))?.user.email).toBe("upper@acme.test");
      // Byte order, as JS sorts strings: "A" (0x41) before "a" (0x61).
      expect(await allActiveIds(store, id)).toEqual(["UPAGEA", "UPAGEa"]);
      expect(await store.updateUser(id, "UPAGEA", 1, { role: "admin" }, NOW + 1)).not.toBeNull();
      expect(await store.getUser(id, "UPAGEa")).toMatchObject({ role: "member", version: 1 });
    });

    it("finds an existing id only by its exact bytes", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([user(id, 1, { id: "UPAGEa" })]);
      // A case-insensitive match would report a conflict with a user that is not there.
      expect(await store.findExisting(id, [], ["UPAGEA", "upagea"])).toEqual({ emails: [], ids: [] });
      expect(await store.findExisting(id, [], ["UPAGEA", "UPAGEa"])).toEqual({ emails: [], ids: ["UPAGEa"] });
    });

    it("imports 1,001 users whose ids differ only in case across two pages, all of them", async () => {
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      const queue = new HeldQueue();
      const deps = { store, mutations: queue, heals: queue, clock: fixedClock(NOW) };
      const inputs: NewUserInput[] = Array.from({ length: 1_001 }, (_, i) => ({
        id: i === 0 ? "UPAGEa" : i === 1_000 ? "UPAGEA" : `U${String(i).padStart(7, "0")}`,
        email: `import${i}@acme.test`,
        domain: "acme.test",
        role: "member",
      }));
      // Page one holds UPAGEa, page two UPAGEA: a case-insensitive key fails
      // page two after page one committed, leaving 1,000 of 1,001 written.
      const imported = await importUsers(deps, id, inputs, { pageSize: 1_000 });
      expect(imported).toHaveLength(1_001);
      expect(await allActiveIds(store, id)).toHaveLength(1_001);
      expect(await store.getUser(id, "UPAGEa")).toMatchObject({ email: "import0@acme.test" });
      expect(await store.getUser(id, "UPAGEA")).toMatchObject({ email: "import1000@acme.test" });
      expect(queue.take()).toHaveLength(2); // one mutation per page
    });

    it("keeps teams whose ids differ only in case apart, leases included", async () => {
      const { store } = await open();
      const base = uniqueTeamId("TCASE");
      const lower = `${base}a`;
      const upper = `${base}A`;
      expect(await store.createTeam(team(lower, { name: "lower" }))).toBe(true);
      expect(await store.createTeam(team(upper, { name: "upper" }))).toBe(true);
      expect(await store.getTeam(lower)).toMatchObject({ id: lower, name: "lower" });
      expect(await store.getTeam(upper)).toMatchObject({ id: upper, name: "upper" });
      expect(await store.getTeam(base.toLowerCase())).toBeNull();
      expect(await store.updateTeam(upper, { plan: "pro" })).toMatchObject({ id: upper, plan: "pro" });
      expect((await store.getTeam(lower))?.plan).toBe("free");
      // Each team has its own lease, and only the exact owner releases it.
      expect(await store.acquireHealLease(lower, "Owner-1", NOW, 1_000)).toBe(true);
      expect(await store.acquireHealLease(upper, "Owner-2", NOW, 1_000)).toBe(true);
      await store.releaseHealLease(lower, "owner-1", NOW + 1);
      expect((await store.getTeam(lower))?.healedAt).toBeNull();
      await store.releaseHealLease(lower, "Owner-1", NOW + 2);
      expect((await store.getTeam(lower))?.healedAt).toBe(NOW + 2);
      expect((await store.getTeam(upper))?.healedAt).toBeNull();
    });

    it("keeps channels whose ids differ only in case apart, members included", async () => {
      const { driver, store } = await open();
      const dir = directoryStore(driver);
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([
        user(id, 1, { id: "UPAGEa", email: "lower@acme.test" }),
        user(id, 2, { id: "UPAGEA", email: "upper@acme.test" }),
      ]);
      const channel = (cid: string, name: string) => ({ id: cid, name, topic: "", purpose: "", isPrivate: false });
      await dir.createChannel(id, channel("CCASEa", "lower"), NOW);
      await dir.createChannel(id, channel("CCASEA", "upper"), NOW);
      await dir.updateChannel(id, "CCASEA", { topic: "only upper" }, NOW + 1);
      await dir.addMembers(id, "CCASEa", [{ userId: "UPAGEa" }], NOW + 2);
      await dir.addMembers(id, "CCASEA", [{ userId: "UPAGEA" }], NOW + 3);
      const channels = await dir.pageChannels(id, null, 10);
      expect(channels.map((c) => [c.id, c.name, c.topic])).toEqual([
        ["CCASEA", "upper", "only upper"],
        ["CCASEa", "lower", ""],
      ]);
      expect(await dir.pageChannelMembers(id, "CCASEa", null, 10)).toEqual([
        { channelId: "CCASEa", userId: "UPAGEa", userTeamId: id },
      ]);
      expect(await dir.pageChannelMembers(id, "CCASEA", null, 10)).toEqual([
        { channelId: "CCASEA", userId: "UPAGEA", userTeamId: id },
      ]);
    });

    it("compares emails and domains as stored: callers normalize, the store folds nothing", async () => {
      // src/invites/email.ts lower-cases before anything is stored; the store
      // itself must not fold case on one backend and not the other.
      const { store } = await open();
      const id = uniqueTeamId("T");
      await store.createTeam(team(id));
      await store.insertUsers([
        user(id, 1, { email: "ada@acme.test" }),
        user(id, 2, { email: "Ada@Acme.test", domain: "Acme.test" }),
      ]);
      expect(await store.findExisting(id, ["ADA@ACME.TEST", "Ada@Acme.test"], [])).toEqual({
        emails: ["Ada@Acme.test"],
        ids: [],
      });
      await store.applyDeltas(
        [
          { teamId: id, domain: "acme.test", role: "member", delta: 1 },
          { teamId: id, domain: "Acme.test", role: "member", delta: 2 },
        ],
        NOW,
      );
      expect((await store.readCounts(id, ["acme.test"])).filter((r) => r.domain !== TEAM_TOTAL_DOMAIN)).toEqual([
        { teamId: id, domain: "acme.test", role: "member", count: 1 },
      ]);
    });
  });
}
