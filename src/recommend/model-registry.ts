import { z } from "zod";
import { conflict, DomainError, invalidBody } from "../errors";
import type { ModelKey } from "../models/manifest";
import type { ModelLoader, ModelScorer } from "../models/ports";
import {
  type EvalSet,
  matrixScorer,
  missingFeatures,
  ndcgPerCut,
  parseEvalSet,
  type RankingScorer,
  recordScorer,
} from "./eval-set";
import { HAND_TUNED } from "./experiments";
import { BASELINES, baselineScore, HAND_TUNED as HAND_TUNED_WEIGHTS, handTunedScore } from "./features/spec";
import { MODEL_NAME, MODEL_VERSION } from "./model-versions";
import {
  BASELINE_NAMES,
  type BaselineModel,
  bestBaseline,
  DEFAULT_GATE_RULE,
  type GateDecision,
  type GateReference,
  gateDecision,
  spread,
} from "./promotion-gate";
import { isSource, type Source } from "./sources";

// The model registry: per source, the ordered versions promoted to serve it.
// When no experiment is stored for a source, serving uses the registry's
// current version (the last promoted), else the bundled default
// (platform/models/experiment-store.ts). A version is registered only by
// promote, which first runs the promotion gate (promotion-gate.ts, the rule
// of training/gate.py) on the source's evaluation set (eval-set.ts): the
// candidate must beat the model serving now and the best baseline by more
// than its noise across cuts. There is no way around the gate. Rollback
// removes the current version in one call, so the one before it (or the
// bundled default) serves again.
//
// The registry is one object per source, written only if it did not change
// since it was read (the store compares versions atomically), so of two
// concurrent promotions or rollbacks one wins and the other gets a conflict
// and changes nothing.

/** How many versions and events a registry keeps (oldest dropped first). */
export const REGISTRY_MAX_ENTRIES = 100;

/** A promotion: the model, who promoted it, when, and the gate's numbers. */
export interface RegistryVersion {
  model: string;
  promoted_at: string;
  by: string;
  evidence: PromotionEvidence;
}

export interface RegistryEvent {
  action: "promote" | "rollback";
  model: string;
  /** What served before: a registered model, or the default (`default:<model>` / `default:hand_tuned`). */
  from: string;
  at: string;
  by: string;
}

export interface Registry {
  source: string;
  /** Promoted versions, oldest first; the last one serves. */
  versions: RegistryVersion[];
  /** Every promotion and rollback, oldest first. */
  events: RegistryEvent[];
}

export interface StoredRegistry {
  registry: Registry;
  /** The store's version of what was read (null: nothing stored yet). */
  version: string | null;
}

export interface RegistryStore {
  /** The registry as stored now (an empty one when nothing is stored). */
  read(source: string): Promise<StoredRegistry>;
  /** Writes if the stored version is still `expected` (null: still absent); false when it changed. */
  write(source: string, registry: Registry, expected: string | null): Promise<boolean>;
}

export interface EvalSetStore {
  get(source: string): Promise<string | null>;
  put(source: string, ndjson: string): Promise<void>;
}

export interface ModelRegistryPorts {
  registry: RegistryStore;
  evalSets: EvalSetStore;
  /** Loads models as serving does (stored versions first, then the bundle). */
  loader: ModelLoader;
  /** The model the source serves with an empty registry and no experiment: its bundled default, or null (hand-tuned). */
  bundledDefault(source: string): ModelKey | null;
  /** Makes this isolate serve what the registry says now (other isolates pick it up within their cache time). */
  servingChanged(source: string): Promise<void>;
  /** Whether an experiment is stored for the source: it then serves instead of the registry's default. */
  experimentStored(source: string): Promise<boolean>;
  now(): string;
}

export interface PromotionEvidence {
  candidate: string;
  /** The model serving when the gate ran (`default:...` when it was the default). */
  serving: string;
  eval_set: { dataset?: string; rankings: number; cuts: string[] };
  ndcg10: Record<string, ReturnType<typeof spread>>;
  references: string[];
  gate: GateDecision;
}

export const emptyRegistry = (source: string): Registry => ({ source, versions: [], events: [] });

/** `<name>@<version>` as a key of `source`; bad_request when it is not one. */
export function parseModelRef(source: string, model: unknown): ModelKey {
  if (typeof model !== "string") throw invalidBody('model is "<name>@<version>"');
  const at = model.lastIndexOf("@");
  const name = model.slice(0, at);
  const version = model.slice(at + 1);
  if (at < 0 || !MODEL_NAME.test(name) || !MODEL_VERSION.test(version)) {
    throw invalidBody('model is "<name>@<version>" (names 1-80 of A-Z a-z 0-9 _ . -, versions also :)');
  }
  return { source, name, version };
}

const refOf = (k: Pick<ModelKey, "name" | "version">) => `${k.name}@${k.version}`;

