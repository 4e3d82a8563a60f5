import { describe, expect, it } from "vitest";
import type { ChangeEvent } from "../../src/directory/model";
import type { DirectorySource } from "../../src/directory/source";
import { coalesce, deltasForChange } from "../../src/domains/deltas";
import type { DomainMutationMessage } from "../../src/domains/messages";
import { type DomainDelta, keyOf } from "../../src/domains/model";
import { applyMutationBatch } from "../../src/domains/mutation-consumer";
import { relayStranded, STRANDED_AFTER_MS } from "../../src/domains/outbox";
import {
  changeUser,
  createTeam,
  createUser,
  importUsers,
  type LifecycleDeps,
  type NewUserInput,
} from "../../src/teams/lifecycle";
import type { Role } from "../../src/teams/model";
import { directoryStore } from "../../storage/directory-store";
import { sqlStore } from "../../storage/sql-store";
import {
  type CrashWhen,
  DyingProcess,
  dyingChangePublisher,
  dyingDriver,
  dyingPublisher,
  SimulatedCrash,
} from "./faults";
import { type Backend, fixedClock, HeldQueue, recountBySql, storedCounts } from "./fixtures";

// Crash consistency of the admin user writes (issue 15): the process dies at
// every step of a create, a role change, a deactivation, a reactivation, an
// email change and a paged import, before or after each call. Whatever the
// step, the database holds all of a change (users row, change-log row, outbox
// row with exactly its deltas) or none of it; and once the outbox sweep has
// run and the queue has delivered (each message twice), the counts equal a
// recount and a team cache that catches up from the log equals the users
// table, with no heal.

const DOMAIN = "acme.test";

type UserState = { role: Role; deactivated: boolean; domain: string; email: string };

/** A team cache as TeamCache keeps one: loaded at a version, applying pushed events in order, catching up from the log on a gap. */
class CacheModel {
  version = 0;
  users = new Map<string, { role: Role; deleted: boolean }>();

  constructor(
    private readonly source: DirectorySource,
    private readonly teamId: string,
  ) {}

  async load(): Promise<void> {
    // As TeamCache.load: the version first, so anything after it is replayed.
    const from = await this.source.version(this.teamId);
    this.users = await usersIn(this.source, this.teamId);
    this.version = from;
    await this.catchUp();
  }

  /** A push (ChangePublisher): duplicates skipped, a gap caught up from the log. */
  async apply(events: ChangeEvent[]): Promise<void> {
    for (const e of [...events].sort((a, b) => a.version - b.version)) {
      if (e.version <= this.version) continue;
      if (e.version > this.version + 1) await this.catchUp();
      else await this.applyOne(e);
    }
  }

  /** What the cache's freshness check does when the database's version is ahead. */
  async catchUp(): Promise<void> {
    for (;;) {
      const events = await this.source.changesSince(this.teamId, this.version, 1000);
      for (const e of events) if (e.version > this.version) await this.applyOne(e);
      if (events.length < 1000) return;
    }
  }

  private async applyOne(e: ChangeEvent): Promise<void> {
    if (e.change.kind === "reload") return this.load();
    if (e.change.kind === "user")
      this.users.set(e.change.user.id, { role: e.change.user.role, deleted: e.change.user.deleted });
    this.version = e.version;
  }
}

async function usersIn(
  source: DirectorySource,
  teamId: string,
): Promise<Map<string, { role: Role; deleted: boolean }>> {
  const out = new Map<string, { role: Role; deleted: boolean }>();
  for (let after: string | null = null; ; ) {
    const page = await source.pageUsers(teamId, after, 500);
    for (const u of page) out.set(u.id, { role: u.role, deleted: u.deleted });
    if (page.length < 500) return out;
    after = page.at(-1)?.id ?? null;
  }
}

async function userRows(backend: Backend, teamId: string): Promise<Map<string, UserState>> {
  const rows = await backend.driver.all(
    "SELECT `id`, `role`, `deactivated`, `domain`, `email` FROM users WHERE `team_id` = ? ORDER BY `id`",
    [teamId],
  );
  return new Map(
    rows.map((r) => [
      String(r.id),
      {
        role: String(r.role) as Role,
        deactivated: Number(r.deactivated) === 1,
        domain: String(r.domain),
        email: String(r.email),
      },
    ]),
  );
}

async function outboxRows(
  backend: Backend,
  teamId: string,
): Promise<Array<{ id: string; body: DomainMutationMessage }>> {
  const rows = await backend.driver.all("SELECT `id`, `body` FROM outbox WHERE `team_id` = ?", [teamId]);
  return rows.map((r) => ({ id: String(r.id), body: JSON.parse(String(r.body)) as DomainMutationMessage }));
}

