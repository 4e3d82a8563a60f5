import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

// The Python suites, so that `npm test` is the whole suite: the offline
// pipeline's (training/tests) and the Slack bot classifier's
// (training/slackbot/tests: its tokenizer, dataset builder, the ONNX graph
// against scikit-learn, and that models/slackbot/ is exactly what `npm run
// train:slackbot` writes from the vendored CSV); stdlib unittest on
// Debian's python3-numpy, -scipy, -sklearn, -xgboost, -onnx, -matplotlib.
// On a machine without those packages both are skipped with one line saying
// how to get them (`npm run setup:training`); under CI (CI=true), where
// .ci/run installs them, a missing package fails instead: CI must run them.

const PACKAGES = ["numpy", "scipy", "sklearn", "xgboost", "onnx", "matplotlib"];

function missingPackages(): string | null {
  const probe = spawnSync("/usr/bin/python3", ["-c", `import ${PACKAGES.join(", ")}`], { encoding: "utf8" });
  if (probe.error) return `no /usr/bin/python3 (${probe.error.message})`;
  return probe.status === 0 ? null : (probe.stderr.trim().split("\n").at(-1) ?? "import failed");
}

const missing = missingPackages();
const inCI = process.env.CI === "true" || process.env.CI === "1";
if (missing && !inCI) {
  console.log(
    `training suites skipped: Debian's Python packages are missing (${missing}); install them with: npm run setup:training`,
  );
}

const SUITES = [
  { name: "training/ (the offline pipeline)", cwd: "training", start: "tests", timeoutMs: 600_000 },
  {
    name: "training/slackbot (the Slack bot classifier)",
    cwd: ".",
    start: "training/slackbot/tests",
    timeoutMs: 300_000,
  },
];

describe("training (Python)", () => {
  for (const suite of SUITES) {
    it.skipIf(missing !== null && !inCI)(
      `${suite.name} passes its unittest suite`,
      () => {
        expect(missing, "CI must run the training suites: their Python packages are missing").toBeNull();
        const run = spawnSync("/usr/bin/python3", ["-m", "unittest", "discover", "-s", suite.start], {
          cwd: suite.cwd,
          encoding: "utf8",
          timeout: suite.timeoutMs,
        });
        const output = `${run.stdout}\n${run.stderr}`;
        expect(run.error, output).toBeUndefined();
        expect(run.status, output.slice(-4000)).toBe(0);
        expect(output).toMatch(/Ran \d+ tests/);
      },
      suite.timeoutMs,
    );
  }
});
