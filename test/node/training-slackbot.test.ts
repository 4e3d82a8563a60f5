import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

// The Slack bot classifier's Python tests (training/slackbot/tests: the
// tokenizer, the dataset builder, the ONNX graph against scikit-learn, and
// that models/slackbot/ is exactly what `npm run train:slackbot` writes from
// the vendored CSV). Debian's python3-numpy, -scipy, -sklearn and -onnx; as
// test/node/training-python.test.ts: skipped with one line saying how to get
// them on a machine without them, a failure under CI (CI=true).

const PACKAGES = ["numpy", "scipy", "sklearn", "onnx"];

function missingPackages(): string | null {
  const probe = spawnSync("/usr/bin/python3", ["-c", `import ${PACKAGES.join(", ")}`], { encoding: "utf8" });
  if (probe.error) return `no /usr/bin/python3 (${probe.error.message})`;
  return probe.status === 0 ? null : (probe.stderr.trim().split("\n").at(-1) ?? "import failed");
}

const missing = missingPackages();
const inCI = process.env.CI === "true" || process.env.CI === "1";
if (missing && !inCI) {
  console.log(
    `slack bot training suite skipped: Debian's Python packages are missing (${missing}); install them with: npm run setup:training`,
  );
}

describe("training/slackbot (Python)", () => {
  it.skipIf(missing !== null && !inCI)(
    "passes its unittest suite",
    () => {
      expect(missing, "CI must run the slack bot training suite: its Python packages are missing").toBeNull();
      const run = spawnSync("/usr/bin/python3", ["-m", "unittest", "discover", "-s", "training/slackbot/tests"], {
        encoding: "utf8",
        timeout: 300_000,
      });
      const output = `${run.stdout}\n${run.stderr}`;
      expect(run.error, output).toBeUndefined();
      expect(run.status, output.slice(-4000)).toBe(0);
      expect(output).toMatch(/Ran \d+ tests/);
    },
    300_000,
  );
});
