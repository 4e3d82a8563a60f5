import { depsFor, driverFor } from "../platform/deps";
import { healTeam } from "../src/domains/healer";
import type { DomainMutationMessage } from "../src/domains/messages";
import { type DomainDelta, TEAM_TOTAL_DOMAIN } from "../src/domains/model";
import { applyMutationBatch } from "../src/domains/mutation-consumer";
import { classifyDomains, type RoleCounts, uniqueDomains } from "../src/invites/classify";
import { classifyInvites } from "../src/invites/classify-invites";
import { parseEmail } from "../src/invites/email";
import { createTeam, importUsers } from "../src/teams/lifecycle";
import { ROLES, type Role } from "../src/teams/model";
import { createApp } from "../workers/app";
import worker from "../workers/index";

// Benchmark-only Worker: the real app plus /bench routes that run the same
// domain code in loops inside workerd (server-side cost per operation) and
// the baselines measured beside it. Never deployed: bench/wrangler.bench.toml.

const app = createApp();

/** The approach the design replaces: one count query per domain, one for totals. */
async function classifyPerDomain(env: Env, teamId: string, userId: string, emails: string[]) {
  const deps = depsFor(env);
  const driver = driverFor(env);
  const parsed = emails.map((e) => {
    const p = parseEmail(e);
    if (!p.ok) throw new Error(p.reason);
    return p;
  });
  const found = await deps.store.getTeamAndUser(teamId, userId);
  if (!found) throw new Error("no inviter");
  const domains = uniqueDomains(parsed);
  const domainCounts = new Map<string, RoleCounts>();
  let totals: RoleCounts = { owner: 0, admin: 0, member: 0, guest: 0 };
  for (const domain of [...domains, TEAM_TOTAL_DOMAIN]) {
    const rows = await driver.all("SELECT `role`, `count` FROM domains WHERE `team_id` = ? AND `domain` = ?", [
      teamId,
      domain,
    ]);
    const c: RoleCounts = { owner: 0, admin: 0, member: 0, guest: 0 };
    for (const r of rows) c[String(r.role) as Role] = Number(r.count);
    if (domain === TEAM_TOTAL_DOMAIN) totals = c;
    else domainCounts.set(domain, c);
  }
  const decisions = classifyDomains(
    domains,
    {
      claimedDomains: new Set(found.team.claimedDomains),
      inviter: { role: found.user.role, domain: found.user.domain },
      domainCounts,
      totals,
    },
    deps.policy,
  );
  return parsed.map((p) => ({ email: p.email, ...decisions.get(p.domain) }));
}

/** Zipf-like domain sizes: a few big domains, a long tail. */
function domainFor(i: number): string {
  const r = (Math.imul(i + 1, 2654435761) >>> 0) / 4294967296;
  if (r < 0.55) return "bigcorp.example";
  if (r < 0.7) return "partner.example";
  return `d${Math.floor(1 / (1 - r) ** 1.3) % 3000}.example`;
}

function roleFor(i: number): Role {
  return i % 200 === 0 ? "owner" : i % 40 === 0 ? "admin" : i % 20 === 0 ? "guest" : "member";
}

async function json(request: Request): Promise<Record<string, unknown>> {
  return (await request.json()) as Record<string, unknown>;
}

