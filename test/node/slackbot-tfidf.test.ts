import { readFileSync } from "node:fs";
import * as ortNode from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { fields } from "../../src/models/onnx-proto";
import { parseTeamManifest } from "../../src/slackbot/model";
import { scoreTfidfSoftmax, type TfidfSoftmax, tfidfSoftmaxFromOnnx } from "../../src/slackbot/onnx-tfidf";
import { termCounts, tokenize } from "../../src/slackbot/tokenize";
import { encode, textField } from "../onnx-edit";

// The Slack bot's classifier read from models/slackbot/model.onnx into
// TypeScript (src/slackbot/onnx-tfidf.ts) against scikit-learn's
// probabilities in parity.json (labels identical, probabilities within the
// fixture's 1e-5), and against onnxruntime-node on the parity texts and every
// held-out description of the dataset. onnxruntime-web inside workerd is the
// ONNX build's check: test/workers/slackbot-onnx.test.ts.

const DIR = "models/slackbot";
const onnx = new Uint8Array(readFileSync(`${DIR}/model.onnx`));
const manifest = parseTeamManifest(JSON.parse(readFileSync(`${DIR}/manifest.json`, "utf8")));
const parity = z
  .object({
    tolerance: z.number(),
    rows: z.array(z.object({ text: z.string(), tokens: z.array(z.string()), probabilities: z.array(z.number()) })),
  })
  .parse(JSON.parse(readFileSync(`${DIR}/parity.json`, "utf8")));
const index = new Map(manifest.vocabulary.map((t, i) => [t, i]));
const countsOf = (texts: string[]): Float32Array => {
  const out = new Float32Array(texts.length * manifest.vocabulary.length);
  texts.forEach((t, r) => {
    out.set(termCounts(tokenize(t, manifest.tokenizer.min_length), index), r * manifest.vocabulary.length);
  });
  return out;
};
const argmax = (p: ArrayLike<number>, at: number, k: number): number => {
  let best = 0;
  for (let i = 1; i < k; i++) if ((p[at + i] as number) > (p[at + best] as number)) best = i;
  return best;
};

function readModel(): TfidfSoftmax {
  const model = tfidfSoftmaxFromOnnx(onnx, manifest.input, manifest.output);
  if (!model) throw new Error("models/slackbot/model.onnx did not read as a TF-IDF → softmax graph");
  return model;
}

/** Held-out descriptions of the vendored dataset (the same rows the manifest's accuracy counts). */
function heldOutTexts(): string[] {
  const csv = readFileSync("datasets/debian-packages/descriptions.csv", "utf8");
  const lines = csv.split("\n");
  const header = (lines[0] ?? "").split(",");
  const textAt = header.indexOf("text");
  const splitAt = header.indexOf("split");
  expect(textAt).toBeGreaterThanOrEqual(0);
  const out: string[] = [];
  // Only rows without quotes (the common case): enough for a sample without a CSV parser.
  for (const line of lines.slice(1)) {
    if (line.includes('"')) continue;
    const cells = line.split(",");
    if (cells.length === header.length && cells[splitAt] === "test") out.push(cells[textAt] ?? "");
  }
  return out;
}

