import { systemClock } from "../src/clock";
import type { DomainCountStore } from "../src/domains/count-store";
import type { DomainMutationMessage, HealPublisher, HealRequest, MutationPublisher } from "../src/domains/messages";
import type { ClassifyPolicy } from "../src/invites/classify-policy";
import { parsePolicy } from "../src/invites/classify-policy";
import type { TeamStore } from "../src/teams/team-store";
import { d1Driver } from "../storage/d1-driver";
import { planetscaleDriver } from "../storage/planetscale-driver";
import type { SqlDriver } from "../storage/sql-driver";
import { sqlStore } from "../storage/sql-store";

// Builds the ports the domain logic needs from the Worker's bindings. The
// only place that knows which storage adapter a deployment uses.

export interface Deps {
  store: TeamStore;
  counts: DomainCountStore;
  mutations: MutationPublisher;
  heals: HealPublisher;
  clock: typeof systemClock;
  policy: ClassifyPolicy;
  staleAfterMs: number;
  /** See HealerDeps.settleSeconds. */
  settleSeconds: number;
}

/** sendBatch takes at most 100 messages. */
const SEND_BATCH_MAX = 100;

export function driverFor(env: Env): SqlDriver {
  switch (env.STORAGE) {
    case "d1":
      return d1Driver(env.DB);
    case "planetscale":
      if (!env.DATABASE_URL) throw new Error("STORAGE=planetscale needs the DATABASE_URL secret");
      return planetscaleDriver({ url: env.DATABASE_URL });
    default:
      throw new Error(`unknown STORAGE "${env.STORAGE}" (use "d1" or "planetscale")`);
  }
}

const policyCache = new Map<string, ClassifyPolicy>();

function policyFor(env: Env): ClassifyPolicy {
  const key = `${env.CLASSIFY_THRESHOLD}|${env.CLASSIFY_WEIGHTS}`;
  let policy = policyCache.get(key);
  if (!policy) {
    policy = parsePolicy(env);
    policyCache.set(key, policy);
  }
  return policy;
}

export function queueMutationPublisher(queue: Queue<DomainMutationMessage>): MutationPublisher {
  return {
    async publish(messages) {
      for (let i = 0; i < messages.length; i += SEND_BATCH_MAX) {
        await queue.sendBatch(messages.slice(i, i + SEND_BATCH_MAX).map((body) => ({ body })));
      }
    },
  };
}

export function queueHealPublisher(queue: Queue<HealRequest>): HealPublisher {
  return {
    async requestHeal(request, delaySeconds) {
      await queue.send(request, delaySeconds ? { delaySeconds } : undefined);
    },
  };
}

export function depsFor(env: Env): Deps {
  const store = sqlStore(driverFor(env));
  return {
    store,
    counts: store,
    mutations: queueMutationPublisher(env.DOMAIN_MUTATIONS as Queue<DomainMutationMessage>),
    heals: queueHealPublisher(env.HEALS as Queue<HealRequest>),
    clock: systemClock,
    policy: policyFor(env),
    staleAfterMs: Number(env.HEAL_STALE_AFTER_MINUTES || "1440") * 60_000,
    settleSeconds: Number(env.HEAL_SETTLE_SECONDS || "30"),
  };
}
