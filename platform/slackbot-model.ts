import manifestJson from "../models/slackbot/manifest.json";
import onnxBytes from "../models/slackbot/model.onnx";
import { type ProbabilitiesOf, parseTeamManifest, type TeamModelManifest, teamClassifier } from "../src/slackbot/model";
import { scoreTfidfSoftmax, tfidfSoftmaxFromOnnx } from "../src/slackbot/onnx-tfidf";
import type { LoadedClassifier } from "../src/slackbot/service";
import { needsOnnxRuntime, onnxRuntimeEngine } from "./models/runtime-registry";

// The Slack bot's team classifier (models/slackbot/, trained by
// training/slackbot/train.py), bundled into the Worker as Data. Its graph
// (TF-IDF → softmax regression) is read from model.onnx into plain TypeScript
// (src/slackbot/onnx-tfidf.ts): no ONNX runtime in either build. A retrained
// graph of another shape runs on the runtime the ONNX build registers
// (models/runtime-registry.ts); the default build then fails the load with a
// message naming the ONNX build (the consumer retries, then dead-letters with
// it). Loaded on the first question an isolate answers, never on the
// acknowledgement path, and kept while the isolate stays warm.

export interface SlackbotModel extends LoadedClassifier {
  manifest: TeamModelManifest;
  /** What scores it: the TypeScript reader, or the ONNX build's runtime for a graph the reader does not cover. */
  engine: "typescript" | "onnxruntime-web";
  /** The graph's probabilities for one row of term counts (the parity test's way in). */
  run: ProbabilitiesOf;
  vectorize(text: string): Float32Array;
}

/** Loads and load time, for tests and the bench (a warm isolate loads once). */
export const slackbotModelStats = { loads: 0, lastLoadMs: 0 };

let loaded: Promise<SlackbotModel> | undefined;

export function slackbotModel(): Promise<SlackbotModel> {
  loaded ??= loadSlackbotModel(new Uint8Array(onnxBytes)).catch((error: unknown) => {
    loaded = undefined; // a failed load is tried again by the next question
    throw error;
  });
  return loaded;
}

/** The classifier over the bundled manifest and `onnx` (the bundled model.onnx; tests pass variants). */
export async function loadSlackbotModel(onnx: Uint8Array): Promise<SlackbotModel> {
  const started = Date.now();
  const manifest = parseTeamManifest(manifestJson);
  const width = manifest.vocabulary.length;
  const graph = tfidfSoftmaxFromOnnx(onnx, manifest.input, manifest.output);
  let run: ProbabilitiesOf;
  let engine: SlackbotModel["engine"];
  if (graph && graph.width === width && graph.classes === manifest.teams.length) {
    engine = "typescript";
    run = async (counts) => scoreTfidfSoftmax(graph, counts, 1);
  } else {
    const runtime = onnxRuntimeEngine();
    if (!runtime) {
      throw new Error(
        needsOnnxRuntime(
          `the Slack bot's model.onnx (not the TF-IDF → softmax graph of ${width} tokens and ${manifest.teams.length} teams that src/slackbot/onnx-tfidf.ts reads)`,
        ),
      );
    }
    engine = runtime.name;
    const graphRun = await runtime.runner(onnx, manifest.input, manifest.output);
    run = (counts) => graphRun(counts, 1, width);
  }
  const classifier = teamClassifier(manifest, run);
  slackbotModelStats.loads++;
  slackbotModelStats.lastLoadMs = Date.now() - started;
  return {
    manifest,
    version: manifest.version,
    engine,
    run,
    vectorize: classifier.vectorize,
    classify: classifier.classify,
  };
}
