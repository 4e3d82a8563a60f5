import { systemClock } from "../src/clock";
import { VISIBLE, type VisibleSet } from "../src/directory/visible-set";
import type { ModelLoader } from "../src/models/ports";
import { fromBlock } from "../src/recommend/candidate-block";
import type { ExperimentAdminPorts } from "../src/recommend/experiment-admin";
import type { FeatureImportPorts } from "../src/recommend/feature-import";
import type { FeedbackPorts } from "../src/recommend/feedback";
import { recLogEnvelope } from "../src/recommend/logs";
import type { ModelRegistryPorts } from "../src/recommend/model-registry";
import type { ModelVersionPorts } from "../src/recommend/model-versions";
import type {
  ChannelView,
  DisplayLookup,
  MemberLookup,
  RecDeps,
  RecLogSink,
  ServedLog,
  UserView,
} from "../src/recommend/ports";
import type { ServePorts } from "../src/recommend/serve";
import { featureStore } from "../storage/feature-store";
import { driverFor } from "./deps";
import { metrics } from "./metrics";
import { type BundledModelStore, isolateBundledModels } from "./models/bundled";
import { r2ExperimentStore } from "./models/experiment-store";
import { bundledDefaultOf, r2EvalSetStore, r2RegistryStore, registeredModel } from "./models/model-registry-store";
import { r2ModelVersions } from "./models/model-uploads";
import { onnxModelLoader } from "./models/onnx-runtime";
import { r2ModelStore } from "./models/r2-model-store";
import { scorerSelectionDeps } from "./models/scorer-selection";
import { recStoreOf, teamCacheOf } from "./stubs";

// The recommend use cases' ports over the Worker's bindings (the recommend
// side of the composition root, next to deps.ts): candidates and features
// from the team's RecStore, what the user may see from the team's edge cache,
// the served log and the rec-logs queue, experiments and model versions in
// the MODELS bucket (platform/models/: R2, the bundled defaults, onnxruntime-web).

/** What serving a recommendation needs; `background` is the invocation's waitUntil. */
export function servePortsFor(env: Env, background: (work: Promise<unknown>) => void): ServePorts {
  return {
    ...scorerSelectionDeps(env),
    metrics,
    members: memberLookupFor(env),
    displays: displayLookupFor(env),
    recommenders: recDepsFor(env),
    served: servedLogFor(env),
    logs: recLogSinkFor(env),
    background,
    clock: systemClock,
  };
}

export function feedbackPortsFor(env: Env): FeedbackPorts {
  return { served: servedLogFor(env), logs: recLogSinkFor(env), metrics, clock: systemClock };
}

export function featureImportPortsFor(env: Env): FeatureImportPorts {
  return {
    store: featureStore(driverFor(env)),
    published: (team) => recStoreOf(env, team).reload(team),
    clock: systemClock,
  };
}

/** `bundled`: the bundled default models (the Worker's own unless a test passes fixtures). */
export function experimentAdminPortsFor(
  env: Env,
  bundled: BundledModelStore = isolateBundledModels(),
): ExperimentAdminPorts {
  return {
    experiments: r2ExperimentStore({
      bucket: env.MODELS,
      bundled: bundled.keys(),
      registered: registeredModel(env.MODELS),
    }),
    // As serving loads them: the bucket first, then the bundle.
    loader: modelLoaderFor(env, bundled),
  };
}

/** The model registry's ports: the registry and eval sets in the MODELS bucket, models loaded as serving loads them. */
export function modelRegistryPortsFor(
  env: Env,
  bundled: BundledModelStore = isolateBundledModels(),
): ModelRegistryPorts {
  const experiments = r2ExperimentStore({
    bucket: env.MODELS,
    bundled: bundled.keys(),
    registered: registeredModel(env.MODELS),
  });
  return {
    registry: r2RegistryStore(env.MODELS),
    evalSets: r2EvalSetStore(env.MODELS),
    loader: modelLoaderFor(env, bundled),
    bundledDefault: bundledDefaultOf(experiments),
    // A fresh read refreshes this isolate's serving cache at once.
    servingChanged: async (source) => {
      await experiments.current(source, { fresh: true });
    },
    experimentStored: async (source) => (await experiments.current(source)).origin === "stored",
    now: () => new Date(systemClock.now()).toISOString(),
  };
}

export function modelVersionPortsFor(env: Env, bundled: BundledModelStore = isolateBundledModels()): ModelVersionPorts {
  return { models: r2ModelVersions(env.MODELS, bundled) };
}

const modelLoaderFor = (env: Env, bundled: BundledModelStore): ModelLoader =>
  onnxModelLoader(r2ModelStore(env.MODELS, bundled));

