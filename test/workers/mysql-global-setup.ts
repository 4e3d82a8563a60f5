// Global setup of the "workers-mysql" project (vitest.config.ts), run in
// vitest's own Node process: a fresh MariaDB database for the run, the MySQL
// migrations applied to it through the PlanetScale driver, and
// tools/psdb-server in front of it on the port vitest.config.ts chose (and
// gave the Worker as DATABASE_URL). Teardown stops the server and drops the
// database. Runs only when the project has test files to run.

import mysql from "mysql2/promise";
import { planetscaleDriver } from "../../storage/planetscale-driver";
import { applyMysqlMigrations } from "../../tools/mysql-migrations";
import { type PsdbServer, startPsdbServer } from "../../tools/psdb-server/server";

/** Carries the psdb server's port from vitest.config.ts (same name there). */
const PSDB_PORT_ENV = "EDGE_TEST_PSDB_PORT";

const MYSQL = {
  host: process.env.MYSQL_HOST ?? "127.0.0.1",
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? "root",
  password: process.env.MYSQL_PASSWORD ?? "",
};

export default async function setup(): Promise<() => Promise<void>> {
  const port = Number(process.env[PSDB_PORT_ENV]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${PSDB_PORT_ENV} is not set (see vitest.config.ts)`);
  const database = `edge_workers_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = await mysql.createConnection(MYSQL);
  try {
    await admin.query(`CREATE DATABASE \`${database}\``);
  } finally {
    await admin.end();
  }
  const drop = async () => {
    const conn = await mysql.createConnection(MYSQL);
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    } finally {
      await conn.end();
    }
  };
  let server: PsdbServer | undefined;
  try {
    server = await startPsdbServer({ mysql: { ...MYSQL, database }, port });
    await applyMysqlMigrations(planetscaleDriver({ url: server.url }));
  } catch (error) {
    await server?.close();
    await drop();
    throw error;
  }
  const running = server;
  return async () => {
    await running.close();
    await drop();
  };
}
