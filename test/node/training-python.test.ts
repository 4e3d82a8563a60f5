import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

// The offline pipeline's own tests (training/tests, stdlib unittest on
// Debian's python3-numpy, -scipy, -sklearn, -xgboost, -onnx, -matplotlib), so
// that `npm test` is the whole suite. On a machine without those packages the
// suite is skipped with one line saying how to get them (`npm run
// setup:training`); under CI (CI=true), where .ci/run installs them, a
// missing package fails instead: CI must run it.

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
    `training suite skipped: Debian's Python packages are missing (${missing}); install them with: npm run setup:training`,
  );
}

describe("training/ (Python)", () => {
  it.skipIf(missing !== null && !inCI)(
    "passes its unittest suite",
    () => {
      expect(missing, "CI must run the training suite: its Python packages are missing").toBeNull();
      const run = spawnSync("/usr/bin/python3", ["-m", "unittest", "discover", "-s", "tests"], {
        cwd: "training",
        encoding: "utf8",
        timeout: 600_000,
      });
      const output = `${run.stdout}\n${run.stderr}`;
      expect(run.error, output).toBeUndefined();
      expect(run.status, output.slice(-4000)).toBe(0);
      expect(output).toMatch(/Ran \d+ tests/);
    },
    600_000,
  );
});
