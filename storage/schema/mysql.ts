import { bigint, int, mysqlTable, primaryKey, text, tinyint, uniqueIndex, varchar } from "drizzle-orm/mysql-core";

// MySQL / PlanetScale (Vitess) schema. Team-scoped tables lead their primary
// key with team_id: it is the sharding key, so one request touches one shard.

export const teams = mysqlTable("teams", {
  id: varchar("id", { length: 40 }).primaryKey(),
  name: varchar("name", { length: 200 }).notNull(),
  plan: varchar("plan", { length: 16 }).notNull(),
  claimedDomains: text("claimed_domains").notNull(),
  createdAt: bigint("created_at", { mode: "number" }).notNull(),
  healedAt: bigint("healed_at", { mode: "number" }),
  healNeededAt: bigint("heal_needed_at", { mode: "number" }),
  healLeaseOwner: varchar("heal_lease_owner", { length: 64 }),
  healLeaseUntil: bigint("heal_lease_until", { mode: "number" }),
});

export const users = mysqlTable(
  "users",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    id: varchar("id", { length: 40 }).notNull(),
    email: varchar("email", { length: 254 }).notNull(),
    domain: varchar("domain", { length: 253 }).notNull(),
    role: varchar("role", { length: 8 }).notNull(),
    deactivated: tinyint("deactivated").notNull().default(0),
    version: int("version").notNull().default(1),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.id] }), uniqueIndex("users_team_email").on(t.teamId, t.email)],
);

export const domains = mysqlTable(
  "domains",
  {
    teamId: varchar("team_id", { length: 40 }).notNull(),
    domain: varchar("domain", { length: 253 }).notNull(),
    role: varchar("role", { length: 8 }).notNull(),
    count: int("count").notNull().default(0),
    dateUpdate: bigint("date_update", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.domain, t.role] })],
);
