import { spawn, spawnSync } from "node:child_process";
import { buildConsole } from "../console/build";
import { ensureJwtSecret } from "./dev-vars";

// npm run dev [-- wrangler dev options]: `wrangler dev` as Workers developers
// know it, on the embedded default (local D1), with what it needs first: a
// JWT secret in .dev.vars, the D1 migrations applied, the console's script
// built (console/build.ts). No seeding: `npm
// start` is the guided tour (a demo org, tokens, the console); this is the
// plain dev server, which reloads on every change.

ensureJwtSecret();
await buildConsole();
const migrate = spawnSync("npx", ["wrangler", "d1", "migrations", "apply", "DB", "--local"], {
  stdio: "inherit",
  env: { ...process.env, CI: "1" },
});
if (migrate.status !== 0) process.exit(migrate.status ?? 1);
const dev = spawn("npx", ["wrangler", "dev", ...process.argv.slice(2)], { stdio: "inherit" });
dev.on("exit", (code) => process.exit(code ?? 0));
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => dev.kill(signal));
