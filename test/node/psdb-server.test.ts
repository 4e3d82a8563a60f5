// The local PlanetScale-protocol server (tools/psdb-server) driven by the real
// @planetscale/database driver against a real MySQL/MariaDB.
import { randomBytes } from "node:crypto";
import { Client, type Connection, connect, DatabaseError } from "@planetscale/database";
import mysql, { type Connection as MysqlConnection, type RowDataPacket } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PsdbServer, type PsdbServerOptions, startPsdbServer } from "../../tools/psdb-server/server";
import { rejection } from "../contract/fixtures";
import { MYSQL } from "./mysql-backend";

const DB = `psdb_test_${randomBytes(6).toString("hex")}`;
const databases: string[] = [];
const servers: PsdbServer[] = [];
let admin: MysqlConnection;
let server: PsdbServer;
let client: Client;

async function createDatabase(name: string): Promise<string> {
  await admin.query(`CREATE DATABASE \`${name}\``);
  databases.push(name);
  return name;
}

/** A fresh database of its own, for tests that count connections to it. */
let scratchCount = 0;
async function scratchDatabase(): Promise<string> {
  scratchCount++;
  return createDatabase(`${DB}_${scratchCount}`);
}

async function start(database: string, options: Partial<PsdbServerOptions> = {}): Promise<PsdbServer> {
  const s = await startPsdbServer({ mysql: { ...MYSQL, database }, ...options });
  servers.push(s);
  return s;
}

async function adminRows<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await admin.query<RowDataPacket[]>(sql, params);
  return rows as T[];
}

/** MySQL connections currently open with `database` selected (our servers' pools). */
async function connectionsTo(database: string): Promise<number> {
  const [row] = await adminRows<{ n: number }>(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ?",
    [database],
  );
  return Number(row?.n);
}

/** Open InnoDB transactions on connections using `database`. */
async function openTransactionsIn(database: string): Promise<number> {
  // InnoDB refreshes its INFORMATION_SCHEMA transaction cache at most every 0.1 s.
  await sleep(150);
  const [row] = await adminRows<{ n: number }>(
    `SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t
       JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE p.DB = ?`,
    [database],
  );
  return Number(row?.n);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let tableCount = 0;
/** Creates a uniquely named table through the driver and returns its name. */
async function table(columns: string): Promise<string> {
  tableCount++;
  const name = `t${tableCount}`;
  await client.execute(`CREATE TABLE ${name} (${columns})`);
  return name;
}

beforeAll(async () => {
  admin = await mysql.createConnection({ ...MYSQL });
  await createDatabase(DB);
  server = await start(DB);
  client = new Client({ url: server.url });
});

afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.close()));
  if (admin) {
    for (const name of databases) await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
});

