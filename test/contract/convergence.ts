import { describe, expect, it } from "vitest";
import { busyRetrySeconds, DEFAULT_LEASE_MS, HealLeaseLost, healTeam } from "../../src/domains/healer";
import { applyMutationBatch } from "../../src/domains/mutation-consumer";
import { mutationRow, REDELIVER_AFTER_MS, redeliverUnapplied, relayStranded } from "../../src/domains/outbox";
import {
  changeUser,
  createTeam,
  createUser,
  importUsersOnce,
  type LifecycleDeps,
  updateTeam,
} from "../../src/teams/lifecycle";
import { ROLES } from "../../src/teams/model";
import type { TeamStore } from "../../src/teams/team-store";
import { type Backend, fixedClock, HeldQueue, recountBySql, rng, storedCounts } from "./fixtures";

// Convergence: whatever the queue does to deliveries (duplicates, reordering,
// drops), the consumer plus one heal leave the aggregate equal to a recount
// of the users table, exactly; duplicates alone need no heal (the consumer
// applies each mutation id once). Runs on both adapters.

const DOMAINS = ["acme.test", "acme.dev", "partner.test", "gmail.com", "contractor.test"];

async function setup(backend: Backend, seed: number) {
  const queue = new HeldQueue();
  const clock = fixedClock();
  const deps: LifecycleDeps = { store: backend.store, mutations: queue, heals: queue, clock };
  const team = await createTeam(deps, { name: `convergence ${seed}`, plan: "pro", claimedDomains: [] });
  return { queue, clock, deps, teamId: team.id };
}

/** A random history of joins, email changes, role changes, deactivations and reactivations. */
async function playHistory(deps: LifecycleDeps, teamId: string, seed: number, events: number): Promise<void> {
  const r = rng(seed);
  const ids: string[] = [];
  for (let i = 0; i < events; i++) {
    const roll = r.next();
    if (ids.length < 5 || roll < 0.35) {
      const domain = r.pick(DOMAINS);
      const u = await createUser(deps, teamId, { email: `p${seed}-${i}@${domain}`, domain, role: r.pick(ROLES) });
      if (u) ids.push(u.id);
      continue;
    }
    const id = r.pick(ids);
    if (roll < 0.55) {
      const domain = r.pick(DOMAINS);
      await changeUser(deps, teamId, id, { email: `p${seed}-${i}-moved@${domain}`, domain });
    } else if (roll < 0.75) {
      await changeUser(deps, teamId, id, { role: r.pick(ROLES) });
    } else if (roll < 0.9) {
      await changeUser(deps, teamId, id, { deactivated: true });
    } else {
      await changeUser(deps, teamId, id, { deactivated: false });
    }
  }
}

/** Delivers held messages in random batches, duplicating, reordering and dropping some. */
async function deliverFaultily(backend: Backend, queue: HeldQueue, seed: number, clock = fixedClock()) {
  const r = rng(seed * 7919);
  const sent = queue.take();
  const deliveries = sent.flatMap((m) => {
    const roll = r.next();
    if (roll < 0.1) return []; // dropped
    if (roll < 0.25) return [m, m]; // duplicated (at-least-once)
    return [m];
  });
  r.shuffle(deliveries);
  for (let i = 0; i < deliveries.length; ) {
    const size = 1 + r.int(12);
    await applyMutationBatch(deliveries.slice(i, i + size), { counts: backend.store, heals: queue, clock });
    i += size;
  }
  return { sent: sent.length, delivered: deliveries.length };
}

