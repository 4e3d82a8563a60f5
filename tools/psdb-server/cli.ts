// tsx tools/psdb-server/cli.ts [--port 3900] [--host 127.0.0.1]
//   [--mysql mysql://root@127.0.0.1:3306/edge] [--create-database]
//   [--username root] [--password secret] [--pool-size 8] [--session-idle-ms 30000]
//
// Starts the local PlanetScale-protocol server and prints the driver URL on
// one line (stdout); everything else goes to stderr. Stops on SIGINT/SIGTERM.
import { parseArgs } from "node:util";
import mysql from "mysql2/promise";
import { startPsdbServer } from "./server";

function fail(message: string): never {
  process.stderr.write(`psdb-server: ${message}\n`);
  process.exit(1);
}

function intOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string" },
    mysql: { type: "string" },
    "create-database": { type: "boolean", default: false },
    username: { type: "string" },
    password: { type: "string" },
    "pool-size": { type: "string" },
    "session-idle-ms": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    "usage: tsx tools/psdb-server/cli.ts [--port 3900] [--host 127.0.0.1] [--mysql mysql://root@127.0.0.1:3306/edge]\n" +
      "         [--create-database] [--username root] [--password ''] [--pool-size 8] [--session-idle-ms 30000]\n",
  );
  process.exit(0);
}

let target: URL;
try {
  target = new URL(values.mysql ?? "mysql://root@127.0.0.1:3306/edge");
} catch {
  fail(`--mysql is not a URL: ${values.mysql}`);
}
if (target.protocol !== "mysql:") fail(`--mysql must be a mysql:// URL, got ${target.protocol}`);
const database = decodeURIComponent(target.pathname.replace(/^\//, ""));
if (!database) fail("--mysql must name a database, e.g. mysql://root@127.0.0.1:3306/edge");
const mysqlOptions = {
  host: target.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
  port: target.port ? Number(target.port) : 3306,
  user: decodeURIComponent(target.username) || "root",
  password: decodeURIComponent(target.password),
  database,
};

if (values["create-database"]) {
  const { database: _omit, ...server } = mysqlOptions;
  try {
    const conn = await mysql.createConnection(server);
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database.replaceAll("`", "``")}\``);
    await conn.end();
  } catch (error) {
    fail(`cannot create database ${database}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

let server: Awaited<ReturnType<typeof startPsdbServer>>;
try {
  server = await startPsdbServer({
    mysql: mysqlOptions,
    host: values.host ?? "127.0.0.1",
    port: intOption("port", values.port, 3900),
    username: values.username ?? "root",
    password: values.password ?? "",
    poolSize: intOption("pool-size", values["pool-size"], 8),
    sessionIdleMs: intOption("session-idle-ms", values["session-idle-ms"], 30_000),
  });
} catch (error) {
  fail(`cannot start: ${error instanceof Error ? error.message : String(error)}`);
}

process.stdout.write(`${server.url}\n`);
process.stderr.write(
  `psdb-server: serving ${mysqlOptions.user}@${mysqlOptions.host}:${mysqlOptions.port}/${database} (Ctrl-C to stop)\n`,
);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`psdb-server: ${signal}, shutting down\n`);
  const force = setTimeout(() => process.exit(1), 5_000);
  force.unref();
  await server.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