describe("psdb-server: url and protocol", () => {
  it("hands out a url the driver uses as-is, over http", () => {
    expect(server.url).toBe(`http://root:@127.0.0.1:${server.port}`);
    expect(server.port).toBeGreaterThan(0);
  });

  it("returns execute() metadata the driver computes from the response", async () => {
    const t = await table("id INT PRIMARY KEY, label VARCHAR(10)");
    await client.execute(`INSERT INTO ${t} VALUES (1, 'a'), (2, NULL)`);
    const result = await client.execute(`SELECT id, label FROM ${t} ORDER BY id`);
    expect(result.headers).toEqual(["id", "label"]);
    expect(result.types).toEqual({ id: "INT32", label: "VARCHAR" });
    expect(result.fields.map((f) => [f.name, f.type, f.table, f.orgName, f.database])).toEqual([
      ["id", "INT32", t, "id", DB],
      ["label", "VARCHAR", t, "label", DB],
    ]);
    expect(result.fields[0]?.charset).toBe(63);
    expect(result.fields[1]?.charset).not.toBe(63);
    expect(result.rows).toEqual([
      { id: 1, label: "a" },
      { id: 2, label: null },
    ]);
    expect(result.size).toBe(2);
    expect(result.rowsAffected).toBe(0);
    expect(result.insertId).toBe("0");
    expect(result.statement).toBe(`SELECT id, label FROM ${t} ORDER BY id`);
    expect(result.time).toBeGreaterThan(0);

    const empty = await client.execute(`SELECT id FROM ${t} WHERE id < 0`);
    expect(empty.rows).toEqual([]);
    expect(empty.headers).toEqual(["id"]);
    expect(empty.size).toBe(0);
  });

  it('returns arrays with { as: "array" }', async () => {
    const t = await table("id INT PRIMARY KEY, name VARCHAR(10), price DECIMAL(6,2)");
    await client.execute(`INSERT INTO ${t} VALUES (?, ?, ?), (?, ?, ?)`, [1, "x", "1.10", 2, null, null]);
    const result = await client.execute(`SELECT id, name, price FROM ${t} ORDER BY id`, null, { as: "array" });
    expect(result.headers).toEqual(["id", "name", "price"]);
    expect(result.rows).toEqual([
      [1, "x", "1.10"],
      [2, null, null],
    ]);
    expect(result.size).toBe(2);
  });

  it("answers CreateSession (conn.refresh())", async () => {
    const conn = connect({ url: server.url });
    await conn.refresh();
    const result = await conn.execute("SELECT 1 + 1 AS two");
    expect(Number(result.rows[0]?.two)).toBe(2);
  });

  it("answers bad requests with 4xx and keeps serving", async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const post = (path: string, body: string) =>
      fetch(`${base}${path}`, { method: "POST", body, headers: { "content-type": "application/json" } });
    const badJson = await post("/psdb.v1alpha1.Database/Execute", "{not json");
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { message: string } }).error.message).toMatch(/JSON/);
    expect((await post("/psdb.v1alpha1.Database/Execute", "[1]")).status).toBe(400);
    expect((await post("/psdb.v1alpha1.Database/Execute", JSON.stringify({ session: null }))).status).toBe(400);
    expect((await post("/psdb.v1alpha1.Database/Execute", JSON.stringify({ query: 1 }))).status).toBe(400);
    expect(
      (await post("/psdb.v1alpha1.Database/Execute", JSON.stringify({ query: "SELECT 1", session: "x" }))).status,
    ).toBe(400);
    expect((await post("/nope", "{}")).status).toBe(404);
    expect((await fetch(`${base}/psdb.v1alpha1.Database/Execute`)).status).toBe(405);

    const result = await client.execute("SELECT 'still up' AS s");
    expect(result.rows).toEqual([{ s: "still up" }]);
  });
});