const routes: Record<string, (req: Request, env: Env) => Promise<unknown>> = {
  /** Builds the team through the real lifecycle; the aggregate is applied directly (no queue). */
  async "/bench/setup"(req, env) {
    const { team, users, from = 0 } = (await json(req)) as { team: string; users: number; from?: number };
    const deps = depsFor(env);
    const direct = {
      ...deps,
      mutations: {
        publish: async (messages: DomainMutationMessage[]) => {
          await applyMutationBatch(messages, deps);
        },
      },
    };
    if (from === 0) {
      await createTeam(direct, { id: team, name: "Bench", plan: "enterprise", claimedDomains: ["bigcorp.example"] });
    }
    const inputs = Array.from({ length: users }, (_, k) => {
      const i = from + k;
      const domain = domainFor(i);
      return { id: `U${String(i).padStart(8, "0")}`, email: `u${i}@${domain}`, domain, role: roleFor(i) };
    });
    await importUsers(direct, team, inputs, { pageSize: 2000 });
    return { imported: inputs.length };
  },

  async "/bench/classify-per-domain"(req, env) {
    const { team, user, emails } = (await json(req)) as { team: string; user: string; emails: string[] };
    return { results: await classifyPerDomain(env, team, user, emails) };
  },

  /** n classifications in a loop: server-side work without HTTP. */
  async "/bench/classify-loop"(req, env) {
    const { team, user, emails, n, strategy } = (await json(req)) as {
      team: string;
      user: string;
      emails: string[];
      n: number;
      strategy: "batched" | "per-domain" | "empty";
    };
    const deps = { ...depsFor(env), staleAfterMs: Number.MAX_SAFE_INTEGER };
    // workerd's clock only moves across I/O and is coarse, so time the whole
    // loop and divide, rather than timing each iteration.
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      if (strategy === "batched") await classifyInvites(deps, team, user, emails);
      else if (strategy === "per-domain") await classifyPerDomain(env, team, user, emails);
      else await Promise.resolve();
    }
    return { ms: performance.now() - t0, n };
  },

  /**
   * `events` synthetic lifecycle events (role and email changes: 2-4 deltas
   * each) through the consumer in queue batches of `batch`; with
   * coalesce=false each delta is its own upsert, the naive consumer.
   */
  async "/bench/mutations"(req, env) {
    // mode: "coalesced" is the consumer as deployed (a batch's deltas merged
    // per key, one statement); "batched" writes the same batch in one
    // statement without merging (batching alone); "naive" writes each delta
    // with its own statement (neither).
    const { team, events, batch, mode, users } = (await json(req)) as {
      team: string;
      events: number;
      batch: number;
      mode: "coalesced" | "batched" | "naive";
      users: number;
    };
    const deps = depsFor(env);
    // Fresh ids per run: the consumer skips ids it has applied before.
    const run = crypto.randomUUID().slice(0, 8);
    const messages: DomainMutationMessage[] = Array.from({ length: events }, (_, i) => {
      const u = (i * 7919) % users;
      const from = { domain: domainFor(u), role: roleFor(u) };
      const to =
        i % 2 === 0
          ? { domain: from.domain, role: ROLES[(i >> 1) % 4] as Role }
          : { domain: domainFor(u + 1), role: from.role };
      const deltas = [
        { ...from, delta: -1 },
        { ...to, delta: 1 },
        { domain: TEAM_TOTAL_DOMAIN, role: from.role, delta: -1 },
        { domain: TEAM_TOTAL_DOMAIN, role: to.role, delta: 1 },
      ].filter((d) => !(d.domain === TEAM_TOTAL_DOMAIN && from.role === to.role));
      return { v: 1, id: `${run}-m${i}`, teamId: team, cause: "user_updated", deltas, at: 0 };
    });
    const t0 = performance.now();
    let statements = 0;
    let upserts = 0;
    let keys = 0;
    for (let i = 0; i < messages.length; i += batch) {
      const slice = messages.slice(i, i + batch);
      if (mode === "coalesced") {
        const out = await applyMutationBatch(slice, deps);
        statements += out.statements;
        upserts += out.upserts;
        keys += out.keys;
      } else if (mode === "batched") {
        // The consumer as deployed minus the merge: the same exactly-once
        // bookkeeping (which ids were applied already, and recording the new
        // ones in the same statement unit), so "coalescing alone" compares
        // merging against not merging and nothing else.
        const ids = slice.map(({ teamId, id }) => ({ teamId, id }));
        const done = new Set((await deps.counts.appliedMutations(ids)).map((k) => `${k.teamId}\u0000${k.id}`));
        const fresh = slice.filter((m) => !done.has(`${m.teamId}\u0000${m.id}`));
        const all: DomainDelta[] = fresh.flatMap((m) =>
          m.deltas.map((d) => ({ teamId: team, domain: d.domain, role: d.role, delta: d.delta })),
        );
        const out = await deps.counts.applyDeltas(
          all,
          0,
          fresh.map(({ teamId, id }) => ({ teamId, id })),
        );
        statements += out.statements + 1;
        upserts += out.upserts;
        keys += all.length;
      } else {
        // One statement per delta, with the same bookkeeping per message: is
        // it applied already, and its id recorded with its last delta.
        for (const m of slice) {
          const key = { teamId: m.teamId, id: m.id };
          statements += 1;
          if ((await deps.counts.appliedMutations([key])).length > 0) continue;
          for (const [i, d] of m.deltas.entries()) {
            const delta: DomainDelta = { teamId: team, domain: d.domain, role: d.role, delta: d.delta };
            const out = await deps.counts.applyDeltas([delta], 0, i === m.deltas.length - 1 ? [key] : undefined);
            statements += out.statements;
            upserts += out.upserts;
            keys += 1;
          }
        }
      }
    }
    return { ms: performance.now() - t0, statements, upserts, keys, events };
  },

  async "/bench/heal"(req, env) {
    const { team } = (await json(req)) as { team: string };
    const deps = depsFor(env);
    return healTeam(team, { ...deps, owner: `bench-${Date.now()}` });
  },

  /** Baseline for the recount: one GROUP BY in the database instead of paging into memory. */
  async "/bench/recount-sql"(req, env) {
    const { team } = (await json(req)) as { team: string };
    const t0 = performance.now();
    const rows = await driverFor(env).all(
      "SELECT `domain`, `role`, COUNT(*) AS n FROM users WHERE `team_id` = ? AND `deactivated` = 0 GROUP BY `domain`, `role`",
      [team],
    );
    return { ms: performance.now() - t0, keys: rows.length };
  },
};

// The classify route reads the caller's live role from its team's cache
// (src/auth/policy.ts), as deployed: the bench serves the same objects.
export { SharedChannel } from "../durable-objects/shared-channel/shared-channel";
export { TeamCache } from "../durable-objects/team-cache/team-cache";

export default {
  async fetch(request, env, ctx) {
    const route = routes[new URL(request.url).pathname];
    if (!route) return app.fetch(request, env, ctx);
    try {
      return Response.json(await route(request, env));
    } catch (error) {
      return Response.json({ error: String(error instanceof Error ? error.stack : error) }, { status: 500 });
    }
  },
  queue: worker.queue,
} satisfies ExportedHandler<Env>;
