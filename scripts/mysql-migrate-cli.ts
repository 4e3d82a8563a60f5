import { planetscaleDriver } from "../storage/planetscale-driver";
import { applyMysqlMigrations } from "../tools/mysql-migrations";

// npm run db:migrate:mysql -- <DATABASE_URL>   (a PlanetScale URL, or the local psdb server's)
const url = process.argv[2] ?? process.env.DATABASE_URL;
if (!url) {
  console.error("usage: npm run db:migrate:mysql -- <DATABASE_URL>");
  process.exit(2);
}
const applied = await applyMysqlMigrations(planetscaleDriver({ url }));
console.log(applied.length ? `applied: ${applied.join(", ")}` : "up to date");
