import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// The TypeScript in src/connect/gen/ is generated from proto/ (npm run proto):
// regenerated here into a temporary folder, it must be what is committed, so
// a changed .proto without regenerated code (or a hand edit) fails.

const root = join(import.meta.dirname, "../..");
const buf = join(root, "node_modules/.bin/buf");

function files(dir: string, base = dir): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) Object.assign(out, files(path, base));
    else out[path.slice(base.length)] = readFileSync(path, "utf8");
  }
  return out;
}

describe("generated protobuf code", () => {
  it("is what proto/ generates", () => {
    const out = mkdtempSync(join(tmpdir(), "proto-"));
    try {
      execFileSync(buf, ["generate", "-o", out], {
        cwd: root,
        env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` },
      });
      expect(files(join(out, "src/connect/gen"))).toEqual(files(join(root, "src/connect/gen")));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