const asMap = (deltas: DomainDelta[]) => Object.fromEntries(coalesce(deltas).map((d) => [keyOf(d), d.delta]));

const input = (id: string, role: Role = "member", domain = DOMAIN): NewUserInput => ({
  id,
  email: `${id.toLowerCase()}@${domain}`,
  domain,
  role,
});

interface World {
  teamId: string;
  clock: ReturnType<typeof fixedClock>;
  queue: HeldQueue;
  cache: CacheModel;
  versionBefore: number;
  usersBefore: Map<string, UserState>;
  outboxBefore: Set<string>;
}

/** A team with three users (U1 member, U2 member, U3 deactivated admin), its counts delivered, a cache loaded. */
async function world(backend: Backend): Promise<World> {
  const clock = fixedClock();
  const queue = new HeldQueue();
  const deps: LifecycleDeps = { store: backend.store, mutations: queue, heals: queue, clock };
  const team = await createTeam(deps, { name: "crash", plan: "pro", claimedDomains: [] });
  await importUsers(deps, team.id, [input("U1"), input("U2"), input("U3", "admin", "partner.test")]);
  await changeUser(deps, team.id, "U3", { deactivated: true });
  await applyMutationBatch(queue.take(), { counts: backend.store, heals: queue, clock });
  const dir = directoryStore(backend.driver);
  const cache = new CacheModel(dir, team.id);
  await cache.load();
  return {
    teamId: team.id,
    clock,
    queue,
    cache,
    versionBefore: await dir.version(team.id),
    usersBefore: await userRows(backend, team.id),
    outboxBefore: new Set((await outboxRows(backend, team.id)).map((r) => r.id)),
  };
}

interface Scenario {
  name: string;
  op(deps: LifecycleDeps, teamId: string): Promise<unknown>;
}

const SCENARIOS: Scenario[] = [
  { name: "create a user", op: (deps, t) => createUser(deps, t, input("UNEW", "admin", "new.test")) },
  { name: "change a role", op: (deps, t) => changeUser(deps, t, "U2", { role: "admin" }) },
  { name: "deactivate a user", op: (deps, t) => changeUser(deps, t, "U1", { deactivated: true }) },
  { name: "reactivate a user", op: (deps, t) => changeUser(deps, t, "U3", { deactivated: false }) },
  {
    name: "move a user to another domain",
    op: (deps, t) => changeUser(deps, t, "U1", { email: "u1@moved.test", domain: "moved.test" }),
  },
  {
    name: "import users in pages",
    op: (deps, t) =>
      importUsers(deps, t, [input("UA1"), input("UA2", "guest"), input("UA3", "admin", "x.test"), input("UA4")], {
        pageSize: 2,
      }),
  },
];

/** Runs the scenario in a process that dies at step `at` (never, for Infinity). */
async function runDying(backend: Backend, w: World, scenario: Scenario, at: number, when: CrashWhen, statements = 0) {
  const dying = new DyingProcess(at, when, statements);
  const driver = dyingDriver(backend.driver, dying);
  const deps: LifecycleDeps = {
    store: sqlStore(driver),
    mutations: dyingPublisher(w.queue, dying),
    heals: w.queue,
    clock: w.clock,
    directory: directoryStore(driver),
    changes: dyingChangePublisher({ publish: (_teamId, events) => w.cache.apply(events) }, dying),
  };
  try {
    await scenario.op(deps, w.teamId);
  } catch (error) {
    if (!(error instanceof SimulatedCrash)) throw error;
  }
  return dying;
}

/** All of the change or none of it: users rows, change-log rows and outbox rows agree. */
async function expectAllOrNothing(backend: Backend, w: World, label: string): Promise<void> {
  const after = await userRows(backend, w.teamId);
  const changed = [...after.keys()].filter(
    (id) => JSON.stringify(after.get(id)) !== JSON.stringify(w.usersBefore.get(id)),
  );
  const events = await directoryStore(backend.driver).changesSince(w.teamId, w.versionBefore, 100_000);
  const logged = new Set(events.flatMap((e) => (e.change.kind === "user" ? [e.change.user.id] : [])));
  const added = (await outboxRows(backend, w.teamId)).filter((r) => !w.outboxBefore.has(r.id));

  // Every visible change has its log row, and every log row its change.
  expect([...logged].sort(), `${label}: change-log rows`).toEqual([...changed].sort());
  // The outbox holds exactly the deltas of the visible change.
  const contribution = (u: UserState | undefined) =>
    u ? { domain: u.domain, role: u.role, active: !u.deactivated } : null;
  const expected = changed.flatMap((id) =>
    deltasForChange(w.teamId, contribution(w.usersBefore.get(id)), contribution(after.get(id))),
  );
  const queued = added.flatMap((r) =>
    r.body.deltas.map((d) => ({ teamId: w.teamId, domain: d.domain, role: d.role, delta: d.delta })),
  );
  expect(asMap(queued), `${label}: outbox deltas`).toEqual(asMap(expected));
  if (changed.length === 0) expect(added, `${label}: outbox rows`).toEqual([]);
}

