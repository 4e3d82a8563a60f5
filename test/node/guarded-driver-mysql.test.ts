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
    expect((refused as DatabaseUnavailable).kind).toBe("unavailable");
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

  it("runs a unit again when MySQL makes it a deadlock's victim, and answers 503 (not 500) if it keeps losing", async () => {
    const breaker = new CircuitBreaker({ timeoutMs: 10_000, perStatementMs: 0, failuresToOpen: 2, openMs: 60_000 });
    const db = guardedDriver(planetscaleDriver({ url }), breaker);
    await db.run("CREATE TABLE IF NOT EXISTS dl (id INT PRIMARY KEY, n INT NOT NULL)");
    await db.run("DELETE FROM dl");
    await db.run(`INSERT INTO dl VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, 0)`).join(", ")}`);
    // A heavy transaction (it changed 99 rows, so InnoDB keeps it and rolls the light one back)
    // that will want row 2 after the unit below has taken it.
    const heavy = await mysql.createConnection({ ...MYSQL, database: DB });
    await heavy.query("BEGIN");
    await heavy.query("UPDATE dl SET n = 9 WHERE id <> 2");
    const unit = db.atomic([
      { sql: "UPDATE dl SET n = n + 1 WHERE id = 2", params: [] },
      { sql: "UPDATE dl SET n = n + 1 WHERE id = 1", params: [] }, // waits for heavy's lock on row 1
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const closing = heavy.query("UPDATE dl SET n = 9 WHERE id = 2").then(() => heavy.query("COMMIT")); // deadlock
    await expect(unit).resolves.toHaveLength(2);
    await closing;
    await heavy.end();
    // The victim's first try was rolled back whole; its retry ran after heavy committed.
    expect(await db.all("SELECT id, n FROM dl WHERE id IN (1, 2) ORDER BY id")).toEqual([
      { id: 1, n: 10 },
      { id: 2, n: 10 },
    ]);
    expect(breaker.state).toBe("closed");

    // A driver whose every try deadlocks: 503 with Retry-After, and the breaker stays closed.
    const losing = guardedDriver(
      {
        dialect: "mysql",
        all: async () => [],
        run: async () => ({ rows: [], changes: 0 }),
        atomic: async () => {
          throw new Error(
            "target: x.-.primary: vttablet: Deadlock found when trying to get lock (errno 1213) (sqlstate 40001)",
          );
        },
      },
      breaker,
    );
    const refused = await rejection(losing.atomic([{ sql: "SELECT 1", params: [] }]));
    expect(refused).toBeInstanceOf(DatabaseUnavailable);
    expect((refused as DatabaseUnavailable).kind).toBe("unavailable");
    expect(breaker.state).toBe("closed");
  });

  it("hands a unit past its bound to `background`, which sees it finish once the lock it waited for is free", async () => {
    const breaker = new CircuitBreaker({ timeoutMs: 300, perStatementMs: 0, failuresToOpen: 5, openMs: 60_000 });
    const late: Array<Promise<unknown>> = [];
    const db = guardedDriver(planetscaleDriver({ url }), breaker, (work) => late.push(work));
    await db.run("CREATE TABLE IF NOT EXISTS bg (id INT PRIMARY KEY, n INT NOT NULL)");
    await db.run("DELETE FROM bg");
    await db.run("INSERT INTO bg VALUES (1, 0), (2, 0)");
    // Another transaction (a crashed client's, say) holds row 2.
    const holder = await mysql.createConnection({ ...MYSQL, database: DB });
    await holder.query("BEGIN");
    await holder.query("SELECT n FROM bg WHERE id = 2 FOR UPDATE");
    const refused = await rejection(
      db.atomic([
        { sql: "UPDATE bg SET n = n + 1 WHERE id = 1", params: [] },
        { sql: "UPDATE bg SET n = n + 1 WHERE id = 2", params: [] },
      ]),
    );
    expect(refused).toBeInstanceOf(DatabaseUnavailable);
    expect(late).toHaveLength(1);
    // The answer went out; the unit is still waiting, holding row 1. It is
    // not cut off between statements (an open transaction left holding row
    // 1 until the database kills it): when row 2 comes free it commits.
    await holder.query("ROLLBACK");
    await holder.end();
    await late[0];
    expect(await db.all("SELECT id, n FROM bg ORDER BY id")).toEqual([
      { id: 1, n: 1 },
      { id: 2, n: 1 },
    ]);
    expect(await db.atomic([{ sql: "UPDATE bg SET n = n + 1 WHERE id = 1", params: [] }])).toHaveLength(1);
  });
});