describe("psdb-server: type round trips", () => {
  it("integers, signed and unsigned, at their limits and NULL", async () => {
    const t = await table(`k INT PRIMARY KEY,
      i8 TINYINT, u8 TINYINT UNSIGNED, i16 SMALLINT, u16 SMALLINT UNSIGNED,
      i24 MEDIUMINT, u24 MEDIUMINT UNSIGNED, i32 INT, u32 INT UNSIGNED,
      i64 BIGINT, u64 BIGINT UNSIGNED, y YEAR`);
    await client.execute(`INSERT INTO ${t} VALUES
      (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 1901),
      (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 2155),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    const result = await client.execute(`SELECT * FROM ${t} ORDER BY k`);
    expect(result.types).toEqual({
      k: "INT32",
      i8: "INT8",
      u8: "UINT8",
      i16: "INT16",
      u16: "UINT16",
      i24: "INT24",
      u24: "UINT24",
      i32: "INT32",
      u32: "UINT32",
      i64: "INT64",
      u64: "UINT64",
      y: "YEAR",
    });
    expect(result.rows).toEqual([
      {
        k: 1,
        i8: -128,
        u8: 0,
        i16: -32768,
        u16: 0,
        i24: -8388608,
        u24: 0,
        i32: -2147483648,
        u32: 0,
        i64: "-9223372036854775808",
        u64: "0",
        y: 1901,
      },
      {
        k: 2,
        i8: 127,
        u8: 255,
        i16: 32767,
        u16: 65535,
        i24: 8388607,
        u24: 16777215,
        i32: 2147483647,
        u32: 4294967295,
        i64: "9223372036854775807",
        u64: "18446744073709551615",
        y: 2155,
      },
      {
        k: 3,
        i8: null,
        u8: null,
        i16: null,
        u16: null,
        i24: null,
        u24: null,
        i32: null,
        u32: null,
        i64: null,
        u64: null,
        y: null,
      },
    ]);
    // bigint parameters survive the round trip exactly
    const big = await client.execute(`SELECT k FROM ${t} WHERE i64 = ? AND u64 = ?`, [
      9223372036854775807n,
      18446744073709551615n,
    ]);
    expect(big.rows).toEqual([{ k: 2 }]);
  });

  it("floats and exact decimals", async () => {
    const t = await table("k INT PRIMARY KEY, f FLOAT, d DOUBLE, m DECIMAL(38,9), s DECIMAL(5,2)");
    await client.execute(`INSERT INTO ${t} VALUES
      (1, 1.5, 0.1, 12345678901234567890123456789.123456789, -0.01),
      (2, -3.25, 1.7976931348623157e308, -0.000000001, 999.99),
      (3, NULL, NULL, NULL, NULL)`);
    const result = await client.execute(`SELECT f, d, m, s FROM ${t} ORDER BY k`);
    expect(result.types).toEqual({ f: "FLOAT32", d: "FLOAT64", m: "DECIMAL", s: "DECIMAL" });
    expect(result.rows).toEqual([
      { f: 1.5, d: 0.1, m: "12345678901234567890123456789.123456789", s: "-0.01" },
      { f: -3.25, d: 1.7976931348623157e308, m: "-0.000000001", s: "999.99" },
      { f: null, d: null, m: null, s: null },
    ]);
  });

  it("text: utf8mb4, empty vs NULL, CHAR, TEXT, ENUM, SET", async () => {
    const t = await table(`k INT PRIMARY KEY, v VARCHAR(50), c CHAR(4), tx TEXT,
      e ENUM('red','green'), st SET('a','b','c')`);
    const text = "héllo wörld ✓ 🎉 中文";
    const long = "x".repeat(60_000);
    await client.execute(`INSERT INTO ${t} VALUES (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)`, [
      1,
      text,
      "ab",
      long,
      "green",
      "a,c",
      2,
      "",
      "",
      "",
      "red",
      "",
      3,
      null,
      null,
      null,
      null,
      null,
    ]);
    const result = await client.execute(`SELECT v, c, tx, e, st FROM ${t} ORDER BY k`);
    expect(result.types).toEqual({ v: "VARCHAR", c: "CHAR", tx: "TEXT", e: "ENUM", st: "SET" });
    expect(result.rows).toEqual([
      { v: text, c: "ab", tx: long, e: "green", st: "a,c" },
      { v: "", c: "", tx: "", e: "red", st: "" },
      { v: null, c: null, tx: null, e: null, st: null },
    ]);
    // quotes, backslashes and control characters survive the driver's escaping
    const tricky = `it's "quoted" \\ back\\slash\n\ttab \0 nul`;
    const echoed = await client.execute("SELECT ? AS s", [tricky]);
    expect(echoed.rows).toEqual([{ s: tricky }]);
  });

  it("binary data: VARBINARY, BINARY, BLOB, BIT", async () => {
    const t = await table("k INT PRIMARY KEY, vb VARBINARY(300), b BINARY(4), bl BLOB, bt BIT(10)");
    const all = new Uint8Array(256).map((_, i) => i);
    await client.execute(`INSERT INTO ${t} VALUES (?, ?, ?, ?, b'1000000001'), (?, ?, ?, ?, NULL), (?, ?, ?, ?, ?)`, [
      1,
      all,
      new Uint8Array([0xde, 0xad]),
      new Uint8Array([0xff, 0x00, 0xc3, 0x28]),
      2,
      new Uint8Array([]),
      new Uint8Array([0, 0, 0, 0]),
      new Uint8Array([]),
      3,
      null,
      null,
      null,
      null,
    ]);
    const result = await client.execute(`SELECT vb, b, bl, bt FROM ${t} ORDER BY k`);
    expect(result.types).toEqual({ vb: "VARBINARY", b: "BINARY", bl: "BLOB", bt: "BIT" });
    for (const f of result.fields) expect(f.charset).toBe(63);
    const [r1, r2, r3] = result.rows;
    expect(r1?.vb).toBeInstanceOf(Uint8Array);
    expect(Array.from(r1?.vb as Uint8Array)).toEqual(Array.from(all));
    expect(Array.from(r1?.b as Uint8Array)).toEqual([0xde, 0xad, 0, 0]); // BINARY pads with zero bytes
    expect(Array.from(r1?.bl as Uint8Array)).toEqual([0xff, 0x00, 0xc3, 0x28]); // not valid UTF-8, kept as bytes
    expect(Array.from(r1?.bt as Uint8Array)).toEqual([0b10, 0b00000001]);
    expect(Array.from(r2?.vb as Uint8Array)).toEqual([]);
    expect(Array.from(r2?.b as Uint8Array)).toEqual([0, 0, 0, 0]);
    expect(Array.from(r2?.bl as Uint8Array)).toEqual([]);
    expect(r2?.bt).toBeNull();
    expect(r3).toEqual({ vb: null, b: null, bl: null, bt: null });
  });

  it("text in a _bin collation is typed binary, as Vitess types it, and still decodes to strings", async () => {
    // The ids' columns (storage/schema/mysql.ts): the server sets BINARY_FLAG on them,
    // Vitess turns that into VARBINARY/BINARY/BLOB, the charset stays text.
    const t = await table(`k INT PRIMARY KEY, id VARCHAR(40) COLLATE utf8mb4_bin NOT NULL UNIQUE,
      a VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin, c CHAR(4) COLLATE utf8mb4_bin, tx TEXT COLLATE utf8mb4_bin`);
    const text = "héllo ✓ 🎉";
    await client.execute(`INSERT INTO ${t} VALUES (1, 'UPAGEa', 'Aa', 'ab', ?), (2, 'UPAGEA', NULL, NULL, NULL)`, [
      text,
    ]);
    const result = await client.execute(`SELECT id, a, c, tx FROM ${t} ORDER BY k`);
    expect(result.types).toEqual({ id: "VARBINARY", a: "VARBINARY", c: "BINARY", tx: "BLOB" });
    for (const f of result.fields) expect(f.charset).not.toBe(63);
    expect(result.rows).toEqual([
      { id: "UPAGEa", a: "Aa", c: "ab", tx: text },
      { id: "UPAGEA", a: null, c: null, tx: null },
    ]);
    const one = await client.execute(`SELECT id FROM ${t} WHERE id = ?`, ["UPAGEA"]);
    expect(one.rows).toEqual([{ id: "UPAGEA" }]);
  });

  it("dates and times come back as MySQL's strings, in UTC", async () => {
    const t = await table("k INT PRIMARY KEY, d DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, y YEAR");
    await client.execute(
      `INSERT INTO ${t} VALUES (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?), (3, NULL, NULL, NULL, NULL, NULL)`,
      [
        1,
        "2024-02-29",
        "2024-02-29 23:59:58.123456",
        new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
        "-838:59:59",
        2024,
        2,
        "1000-01-01",
        "9999-12-31 23:59:59",
        "1970-01-01 00:00:01",
        "12:34:56",
        1901,
      ],
    );
    const result = await client.execute(`SELECT d, dt, ts, tm, y, UNIX_TIMESTAMP(ts) AS epoch FROM ${t} ORDER BY k`);
    expect(result.types).toMatchObject({ d: "DATE", dt: "DATETIME", ts: "TIMESTAMP", tm: "TIME", y: "YEAR" });
    expect(result.rows.map(({ epoch: _, ...rest }) => rest)).toEqual([
      { d: "2024-02-29", dt: "2024-02-29 23:59:58.123456", ts: "2024-01-02 03:04:05.678", tm: "-838:59:59", y: 2024 },
      { d: "1000-01-01", dt: "9999-12-31 23:59:59.000000", ts: "1970-01-01 00:00:01.000", tm: "12:34:56", y: 1901 },
      { d: null, dt: null, ts: null, tm: null, y: null },
    ]);
    // The session runs in UTC like PlanetScale: the TIMESTAMP string is the UTC instant.
    expect(Number(result.rows[0]?.epoch)).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 678) / 1000);
    const tz = await client.execute("SELECT @@session.time_zone AS tz");
    expect(tz.rows).toEqual([{ tz: "+00:00" }]);
  });

  it("JSON columns and JSON expressions are parsed by the driver", async () => {
    const t = await table("k INT PRIMARY KEY, j JSON");
    const doc = { name: "zoë ✓", tags: ["a", "b"], nested: { n: 1.5, ok: true, none: null } };
    await client.execute(`INSERT INTO ${t} VALUES (?, ?), (?, ?), (?, ?), (?, ?)`, [
      1,
      JSON.stringify(doc),
      2,
      "[1, 2, 3]",
      3,
      '"just a string"',
      4,
      null,
    ]);
    const result = await client.execute(`SELECT j FROM ${t} ORDER BY k`);
    expect(result.types).toEqual({ j: "JSON" });
    expect(result.rows).toEqual([{ j: doc }, { j: [1, 2, 3] }, { j: "just a string" }, { j: null }]);
    const expr = await client.execute("SELECT JSON_OBJECT('a', 1, 'b', JSON_ARRAY(true, NULL)) AS o");
    expect(expr.types).toEqual({ o: "JSON" });
    expect(expr.rows).toEqual([{ o: { a: 1, b: [true, null] } }]);
  });

  it("NULL literals are NULL_TYPE", async () => {
    const result = await client.execute("SELECT NULL AS n", null, { as: "array" });
    expect(result.types).toEqual({ n: "NULL_TYPE" });
    expect(result.rows).toEqual([[null]]);
  });
});