export function convergenceContract(open: () => Promise<Backend>): void {
  describe("convergence", () => {
    it("commutes: reordered batches with no faults equal the recount before any heal", async () => {
      const backend = await open();
      const { queue, deps, teamId } = await setup(backend, 11);
      await playHistory(deps, teamId, 11, 120);
      const r = rng(5);
      const sent = r.shuffle(queue.take());
      for (let i = 0; i < sent.length; i += 7) {
        await applyMutationBatch(sent.slice(i, i + 7), { counts: backend.store, heals: queue, clock: deps.clock });
      }
      expect(await storedCounts(backend.store, teamId)).toEqual(await recountBySql(backend.driver, teamId));
    });

    it("counts a mutation once however often, and in however many batches, it is delivered", async () => {
      const backend = await open();
      const { queue, deps, teamId } = await setup(backend, 61);
      await playHistory(deps, teamId, 61, 80);
      const sent = queue.take();
      const r = rng(61);
      // The queue delivers everything, then everything again in other batches
      // (a retried batch, a relay that published twice), some a third time.
      const deliveries = [...sent, ...r.shuffle([...sent]), ...sent.filter(() => r.next() < 0.3)];
      let duplicates = 0;
      for (let i = 0; i < deliveries.length; i += 9) {
        const out = await applyMutationBatch(deliveries.slice(i, i + 9), {
          counts: backend.store,
          heals: queue,
          clock: deps.clock,
        });
        duplicates += out.duplicates;
        expect(out.healsRequested).toEqual([]);
      }
      expect(duplicates).toBe(deliveries.length - sent.length);
      expect(await storedCounts(backend.store, teamId)).toEqual(await recountBySql(backend.driver, teamId));
    });

    for (const seed of [1, 2, 3]) {
      it(`heals a faulty delivery history exactly (seed ${seed})`, async () => {
        const backend = await open();
        const { queue, deps, teamId } = await setup(backend, seed);
        await playHistory(deps, teamId, seed, 200);
        const { sent, delivered } = await deliverFaultily(backend, queue, seed);
        expect(delivered).not.toBe(sent); // the faults really happened
        const truth = await recountBySql(backend.driver, teamId);
        expect(await storedCounts(backend.store, teamId)).not.toEqual(truth);

        const report = await healTeam(teamId, { ...deps, counts: backend.store, owner: "h1", pageSize: 17 });
        expect(report.status).toBe("healed");
        expect(await storedCounts(backend.store, teamId)).toEqual(truth);
      });
    }

    it("a negative count observed by the consumer requests a heal", async () => {
      const backend = await open();
      const { queue, deps, teamId } = await setup(backend, 21);
      const u = await createUser(deps, teamId, { email: "a@acme.test", domain: "acme.test", role: "member" });
      queue.take(); // the join is lost
      await changeUser(deps, teamId, u.id, { deactivated: true });
      const [leave] = queue.take();
      if (!leave) throw new Error("no mutation published");
      const outcome = await applyMutationBatch([leave], { counts: backend.store, heals: queue, clock: deps.clock });
      expect(outcome.healsRequested).toEqual([teamId]);
      expect(queue.heals.map((h) => h.request)).toContainEqual(
        expect.objectContaining({ teamId, reason: "negative_count" }),
      );
    });

    it("keeps a mutation that lands while the heal recounts", async () => {
      const backend = await open();
      const { queue, deps, teamId } = await setup(backend, 31);
      for (let i = 0; i < 30; i++) {
        await createUser(deps, teamId, {
          id: `U${1000 + i}`,
          email: `m${i}@acme.test`,
          domain: "acme.test",
          role: "member",
        });
      }
      await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock: deps.clock });

      // After the healer has read its first page, a new user (id sorting
      // before that page, so the recount never sees them) joins and their
      // mutation is applied: the heal must not erase it.
      const store: TeamStore = Object.create(backend.store);
      let injected = false;
      store.listActiveUsers = async (team, after, limit) => {
        const page = await backend.store.listActiveUsers(team, after, limit);
        if (!injected) {
          injected = true;
          await createUser(deps, teamId, {
            id: "U0000",
            email: "late@partner.test",
            domain: "partner.test",
            role: "admin",
          });
          await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock: deps.clock });
        }
        return page;
      };
      const report = await healTeam(teamId, { ...deps, store, counts: backend.store, owner: "h", pageSize: 10 });
      expect(report.status === "healed" && report.racedKeys).toBeGreaterThan(0);
      const stored = await storedCounts(backend.store, teamId);
      expect(stored["partner.test/admin"]).toBe(1);
      expect(stored).toEqual(await recountBySql(backend.driver, teamId));
      expect(queue.heals.map((h) => h.request.reason)).toContain("verify");
    });

    it("schedules a verification heal that removes a double count from an in-flight mutation", async () => {
      const backend = await open();
      const { queue, deps, teamId } = await setup(backend, 41);
      for (let i = 0; i < 20; i++) {
        await createUser(deps, teamId, {
          id: `U${2000 + i}`,
          email: `n${i}@acme.test`,
          domain: "acme.test",
          role: "member",
        });
      }
      await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock: deps.clock });
      // Committed before the heal, its mutation still in the queue.
      await createUser(deps, teamId, { id: "U9999", email: "inflight@acme.test", domain: "acme.test", role: "member" });
      const inflight = queue.take();
      const store: TeamStore = Object.create(backend.store);
      let delivered = false;
      store.listActiveUsers = async (team, after, limit) => {
        const page = await backend.store.listActiveUsers(team, after, limit);
        if (!delivered && page.length < limit) {
          delivered = true; // lands after the recount saw the user
          await applyMutationBatch(inflight, { counts: backend.store, heals: queue, clock: deps.clock });
        }
        return page;
      };
      await healTeam(teamId, { ...deps, store, counts: backend.store, owner: "h", pageSize: 8 });
      const truth = await recountBySql(backend.driver, teamId);
      expect((await storedCounts(backend.store, teamId))["acme.test/member"]).toBe(
        (truth["acme.test/member"] ?? 0) + 1,
      );
      const verify = queue.heals.find((h) => h.request.reason === "verify");
      expect(verify?.delaySeconds).toBeGreaterThan(0);
      // Owed a verification, the team stays flagged: a lost request is still run by the sweep.
      expect(await backend.store.teamsNeedingHeal(0, 1_000)).toContain(teamId);

      const again = await healTeam(teamId, { ...deps, counts: backend.store, owner: "v" });
      expect(again.status === "healed" && again.racedKeys).toBe(0);
      expect(await storedCounts(backend.store, teamId)).toEqual(truth);
    });

    it("relays a team's stranded mutations before its heal, and verifies after they land", async () => {
      const backend = await open();
      const { queue, clock, deps, teamId } = await setup(backend, 71);
      await playHistory(deps, teamId, 71, 30);
      await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock: deps.clock });
      // What a process that died right after committing a user leaves: the
      // user (and its log row) and an unsent outbox row. The heal recounts
      // that user, so the mutation must not land later unnoticed.
      const at = deps.clock.now();
      const body = {
        v: 1 as const,
        id: `${teamId}-stranded`,
        teamId,
        cause: "user_created" as const,
        deltas: [
          { domain: "late.test", role: "member" as const, delta: 1 },
          { domain: "*", role: "member" as const, delta: 1 },
        ],
        at,
      };
      const late = {
        teamId,
        id: "ULATE",
        email: "late@late.test",
        domain: "late.test",
        role: "member" as const,
        deactivated: false,
        createdAt: at,
        updatedAt: at,
      };
      await backend.store.insertUsers([late], { log: "users", outbox: [mutationRow(body, at)], at });
      clock.advance(3_600_000); // long after the write: no settle window covers it

      const report = await healTeam(teamId, { ...deps, counts: backend.store, owner: "h" });
      expect(report.status === "healed" && report.strandedMutations).toBe(1);
      expect(report.status === "healed" && report.verifyScheduled).toBe(true);
      expect(await backend.store.unsentOutbox({ createdUpTo: deps.clock.now(), limit: 10, teamId })).toEqual([]);
      // It lands after the heal counted its user: over by one until the verification heal.
      await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock: deps.clock });
      const truth = await recountBySql(backend.driver, teamId);
      expect((await storedCounts(backend.store, teamId))["late.test/member"]).toBe(2);
      await healTeam(teamId, { ...deps, counts: backend.store, owner: "v" });
      expect(await storedCounts(backend.store, teamId)).toEqual(truth);
    });

    it("counts a team's sent but unapplied mutations as owed: sends lost ones again and verifies after they land", async () => {
      const backend = await open();
      const { queue, clock, deps, teamId } = await setup(backend, 73);
      await playHistory(deps, teamId, 73, 30);
      await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock: deps.clock });
      // A user whose mutation was sent (the row is stamped) and then lost by
      // the queue: Miniflare's in-memory queue dying with the process, say.
      await createUser(deps, teamId, { id: "ULOST", email: "lost@lost.test", domain: "lost.test", role: "member" });
      expect(queue.take()).toHaveLength(1); // gone
      clock.advance(3_600_000); // long after the write: no settle window covers it

      const report = await healTeam(teamId, { ...deps, counts: backend.store, owner: "h" });
      expect(report.status === "healed" && report.strandedMutations).toBe(0);
      expect(report.status === "healed" && report.unappliedMutations).toBe(1);
      expect(report.status === "healed" && report.verifyScheduled).toBe(true);
      // Phase 0 sent it again; it lands after the heal counted its user: over by one until the verification.
      const resent = queue.take();
      expect(resent.map((m) => m.cause)).toEqual(["user_created"]);
      await applyMutationBatch(resent, { counts: backend.store, heals: queue, clock: deps.clock });
      const truth = await recountBySql(backend.driver, teamId);
      expect((await storedCounts(backend.store, teamId))["lost.test/member"]).toBe(2);
      const verify = await healTeam(teamId, { ...deps, counts: backend.store, owner: "v" });
      expect(verify.status === "healed" && verify.unappliedMutations).toBe(0);
      expect(await storedCounts(backend.store, teamId)).toEqual(truth);
    });

    it("runs one heal per team at a time; the other reports busy", async () => {
      const backend = await open();
      const { queue, deps, teamId } = await setup(backend, 51);
      await playHistory(deps, teamId, 51, 60);
      await deliverFaultily(backend, queue, 51);
      const [a, b] = await Promise.all([
        healTeam(teamId, { ...deps, counts: backend.store, owner: "a", pageSize: 5 }),
        healTeam(teamId, { ...deps, counts: backend.store, owner: "b", pageSize: 5 }),
      ]);
      expect([a.status, b.status].sort()).toEqual(["busy", "healed"]);
      expect(await storedCounts(backend.store, teamId)).toEqual(await recountBySql(backend.driver, teamId));
    });

    it("says how long a busy heal should wait: until the holder's lease runs out", async () => {
      const backend = await open();
      const { deps, teamId, clock } = await setup(backend, 52);
      // A heal that crashed holding the lease: it never renews or releases it.
      expect(await backend.store.acquireHealLease(teamId, "crashed", clock.now(), DEFAULT_LEASE_MS)).toBe(true);
      clock.advance(20_000);
      const busy = await healTeam(teamId, { ...deps, counts: backend.store, owner: "next" });
      expect(busy).toEqual({ status: "busy", teamId, retryAfterMs: DEFAULT_LEASE_MS - 20_000 });
      // The consumer's retry lands after that lease is gone, however many retries it takes.
      clock.advance(busyRetrySeconds(busy.status === "busy" ? busy.retryAfterMs : 0) * 1000);
      expect((await healTeam(teamId, { ...deps, counts: backend.store, owner: "next" })).status).toBe("healed");
    });

    it("renews its lease while it recounts, and applies nothing once it lost it", async () => {
      const backend = await open();
      const { queue, deps, teamId, clock } = await setup(backend, 53);
      await playHistory(deps, teamId, 53, 40);
      await deliverFaultily(backend, queue, 53);
      // A long recount: every page takes 25 s. The lease (60 s) is renewed as
      // it goes, so nobody else gets in while it runs.
      let pages = 0;
      const slow: TeamStore = Object.create(backend.store);
      slow.listActiveUsers = async (...args) => {
        pages++;
        clock.advance(25_000);
        expect(await backend.store.acquireHealLease(teamId, "intruder", clock.now(), DEFAULT_LEASE_MS)).toBe(false);
        return backend.store.listActiveUsers(...args);
      };
      const report = await healTeam(teamId, {
        ...deps,
        store: slow,
        counts: backend.store,
        owner: "long",
        pageSize: 5,
      });
      expect(report.status).toBe("healed");
      expect(pages).toBeGreaterThan(3);
      expect(await storedCounts(backend.store, teamId)).toEqual(await recountBySql(backend.driver, teamId));

      // A heal that stalls past its lease (no renewal in 61 s) and was taken over applies nothing.
      await backend.store.applyDeltas([{ teamId, domain: "drift.test", role: "member", delta: 5 }], clock.now());
      const drifted = await storedCounts(backend.store, teamId);
      expect(drifted).not.toEqual(await recountBySql(backend.driver, teamId));
      const stalled: TeamStore = Object.create(backend.store);
      stalled.listActiveUsers = async (...args) => {
        clock.advance(DEFAULT_LEASE_MS + 1_000);
        await backend.store.acquireHealLease(teamId, "successor", clock.now(), DEFAULT_LEASE_MS);
        return backend.store.listActiveUsers(...args);
      };
      await expect(
        healTeam(teamId, { ...deps, store: stalled, counts: backend.store, owner: "stalled", pageSize: 1_000 }),
      ).rejects.toBeInstanceOf(HealLeaseLost);
      expect(await storedCounts(backend.store, teamId)).toEqual(drifted);
    });

    it("flags a plan upgrade for the sweep in the same statement: a crash before the heal request loses no recount", async () => {
      const backend = await open();
      const { deps, teamId, clock } = await setup(backend, 55);
      expect((await healTeam(teamId, { ...deps, counts: backend.store, owner: "first" })).status).toBe("healed");
      clock.advance(1_000);
      const healedBefore = clock.now();
      expect(await backend.store.teamsNeedingHeal(healedBefore - 60_000, 10_000)).not.toContain(teamId);
      // The process dies right after the upgrade committed, before its heal request is sent.
      const dying: LifecycleDeps = {
        ...deps,
        heals: {
          requestHeal: async () => {
            throw new Error("process died");
          },
        },
      };
      await expect(updateTeam(dying, teamId, { plan: "enterprise" })).rejects.toThrow("process died");
      expect(await backend.store.teamsNeedingHeal(healedBefore - 60_000, 10_000)).toContain(teamId);
      // A rename or a downgrade flags nothing.
      await healTeam(teamId, { ...deps, counts: backend.store, owner: "second" });
      await updateTeam(deps, teamId, { name: "renamed", plan: "free" });
      expect(await backend.store.teamsNeedingHeal(healedBefore - 60_000, 10_000)).not.toContain(teamId);
    });

    it("lands an import whole or not at all: killed part-way, nothing is visible; retried with its key, it stages the rest and lands once", async () => {
      const backend = await open();
      const { queue, deps, teamId } = await setup(backend, 56);
      const inputs = Array.from({ length: 23 }, (_, i) => ({
        email: `imp${i}@${DOMAINS[i % DOMAINS.length]}`,
        domain: DOMAINS[i % DOMAINS.length] as string,
        role: "member" as const,
      }));
      const key = { key: "import-56", requestHash: "hash-of-the-import" };
      const usersOfTeam = async () =>
        Number(
          (await backend.driver.all<{ n: number }>("SELECT COUNT(*) AS n FROM users WHERE `team_id` = ?", [teamId]))[0]
            ?.n,
        );
      // The process dies right after the third page (of five) was staged.
      let pages = 0;
      const dying: TeamStore = Object.create(backend.store);
      dying.stageUsers = async (...args) => {
        await backend.store.stageUsers(...args);
        if (++pages === 3) throw new Error("process died");
      };
      await expect(importUsersOnce({ ...deps, store: dying }, teamId, inputs, 5, key)).rejects.toThrow("process died");
      expect(await usersOfTeam()).toBe(0);
      expect(await backend.store.idempotencyRecord(teamId, key.key)).toBeNull();
      expect(await backend.store.stagedImport(teamId, key.key)).toEqual({ users: 15, requestHash: key.requestHash });
      // Another body under the key while it is staged: 422, nothing changes.
      await expect(
        importUsersOnce(deps, teamId, inputs.slice(1), 5, { ...key, requestHash: "another" }),
      ).rejects.toMatchObject({ kind: "invalid", code: "idempotency_key_reused" });
      // The same request again: the last two pages, then one landing.
      let staged = 0;
      const counting: TeamStore = Object.create(backend.store);
      counting.stageUsers = async (...args) => {
        staged++;
        return backend.store.stageUsers(...args);
      };
      expect(await importUsersOnce({ ...deps, store: counting }, teamId, inputs, 5, key)).toEqual({
        value: { imported: 23, pages: 5 },
        replayed: false,
      });
      expect(staged).toBe(2);
      expect(await usersOfTeam()).toBe(23);
      expect(await backend.store.stagedImport(teamId, key.key)).toBeNull();
      // Once more: the summary, nothing written.
      expect(await importUsersOnce(deps, teamId, inputs, 5, key)).toEqual({
        value: { imported: 23, pages: 5 },
        replayed: true,
      });
      await expect(
        importUsersOnce(deps, teamId, inputs.slice(1), 5, { ...key, requestHash: "another" }),
      ).rejects.toMatchObject({ kind: "invalid", code: "idempotency_key_reused" });
      // The landing's mutations (one coalesced set for the import): counts equal the recount, with no heal.
      await relayStranded({ outbox: backend.store, mutations: queue, clock: deps.clock }, { teamId, minAgeMs: 0 });
      await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock: deps.clock });
      expect(await storedCounts(backend.store, teamId)).toEqual(await recountBySql(backend.driver, teamId));
    });

    it("lands nothing when a user written meanwhile takes one of the import's emails: 409, nothing staged or visible", async () => {
      const backend = await open();
      const { deps, teamId } = await setup(backend, 59);
      const inputs = Array.from({ length: 12 }, (_, i) => ({
        email: `late${i}@acme.test`,
        domain: "acme.test",
        role: "member" as const,
      }));
      const racing: TeamStore = Object.create(backend.store);
      racing.landStagedUsers = async (...args) => {
        await createUser(deps, teamId, { email: "late7@acme.test", domain: "acme.test", role: "guest" });
        return backend.store.landStagedUsers(...args);
      };
      await expect(importUsersOnce({ ...deps, store: racing }, teamId, inputs, 5, null)).rejects.toMatchObject({
        kind: "conflict",
      });
      const rows = await backend.driver.all<{ email: string }>("SELECT `email` FROM users WHERE `team_id` = ?", [
        teamId,
      ]);
      expect(rows.map((r) => r.email)).toEqual(["late7@acme.test"]);
      const left = await backend.driver.all<{ n: number }>(
        "SELECT COUNT(*) AS n FROM staged_users WHERE `team_id` = ?",
        [teamId],
      );
      expect(Number(left[0]?.n)).toBe(0);
    });

    it("answers the first landing's summary when another run of the same import landed first", async () => {
      const backend = await open();
      const { deps, teamId } = await setup(backend, 58);
      const inputs = Array.from({ length: 23 }, (_, i) => ({
        email: `race${i}@${DOMAINS[i % DOMAINS.length]}`,
        domain: DOMAINS[i % DOMAINS.length] as string,
        role: "member" as const,
      }));
      const key = { key: "import-58", requestHash: "hash-of-the-import" };
      // Our run has read the key's record (nothing yet); before it stages,
      // another run with the key (an earlier attempt that outlived its time
      // bound, say) stages and lands the whole import.
      let raced = false;
      const racing: TeamStore = Object.create(backend.store);
      racing.stageUsers = async (...args) => {
        if (!raced) {
          raced = true;
          await importUsersOnce(deps, teamId, inputs, 5, key);
        }
        return backend.store.stageUsers(...args);
      };
      expect(await importUsersOnce({ ...deps, store: racing }, teamId, inputs, 5, key)).toEqual({
        value: { imported: 23, pages: 5 },
        replayed: true,
      });
      const rows = await backend.driver.all<{ n: number }>("SELECT COUNT(*) AS n FROM users WHERE `team_id` = ?", [
        teamId,
      ]);
      expect(Number(rows[0]?.n)).toBe(23);
      expect(await backend.store.stagedImport(teamId, key.key)).toBeNull();
    });

    it("sends again what the queue lost: a sent mutation never applied goes out once more, and the counts come right with no heal", async () => {
      const backend = await open();
      const { queue, deps, teamId, clock } = await setup(backend, 57);
      await playHistory(deps, teamId, 57, 30);
      const sent = queue.take();
      // The queue loses every third message after accepting it (dead-lettered, or a local queue that died).
      const lost = sent.filter((_, i) => i % 3 === 0);
      await applyMutationBatch(
        sent.filter((_, i) => i % 3 !== 0),
        { counts: backend.store, heals: queue, clock: deps.clock },
      );
      expect(await storedCounts(backend.store, teamId)).not.toEqual(await recountBySql(backend.driver, teamId));
      const relay = { outbox: backend.store, mutations: queue, clock: deps.clock };
      // Too soon: a slow message is not lost.
      expect((await redeliverUnapplied(relay, { teamId })).found).toBe(0);
      clock.advance(REDELIVER_AFTER_MS + 1);
      const again = await redeliverUnapplied(relay, { teamId });
      expect(again.sent).toBe(lost.length);
      expect(
        queue
          .take()
          .map((m) => m.id)
          .sort(),
      ).toEqual(lost.map((m) => m.id).sort());
      // Delivered again, and a late copy of the original too: each applied once.
      await applyMutationBatch([...lost, ...lost], { counts: backend.store, heals: queue, clock: deps.clock });
      expect(await storedCounts(backend.store, teamId)).toEqual(await recountBySql(backend.driver, teamId));
      clock.advance(REDELIVER_AFTER_MS + 1);
      expect((await redeliverUnapplied(relay, { teamId })).found).toBe(0);
      expect(await backend.store.pruneSentOutbox(clock.now(), 10_000)).toBeGreaterThanOrEqual(sent.length);
    });

    it("reports no_team for a team that does not exist", async () => {
      const backend = await open();
      const queue = new HeldQueue();
      const outcome = await healTeam("TNOPE", {
        store: backend.store,
        counts: backend.store,
        heals: queue,
        mutations: queue,
        clock: fixedClock(),
        owner: "x",
      });
      expect(outcome.status).toBe("no_team");
    });
  });
}
