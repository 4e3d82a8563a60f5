import { execFileSync } from "node:child_process";

// npm run bench [-- --quick]: every area in turn; each writes bench/results/<area>.json.
const AREAS = ["classify", "connections", "directory", "realtime", "recommend", "slackbot"];
const passthrough = process.argv.slice(2);
for (const area of AREAS) {
  console.log(`\n### bench:${area}`);
  execFileSync("npx", ["tsx", `bench/${area}.ts`, ...passthrough], { stdio: "inherit" });
}
