// Migration 0003_binary_ids converts an existing MySQL database so ids compare
// byte for byte (docs/storage.md), and the drizzle schema declares the same
// collations the migrations produce. Runs the real driver through the psdb
// server against MariaDB, like the storage contract.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { is } from "drizzle-orm";
import { getTableConfig, MySqlTable } from "drizzle-orm/mysql-core";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Team } from "../../src/teams/model";
import { planetscaleDriver } from "../../storage/planetscale-driver";
import * as schema from "../../storage/schema/mysql";
import { type SqlDriver, UniqueViolation } from "../../storage/sql-driver";
import { sqlStore } from "../../storage/sql-store";
import { applyMysqlMigrations } from "../../tools/mysql-migrations";
import { startPsdbServer } from "../../tools/psdb-server/server";
import { rejection } from "../contract/fixtures";
import { MYSQL } from "./mysql-backend";

const MIGRATIONS = "migrations/mysql";
const CONVERSION = "0003_binary_ids.sql";
const database = `edge_collation_${Math.random().toString(36).slice(2, 10)}`;

let driver: SqlDriver;
let closeServer: (() => Promise<void>) | undefined;
let before: string;

beforeAll(async () => {
  const admin = await mysql.createConnection(MYSQL);
  await admin.query(`CREATE DATABASE \`${database}\``);
  await admin.end();
  const server = await startPsdbServer({ mysql: { ...MYSQL, database } });
  closeServer = server.close;
  driver = planetscaleDriver({ url: server.url });
  // The migrations a database had before the conversion existed.
  before = mkdtempSync(join(tmpdir(), "mysql-migrations-"));
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql") && f < CONVERSION)) {
    copyFileSync(join(MIGRATIONS, file), join(before, file));
  }
});

afterAll(async () => {
  await closeServer?.();
  if (before) rmSync(before, { recursive: true, force: true });
  const admin = await mysql.createConnection(MYSQL);
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin.end();
});

const TABLES = [
  "teams",
  "users",
  "domains",
  "channels",
  "channel_shares",
  "memberships",
  "directory_changes",
  "rec_snapshots",
  "rec_current",
  "rec_feature_rows",
] as const;

/** Every row of every table, as JSON sorted in JS (SQL ORDER BY itself changes with the collation). */
/** Columns migrations after 0003 add to the tables filled here, with the value an existing row gets (0011_conversations). */
const ADDED_LATER: Record<string, Record<string, unknown>> = { channels: { kind: "channel" } };

/** Every row of every table; with `added`, as it must read once those columns exist. */
async function dump(added: Record<string, Record<string, unknown>> = {}): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const table of TABLES) {
    const rows = await driver.all(`SELECT * FROM \`${table}\``);
    out[table] = rows
      .map((r) => JSON.stringify(Object.entries({ ...r, ...added[table] }).sort(([a], [b]) => (a < b ? -1 : 1))))
      .sort();
  }
  return out;
}

/** Collation of every string column, from the server's catalog. */
async function collations(): Promise<Map<string, string>> {
  const rows = await driver.all<{ t: string; c: string; coll: string }>(
    "SELECT TABLE_NAME AS t, COLUMN_NAME AS c, COLLATION_NAME AS coll FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL AND TABLE_NAME <> '_migrations'",
  );
  return new Map(rows.map((r) => [`${r.t}.${r.c}`, String(r.coll)]));
}

const T = "TCASEa";
const U = "UPAGEa";