/** Display fields through the team's edge cache, as the viewer may see them (its directory lookup). */
function displayLookupFor(env: Env): DisplayLookup {
  const lookup = async (team: string, viewer: string, users: string[], channels: string[]) => {
    const r = await teamCacheOf(env, team).lookup(team, viewer, users, channels);
    if (!r.ok) throw new Error(`directory lookup failed: ${r.message}`);
    return r.value;
  };
  return {
    async users(team, viewer, ids) {
      const { users } = await lookup(team, viewer, ids, []);
      return new Map(
        users.map((u) => [
          u.id,
          {
            name: u.name,
            real_name: u.real_name,
            display_name: u.display_name,
            title: u.title,
            avatar_hash: u.avatar_hash,
          },
        ]),
      );
    },
    async channels(team, viewer, ids) {
      const { channels } = await lookup(team, viewer, [], ids);
      return new Map(
        channels.map((ch) => [
          ch.id,
          { name: ch.name, topic: ch.topic, purpose: ch.purpose, is_private: ch.is_private },
        ]),
      );
    },
  };
}

function memberLookupFor(env: Env): MemberLookup {
  return {
    async find(team, user, { withChannels }) {
      const cache = teamCacheOf(env, team);
      if (withChannels) {
        const boot = await cache.boot(team, user, null);
        return boot.ok ? { ok: true, channels: boot.value.channels.map((ch) => ch.id) } : boot;
      }
      const known = await cache.lookup(team, user, [], []);
      return known.ok ? { ok: true, channels: null } : known;
    },
    async conversationMembers(team, user, id) {
      const found = await teamCacheOf(env, team).channel(team, user, id);
      if (!found.ok) return null;
      return found.value.kind === "channel" ? "channel" : (found.value.members ?? []);
    },
  };
}

function servedLogFor(env: Env): ServedLog {
  return {
    record: (team, served) => recStoreOf(env, team).recordServed(served),
    check: (team, requestId, user, items) => recStoreOf(env, team).checkFeedback(requestId, user, items),
  };
}

/** Each message travels as its NDJSON line (recLogEnvelope), serialized here, before the send. */
function recLogSinkFor(env: Env): RecLogSink {
  return {
    send: (message) => env.REC_LOGS.send(recLogEnvelope(message)),
    sendBatch: (messages) => env.REC_LOGS.sendBatch(messages.map((m) => ({ body: recLogEnvelope(m) }))),
  };
}

/**
 * The recommenders' own ports. Built once per request: what the directory
 * answered is remembered for the rest of the request, so a reranker asking
 * again about channels a filter already checked costs no second round trip
 * (and sees the same answer).
 */
export function recDepsFor(env: Env): RecDeps {
  const cache = (team: string) => teamCacheOf(env, team);
  // Per team and viewer, per id: the view, or null when the viewer may not see it.
  const channels = new Map<string, Map<string, ChannelView | null>>();
  const users = new Map<string, Map<string, UserView | null>>();
  const memoOf = <V>(memo: Map<string, Map<string, V | null>>, team: string, viewer: string) => {
    const key = `${team} ${viewer}`;
    let m = memo.get(key);
    if (!m) {
      m = new Map();
      memo.set(key, m);
    }
    return m;
  };
  /** The views of `ids` the viewer may see, asking the cache only about ids this request has not asked about. */
  const lookup = async <V>(
    known: Map<string, V | null>,
    ids: string[],
    fetch: (missing: string[]) => Promise<void>,
  ): Promise<V[]> => {
    const missing = ids.filter((id) => !known.has(id));
    if (missing.length > 0) await fetch(missing);
    const out: V[] = [];
    for (const id of ids) {
      const v = known.get(id);
      if (v) out.push(v);
    }
    return out;
  };
  const ask = async (team: string, viewer: string, userIds: string[], channelIds: string[]): Promise<VisibleSet> => {
    const r = await cache(team).visible(team, viewer, userIds, channelIds);
    if (!r.ok) throw new Error(`directory lookup failed: ${r.message}`);
    return r.value;
  };

  return {
    store: {
      async candidates(req) {
        const store = recStoreOf(env, req.team);
        return fromBlock(await store.candidates(req.team, req.source, req.user, req.context));
      },
    },
    directory: {
      channels(team, viewer, ids) {
        const known = memoOf(channels, team, viewer);
        return lookup(known, ids, async (missing) => {
          const seen = (await ask(team, viewer, [], missing)).channels;
          for (const id of missing) known.set(id, null);
          for (let i = 0; i < seen.ids.length; i++) {
            const id = seen.ids[i] as string;
            const flags = seen.flags[i] ?? 0;
            known.set(id, {
              id,
              name: seen.names[i] ?? "",
              is_private: (flags & VISIBLE.private) !== 0,
              is_archived: (flags & VISIBLE.archived) !== 0,
              is_member: (flags & VISIBLE.member) !== 0,
            });
          }
        });
      },
      users(team, viewer, ids) {
        const known = memoOf(users, team, viewer);
        return lookup(known, ids, async (missing) => {
          const seen = (await ask(team, viewer, missing, [])).users;
          for (const id of missing) known.set(id, null);
          for (let i = 0; i < seen.ids.length; i++) {
            const id = seen.ids[i] as string;
            const flags = seen.flags[i] ?? 0;
            known.set(id, { id, deleted: (flags & VISIBLE.deleted) !== 0, is_bot: (flags & VISIBLE.bot) !== 0 });
          }
        });
      },
    },
  };
}
