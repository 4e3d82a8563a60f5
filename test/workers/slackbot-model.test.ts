import { describe, expect, it } from "vitest";
import parity from "../../models/slackbot/parity.json";
import { slackbotModel, slackbotModelStats } from "../../platform/slackbot-model";
import { tokenize } from "../../src/slackbot/tokenize";

// The bundled team classifier (models/slackbot/) in workerd as the default
// build runs it (its graph read into TypeScript, src/slackbot/onnx-tfidf.ts; no
// ONNX runtime): the tokens, the labels and the probabilities of every parity
// row (training/slackbot/train.py wrote them with scikit-learn) within the
// fixture's tolerance (1e-5). Against onnxruntime-web:
// test/workers-onnx/slackbot-onnx.test.ts.

interface ParityRow {
  text: string;
  tokens: string[];
  probabilities: number[];
}

describe("the Slack bot's classifier", () => {
  it("loads lazily, once per isolate", async () => {
    expect(slackbotModelStats.loads).toBe(0);
    const [a, b] = await Promise.all([slackbotModel(), slackbotModel()]);
    expect(a).toBe(b);
    expect(slackbotModelStats.loads).toBe(1);
    expect(a.manifest.teams.length).toBeGreaterThanOrEqual(8);
    expect(a.engine).toBe("typescript");
  });

  it("tokenizes as Python does, ranks the same team first and scores within 1e-5 of scikit-learn", async () => {
    const model = await slackbotModel();
    const rows = parity.rows as ParityRow[];
    expect(rows.length).toBeGreaterThanOrEqual(40);
    let worst = 0;
    for (const row of rows) {
      expect(tokenize(row.text), row.text).toEqual(row.tokens);
      const p = await model.run(model.vectorize(row.text));
      expect(p.length).toBe(row.probabilities.length);
      const top = (q: ArrayLike<number>) => Array.from(q).indexOf(Math.max(...Array.from(q)));
      expect(top(p), row.text).toBe(top(row.probabilities));
      row.probabilities.forEach((q, i) => {
        worst = Math.max(worst, Math.abs((p[i] ?? Number.NaN) - q));
      });
    }
    expect(worst).toBeLessThanOrEqual(parity.tolerance);
  });

  it("ranks teams, most likely first", async () => {
    const model = await slackbotModel();
    const ranked = await model.classify("postgresql database server replication");
    expect(ranked[0]?.id).toBe("database");
    expect(ranked.reduce((s, t) => s + t.probability, 0)).toBeCloseTo(1, 5);
  });
});