/** What a crash left in the database, ids of new outbox rows aside (they are random). */
async function fingerprint(backend: Backend, w: World): Promise<string> {
  const users = Object.fromEntries(await userRows(backend, w.teamId));
  const version = await directoryStore(backend.driver).version(w.teamId);
  const outbox = (await outboxRows(backend, w.teamId)).filter((r) => !w.outboxBefore.has(r.id)).length;
  return JSON.stringify({ users, version, outbox });
}

/** The sweep, then the queue delivering everything twice; counts and cache must equal the database. */
async function expectRecovered(backend: Backend, w: World, label: string): Promise<{ redelivered: number }> {
  w.clock.advance(STRANDED_AFTER_MS);
  await relayStranded({ outbox: backend.store, mutations: w.queue, clock: w.clock });
  expect(
    await backend.store.unsentOutbox({ createdUpTo: w.clock.now(), limit: 10, teamId: w.teamId }),
    `${label}: unsent left`,
  ).toEqual([]);
  const sent = w.queue.take();
  const consumer = { counts: backend.store, heals: w.queue, clock: w.clock };
  const first = await applyMutationBatch(sent, consumer);
  const again = await applyMutationBatch([...sent].reverse(), consumer);
  expect(again.events, `${label}: a second delivery applies nothing`).toBe(0);
  expect(first.healsRequested, `${label}: no heal needed`).toEqual([]);
  expect(await storedCounts(backend.store, w.teamId), `${label}: counts`).toEqual(
    await recountBySql(backend.driver, w.teamId),
  );

  const dir = directoryStore(backend.driver);
  await w.cache.catchUp();
  expect(w.cache.version, `${label}: cache version`).toBe(await dir.version(w.teamId));
  expect(Object.fromEntries(w.cache.users), `${label}: cache`).toEqual(
    Object.fromEntries(await usersIn(dir, w.teamId)),
  );
  // Versions stay dense: nothing bumped without its log row.
  const all = await dir.changesSince(w.teamId, 0, 100_000);
  expect(
    all.map((e) => e.version),
    `${label}: dense versions`,
  ).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
  return { redelivered: sent.length - new Set(sent.map((m) => m.id)).size };
}

export function crashContract(open: () => Promise<Backend>): void {
  describe("crash consistency of user writes", () => {
    for (const scenario of SCENARIOS) {
      it(`${scenario.name}: all or nothing at every crash point, and exact after the sweep`, async () => {
        const backend = await open();
        const dry = await world(backend);
        const dryRun = await runDying(backend, dry, scenario, Number.POSITIVE_INFINITY, "before");
        expect(dryRun.steps).toBeGreaterThan(2);
        // Every step, before and after; every statement of every atomic unit, part-way.
        const points: Array<[number, CrashWhen, number]> = [];
        for (let at = 1; at <= dryRun.steps; at++) {
          points.push([at, "before", 0]);
          for (let k = 1; k <= (dryRun.unitSizes[at - 1] ?? 0); k++) points.push([at, "within", k]);
          points.push([at, "after", 0]);
        }
        let crashesThatLeftWork = 0;
        let doublePublishes = 0;
        const beforeStep = new Map<number, string>();
        for (const [at, when, statements] of points) {
          const w = await world(backend);
          const dying = await runDying(backend, w, scenario, at, when, statements);
          const cut = when === "within" ? `, ${statements} statements in` : "";
          const label = `${scenario.name}, crash ${when} step ${at}${cut} (${dying.log.at(-1)})`;
          expect(dying.dead, label).toBe(true);
          // A unit cut part-way left what dying just before it left: nothing of its own.
          const state = await fingerprint(backend, w);
          if (when === "before") beforeStep.set(at, state);
          if (when === "within") expect(state, label).toBe(beforeStep.get(at));
          await expectAllOrNothing(backend, w, label);
          const unsent = await backend.store.unsentOutbox({ createdUpTo: w.clock.now(), limit: 100, teamId: w.teamId });
          if (unsent.length > 0) crashesThatLeftWork++;
          doublePublishes += (await expectRecovered(backend, w, label)).redelivered;
        }
        // The sweep had work to do, and a relay published twice somewhere.
        expect(crashesThatLeftWork).toBeGreaterThan(0);
        expect(doublePublishes).toBeGreaterThan(0);
      });
    }
  });
}