describe("the Slack bot's classifier in TypeScript (src/slackbot/onnx-tfidf.ts)", () => {
  it("reads the shipped graph: the manifest's vocabulary and teams", () => {
    const model = readModel();
    expect(model.width).toBe(manifest.vocabulary.length);
    expect(model.classes).toBe(manifest.teams.length);
    expect(model.eps).toBeCloseTo(1e-12, 18);
  });

  it("matches parity.json: same labels, probabilities within its tolerance (1e-5)", () => {
    const model = readModel();
    const k = model.classes;
    expect(parity.tolerance).toBe(1e-5);
    expect(parity.rows.length).toBeGreaterThanOrEqual(40);
    const p = scoreTfidfSoftmax(model, countsOf(parity.rows.map((r) => r.text)), parity.rows.length);
    let worst = 0;
    parity.rows.forEach((row, r) => {
      expect(tokenize(row.text), row.text).toEqual(row.tokens);
      expect(argmax(p, r * k, k), row.text).toBe(argmax(row.probabilities, 0, k));
      row.probabilities.forEach((q, i) => {
        worst = Math.max(worst, Math.abs((p[r * k + i] as number) - q));
      });
    });
    expect(worst).toBeLessThanOrEqual(parity.tolerance);
  });

  it("matches onnxruntime-node on the parity texts and the held-out descriptions (1e-6, same labels)", async () => {
    const model = readModel();
    const k = model.classes;
    const texts = [...parity.rows.map((r) => r.text), ...heldOutTexts()];
    expect(texts.length).toBeGreaterThan(500);
    const counts = countsOf(texts);
    const ts = scoreTfidfSoftmax(model, counts, texts.length);
    const session = await ortNode.InferenceSession.create(onnx);
    const out = await session.run({
      [manifest.input]: new ortNode.Tensor("float32", counts, [texts.length, model.width]),
    });
    const ort = out[manifest.output]?.data as Float32Array;
    expect(ort.length).toBe(ts.length);
    let worst = 0;
    for (let i = 0; i < ts.length; i++) worst = Math.max(worst, Math.abs((ts[i] as number) - (ort[i] as number)));
    expect(worst).toBeLessThanOrEqual(1e-6);
    texts.forEach((t, r) => {
      expect(argmax(ts, r * k, k), t).toBe(argmax(ort, r * k, k));
    });
    await session.release();
  });

  it("scores an empty row as the graph does: softmax of the intercepts", () => {
    const model = readModel();
    const p = scoreTfidfSoftmax(model, new Float32Array(model.width), 1);
    const e = Array.from(model.bias, (b) => Math.exp(b));
    const sum = e.reduce((a, b) => a + b, 0);
    e.forEach((v, i) => {
      expect(p[i]).toBeCloseTo(v / sum, 6);
    });
  });

  it("reads any other graph as null: names, ops, attributes, garbage", () => {
    expect(tfidfSoftmaxFromOnnx(onnx, "x", manifest.output)).toBeNull();
    expect(tfidfSoftmaxFromOnnx(onnx, manifest.input, "y")).toBeNull();
    expect(tfidfSoftmaxFromOnnx(new TextEncoder().encode("not an onnx model"), "counts", "probabilities")).toBeNull();
    expect(tfidfSoftmaxFromOnnx(onnx.subarray(0, onnx.length - 100), "counts", "probabilities")).toBeNull();
    // Softmax → LogSoftmax: a valid graph of another meaning.
    expect(tfidfSoftmaxFromOnnx(renameOp("Softmax", "LogSoftmax"), manifest.input, manifest.output)).toBeNull();
    // ReduceL2 → ReduceL1: another normalization.
    expect(tfidfSoftmaxFromOnnx(renameOp("ReduceL2", "ReduceL1"), manifest.input, manifest.output)).toBeNull();
    // Each edit keeps the bytes a graph the reader otherwise takes.
    expect(tfidfSoftmaxFromOnnx(renameOp("Softmax", "Softmax"), manifest.input, manifest.output)).not.toBeNull();
  });
});

/** model.onnx with one node's op_type (NodeProto field 4) replaced. */
function renameOp(from: string, to: string): Uint8Array {
  const model = fields(onnx);
  return encode(
    model.map((m) => {
      if (m.no !== 7) return m;
      const graph = fields(m.bytes).map((g) => {
        if (g.no !== 1) return g;
        const node = fields(g.bytes);
        const op = node.find((f) => f.no === 4);
        if (!op || new TextDecoder().decode(op.bytes) !== from) return g;
        return { ...g, bytes: encode(node.map((f) => (f.no === 4 ? textField(4, to) : f))) };
      });
      return { ...m, bytes: encode(graph) };
    }),
  );
}
