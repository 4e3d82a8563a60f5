import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { sleep } from "./platform";

// A MariaDB server of the fault suite's own (its own data folder and port),
// so killing it mid-write hurts nobody else's tests. kill() is SIGKILL: no
// flush, no clean shutdown; InnoDB's redo log is what brings committed
// transactions back on the next start.

export class MariaDbInstance {
  private child: ChildProcess | null = null;
  private starts = 0;
  readonly dataDir: string;

  constructor(
    private readonly dir: string,
    readonly port: number,
  ) {
    this.dataDir = join(dir, "data");
  }

  async start(): Promise<void> {
    if (this.child) throw new Error("mariadb already running");
    mkdirSync(this.dir, { recursive: true });
    if (!existsSync(join(this.dataDir, "mysql"))) {
      const init = spawnSync(
        "mariadb-install-db",
        [
          "--no-defaults",
          `--datadir=${this.dataDir}`,
          "--user=root",
          "--skip-test-db",
          "--auth-root-authentication-method=normal",
        ],
        { encoding: "utf8" },
      );
      if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr || init.stdout}`);
    }
    this.starts += 1;
    const log = createWriteStream(join(this.dir, `mariadb-${this.starts}.log`));
    const child = spawn(
      "/usr/sbin/mariadbd",
      [
        "--no-defaults",
        `--datadir=${this.dataDir}`,
        `--port=${this.port}`,
        "--bind-address=127.0.0.1",
        `--socket=${join(this.dir, "mysqld.sock")}`,
        `--pid-file=${join(this.dir, "mysqld.pid")}`,
        "--user=root",
        "--skip-grant-tables",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=64M",
        "--max-connections=500",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`mariadbd exited with ${child.exitCode}; see ${log.path}`);
      try {
        const conn = await mysql.createConnection(this.connection());
        await conn.end();
        return;
      } catch {
        await sleep(200);
      }
    }
    throw new Error(`mariadbd did not accept connections in 60 s; see ${log.path}`);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    child.kill("SIGKILL");
    await gone;
  }

  connection(database?: string) {
    return { host: "127.0.0.1", port: this.port, user: "root", password: "", ...(database ? { database } : {}) };
  }
}
