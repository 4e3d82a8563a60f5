import { systemClock } from "../src/clock";
import type { ConnectionsStore } from "../src/connect/connections-store";
import type { IndexFeedPorts } from "../src/connect/index-feed";
import { cachedLevelsStore } from "../src/connect/prefs-cache";
import type { ConnectPrefsStore } from "../src/connect/prefs-store";
import {
  newSharedChannelId,
  type SharedChannelsPorts,
  sharedUploadRefusal,
} from "../src/connect/shared-channels-service";
import type { SharedChannelsStore } from "../src/connect/shared-channels-store";
import type { ConversationPorts, HistorySettings } from "../src/conversations/ports";
import { addMembers, removeMember, shareChannel, unshareChannel } from "../src/directory/admin";
import type { ChangePublisher, DirectorySource } from "../src/directory/source";
import type { DirectoryWriter } from "../src/directory/writer";
import type { DomainCountStore } from "../src/domains/count-store";
import { DEFAULT_LEASE_MS } from "../src/domains/healer";
import type { DomainMutationMessage, HealPublisher, HealRequest, MutationPublisher } from "../src/domains/messages";
import { REDELIVER_AFTER_MS } from "../src/domains/outbox";
import type { UploadPorts } from "../src/files/uploads";
import type { ClassifyPolicy } from "../src/invites/classify-policy";
import { parsePolicy } from "../src/invites/classify-policy";
import { accessChanges, publishDirectoryEvents } from "../src/realtime/directory-events";
import type { TopicPublisher } from "../src/realtime/ports";
import { gatewayName, gatewayShardName, parseShardCount } from "../src/realtime/topics";
import type { SlackEventMessage } from "../src/slackbot/events";
import type { AckPorts, AnswerPorts, InstallPorts } from "../src/slackbot/service";
import { openToken, sealToken } from "../src/slackbot/token-seal";
import type { SlackApiPorts } from "../src/slackbot/web-api";
import type { TeamStore } from "../src/teams/team-store";
import { connectionFacts } from "../storage/connect-facts-sql";
import { indexQueue } from "../storage/connect-index-queue-sql";
import { connectPrefsStore } from "../storage/connect-prefs-sql";
import { connectionsStore } from "../storage/connections-sql";
import { d1Driver } from "../storage/d1-driver";
import { directoryStore } from "../storage/directory-store";
import { type Background, CircuitBreaker, guardedDriver } from "../storage/guarded-driver";
import { planetscaleDriver } from "../storage/planetscale-driver";
import { sharedChannelsStore } from "../storage/shared-channels-sql";
import { slackEventLog, slackInstallationsStore } from "../storage/slackbot-sql";
import type { SqlDriver } from "../storage/sql-driver";
import { sqlStore } from "../storage/sql-store";
import { liveActor } from "./live-actors";
import { r2FileStore } from "./r2-file-store";
import { slackbotModel } from "./slackbot-model";
import { connectIndexOf, conversationOf, conversationRootOf, gatewayNamed, teamCacheOf, topicOf } from "./stubs";
import { teamCacheAccess } from "./team-cache-access";

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
  /** See HealerDeps.leaseMs (HEAL_LEASE_SECONDS). */
  healLeaseMs: number;
  /** Sent outbox rows never applied after this long are sent again (OUTBOX_REDELIVER_AFTER_SECONDS). */
  redeliverAfterMs: number;
  /** The directory's source of truth (users, channels, memberships, change log). */
  directory: DirectorySource & DirectoryWriter;
  /** Where committed directory changes go: the team caches. */
  changes: ChangePublisher;
  /** Slack Connect invitations and connections (src/connect/connections-service.ts). */
  connections: ConnectionsStore;
  /** Slack Connect prefs, org and partner levels, and their audit (src/connect/team-prefs.ts). */
  connectPrefs: ConnectPrefsStore;
  /** Shared-channel invitations over connections (src/connect/shared-channels-service.ts). */
  sharedChannels: SharedChannelsStore;
  /** A push after a committed write failed (relay, cache): logged; the outbox sweep and the caches' catch-up repair it. */
  onPublishError: (error: unknown) => void;
}

/** sendBatch takes at most 100 messages. */
const SEND_BATCH_MAX = 100;

/** One breaker per database and isolate: every request of this isolate sees the same database trouble. */
const breakers = new Map<string, CircuitBreaker>();

function breakerFor(key: string): CircuitBreaker {
  let breaker = breakers.get(key);
  if (!breaker) {
    breaker = new CircuitBreaker();
    breakers.set(key, breaker);
  }
  return breaker;
}

