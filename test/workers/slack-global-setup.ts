// Global setup of the "workers" project (vitest.config.ts), in vitest's own
// Node process: the recording Slack Web API (tools/harness/slack-recorder.ts)
// on the port vitest.config.ts chose and gave the Worker as SLACK_API_BASE.

import { startSlackRecorder } from "../../tools/harness/slack-recorder";

/** Carries the recorder's port from vitest.config.ts (same name there). */
const SLACK_PORT_ENV = "EDGE_TEST_SLACK_PORT";

export default async function setup(): Promise<() => Promise<void>> {
  const port = Number(process.env[SLACK_PORT_ENV]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${SLACK_PORT_ENV} is not set (see vitest.config.ts)`);
  const recorder = await startSlackRecorder(port);
  return () => recorder.close();
}
