import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

// The offline pipeline's own tests (training/tests, stdlib unittest on
// Debian's python3-xgboost, -sklearn, -onnx, -scipy, -matplotlib), so that
// `npm test` is the whole suite. `.ci/run` installs those packages.

describe("training/ (Python)", () => {
  it("passes its unittest suite", () => {
    const run = spawnSync("/usr/bin/python3", ["-m", "unittest", "discover", "-s", "tests"], {
      cwd: "training",
      encoding: "utf8",
      timeout: 600_000,
    });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.error, output).toBeUndefined();
    expect(run.status, output.slice(-4000)).toBe(0);
    expect(output).toMatch(/Ran \d+ tests/);
  }, 600_000);
});
