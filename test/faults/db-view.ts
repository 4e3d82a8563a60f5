import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import mysql from "mysql2/promise";

// The fault suite's own look at the database, past the platform: what it
// acknowledged must be here, and the derived rows (counts, outbox, change log)
// must agree with it. Plain SQL that reads the same on SQLite and MySQL.

export interface DbView {
  all<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Writes behind the platform's back (to make counts drift before a heal); only while it is down on D1. */
  run(sql: string, params?: unknown[]): Promise<void>;
}

interface SqliteStatement {
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): unknown;
}
interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  close(): void;
}
type SqliteModule = { DatabaseSync: new (path: string, options?: { readOnly?: boolean }) => SqliteDatabase };

/**
 * The D1 database wrangler dev persisted under `dir`: Miniflare keeps it as
 * one SQLite file per database. Opened per call (read-only for reads) so a
 * read while workerd writes sees committed data only.
 */
export function d1View(dir: string): DbView {
  // node:sqlite is Node 22.5+; the npm scripts run on the project's Node 24.
  const { DatabaseSync } = createRequire(import.meta.url)("node:sqlite") as SqliteModule;
  const file = () => {
    const folder = join(dir, "v3", "d1", "miniflare-D1DatabaseObject");
    const found = readdirSync(folder).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
    if (found.length !== 1) throw new Error(`expected one D1 database in ${folder}, found ${found.join(", ")}`);
    return join(folder, found[0] as string);
  };
  const open = <T>(readOnly: boolean, fn: (db: SqliteDatabase) => T): T => {
    const db = new DatabaseSync(file(), { readOnly });
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    async all<T>(sql: string, params: unknown[] = []) {
      return open(true, (db) => db.prepare(sql).all(...params) as T[]);
    },
    async run(sql: string, params: unknown[] = []) {
      open(false, (db) => db.prepare(sql).run(...params));
    },
  };
}

/** The MySQL database, over a fresh connection per call (the server may have been killed in between). */
export function mysqlView(connection: mysql.ConnectionOptions): DbView {
  const withConn = async <T>(fn: (c: mysql.Connection) => Promise<T>): Promise<T> => {
    const conn = await mysql.createConnection(connection);
    try {
      return await fn(conn);
    } finally {
      await conn.end();
    }
  };
  return {
    all<T>(sql: string, params: unknown[] = []) {
      return withConn(async (c) => (await c.query(sql, params))[0] as T[]);
    },
    async run(sql: string, params: unknown[] = []) {
      await withConn((c) => c.query(sql, params));
    },
  };
}