describe("migration 0003_binary_ids on an existing database", () => {
  it("converts ids to byte-for-byte comparison and keeps every row as it was", async () => {
    expect(await applyMysqlMigrations(driver, before)).toEqual([
      "0000_init.sql",
      "0001_directory.sql",
      "0002_feature_store.sql",
    ]);

    // A database as it was before: one row in every table, ids of mixed case,
    // text beyond ASCII in the columns the conversion does not touch.
    const seed: Array<[string, unknown[]]> = [
      [
        "INSERT INTO teams (`id`, `name`, `plan`, `claimed_domains`, `created_at`, `healed_at`, `heal_needed_at`, `heal_lease_owner`, `heal_lease_until`, `dir_version`) VALUES (?, ?, 'pro', ?, 1, 2, 3, 'Owner-1', 4, 7)",
        [T, "Zoë's team ✓", JSON.stringify(["acme.test"])],
      ],
      [
        "INSERT INTO users (`team_id`, `id`, `email`, `domain`, `role`, `created_at`, `updated_at`, `real_name`, `display_name`, `tz`) VALUES (?, ?, 'ada@acme.test', 'acme.test', 'admin', 1, 2, 'Ada Łovelace 🎉', 'ada', 'Europe/London')",
        [T, U],
      ],
      [
        "INSERT INTO users (`team_id`, `id`, `email`, `domain`, `role`, `created_at`, `updated_at`) VALUES (?, 'U0000002', 'bob@acme.test', 'acme.test', 'member', 1, 2)",
        [T],
      ],
      ["INSERT INTO domains VALUES (?, 'acme.test', 'member', 2, 5), (?, '*', 'member', 2, 5)", [T, T]],
      [
        "INSERT INTO channels (`team_id`, `id`, `name`, `topic`, `created_at`, `updated_at`) VALUES (?, 'CCASEa', 'general', 'Café ☕', 1, 2)",
        [T],
      ],
      ["INSERT INTO channel_shares VALUES ('TOTHER1', 'CCASEa', ?)", [T]],
      ["INSERT INTO memberships VALUES (?, 'CCASEa', ?, ?, 3)", [T, U, T]],
      ["INSERT INTO directory_changes VALUES (?, 7, 'channel', 'CCASEa', ?, 9)", [T, T]],
      ["INSERT INTO rec_snapshots VALUES (?, 'Snap1', 20000, 'fixture', 2, 1)", [T]],
      ["INSERT INTO rec_current VALUES (?, 'Snap1', 1)", [T]],
      ["INSERT INTO rec_feature_rows VALUES (?, 'Snap1', 'uc', ?, '{\"n\":1}')", [T, `${U} CCASEa`]],
    ];
    for (const [sql, params] of seed) await driver.run(sql, params);

    // What the issue found: the old collation folds case, so another id finds this row...
    expect(await driver.all("SELECT `id` FROM users WHERE `team_id` = ? AND `id` = 'UPAGEA'", [T])).toEqual([
      { id: U },
    ]);
    // ...and takes its key.
    const insertUpper =
      "INSERT INTO users (`team_id`, `id`, `email`, `domain`, `role`, `created_at`, `updated_at`) VALUES (?, 'UPAGEA', 'upper@acme.test', 'acme.test', 'member', 1, 2)";
    expect(await rejection(driver.run(insertUpper, [T]))).toBeInstanceOf(UniqueViolation);

    const rowsBefore = await dump(ADDED_LATER);
    // The conversion and every migration after it.
    const from = readdirSync(MIGRATIONS)
      .filter((f) => f.endsWith(".sql") && f >= CONVERSION)
      .sort();
    expect(await applyMysqlMigrations(driver)).toEqual(from);
    expect(from[0]).toBe(CONVERSION);
    expect(await dump()).toEqual(rowsBefore);

    expect(await driver.all("SELECT `id` FROM users WHERE `team_id` = ? AND `id` = 'UPAGEA'", [T])).toEqual([]);
    await driver.run(insertUpper, [T]);
    const store = sqlStore(driver);
    expect(await store.getUser(T, U)).toMatchObject({ id: U, email: "ada@acme.test", role: "admin" });
    expect(await store.getUser(T, "UPAGEA")).toMatchObject({ id: "UPAGEA", email: "upper@acme.test" });
    const twin: Team = { id: "TCASEA", name: "twin", plan: "free", claimedDomains: [], createdAt: 1, healedAt: null };
    expect(await store.createTeam(twin)).toBe(true);
    expect(await store.getTeam(T)).toMatchObject({ name: "Zoë's team ✓", claimedDomains: ["acme.test"] });
    expect(await store.getTeam("TCASEA")).toEqual(twin);
  });

  it("can be applied again over itself (a rerun after a failure part-way)", async () => {
    const rowsBefore = await dump();
    const statements = readFileSync(join(MIGRATIONS, CONVERSION), "utf8")
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter(Boolean);
    for (const sql of statements) await driver.run(sql);
    expect(await dump()).toEqual(rowsBefore);
  });

  it("leaves the columns the drizzle schema declares utf8mb4_bin, and only those", async () => {
    const actual = await collations();
    const declared = new Map<string, boolean>();
    for (const value of Object.values(schema)) {
      if (!is(value, MySqlTable)) continue;
      const { name, columns } = getTableConfig(value);
      for (const column of columns) {
        const type = column.getSQLType();
        if (!/^((var)?char\(|(tiny|medium|long)?text\b)/i.test(type)) continue;
        declared.set(`${name}.${column.name}`, type.includes("COLLATE utf8mb4_bin"));
      }
    }
    expect([...actual.keys()].sort()).toEqual([...declared.keys()].sort());
    for (const [column, binary] of declared) {
      expect({ column, collation: actual.get(column) }).toEqual({
        column,
        collation: binary ? "utf8mb4_bin" : expect.not.stringMatching(/_bin$/),
      });
    }
  });

  it("covers every id-holding column, including ones added later", async () => {
    // Naming rule for new tables: a column called id, *_id, key, email or domain is an identifier.
    const idLike = /^(id|.+_id|key|email|domain)$/;
    const loose = [...(await collations())]
      .filter(([column, collation]) => idLike.test(column.split(".")[1] ?? "") && collation !== "utf8mb4_bin")
      .map(([column]) => column);
    expect(loose).toEqual([]);
  });
});
