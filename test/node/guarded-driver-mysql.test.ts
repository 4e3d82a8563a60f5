// Fail fast under database trouble, with the real @planetscale/database
// driver, the project's psdb server and MariaDB, and a TCP proxy between
// them that can freeze (holds every byte, as a hung database or a stalled
// network does): calls are bounded, the breaker opens after three failures
// and then refuses at once with Retry-After, and closes again once the
// database answers.
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import mysql, { type Connection as MysqlConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CircuitBreaker, DatabaseUnavailable, guardedDriver } from "../../storage/guarded-driver";
import { planetscaleDriver } from "../../storage/planetscale-driver";
import { UniqueViolation } from "../../storage/sql-driver";
import { type PsdbServer, startPsdbServer } from "../../tools/psdb-server/server";
import { rejection } from "../contract/fixtures";
import { MYSQL } from "./mysql-backend";

const DB = `guarded_test_${randomBytes(6).toString("hex")}`;

/** A TCP proxy that, while frozen, holds what clients send instead of passing it on. */
function freezableProxy(target: number) {
  let frozen = false;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(target, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.on("data", (chunk) => {
      if (frozen) held.push(() => upstream.write(chunk));
      else upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  return {
    listen: () =>
      new Promise<number>((resolve) =>
        server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
      ),
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const send of held.splice(0)) send();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("guarded driver (PlanetScale driver → psdb server → MariaDB, through a freezable proxy)", () => {
  let admin: MysqlConnection;
  let psdb: PsdbServer;
  let proxy: ReturnType<typeof freezableProxy>;
  let url: string;

  beforeAll(async () => {
    admin = await mysql.createConnection(MYSQL);
    await admin.query(`CREATE DATABASE \`${DB}\``);
    psdb = await startPsdbServer({ mysql: { ...MYSQL, database: DB } });
    proxy = freezableProxy(psdb.port);
    url = psdb.url.replace(`:${psdb.port}`, `:${await proxy.listen()}`);
  });

  afterAll(async () => {
    await proxy?.close();
    await psdb?.close();
    await admin?.query(`DROP DATABASE IF EXISTS \`${DB}\``);
    await admin?.end();
  });

  it("bounds each call, opens after three failures, refuses at once while open, and closes when the database answers", async () => {
    const breaker = new CircuitBreaker({ timeoutMs: 300, perStatementMs: 0, failuresToOpen: 3, openMs: 1_000 });
    const db = guardedDriver(planetscaleDriver({ url }), breaker);
    expect(await db.all("SELECT 1 AS one")).toEqual([{ one: 1 }]);

    proxy.freeze();
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const error = await rejection(db.all("SELECT 2 AS two"));
      const ms = performance.now() - started;
      expect(error).toBeInstanceOf(DatabaseUnavailable);
      expect(ms).toBeGreaterThanOrEqual(290);
      expect(ms).toBeLessThan(2_000);
    }
    expect(breaker.state).toBe("open");
    // Open: no call waits, whatever it is.
    const started = performance.now();
    const refused = await rejection(db.atomic([{ sql: "SELECT 3", params: [] }]));
    expect(performance.now() - started).toBeLessThan(50);
    expect(refused).toBeInstanceOf(DatabaseUnavailable);
    expect((refused as DatabaseUnavailable).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((refused as DatabaseUnavailable).status).toBe(503);
    expect(breaker.refused).toBe(1);

    proxy.thaw();
    await new Promise((r) => setTimeout(r, 1_050));
    expect(breaker.state).toBe("half-open");
    expect(await db.all("SELECT 4 AS four")).toEqual([{ four: 4 }]);
    expect(breaker.state).toBe("closed");
  });

  it("counts a database that answers with an error about the request as an answer, not as trouble", async () => {
    const breaker = new CircuitBreaker({ timeoutMs: 2_000, perStatementMs: 0, failuresToOpen: 2, openMs: 60_000 });
    const db = guardedDriver(planetscaleDriver({ url }), breaker);
    await db.run("CREATE TABLE IF NOT EXISTS g (id VARCHAR(8) PRIMARY KEY)");
    await db.run("INSERT INTO g (id) VALUES (?)", ["a"]);
    for (let i = 0; i < 3; i++) {
      expect(await rejection(db.run("INSERT INTO g (id) VALUES (?)", ["a"]))).toBeInstanceOf(UniqueViolation);
    }
    expect(await rejection(db.all("SELECT nope FROM g"))).not.toBeInstanceOf(DatabaseUnavailable);
    expect(breaker.state).toBe("closed");
  });
});
