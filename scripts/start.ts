import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { buildConsole } from "../console/build";
import { signToken } from "../src/auth/tokens";
import { planetscaleDriver } from "../storage/planetscale-driver";
import { applyMysqlMigrations } from "../tools/mysql-migrations";
import { startPsdbServer } from "../tools/psdb-server/server";
import { importDataset } from "./dataset-import";
import { DEMO_ADMIN, DEMO_MEMBER, DEMO_TEAM, seedDemoTeam } from "./demo-seed";
import { ensureJwtSecret } from "./dev-vars";

// `npm start`: the platform on the embedded default (local D1, Queues) with a
// seeded demo org, no other setup. `npm start -- --mysql` runs the same Worker
// against the local MariaDB through the PlanetScale-protocol server.

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    mysql: { type: "boolean", default: false },
    "mysql-url": { type: "string", default: "mysql://root@127.0.0.1:3306/edge_dev" },
    "psdb-port": { type: "string", default: "3900" },
  },
});

const DATASET_TEAM = "TRAILS";
const DATASET_CUT = "2025-08-23";
const port = Number(values.port);
const base = `http://127.0.0.1:${port}`;
const secret = ensureJwtSecret();
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];

async function main() {
  const vars: string[] = [];
  if (values.mysql) {
    const url = new URL(values["mysql-url"]);
    const database = url.pathname.slice(1) || "edge_dev";
    const mysql = await import("mysql2/promise");
    const admin = await mysql.createConnection({
      host: url.hostname,
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username || "root"),
      password: decodeURIComponent(url.password),
    });
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
    await admin.end();
    const server = await startPsdbServer({
      port: Number(values["psdb-port"]),
      mysql: {
        host: url.hostname,
        port: Number(url.port || 3306),
        user: decodeURIComponent(url.username || "root"),
        password: decodeURIComponent(url.password),
        database,
      },
    });
    cleanups.push(server.close);
    const applied = await applyMysqlMigrations(planetscaleDriver({ url: server.url }));
    console.log(`MySQL ${database} via ${server.url} (migrations applied: ${applied.length})`);
    vars.push("--var", "STORAGE:planetscale", "--var", `DATABASE_URL:${server.url}`);
  } else {
    const migrate = spawnSync("npx", ["wrangler", "d1", "migrations", "apply", "DB", "--local"], {
      stdio: "inherit",
      env: { ...process.env, CI: "1" },
    });
    if (migrate.status !== 0) throw new Error("applying D1 migrations failed");
  }

  // The Slack bot (docs/slack-bot.md): a real Slack app through a tunnel, or a
  // test client, signs with this secret; SLACK_API_BASE may point at a local
  // stand-in for Slack's Web API. Taken from the environment when set.
  for (const name of ["SLACK_SIGNING_SECRET", "SLACK_API_BASE", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"] as const) {
    const value = process.env[name];
    if (value) vars.push("--var", `${name}:${value}`);
  }
  if (process.env.SLACK_SIGNING_SECRET) console.log("Slack bot: POST /slack/events verifies with SLACK_SIGNING_SECRET");
  // The console (docs/console.md) is served from console/public by wrangler's
  // static assets; its script is built from console/src first.
  await buildConsole();
  const dev = spawn("npx", ["wrangler", "dev", "--port", String(port), "--ip", "127.0.0.1", ...vars], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.push(dev);
  dev.on("exit", (code) => {
    void shutdown(code ?? 0);
  });
  await waitForHealth();
  await seed();
  await seedDataset();
  const member = await signToken({ team: DEMO_TEAM.id, user: DEMO_MEMBER, ttlSeconds: 24 * 3600 }, secret);
  const admin = await signToken({ team: DEMO_TEAM.id, user: DEMO_ADMIN, ttlSeconds: 24 * 3600 }, secret);
  const rtoken = await signToken({ team: DATASET_TEAM, user: "U1341", ttlSeconds: 24 * 3600 }, secret);
  console.log(`
Edge platform on ${base} (${values.mysql ? "MySQL via PlanetScale driver" : "D1"}), demo team ${DEMO_TEAM.id}.

  member token: ${member}
  admin token:  ${admin}

  TOKEN=${member}

  curl -s ${base}/v1/invites/classify -H "authorization: Bearer $TOKEN" \\
       -H 'content-type: application/json' -d '{"emails":["new@demo.example","x@partner.example","y@gmail.com"]}'
  curl -s "${base}/v1/directory/switcher?q=eng" -H "authorization: Bearer $TOKEN"
  curl -s "${base}/v1/directory/boot" -H "authorization: Bearer $TOKEN"

Recommendations on real behaviour: team ${DATASET_TEAM} is datasets/rails-collab at ${DATASET_CUT}.

  RTOKEN=${rtoken}
  curl -s ${base}/v1/recommend -H "authorization: Bearer $RTOKEN" \\
       -H 'content-type: application/json' -d '{"source":"channel_browser","limit":5}'

Console (docs/console.md): ${base}/ (paste a token), or open a link that signs in (the token is in the
#fragment, which the browser never sends to a server):

  member: ${base}/#token=${member}
  admin:  ${base}/#token=${admin}
  ${DATASET_TEAM} (recommendations): ${base}/#token=${rtoken}

Tokens last 24 h and name a user only (rights come from the user's live role).
More: npm run token -- --team ${DEMO_TEAM.id} --user ${DEMO_ADMIN} [--ttl SECONDS]. Ctrl-C stops.
`);
}

async function waitForHealth() {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error("wrangler dev did not become healthy in 90 s");
}

async function seed() {
  const platform = await signToken({ team: "TPLATFORM", user: "UOPERATOR" }, secret);
  const headers = { authorization: `Bearer ${platform}`, "content-type": "application/json" };
  const exists = await fetch(`${base}/v1/admin/teams/${DEMO_TEAM.id}`, { headers });
  if (exists.status === 200) {
    console.log(`demo team ${DEMO_TEAM.id} already seeded`);
    return;
  }
  const { users, channels, memberships } = await seedDemoTeam(base, platform);
  console.log(`seeded demo team ${DEMO_TEAM.id}: ${users} users, ${channels} channels, ${memberships} memberships`);
}

/** The second demo team: the vendored dataset at the training's latest cut, for the Recommend API. */
async function seedDataset() {
  const platform = await signToken({ team: "TPLATFORM", user: "UOPERATOR" }, secret);
  const exists = await fetch(`${base}/v1/admin/teams/${DATASET_TEAM}`, {
    headers: { authorization: `Bearer ${platform}` },
  });
  if (exists.status === 200) {
    console.log(`dataset team ${DATASET_TEAM} already seeded`);
    return;
  }
  const s = await importDataset({
    url: base,
    secret,
    data: "datasets/rails-collab",
    team: DATASET_TEAM,
    cut: DATASET_CUT,
    embeddings: "models/embeddings/rails-collab.json",
    privateShare: 0.05,
  });
  console.log(
    `seeded dataset team ${DATASET_TEAM} (rails-collab at ${DATASET_CUT}): ${s.users} users, ${s.channels} channels (${s.privateChannels} marked private), ${s.memberships} memberships, ${s.featureRows} feature rows`,
  );
}

async function shutdown(code: number) {
  for (const c of children) if (c.exitCode === null) c.kill("SIGINT");
  for (const fn of cleanups.splice(0)) await fn().catch(() => {});
  process.exit(code);
}

process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
main().catch(async (error) => {
  console.error(error instanceof Error ? error.message : error);
  await shutdown(1);
});
