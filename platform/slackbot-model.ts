import manifestJson from "../models/slackbot/manifest.json";
import onnxBytes from "../models/slackbot/model.onnx";
import { type ProbabilitiesOf, parseTeamManifest, type TeamModelManifest, teamClassifier } from "../src/slackbot/model";
import type { LoadedClassifier } from "../src/slackbot/service";
import { ortRuntime } from "./models/onnx-runtime";

// The Slack bot's team classifier (models/slackbot/, trained by
// training/slackbot/train.py), bundled into the Worker as Data and run by
// onnxruntime-web (platform/models/onnx-runtime.ts: one runtime per isolate,
// one thread). Loaded on the first question an isolate answers, never on the
// acknowledgement path, and kept while the isolate stays warm.

export interface SlackbotModel extends LoadedClassifier {
  manifest: TeamModelManifest;
  /** The graph's probabilities for one row of term counts (the parity test's way in). */
  run: ProbabilitiesOf;
  vectorize(text: string): Float32Array;
}

/** Loads and load time, for tests and the bench (a warm isolate loads once). */
export const slackbotModelStats = { loads: 0, lastLoadMs: 0 };

let loaded: Promise<SlackbotModel> | undefined;

export function slackbotModel(): Promise<SlackbotModel> {
  loaded ??= loadModel().catch((error: unknown) => {
    loaded = undefined; // a failed load is tried again by the next question
    throw error;
  });
  return loaded;
}

async function loadModel(): Promise<SlackbotModel> {
  const started = Date.now();
  const manifest = parseTeamManifest(manifestJson);
  const ort = await ortRuntime();
  const session = await ort.InferenceSession.create(new Uint8Array(onnxBytes));
  const width = manifest.vocabulary.length;
  const run: ProbabilitiesOf = async (counts) => {
    const out = await session.run({ [manifest.input]: new ort.Tensor("float32", counts, [1, width]) });
    const data = out[manifest.output]?.data;
    if (!(data instanceof Float32Array)) throw new Error(`model output ${manifest.output} is not float32`);
    return data;
  };
  const classifier = teamClassifier(manifest, run);
  slackbotModelStats.loads++;
  slackbotModelStats.lastLoadMs = Date.now() - started;
  return {
    manifest,
    version: manifest.version,
    run,
    vectorize: classifier.vectorize,
    classify: classifier.classify,
  };
}
