import { sql } from "drizzle-orm";
import { integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// D1 (SQLite) schema. Keep column names and meaning identical to ./mysql.ts:
// storage/sql-store.ts runs the same SQL on both.

export const teams = sqliteTable("teams", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  plan: text("plan").notNull(),
  claimedDomains: text("claimed_domains").notNull(),
  createdAt: integer("created_at").notNull(),
  healedAt: integer("healed_at"),
  healNeededAt: integer("heal_needed_at"),
  healLeaseOwner: text("heal_lease_owner"),
  healLeaseUntil: integer("heal_lease_until"),
});

export const users = sqliteTable(
  "users",
  {
    teamId: text("team_id").notNull(),
    id: text("id").notNull(),
    email: text("email").notNull(),
    domain: text("domain").notNull(),
    role: text("role").notNull(),
    deactivated: integer("deactivated").notNull().default(0),
    version: integer("version").notNull().default(1),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), uniqueIndex("users_team_email").on(t.teamId, t.email)],
);

export const domains = sqliteTable(
  "domains",
  {
    teamId: text("team_id").notNull(),
    domain: text("domain").notNull(),
    role: text("role").notNull(),
    count: integer("count").notNull().default(sql`0`),
    dateUpdate: integer("date_update").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.domain, t.role] })],
);