describe("psdb-server: statements without rows", () => {
  it("INSERT/UPDATE/DELETE report rowsAffected (number) and insertId (string)", async () => {
    const t = await table("id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, v INT");
    const one = await client.execute(`INSERT INTO ${t} (v) VALUES (?)`, [10]);
    expect(one.rowsAffected).toBe(1);
    expect(one.insertId).toBe("1");
    expect(one.rows).toEqual([]);
    expect(one.headers).toEqual([]);
    const three = await client.execute(`INSERT INTO ${t} (v) VALUES (20), (30), (40)`);
    expect(three.rowsAffected).toBe(3);
    expect(three.insertId).toBe("2"); // MySQL: the first id of a multi-row insert
    const updated = await client.execute(`UPDATE ${t} SET v = v + 1 WHERE v >= 20`);
    expect(updated.rowsAffected).toBe(3);
    expect(updated.insertId).toBe("0");
    const unchanged = await client.execute(`UPDATE ${t} SET v = 10 WHERE v = 10`);
    expect(unchanged.rowsAffected).toBe(0); // changed rows, not matched rows
    const deleted = await client.execute(`DELETE FROM ${t} WHERE v > 30`);
    expect(deleted.rowsAffected).toBe(2);
    const ddl = await client.execute(`ALTER TABLE ${t} AUTO_INCREMENT = 9007199254740993`);
    expect(ddl.rowsAffected).toBe(0);
    const big = await client.execute(`INSERT INTO ${t} (v) VALUES (1)`);
    expect(big.insertId).toBe("9007199254740993"); // beyond 2^53, exact
  });

  it("INSERT ... ON DUPLICATE KEY UPDATE: 1 insert, 2 update, 0 no change", async () => {
    const t = await table("id INT PRIMARY KEY, n INT NOT NULL");
    const upsert = (n: number) =>
      client.execute(`INSERT INTO ${t} (id, n) VALUES (1, ?) ON DUPLICATE KEY UPDATE n = VALUES(n)`, [n]);
    expect((await upsert(1)).rowsAffected).toBe(1);
    expect((await upsert(2)).rowsAffected).toBe(2);
    expect((await upsert(2)).rowsAffected).toBe(0);
    const rows = await client.execute(`SELECT id, n FROM ${t}`);
    expect(rows.rows).toEqual([{ id: 1, n: 2 }]);
  });
});