/**
 * The database driver, bounded per call and behind the isolate's circuit
 * breaker (storage/guarded-driver.ts); `background` (the invocation's
 * waitUntil) lets a call past its bound finish instead of being cut off.
 */
export function driverFor(env: Env, background?: Background): SqlDriver {
  switch (env.STORAGE) {
    case "d1":
      return guardedDriver(d1Driver(env.DB), breakerFor("d1"), background);
    case "planetscale":
      if (!env.DATABASE_URL) throw new Error("STORAGE=planetscale needs the DATABASE_URL secret");
      return guardedDriver(
        planetscaleDriver({ url: env.DATABASE_URL }),
        breakerFor(`planetscale|${env.DATABASE_URL}`),
        background,
      );
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

/** Publishes through the topic's Durable Object, which numbers, logs and fans out. */
export function topicPublisher(env: Env): TopicPublisher {
  return {
    async publish(topicKey, eventJson, options) {
      return topicOf(env, topicKey).publish(topicKey, eventJson, options);
    },
  };
}

/** The connect prefs store of the deployment's database, uncached (what a team's prefs cache loads from). */
export function connectPrefsFor(env: Env): ConnectPrefsStore {
  return connectPrefsStore(driverFor(env));
}

/** What a team cache loads from and catches up with. */
export function directorySourceFor(env: Env): DirectorySource {
  return directoryStore(driverFor(env));
}

/**
 * What a team's admin-search index (durable-objects/connect-index/) reads
 * to feed itself: the refresh queue, the connections' facts and the prefs,
 * from the deployment's database; `upsert` writes into the index itself.
 */
export function indexFeedFor(env: Env, index: Pick<IndexFeedPorts, "upsert" | "setOrg" | "orgKnown">): IndexFeedPorts {
  const driver = driverFor(env);
  return {
    queue: indexQueue(driver),
    source: connectionFacts(driver),
    prefs: { store: connectPrefsStore(driver) },
    ...index,
  };
}

/**
 * Asks the admin-search index of every team with refreshes queued within
 * [from, now] to take them (after a connect write: its own and its
 * partner's; from the cron sweep: what a crash left). Failures are logged:
 * the rows stay queued for the sweep.
 */
export async function pingQueuedIndexes(env: Env, from: number, to: number): Promise<number> {
  const teams = await indexQueue(driverFor(env)).teamsQueued(from, to, INDEX_PINGS_MAX);
  await Promise.all(
    teams.map((team) =>
      connectIndexOf(env, team)
        .refresh(team)
        .catch((error: unknown) => console.error(`connect index of ${team}: refresh failed; the sweep retries`, error)),
    ),
  );
  return teams.length;
}

/** Index refreshes asked for at once. */
const INDEX_PINGS_MAX = 200;

/**
 * Publishes committed directory changes straight to the team's cache object
 * (an RPC, no queue: the cache applies them in version order; one that misses
 * some recovers them from the change log, DirectorySource.changesSince), then
 * to the real-time topics, then to the gateways of the users whose access the
 * changes may have cut (src/realtime/directory-events.ts, accessChanges).
 * The cache goes first: every re-check reads it and must find the change.
 */
export function changePublisherFor(env: Env): ChangePublisher {
  return {
    async publish(teamId, events) {
      await teamCacheOf(env, teamId).applyChanges(teamId, events);
      await publishDirectoryEvents(topicPublisher(env), events, (key, error) =>
        console.error(`directory event to topic ${key} failed`, error),
      );
      const shards = parseShardCount(env.GATEWAY_SHARDS);
      const gateway = (name: string) => gatewayNamed(env, name);
      const changes = accessChanges(events);
      const calls: Array<Promise<unknown>> = [];
      // A deactivated user's open sockets close now, not at their next reconnect.
      for (const user of changes.deactivated) {
        calls.push(
          gateway(gatewayName(user.teamId, user.id, shards))
            .disconnectUser(user.id)
            .catch((error) => console.error("gateway disconnect after a deactivation failed", error)),
        );
      }
      // Anyone else a change touched (a demotion to guest, a removal from a
      // channel) has their gateway re-read their live role and re-check what
      // they follow; after a reload, every gateway of the team re-checks all.
      const everyone = new Set<string>();
      if (changes.reload) for (let n = 0; n < shards; n++) everyone.add(gatewayShardName(teamId, n));
      const some = new Map<string, string[]>();
      for (const { team, user } of changes.recheck) {
        const name = gatewayName(team, user, shards);
        if (!everyone.has(name)) some.set(name, [...(some.get(name) ?? []), user]);
      }
      const recheck = (name: string, users?: string[]) =>
        gateway(name)
          .recheckUsers(users)
          .catch((error) => console.error(`gateway re-check on ${name} failed`, error));
      for (const name of everyone) calls.push(recheck(name));
      for (const [name, users] of some) calls.push(recheck(name, users));
      await Promise.all(calls);
    },
  };
}

/**
 * The ports of one caller (a request, a queue batch, a cron run), each built
 * on first use and kept: a queue batch of domain mutations builds the driver
 * and the team store, never the directory store or the classify policy.
 * Spreading the result reads (so builds) every port: pass the fields a use
 * case needs instead.
 */
export function depsFor(env: Env, background?: Background): Deps {
  const driver = once(() => driverFor(env, background));
  const store = once(() => sqlStore(driver()));
  const directory = once(() => directoryStore(driver()));
  const mutations = once(() => queueMutationPublisher(env.DOMAIN_MUTATIONS as Queue<DomainMutationMessage>));
  const heals = once(() => queueHealPublisher(env.HEALS as Queue<HealRequest>));
  const changes = once(() => changePublisherFor(env));
  const connections = once(() => connectionsStore(driver()));
  // Reads of a team's levels go through its TeamCache's memory; every write clears it before returning.
  const connectPrefs = once(() =>
    cachedLevelsStore(connectPrefsStore(driver()), {
      levels: (team, targets) => teamCacheOf(env, team).prefsLevels(team, [...targets]),
      forget: (team) => teamCacheOf(env, team).forgetPrefs(team),
    }),
  );
  const sharedChannels = once(() => sharedChannelsStore(driver()));
  return {
    get store() {
      return store();
    },
    get counts() {
      return store();
    },
    get mutations() {
      return mutations();
    },
    get heals() {
      return heals();
    },
    clock: systemClock,
    get policy() {
      return policyFor(env);
    },
    get staleAfterMs() {
      return Number(env.HEAL_STALE_AFTER_MINUTES || "1440") * 60_000;
    },
    get settleSeconds() {
      return Number(env.HEAL_SETTLE_SECONDS || "30");
    },
    get healLeaseMs() {
      return secondsVar(env.HEAL_LEASE_SECONDS, DEFAULT_LEASE_MS / 1000) * 1000;
    },
    get redeliverAfterMs() {
      return secondsVar(env.OUTBOX_REDELIVER_AFTER_SECONDS, REDELIVER_AFTER_MS / 1000) * 1000;
    },
    get directory() {
      return directory();
    },
    get changes() {
      return changes();
    },
    get connections() {
      return connections();
    },
    get connectPrefs() {
      return connectPrefs();
    },
    get sharedChannels() {
      return sharedChannels();
    },
    onPublishError: (error) =>
      console.error(
        "a push after a committed write failed; the outbox sweep or the cache's catch-up delivers it",
        error,
      ),
  };
}

/** A value built on the first call and kept. */
function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}

/** A positive number of seconds from a var, or the default when unset or not one. */
function secondsVar(raw: string | undefined, fallback: number): number {
  const n = Number(raw);
  return raw !== undefined && raw !== "" && Number.isFinite(n) && n > 0 ? n : fallback;
}

/**
 * The shared-channel use cases' ports over a caller's Deps: the directory's
 * share and unshare (each commits, then publishes to the team caches and
 * the gateways) stand behind ChannelSharing.
 */
export function sharedChannelPortsOf(deps: Deps): SharedChannelsPorts {
  return {
    store: deps.sharedChannels,
    connections: deps.connections,
    prefs: { store: deps.connectPrefs },
    sharing: {
      async share(host, channel, guest) {
        await shareChannel(deps, host, channel, guest);
      },
      async unshare(host, channel, guest) {
        await unshareChannel(deps, host, channel, guest);
      },
      addMembers: (host, channel, users, usersTeam) => addMembers(deps, host, channel, users, usersTeam),
      removeMember: (host, channel, user) => removeMember(deps, host, channel, user),
    },
    now: () => deps.clock.now(),
    newId: newSharedChannelId,
  };
}

/** What posting and reading a channel's files needs (src/files/uploads.ts); `access` is the team cache's (as for messages). */
export function uploadPortsOf(env: Env, deps: Deps, access: UploadPorts["access"]): UploadPorts {
  return {
    access,
    refusal: (host, channel, team, file) =>
      sharedUploadRefusal(
        { store: deps.sharedChannels, prefs: { store: deps.connectPrefs } },
        host,
        channel,
        team,
        file,
      ),
    files: r2FileStore(env.FILES),
    publisher: topicPublisher(env),
    now: () => deps.clock.now(),
  };
}

// --- the Slack bot (src/slackbot/, docs/slack-bot.md) ---------------------------------

/** What POST /slack/events needs: the signing secret(s), the clock and the slack-events queue. Never the database. */
export function slackAckPortsFor(env: Env): AckPorts {
  const queue = env.SLACK_EVENTS as Queue<SlackEventMessage>;
  return {
    signingSecrets: (env.SLACK_SIGNING_SECRET ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    now: () => systemClock.now(),
    enqueue: async (message) => {
      await queue.send(message);
    },
  };
}

/** The Web API at SLACK_API_BASE (https://slack.com/api unless a local server records the calls). */
export function slackApiFor(env: Env): SlackApiPorts {
  return { fetch: (input, init) => fetch(input, init), baseUrl: env.SLACK_API_BASE || "https://slack.com/api" };
}

/** What the slack-events consumer needs to answer an event; the model loads on the first question. */
export function slackAnswerPortsFor(env: Env, background?: Background): AnswerPorts {
  const driver = driverFor(env, background);
  const confidence = Number(env.SLACKBOT_MIN_CONFIDENCE);
  return {
    installations: slackInstallationsStore(driver),
    events: slackEventLog(driver),
    classifier: slackbotModel,
    slack: slackApiFor(env),
    openToken: (stored) => openToken(env.SLACK_TOKEN_KEY, stored),
    now: () => systemClock.now(),
    minConfidence: Number.isFinite(confidence) && confidence >= 0 && confidence <= 1 ? confidence : 0.5,
    claimMs: secondsVar(env.SLACKBOT_CLAIM_SECONDS, 60) * 1000,
  };
}

/** Installing the bot in a workspace (the operators' route and the OAuth callback). */
export function slackInstallPortsFor(env: Env): InstallPorts {
  return {
    installations: slackInstallationsStore(driverFor(env)),
    sealToken: (token) => sealToken(env.SLACK_TOKEN_KEY, token),
    now: () => systemClock.now(),
  };
}

/** The cron sweep's housekeeping of the bot's event log (replied and dead events past their retention). */
export function purgeSlackEvents(env: Env, before: number, limit: number): Promise<number> {
  return slackEventLog(driverFor(env)).purge(before, limit);
}

/** Where an event that cannot be answered goes, with its reason (the consumer's own dead-lettering). */
export function slackDeadLetters(env: Env): { send(body: unknown): Promise<void> } {
  const queue = env.SLACK_EVENTS_DLQ as Queue<unknown>;
  return {
    async send(body) {
      await queue.send(body);
    },
  };
}

/**
 * The conversation use cases' ports (src/conversations/messages.ts): who
 * sees a conversation is the team cache's answer through the very check the
 * channel message route makes (teamCacheAccess); roles are live; profiles
 * are looked up as the caller (what POST /v1/directory/lookup would show it);
 * a conversation's store is its Durable Object.
 */
export function conversationPortsFor(env: Env): ConversationPorts {
  return {
    access: teamCacheAccess(env),
    async roleOf(team, user) {
      const actor = await liveActor(env, team, user);
      return actor?.active ? actor.role : null;
    },
    async visibleProfiles(team, viewer, users) {
      const r = await teamCacheOf(env, team).lookup(team, viewer, users, []);
      return r.ok ? r.value.users.map((u) => ({ ...u })) : [];
    },
    store(host, conversation) {
      const stub = conversationOf(env, host, conversation);
      return {
        post: (actor, text, mentions) => stub.post(host, conversation, actor, text, mentions),
        edit: (actor, id, text, mentions) => stub.edit(host, conversation, actor, id, text, mentions),
        remove: (actor, role, id) => stub.remove(host, conversation, actor, role, id),
        react: (actor, id, name, add) => stub.react(host, conversation, actor, id, name, add),
        page: (before, limit) => stub.page(host, conversation, before, limit),
      };
    },
  };
}

/** The focused boot's ports: history's own, and the header and card from the caller's team cache. */
export function focusedBootPortsFor(env: Env) {
  return {
    conversations: conversationPortsFor(env),
    // The card's type is the cache's own (inferred here, so this module names no Durable Object's types).
    header: (team: string, viewer: string, id: string) => teamCacheOf(env, team).focusedBoot(team, viewer, id),
  };
}

/** A team's history policy, kept by its conversations root (durable-objects/conversation). */
export function historySettingsFor(env: Env): HistorySettings {
  return {
    get: (team) => conversationRootOf(env, team).teamPolicy(team),
    set: (team, policy) => conversationRootOf(env, team).setTeamPolicy(team, policy),
  };
}
