import type { Clock } from "../../src/clock";
import type { Actor } from "../../src/connect/connections";
import {
  answerInvitation,
  type ConnectionsPorts,
  createInvitation,
  newConnectId,
} from "../../src/connect/connections-service";
import type { DirUser } from "../../src/directory/model";
import type { DomainCountStore } from "../../src/domains/count-store";
import type { DomainMutationMessage, HealPublisher, HealRequest, MutationPublisher } from "../../src/domains/messages";
import type { TeamStore } from "../../src/teams/team-store";
import { connectionsStore } from "../../storage/connections-sql";
import type { SqlDriver } from "../../storage/sql-driver";

// Shared by the contract suites that run on D1 (inside workerd) and on MySQL
// (Node, real PlanetScale driver). Runtime-agnostic on purpose.

export interface Backend {
  name: string;
  driver: SqlDriver;
  store: TeamStore & DomainCountStore;
}

/** A queue whose deliveries the test controls: what is published is held until delivered. */
export class HeldQueue implements MutationPublisher, HealPublisher {
  readonly mutations: DomainMutationMessage[] = [];
  readonly heals: Array<{ request: HealRequest; delaySeconds?: number }> = [];
  async publish(messages: DomainMutationMessage[]): Promise<void> {
    this.mutations.push(...messages);
  }
  async requestHeal(request: HealRequest, delaySeconds?: number): Promise<void> {
    this.heals.push({ request, delaySeconds });
  }
  take(): DomainMutationMessage[] {
    return this.mutations.splice(0, this.mutations.length);
  }
}

export function fixedClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

/** Deterministic PRNG (mulberry32) so a failing history can be replayed from its seed. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => {
      const x = xs[Math.floor(next() * xs.length)];
      if (x === undefined) throw new Error("pick from empty list");
      return x;
    },
    shuffle: <T>(xs: T[]): T[] => {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
      }
      return xs;
    },
  };
}

export function uniqueTeamId(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
}

/**
 * The source of truth counted straight from the users table with GROUP BY:
 * independent of the healer's own paging and tallying code.
 */
export async function recountBySql(driver: SqlDriver, teamId: string): Promise<Record<string, number>> {
  const rows = await driver.all(
    "SELECT `domain`, `role`, COUNT(*) AS n FROM users WHERE `team_id` = ? AND `deactivated` = 0 GROUP BY `domain`, `role`",
    [teamId],
  );
  const out: Record<string, number> = {};
  for (const r of rows) {
    const n = Number(r.n);
    out[`${String(r.domain)}/${String(r.role)}`] = n;
    const total = `*/${String(r.role)}`;
    out[total] = (out[total] ?? 0) + n;
  }
  return out;
}

/** Stored aggregate in the same shape, zero rows left out. */
export async function storedCounts(store: DomainCountStore, teamId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const c of await store.readAllCounts(teamId)) if (c.count !== 0) out[`${c.domain}/${c.role}`] = c.count;
  return out;
}

/** A directory user of team T1 (id U1, an active member), with `over` on top. */
export function dirUser(over: Partial<DirUser> = {}): DirUser {
  return {
    teamId: "T1",
    id: "U1",
    name: "ada",
    realName: "Ada",
    displayName: "",
    title: "",
    avatarHash: "",
    tz: "UTC",
    isBot: false,
    role: "member",
    deleted: false,
    updatedAt: 1,
    ...over,
  };
}

/** What a promise rejects with; throws when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

/**
 * Teams and accepted connections between them, for the Slack Connect
 * contracts: `team(name)` creates one (its admin is `user`), `connect(a, b)`
 * has a invite b and b accept, one clock tick apart.
 */
export function connectFixture(driver: SqlDriver, store: TeamStore, clock: Clock & { advance(ms: number): void }) {
  const connections: ConnectionsPorts = {
    store: connectionsStore(driver),
    now: () => clock.now(),
    newId: newConnectId,
  };
  const team = async (name: string, options: { domains?: string[]; user?: string } = {}): Promise<Actor> => {
    const id = uniqueTeamId("T");
    await store.createTeam({
      id,
      name,
      plan: "pro",
      claimedDomains: options.domains ?? [],
      createdAt: 0,
      healedAt: null,
    });
    return { team: id, user: options.user ?? "UADMIN" };
  };
  const connect = async (a: Actor, b: Actor): Promise<string> => {
    const { code } = await createInvitation(connections, a);
    clock.advance(1);
    const answered = await answerInvitation(connections, b, code, "accept");
    if (!answered.connection) throw new Error("not connected");
    return answered.connection.id;
  };
  return { connections, team, connect };
}
