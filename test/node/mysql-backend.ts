import mysql from "mysql2/promise";
import { afterAll, beforeAll } from "vitest";
import { planetscaleDriver } from "../../storage/planetscale-driver";
import { sqlStore } from "../../storage/sql-store";
import { applyMysqlMigrations } from "../../tools/mysql-migrations";
import { startPsdbServer } from "../../tools/psdb-server/server";
import type { Backend } from "../contract/fixtures";

// A fresh MariaDB database per test file, reached through the project's
// PlanetScale-protocol server with the real @planetscale/database driver.

export const MYSQL = {
  host: process.env.MYSQL_HOST ?? "127.0.0.1",
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? "root",
  password: process.env.MYSQL_PASSWORD ?? "",
};

export function useMysqlBackend(): () => Promise<Backend> {
  const database = `edge_test_${Math.random().toString(36).slice(2, 10)}`;
  let backend: Backend | undefined;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const admin = await mysql.createConnection(MYSQL);
    await admin.query(`CREATE DATABASE \`${database}\``);
    await admin.end();
    const server = await startPsdbServer({ mysql: { ...MYSQL, database } });
    const driver = planetscaleDriver({ url: server.url });
    await applyMysqlMigrations(driver);
    backend = { name: "mysql", driver, store: sqlStore(driver) };
    close = server.close;
  });

  afterAll(async () => {
    await close?.();
    const admin = await mysql.createConnection(MYSQL);
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.end();
  });

  return async () => {
    if (!backend) throw new Error("MySQL backend not ready");
    return backend;
  };
}
