import { describe, expect, it } from "vitest";
import manifestJson from "../../models/slackbot/manifest.json";
import slackbotOnnx from "../../models/slackbot/model.onnx";
import parity from "../../models/slackbot/parity.json";
import { onnxRuntimeWeb } from "../../platform/models/onnxruntime-web";
import { onnxRuntimeEngine } from "../../platform/models/runtime-registry";
import { loadSlackbotModel, slackbotModel } from "../../platform/slackbot-model";
import { parseTeamManifest } from "../../src/slackbot/model";
import { scoreTfidfSoftmax, tfidfSoftmaxFromOnnx } from "../../src/slackbot/onnx-tfidf";
import { termCounts, tokenize } from "../../src/slackbot/tokenize";
import { editNode } from "../onnx-edit";

// The ONNX build (workers-onnx project: onnxruntime-web registered): the Slack
// bot's classifier read into TypeScript (src/slackbot/onnx-tfidf.ts) gives
// what onnxruntime-web gives on the same graph inside workerd, on the parity
// texts and on a sample of generated questions; the build still scores the
// shipped graph in TypeScript, and a graph of another shape on the runtime.

const manifest = parseTeamManifest(manifestJson);
const width = manifest.vocabulary.length;
const k = manifest.teams.length;
const index = new Map(manifest.vocabulary.map((t, i) => [t, i]));

/** Questions from the vocabulary: 1-12 known tokens (some repeated) and an unknown one, deterministic. */
function sampleTexts(n: number): string[] {
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  return Array.from({ length: n }, () => {
    const words = Array.from({ length: 1 + (next() % 12) }, () => manifest.vocabulary[next() % width] as string);
    return `who knows about ${words.join(" ")} zzunknownzz?`;
  });
}

const argmax = (p: ArrayLike<number>, at: number): number => {
  let best = 0;
  for (let i = 1; i < k; i++) if ((p[at + i] as number) > (p[at + best] as number)) best = i;
  return best;
};

describe("the Slack bot's classifier: TypeScript against onnxruntime-web in workerd", () => {
  it("the same probabilities (1e-6) and labels on the parity texts and 300 generated questions", async () => {
    expect(onnxRuntimeEngine()?.name).toBe("onnxruntime-web");
    const graph = tfidfSoftmaxFromOnnx(new Uint8Array(slackbotOnnx), manifest.input, manifest.output);
    if (!graph) throw new Error("the shipped graph did not read");
    const texts = [...(parity.rows as Array<{ text: string }>).map((r) => r.text), ...sampleTexts(300)];
    const counts = new Float32Array(texts.length * width);
    texts.forEach((t, r) => {
      counts.set(termCounts(tokenize(t), index), r * width);
    });
    const ts = scoreTfidfSoftmax(graph, counts, texts.length);
    const run = await onnxRuntimeWeb.runner(new Uint8Array(slackbotOnnx), manifest.input, manifest.output);
    const ort = await run(counts, texts.length, width);
    expect(ort.length).toBe(ts.length);
    let worst = 0;
    for (let i = 0; i < ts.length; i++) worst = Math.max(worst, Math.abs((ts[i] as number) - (ort[i] as number)));
    expect(worst).toBeLessThanOrEqual(1e-6);
    texts.forEach((t, r) => {
      expect(argmax(ts, r * k), t).toBe(argmax(ort, r * k));
    });
  });

  it("scores the shipped graph in TypeScript in this build too", async () => {
    expect((await slackbotModel()).engine).toBe("typescript");
  });

  it("runs a graph the reader does not cover on onnxruntime-web, within parity.json's tolerance", async () => {
    // Softmax's axis left to its default (-1): the same model, another shape than the reader takes.
    const variant = editNode(new Uint8Array(slackbotOnnx), 6, (node) => node.filter((f) => f.no !== 5));
    expect(tfidfSoftmaxFromOnnx(variant, manifest.input, manifest.output)).toBeNull();
    const model = await loadSlackbotModel(variant);
    expect(model.engine).toBe("onnxruntime-web");
    let worst = 0;
    for (const row of parity.rows as Array<{ text: string; probabilities: number[] }>) {
      const p = await model.run(model.vectorize(row.text));
      row.probabilities.forEach((q, i) => {
        worst = Math.max(worst, Math.abs((p[i] as number) - q));
      });
    }
    expect(worst).toBeLessThanOrEqual(parity.tolerance);
  });
});
