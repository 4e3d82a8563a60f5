import { z } from "zod";
import { termCounts, tokenize } from "./tokenize";

// The team classifier's manifest (models/slackbot/manifest.json, written by
// training/slackbot/train.py) and the port the answering use case scores
// through. The ONNX graph takes term counts over the manifest's vocabulary
// and returns one probability per team, in the manifest's order.

const manifestSchema = z.object({
  name: z.string(),
  version: z.string(),
  input: z.string(),
  output: z.string(),
  tokenizer: z.object({ lowercase: z.literal("ascii"), pattern: z.literal("[a-z0-9]+"), min_length: z.number().int() }),
  teams: z.array(z.object({ id: z.string(), name: z.string() })).min(2),
  vocabulary: z.array(z.string()).min(1),
  metrics: z
    .object({ accuracy: z.number(), majority_accuracy: z.number(), heldout_rows: z.number() })
    .partial()
    .optional(),
});

export type TeamModelManifest = z.infer<typeof manifestSchema>;

export function parseTeamManifest(raw: unknown): TeamModelManifest {
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`slackbot manifest: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data;
}

export interface TeamScore {
  id: string;
  name: string;
  probability: number;
}

/** Scores a text: every team, most likely first. */
export interface TeamClassifier {
  classify(text: string): Promise<TeamScore[]>;
}

/** Runs the graph on one row of term counts (the ONNX session, behind a port). */
export type ProbabilitiesOf = (counts: Float32Array) => Promise<Float32Array>;

/** A classifier over a manifest and a graph runner: tokens → counts → probabilities → ranked teams. */
export function teamClassifier(
  manifest: TeamModelManifest,
  run: ProbabilitiesOf,
): TeamClassifier & {
  vectorize(text: string): Float32Array;
} {
  const index = new Map(manifest.vocabulary.map((t, i) => [t, i]));
  const vectorize = (text: string) => termCounts(tokenize(text, manifest.tokenizer.min_length), index);
  return {
    vectorize,
    async classify(text) {
      const p = await run(vectorize(text));
      if (p.length !== manifest.teams.length) {
        throw new Error(`model returned ${p.length} probabilities for ${manifest.teams.length} teams`);
      }
      return manifest.teams
        .map((t, i) => ({ id: t.id, name: t.name, probability: p[i] ?? 0 }))
        .sort((a, b) => b.probability - a.probability || a.id.localeCompare(b.id));
    },
  };
}
