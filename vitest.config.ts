import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { freePort } from "./test/free-port";

// Four projects. "workers" runs inside workerd against the real bindings of
// wrangler.toml (D1, Queues) with D1 migrations applied by test/workers/setup.ts:
// the default build, without an ONNX runtime (every shipped model scored in
// TypeScript). "workers-onnx" is the ONNX build (wrangler.onnx.toml, its
// entry workers/index-onnx.ts; test/workers-onnx/setup.ts registers
// onnxruntime-web for the tests' own imports too): the suites that run graphs
// on onnxruntime-web, and the upload checks again with the runtime deciding.
// "workers-mysql" runs the tenant-isolation and fuzz suites inside workerd
// too, with STORAGE=planetscale: every read and write goes through the real
// @planetscale/database driver to tools/psdb-server over a MariaDB database
// made for the run (test/workers/mysql-global-setup.ts). "node" runs pure
// domain tests and the MySQL side: the same driver against MariaDB through
// tools/psdb-server.

/** Suites that need onnxruntime-web (forced engine, graphs no TypeScript reader covers): the ONNX build only. */
const ONNX_ONLY = ["test/workers/models.test.ts", "test/workers-onnx/**/*.test.ts"];
/** Suites that hold in both builds, and run in both: model uploads are checked by TypeScript or by the runtime. */
const BOTH_BUILDS = ["test/workers/recommend-admin.test.ts"];

/** Suites that must hold on both storage backends (they also run in "workers", on D1). */
const BOTH_BACKENDS = ["test/workers/isolation.test.ts", "test/workers/fuzz.test.ts"];

/** Carries the psdb server's port to test/workers/mysql-global-setup.ts (same name there). */
const PSDB_PORT_ENV = "EDGE_TEST_PSDB_PORT";
/** Carries the recording Slack Web API's port to test/workers/slack-global-setup.ts (same name there). */
const SLACK_PORT_ENV = "EDGE_TEST_SLACK_PORT";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("migrations/d1");
  // Chosen here, where the Worker's bindings are made, and handed to the
  // global setup through the environment (it runs in this same process).
  // Vitest evaluates this file more than once (the root, then each project):
  // the first choice stands, so the bindings and the server agree.
  process.env[PSDB_PORT_ENV] ??= String(await freePort());
  const psdbPort = Number(process.env[PSDB_PORT_ENV]);
  process.env[SLACK_PORT_ENV] ??= String(await freePort());
  const slackPort = Number(process.env[SLACK_PORT_ENV]);
  const bindings = {
    JWT_SECRET: "test-secret-0123456789abcdef-0123456789",
    HEAL_SETTLE_SECONDS: "3",
    PRESENCE_GRACE_SECONDS: "0.5",
    TEST_MIGRATIONS: migrations,
    // The Slack bot (test/workers/slack-*.test.ts): its Web API is the recorder of slack-global-setup.ts.
    SLACK_SIGNING_SECRET: "test-slack-signing-secret",
    SLACK_CLIENT_ID: "1234.5678",
    SLACK_CLIENT_SECRET: "test-slack-client-secret",
    SLACK_TOKEN_KEY: "test-slack-token-key",
    SLACK_API_BASE: `http://127.0.0.1:${slackPort}/api`,
    // The live build's ledger cap (200,000 rows as deployed), small enough
    // for test/workers/live-features.test.ts to reach it; no other suite's
    // ledger comes near it.
    REC_LIVE_MAX_ROWS: "500",
  };
  // The suites send hundreds of requests a minute with one token (setup as the
  // operator, the fuzz suite); wrangler.toml's 1,200 a minute per caller would
  // refuse some. The limit itself is tested with a small one in
  // test/node/edge-limits.test.ts, on the bundle as deployed.
  const ratelimits = { API_RATE_LIMIT: { namespace_id: "1001", simple: { limit: 1_000_000, period: 60 as const } } };
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
            cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings, ratelimits } }),
          ],
          test: {
            name: "workers",
            include: ["test/workers/**/*.test.ts"],
            exclude: ONNX_ONLY,
            setupFiles: ["./test/workers/setup.ts"],
            globalSetup: ["./test/workers/slack-global-setup.ts"],
            testTimeout: 60_000,
          },
        },
        {
          plugins: [
            cloudflareTest({ wrangler: { configPath: "./wrangler.onnx.toml" }, miniflare: { bindings, ratelimits } }),
          ],
          test: {
            name: "workers-onnx",
            include: [...ONNX_ONLY, ...BOTH_BUILDS],
            setupFiles: ["./test/workers/setup.ts", "./test/workers-onnx/setup.ts"],
            testTimeout: 60_000,
          },
        },
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                ratelimits,
                bindings: {
                  ...bindings,
                  STORAGE: "planetscale",
                  // tools/psdb-server's basic auth: user root, no password.
                  DATABASE_URL: `http://root:@127.0.0.1:${psdbPort}`,
                },
              },
            }),
          ],
          test: {
            name: "workers-mysql",
            include: BOTH_BACKENDS,
            // D1 stays bound (wrangler.toml) and migrated, unused with STORAGE=planetscale.
            setupFiles: ["./test/workers/setup.ts"],
            globalSetup: ["./test/workers/mysql-global-setup.ts"],
            testTimeout: 60_000,
            hookTimeout: 120_000,
          },
        },
      ],
    },
  };
});