describe("psdb-server: errors", () => {
  it("a duplicate key is a DatabaseError naming the entry and errno 1062", async () => {
    const t = await table("id INT PRIMARY KEY, email VARCHAR(50) UNIQUE");
    await client.execute(`INSERT INTO ${t} VALUES (1, 'a@example.com')`);
    const error = await rejection(client.execute(`INSERT INTO ${t} VALUES (?, ?)`, [2, "a@example.com"]));
    expect(error).toBeInstanceOf(DatabaseError);
    const e = error as DatabaseError;
    expect(e.message).toContain("Duplicate entry 'a@example.com' for key");
    expect(e.message).toContain("(errno 1062)");
    expect(e.message).toContain("(sqlstate 23000)");
    expect(e.message).toContain("code = AlreadyExists");
    expect(e.status).toBe(400);
    expect(e.body.code).toBe("ALREADY_EXISTS");
    expect(e.body.message).toBe(e.message);
    // nothing was written, and the server carries on
    const count = await client.execute(`SELECT COUNT(*) AS n FROM ${t}`);
    expect(count.rows).toEqual([{ n: "1" }]);
  });

  it("a syntax error or unknown table is a DatabaseError with MySQL's text and errno", async () => {
    const syntax = (await rejection(client.execute("SELEC 1"))) as DatabaseError;
    expect(syntax).toBeInstanceOf(DatabaseError);
    expect(syntax.message).toContain("You have an error in your SQL syntax");
    expect(syntax.message).toContain("(errno 1064)");
    expect(syntax.message).toContain('Sql: "SELEC 1"');
    expect(syntax.body.code).toBe("INVALID_ARGUMENT");
    const missing = (await rejection(client.execute("SELECT * FROM no_such_table"))) as DatabaseError;
    expect(missing).toBeInstanceOf(DatabaseError);
    expect(missing.message).toMatch(/Table '.*no_such_table' doesn't exist \(errno 1146\)/);
    expect(missing.body.code).toBe("NOT_FOUND");
  });

  it("wrong credentials get 401 when a password is configured", async () => {
    const secured = await start(DB, { username: "app", password: "s3cr:et/é" });
    expect(secured.url).toBe(`http://app:${encodeURIComponent("s3cr:et/é")}@127.0.0.1:${secured.port}`);
    const ok = await connect({ url: secured.url }).execute("SELECT 'in' AS s");
    expect(ok.rows).toEqual([{ s: "in" }]);

    const wrong = (await rejection(
      connect({ url: `http://app:nope@127.0.0.1:${secured.port}` }).execute("SELECT 1"),
    )) as DatabaseError;
    expect(wrong).toBeInstanceOf(DatabaseError);
    expect(wrong.status).toBe(401);
    expect(wrong.message).toMatch(/access denied/);
    expect(wrong.body.code).toBe("UNAUTHENTICATED");
    const wrongUser = (await rejection(
      connect({ url: secured.url.replace("app:", "root:") }).transaction((tx) => tx.execute("SELECT 1")),
    )) as DatabaseError;
    expect(wrongUser.status).toBe(401);
    const noAuth = await fetch(`http://127.0.0.1:${secured.port}/psdb.v1alpha1.Database/Execute`, {
      method: "POST",
      body: JSON.stringify({ query: "SELECT 1" }),
    });
    expect(noAuth.status).toBe(401);
  });
});

describe("psdb-server: transactions", () => {
  it("commit makes the writes visible and returns the callback's value", async () => {
    const t = await table("id INT PRIMARY KEY");
    const value = await client.transaction(async (tx) => {
      await tx.execute(`INSERT INTO ${t} VALUES (1)`);
      await tx.execute(`INSERT INTO ${t} VALUES (2)`);
      const inside = await tx.execute(`SELECT COUNT(*) AS n FROM ${t}`);
      return inside.rows[0]?.n;
    });
    expect(value).toBe("2");
    const outside = await client.execute(`SELECT id FROM ${t} ORDER BY id`);
    expect(outside.rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it("a throwing callback rolls back and rethrows its own error", async () => {
    const t = await table("id INT PRIMARY KEY");
    const boom = new Error("boom");
    const error = await rejection(
      client.transaction(async (tx) => {
        await tx.execute(`INSERT INTO ${t} VALUES (1)`);
        throw boom;
      }),
    );
    expect(error).toBe(boom);
    expect((await client.execute(`SELECT COUNT(*) AS n FROM ${t}`)).rows).toEqual([{ n: "0" }]);
  });

  it("an SQL error inside rolls back the earlier statements", async () => {
    const t = await table("id INT PRIMARY KEY");
    await client.execute(`INSERT INTO ${t} VALUES (1)`);
    const error = await rejection(
      client.transaction(async (tx) => {
        await tx.execute(`INSERT INTO ${t} VALUES (2)`);
        await tx.execute(`INSERT INTO ${t} VALUES (1)`);
      }),
    );
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).message).toContain("Duplicate entry");
    expect((await client.execute(`SELECT id FROM ${t}`)).rows).toEqual([{ id: 1 }]);
  });

  it("uncommitted writes are invisible to other connections", async () => {
    const t = await table("id INT PRIMARY KEY");
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let inserted!: () => void;
    const insertedSignal = new Promise<void>((r) => {
      inserted = r;
    });
    const tx = client.transaction(async (tx) => {
      await tx.execute(`INSERT INTO ${t} VALUES (1)`);
      inserted();
      await gate;
      return (await tx.execute(`SELECT COUNT(*) AS n FROM ${t}`)).rows[0]?.n;
    });
    await insertedSignal;
    const other = connect({ url: server.url });
    expect((await other.execute(`SELECT COUNT(*) AS n FROM ${t}`)).rows).toEqual([{ n: "0" }]);
    expect((await client.execute(`SELECT COUNT(*) AS n FROM ${t}`)).rows).toEqual([{ n: "0" }]);
    release();
    expect(await tx).toBe("1");
    expect((await other.execute(`SELECT COUNT(*) AS n FROM ${t}`)).rows).toEqual([{ n: "1" }]);
  });

  it("concurrent transactions serialise on row locks (SELECT ... FOR UPDATE)", async () => {
    const t = await table("id INT PRIMARY KEY, n INT NOT NULL");
    await client.execute(`INSERT INTO ${t} VALUES (1, 0)`);
    const clients = Array.from({ length: 3 }, () => new Client({ url: server.url }));
    await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        clients[i % clients.length]?.transaction(async (tx) => {
          const row = await tx.execute(`SELECT n FROM ${t} WHERE id = 1 FOR UPDATE`);
          const n = row.rows[0]?.n as number;
          await tx.execute(`UPDATE ${t} SET n = ? WHERE id = 1`, [n + 1]);
        }),
      ),
    );
    expect((await client.execute(`SELECT n FROM ${t}`)).rows).toEqual([{ n: 24 }]);
  });

  it("an idle transaction is rolled back; later statements in it fail instead of running outside it", async () => {
    const database = await scratchDatabase();
    const s = await start(database, { sessionIdleMs: 300 });
    const conn = connect({ url: s.url });
    await conn.execute("CREATE TABLE t (id INT PRIMARY KEY)");
    await conn.execute("BEGIN");
    await conn.execute("INSERT INTO t VALUES (1)");
    expect(await openTransactionsIn(database)).toBe(1);
    await sleep(800);
    await waitFor(async () => (await openTransactionsIn(database)) === 0);

    const late = (await rejection(conn.execute("INSERT INTO t VALUES (2)"))) as DatabaseError;
    expect(late).toBeInstanceOf(DatabaseError);
    expect(late.message).toContain("rolled back after 300 ms idle");
    expect(late.body.code).toBe("ABORTED");
    const commit = (await rejection(conn.execute("COMMIT"))) as DatabaseError;
    expect(commit).toBeInstanceOf(DatabaseError);
    const other = connect({ url: s.url });
    expect((await other.execute("SELECT COUNT(*) AS n FROM t")).rows).toEqual([{ n: "0" }]);

    // ROLLBACK resets the session; the connection is usable again (autocommit).
    await conn.execute("ROLLBACK");
    await conn.execute("INSERT INTO t VALUES (3)");
    expect((await other.execute("SELECT id FROM t")).rows).toEqual([{ id: 3 }]);
  });

  it("a transaction open past maxTransactionMs is rolled back and its locks freed, even mid-statement", async () => {
    const database = await scratchDatabase();
    const s = await start(database, { maxTransactionMs: 600 });
    const conn = connect({ url: s.url });
    await conn.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL)");
    await conn.execute("INSERT INTO t VALUES (1, 0), (2, 0)");
    // A client that dies inside a transaction: it took a row lock and never comes back.
    const dead = connect({ url: s.url });
    await dead.execute("BEGIN");
    await dead.execute("UPDATE t SET n = 1 WHERE id = 1");
    const t0 = Date.now();
    await conn.execute("UPDATE t SET n = 2 WHERE id = 1"); // waits for the lock, freed at the limit
    expect(Date.now() - t0).toBeLessThan(3_000);
    const late = (await rejection(dead.execute("COMMIT"))) as DatabaseError;
    expect(late.message).toContain("killed: the transaction ran past 600 ms");

    // A statement stuck behind a lock held outside the server: killed while it runs.
    const holder = await mysql.createConnection({ ...MYSQL, database });
    await holder.query("BEGIN");
    await holder.query("UPDATE t SET n = 5 WHERE id = 2");
    const blocked = connect({ url: s.url });
    await blocked.execute("BEGIN");
    const t1 = Date.now();
    expect(await rejection(blocked.execute("UPDATE t SET n = 6 WHERE id = 2"))).toBeInstanceOf(DatabaseError);
    expect(Date.now() - t1).toBeLessThan(3_000);
    await holder.query("COMMIT");
    await holder.end();
    await waitFor(async () => (await openTransactionsIn(database)) === 0);
    expect((await conn.execute("SELECT id, n FROM t ORDER BY id")).rows).toEqual([
      { id: 1, n: 2 },
      { id: 2, n: 5 },
    ]);
  });

  it("a statement carrying an unknown session id errors and does not run", async () => {
    const t = await table("id INT PRIMARY KEY");
    const conn = connect({ url: server.url });
    (conn as unknown as { session: unknown }).session = { inTransaction: true, id: "not-a-session" };
    const error = (await rejection(conn.execute(`INSERT INTO ${t} VALUES (1)`))) as DatabaseError;
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.message).toContain("transaction not-a-session: ended (unknown session");
    expect((await client.execute(`SELECT COUNT(*) AS n FROM ${t}`)).rows).toEqual([{ n: "0" }]);
  });
});