/** The registry's answer: what serves now, and the history. */
export async function registryAnswer(
  ports: Pick<ModelRegistryPorts, "bundledDefault" | "experimentStored">,
  registry: Registry,
) {
  const current = registry.versions.at(-1) ?? null;
  const fallback = ports.bundledDefault(registry.source);
  return {
    source: registry.source,
    current: current ? current.model : null,
    serving: current
      ? { model: current.model, origin: "registry" as const }
      : { model: fallback ? refOf(fallback) : HAND_TUNED, origin: "default" as const },
    // A stored experiment serves instead (DELETE /v1/admin/recommend/experiments/:source hands back to the registry).
    experiment_stored: await ports.experimentStored(registry.source),
    versions: registry.versions,
    events: registry.events,
  };
}

export async function readRegistry(ports: ModelRegistryPorts, source: string) {
  return registryAnswer(ports, (await ports.registry.read(source)).registry);
}

/** The features the baselines of a source read (hand-tuned, popularity, recent popularity). */
export function baselineFeatures(source: Source): string[] {
  return [
    ...new Set([...Object.keys(HAND_TUNED_WEIGHTS[source]), ...Object.values(BASELINES[source]).map(([f]) => f)]),
  ];
}

/** What serves a source now when no experiment is stored: the registry's current version, else the default. */
async function servingNow(ports: ModelRegistryPorts, source: string) {
  const stored = await ports.registry.read(source);
  const current = stored.registry.versions.at(-1);
  const key = current ? parseModelRef(source, current.model) : ports.bundledDefault(source);
  const name = current ? current.model : `default:${key ? refOf(key) : HAND_TUNED}`;
  return { stored, key, name };
}

/**
 * Stores a source's eval set (replacing the previous one) once it parses and
 * has every feature the gate reads now: the baselines' and the serving
 * model's (a candidate's are checked when it is promoted).
 */
export async function storeEvalSet(ports: ModelRegistryPorts, source: string, ndjson: string) {
  if (!isSource(source)) throw invalidBody(`unknown source ${source}`);
  const set = parseEvalSet(ndjson, source);
  const lacking = missingFeatures(set, baselineFeatures(source));
  if (lacking.length > 0) {
    throw invalidBody(`the eval set lacks features the baselines of ${source} read: ${lacking.join(", ")}`);
  }
  const serving = await servingNow(ports, source);
  if (serving.key) {
    const loaded = await ports.loader.scorer(serving.key);
    if (loaded.ok) {
      const missing = missingFeatures(
        set,
        loaded.value.manifest.features.map((f) => f.name),
      );
      if (missing.length > 0) {
        throw invalidBody(
          `the eval set lacks features the serving model ${serving.name} reads: ${missing.slice(0, 10).join(", ")}`,
        );
      }
    }
  }
  await ports.evalSets.put(source, ndjson);
  return summary(set);
}

const summary = (set: EvalSet) => ({
  source: set.source,
  ...(set.dataset ? { dataset: set.dataset } : {}),
  features: set.features.length,
  rankings: set.rankings.length,
  rows: set.rankings.reduce((s, r) => s + r.x.length, 0),
  cuts: set.cuts,
});

/** Scores rankings with a loaded model, its features assembled as serving assembles them. */
const modelRankingScorer = (set: EvalSet, model: ModelScorer): RankingScorer =>
  matrixScorer(set, model.manifest.features, (matrix, rows) => model.score(matrix, rows));

const ruleScorer = (set: EvalSet, score: (record: Readonly<Record<string, number>>) => number): RankingScorer =>
  recordScorer(set, async (records) => records.map((r) => score(r as Readonly<Record<string, number>>)));

async function loadOrRefuse(ports: ModelRegistryPorts, key: ModelKey, role: string): Promise<ModelScorer> {
  const loaded = await ports.loader.scorer(key);
  if (!loaded.ok) {
    throw conflict(`the ${role} model ${refOf(key)} cannot be loaded (${loaded.error.code}: ${loaded.error.message})`);
  }
  return loaded.value;
}

/**
 * Registers `model` as the source's serving version if it passes the gate on
 * the source's eval set; gate_refused (with the numbers) otherwise, and
 * nothing changes.
 */
