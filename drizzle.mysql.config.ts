import { defineConfig } from "drizzle-kit";

export default defineConfig({ dialect: "mysql", schema: "./storage/schema/mysql.ts", out: "./migrations/mysql" });