describe("psdb-server: concurrency and connection use", () => {
  it("200 concurrent inserts from several clients all land", async () => {
    const t = await table("id INT PRIMARY KEY, who INT NOT NULL");
    const clients: Array<Client | Connection> = [
      new Client({ url: server.url }),
      new Client({ url: server.url }),
      connect({ url: server.url }),
      connect({ url: server.url }),
    ];
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        clients[i % clients.length]?.execute(`INSERT INTO ${t} VALUES (?, ?)`, [i, i % clients.length]),
      ),
    );
    expect(results.every((r) => r?.rowsAffected === 1)).toBe(true);
    const count = await client.execute(`SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d, SUM(id) AS s FROM ${t}`);
    expect(count.rows).toEqual([{ n: "200", d: "200", s: String((199 * 200) / 2) }]);
  });

  it("non-transactional executes stay on the pool; finished transactions release their connection", async () => {
    const database = await scratchDatabase();
    const s = await start(database, { poolSize: 3 });
    const conn = connect({ url: s.url }); // one driver Connection: it echoes every session back
    await conn.execute("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)");
    for (let i = 0; i < 300; i++) await conn.execute("INSERT INTO t (v) VALUES (?)", [i]);
    const burst = new Client({ url: s.url });
    for (let round = 0; round < 5; round++) {
      await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => burst.execute("SELECT v FROM t WHERE id = ?", [i + 1])),
        ...Array.from({ length: 20 }, () => conn.execute("SELECT COUNT(*) FROM t")),
      ]);
    }
    expect(await connectionsTo(database)).toBeLessThanOrEqual(3);
    expect(await openTransactionsIn(database)).toBe(0);

    for (let i = 0; i < 30; i++) {
      await burst.transaction(async (tx) => {
        await tx.execute("INSERT INTO t (v) VALUES (?)", [i]);
      });
    }
    // 3 pooled + 1 reused transaction connection; leaked sessions would show up as ~30
    expect(await connectionsTo(database)).toBeLessThanOrEqual(4);
    expect(await openTransactionsIn(database)).toBe(0);

    // BEGIN ... COMMIT by hand on the shared Connection also releases
    await conn.execute("BEGIN");
    await conn.execute("INSERT INTO t (v) VALUES (-1)");
    await conn.execute("COMMIT");
    for (let i = 0; i < 20; i++) await conn.execute("SELECT 1");
    expect(await openTransactionsIn(database)).toBe(0);
    expect(await connectionsTo(database)).toBeLessThanOrEqual(4);
    expect((await conn.execute("SELECT COUNT(*) AS n FROM t")).rows).toEqual([{ n: "331" }]);
  });

  it("close() ends the HTTP server, the pools and pinned transactions", async () => {
    const database = await scratchDatabase();
    const s = await start(database, { poolSize: 2 });
    const conn = connect({ url: s.url });
    await conn.execute("CREATE TABLE t (id INT PRIMARY KEY)");
    await conn.execute("BEGIN");
    await conn.execute("INSERT INTO t VALUES (1)");
    expect(await openTransactionsIn(database)).toBe(1);
    expect(await connectionsTo(database)).toBeGreaterThanOrEqual(2);
    await s.close();
    await waitFor(async () => (await connectionsTo(database)) === 0);
    expect((await adminRows<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${database}\`.t`))[0]?.n).toBe(0);
    const after = await rejection(connect({ url: s.url }).execute("SELECT 1"));
    expect(after).toBeInstanceOf(Error);
    await s.close(); // idempotent
  });
});
