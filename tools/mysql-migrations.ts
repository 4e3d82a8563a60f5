import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SqlDriver } from "../storage/sql-driver";

// Applies migrations/mysql/*.sql (drizzle-kit output, statements separated by
// "--> statement-breakpoint") once each, through any SqlDriver: the same
// PlanetScale driver the Worker uses.

export async function applyMysqlMigrations(driver: SqlDriver, dir = "migrations/mysql"): Promise<string[]> {
  await driver.run(
    "CREATE TABLE IF NOT EXISTS `_migrations` (`name` varchar(200) NOT NULL PRIMARY KEY, `applied_at` bigint NOT NULL)",
  );
  const done = new Set((await driver.all<{ name: string }>("SELECT `name` FROM `_migrations`")).map((r) => r.name));
  const applied: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
    if (done.has(file)) continue;
    const statements = readFileSync(join(dir, file), "utf8")
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter(Boolean);
    for (const sql of statements) await driver.run(sql);
    await driver.run("INSERT INTO `_migrations` (`name`, `applied_at`) VALUES (?, ?)", [file, Date.now()]);
    applied.push(file);
  }
  return applied;
}