export async function promote(ports: ModelRegistryPorts, source: string, model: unknown, by: string) {
  const key = parseModelRef(source, model);
  if (!isSource(source)) throw invalidBody(`unknown source ${source}`);
  const text = await ports.evalSets.get(source);
  if (text === null) {
    throw conflict(`no eval set for ${source}: upload one (PUT /v1/admin/models/${source}/eval-set) before promoting`);
  }
  const set = parseEvalSet(text, source);
  const candidate = await loadOrRefuse(ports, key, "candidate");
  const { stored, key: servingKey, name: servingName } = await servingNow(ports, source);
  const serving = servingKey ? await loadOrRefuse(ports, servingKey, "serving") : null;

  for (const [role, m] of [["candidate", candidate] as const, ["serving", serving] as const]) {
    if (!m) continue;
    const missing = missingFeatures(
      set,
      m.manifest.features.map((f) => f.name),
    );
    if (missing.length > 0) {
      throw conflict(
        `the eval set of ${source} lacks features the ${role} model ${refOf(m.key)} reads: ${missing.slice(0, 10).join(", ")}`,
      );
    }
  }

  const s: Source = source;
  const baselines = {} as Record<BaselineModel, number[]>;
  for (const b of BASELINE_NAMES) {
    baselines[b] = await ndcgPerCut(
      set,
      ruleScorer(set, b === "hand_tuned" ? (r) => handTunedScore(s, r) : (r) => baselineScore(s, b, r)),
    );
  }
  const cand = await ndcgPerCut(set, modelRankingScorer(set, candidate));
  const serv = serving ? await ndcgPerCut(set, modelRankingScorer(set, serving)) : baselines.hand_tuned;
  const best = bestBaseline(baselines);
  const references: GateReference[] = [
    { name: "serving", per_cut: serv },
    { name: `best_baseline:${best}`, per_cut: baselines[best] },
  ];
  const gate = gateDecision(set.cuts, cand, references, DEFAULT_GATE_RULE);
  const evidence: PromotionEvidence = {
    candidate: refOf(key),
    serving: servingName,
    eval_set: { ...(set.dataset ? { dataset: set.dataset } : {}), rankings: set.rankings.length, cuts: set.cuts },
    ndcg10: {
      candidate: spread(cand),
      serving: spread(serv),
      ...Object.fromEntries(BASELINE_NAMES.map((b) => [b, spread(baselines[b])])),
    },
    references: references.map((r) => r.name),
    gate,
  };
  if (!gate.passes) {
    throw new DomainError(
      "conflict",
      "gate_refused",
      `${refOf(key)} is not promoted: ${gate.reason}; ${servingName} keeps serving`,
      evidence,
    );
  }

  const at = ports.now();
  const registry: Registry = {
    source,
    versions: [...stored.registry.versions, { model: refOf(key), promoted_at: at, by, evidence }].slice(
      -REGISTRY_MAX_ENTRIES,
    ),
    events: [
      ...stored.registry.events,
      { action: "promote" as const, model: refOf(key), from: servingName, at, by },
    ].slice(-REGISTRY_MAX_ENTRIES),
  };
  await writeOrConflict(ports, source, registry, stored.version);
  return { promoted: refOf(key), evidence, registry: await registryAnswer(ports, registry) };
}

/** Removes the current version: the previous one (or the default) serves again. */
export async function rollback(ports: ModelRegistryPorts, source: string, by: string) {
  const stored = await ports.registry.read(source);
  const current = stored.registry.versions.at(-1);
  if (!current) {
    throw conflict(`nothing to roll back: ${source} has no registered version (it serves its default)`);
  }
  const versions = stored.registry.versions.slice(0, -1);
  const previous = versions.at(-1);
  const fallback = ports.bundledDefault(source);
  const to = previous ? previous.model : `default:${fallback ? refOf(fallback) : HAND_TUNED}`;
  const at = ports.now();
  const registry: Registry = {
    source,
    versions,
    events: [...stored.registry.events, { action: "rollback" as const, model: to, from: current.model, at, by }].slice(
      -REGISTRY_MAX_ENTRIES,
    ),
  };
  await writeOrConflict(ports, source, registry, stored.version);
  return { rolled_back: current.model, registry: await registryAnswer(ports, registry) };
}

async function writeOrConflict(ports: ModelRegistryPorts, source: string, registry: Registry, expected: string | null) {
  if (!(await ports.registry.write(source, registry, expected))) {
    throw conflict(
      `the registry of ${source} changed while this request ran (another promotion or rollback); nothing was changed, read it and retry`,
    );
  }
  await ports.servingChanged(source);
}

const storedRegistrySchema = z.object({
  source: z.string(),
  versions: z.array(
    z.looseObject({ model: z.string(), promoted_at: z.string(), by: z.string(), evidence: z.looseObject({}) }),
  ),
  events: z.array(
    z.object({
      action: z.enum(["promote", "rollback"]),
      model: z.string(),
      from: z.string(),
      at: z.string(),
      by: z.string(),
    }),
  ),
});

/** A stored registry's text, or why it is not one (a hand-written or truncated object). */
export function parseStoredRegistry(text: string): { ok: true; registry: Registry } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: "not JSON" };
  }
  const parsed = storedRegistrySchema.safeParse(json);
  if (!parsed.success) return { ok: false, message: z.prettifyError(parsed.error) };
  return { ok: true, registry: parsed.data as unknown as Registry };
}

/** The key the registry serves for a source, from its stored registry (null: none registered). */
export function currentKey(registry: Registry): ModelKey | null {
  const current = registry.versions.at(-1);
  return current ? parseModelRef(registry.source, current.model) : null;
}
