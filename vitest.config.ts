import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two projects. "workers" runs inside workerd against the real bindings of
// wrangler.toml (D1, Queues) with D1 migrations applied by test/workers/setup.ts.
// "node" runs pure domain tests and the MySQL side: the real
// @planetscale/database driver against MariaDB through tools/psdb-server.

export default defineConfig(async () => {
  const migrations = await readD1Migrations("migrations/d1");
  return {
    test: {
      projects: [
        {
          test: {
            name: "node",
            include: ["test/node/**/*.test.ts"],
            environment: "node",
            testTimeout: 60_000,
            hookTimeout: 60_000,
          },
        },
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  JWT_SECRET: "test-secret-0123456789abcdef-0123456789",
                  HEAL_SETTLE_SECONDS: "3",
                  PRESENCE_GRACE_SECONDS: "0.5",
                  TEST_MIGRATIONS: migrations,
                },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/workers/**/*.test.ts"],
            setupFiles: ["./test/workers/setup.ts"],
            testTimeout: 60_000,
          },
        },
      ],
    },
  };
});
