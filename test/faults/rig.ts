import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { signToken } from "../../src/auth/tokens";
import { planetscaleDriver } from "../../storage/planetscale-driver";
import { applyMysqlMigrations } from "../../tools/mysql-migrations";
import { type PsdbServer, startPsdbServer } from "../../tools/psdb-server/server";
import { freePort } from "../free-port";
import { type DbView, d1View, mysqlView } from "./db-view";
import { MariaDbInstance } from "./mariadb";
import { PlatformProcess } from "./platform";

// One platform per storage adapter, in a temporary folder: on D1, wrangler
// dev with its SQLite persisted there; on MySQL, the same Worker through the
// real PlanetScale driver and tools/psdb-server (in this process) to a
// MariaDB server of the suite's own.

export const SECRET = "faults-secret-0123456789abcdef-0123456789";
export const OPERATOR = { team: "TPLATFORM", user: "UOPERATOR" };

/**
 * Knobs shortened so a repair is seen in seconds, not the production
 * minutes: a crashed heal's lease, the outbox redelivery window, and how long
 * a heal waits before verifying. The mechanisms are the deployed ones.
 */
export const KNOBS = { HEAL_LEASE_SECONDS: "5", OUTBOX_REDELIVER_AFTER_SECONDS: "5", HEAL_SETTLE_SECONDS: "2" };

export type Adapter = "d1" | "mysql";

export interface Rig {
  adapter: Adapter;
  platform: PlatformProcess;
  db: DbView;
  /** The MySQL server (its own instance); undefined on D1, which lives inside the platform process. */
  mariadb?: MariaDbInstance;
  token(team: string, user: string): Promise<string>;
  close(): Promise<void>;
}

export async function openRig(adapter: Adapter): Promise<Rig> {
  const root = mkdtempSync(join(tmpdir(), `edge-faults-${adapter}-`));
  const port = await freePort();
  const token = (team: string, user: string) => signToken({ team, user, ttlSeconds: 3600 }, SECRET);
  const vars: Record<string, string> = { JWT_SECRET: SECRET, ...KNOBS };
  let psdb: PsdbServer | undefined;
  let mariadb: MariaDbInstance | undefined;
  let db: DbView;
  if (adapter === "mysql") {
    mariadb = new MariaDbInstance(join(root, "mariadb"), await freePort());
    await mariadb.start();
    const admin = await mysql.createConnection(mariadb.connection());
    await admin.query("CREATE DATABASE IF NOT EXISTS edge");
    await admin.end();
    psdb = await startPsdbServer({ mysql: { ...mariadb.connection(), database: "edge" }, port: await freePort() });
    await applyMysqlMigrations(planetscaleDriver({ url: psdb.url }));
    vars.STORAGE = "planetscale";
    vars.DATABASE_URL = psdb.url;
    db = mysqlView(mariadb.connection("edge"));
  } else {
    db = d1View(join(root, "platform"));
  }
  const platform = new PlatformProcess({ dir: join(root, "platform"), port, vars });
  if (adapter === "d1") platform.migrateD1();
  await platform.start();
  return {
    adapter,
    platform,
    db,
    ...(mariadb ? { mariadb } : {}),
    token,
    async close() {
      await platform.kill();
      await psdb?.close();
      await mariadb?.kill();
      if (!process.env.FAULTS_KEEP) rmSync(root, { recursive: true, force: true });
      else console.log(`faults: kept ${root}`);
    },
  };
}
