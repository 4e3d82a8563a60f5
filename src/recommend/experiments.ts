import { z } from "zod";
import { fnv1a } from "../fnv1a";

// Experiments: a user is assigned to an arm by a hash of the experiment's name
// and the user id, so the same user sees the same arm on every request and
// every isolate, and different experiments split users independently. Arms
// map to model versions; the configuration lives outside the code (R2, set
// by an admin API), so an arm changes without a deploy.

export const HAND_TUNED = "hand_tuned";

const armSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/, "arm names are 1-40 letters, digits, _ . -"),
  weight: z.number().positive().max(1_000_000),
  /** `hand_tuned`, or a model as `<name>@<version>` of this source. */
  model: z
    .string()
    .regex(/^(hand_tuned|[A-Za-z0-9_.-]{1,80}@[A-Za-z0-9_.:-]{1,80})$/, 'model is "hand_tuned" or "<name>@<version>"'),
});

export const experimentSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,60}$/),
  arms: z
    .array(armSchema)
    .min(1)
    .max(20)
    .refine((arms) => new Set(arms.map((a) => a.name)).size === arms.length, "arm names must be unique"),
});

export type Arm = z.infer<typeof armSchema>;
export type Experiment = z.infer<typeof experimentSchema>;

/** A source's experiment as serving sees it, and where it came from. */
export interface CurrentExperiment {
  experiment: Experiment;
  /** "stored": as stored. "default": none stored, or the stored one is unusable (see problem). */
  origin: "stored" | "default";
  /** Why a stored experiment is not being used (corrupt object, failed read); null when all is well. */
  problem: string | null;
  /** Set when the default serves the model registry's current version (`<name>@<version>`). */
  registered?: string;
}

/** Where experiments are kept (the Worker's: platform/models/experiment-store.ts, in the MODELS bucket). */
export interface ExperimentStore {
  /** What serving uses: cached per isolate. `fresh` reads the store now (admin reads), refreshing the cache. */
  current(source: string, options?: { fresh?: boolean }): Promise<CurrentExperiment>;
  /** Stores an experiment (already validated); this isolate serves it from now on. */
  put(source: string, experiment: Experiment): Promise<void>;
  /** Deletes the stored experiment: the source reverts to its default. */
  remove(source: string): Promise<void>;
  /** The experiment a source has when none is stored and nothing is registered (its bundled default). */
  defaultFor(source: string): Experiment;
}

/** The model an arm names: null for the hand-tuned model. */
export function armModel(arm: Arm): { name: string; version: string } | null {
  if (arm.model === HAND_TUNED) return null;
  const at = arm.model.lastIndexOf("@");
  return { name: arm.model.slice(0, at), version: arm.model.slice(at + 1) };
}

/** Where in [0, 1) a user falls for an experiment: uniform, stable, independent across experiments. */
export function bucketOf(experiment: string, user: string): number {
  return mix32(fnv1a(`${experiment}\u0000${user}`)) / 2 ** 32;
}

export function assignArm(experiment: Experiment, user: string): Arm {
  const total = experiment.arms.reduce((sum, a) => sum + a.weight, 0);
  const point = bucketOf(experiment.name, user) * total;
  let acc = 0;
  for (const arm of experiment.arms) {
    acc += arm.weight;
    if (point < acc) return arm;
  }
  return experiment.arms.at(-1) as Arm;
}

/** murmur3's finalizer: FNV alone leaves the low bits of similar strings correlated. */
function mix32(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
