import { handTunedScore } from "./features/spec";
import type { Scorer } from "./pipeline";
import type { Source } from "./sources";

// The hand-tuned model of a source: a fixed weighted sum of a few features
// (features/spec.ts HAND_TUNED, the same rule the offline pipeline evaluates
// against the trained models). It needs no model file, so it always
// answers: cold start, the `hand_tuned` experiment arm, and the fallback when
// a model cannot be loaded or fails.

export const HAND_TUNED_VERSION = "1";

export function handTunedScorer(source: Source): Scorer {
  return {
    name: `${source}-hand_tuned`,
    version: HAND_TUNED_VERSION,
    kind: "hand_tuned",
    async score(rows) {
      return rows.map((r) => {
        const record: Record<string, number> = {};
        for (const [k, v] of Object.entries(r)) if (typeof v === "number" && Number.isFinite(v)) record[k] = v;
        return handTunedScore(source, record);
      });
    },
  };
}
