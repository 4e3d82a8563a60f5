import { defineConfig } from "vitest/config";

// `npm run test:faults`: the fault suite (test/faults). Not part of `npm test`:
// it starts its own platforms and MariaDB server, kills them, and takes
// minutes. CI runs it after `npm test`.
export default defineConfig({
  test: {
    name: "faults",
    include: ["test/faults/**/*.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 300_000,
  },
});
