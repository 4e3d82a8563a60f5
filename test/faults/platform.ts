import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";

// The platform as a developer runs it (`wrangler dev`, the repo's
// wrangler.toml: local D1, Queues, Durable Objects), persisted to a folder of
// its own so a restart finds what the killed process left. It runs in its own
// process group: kill() is SIGKILL to wrangler and its workerd at once, the
// crash a power cut or an OOM kill would be, with no shutdown hook run.

export interface PlatformOptions {
  /** Persistence folder (D1's SQLite, Durable Objects' storage); logs go there too. */
  dir: string;
  port: number;
  /** Worker vars on top of wrangler.toml's (STORAGE, DATABASE_URL, JWT_SECRET, knobs). */
  vars: Record<string, string>;
}

export class PlatformProcess {
  readonly url: string;
  private child: ChildProcess | null = null;
  private starts = 0;

  constructor(private readonly options: PlatformOptions) {
    this.url = `http://127.0.0.1:${options.port}`;
    mkdirSync(options.dir, { recursive: true });
  }

  /** Applies the D1 migrations to this folder's database (once, before the first start). */
  migrateD1(): void {
    const out = spawnSync(
      "npx",
      ["wrangler", "d1", "migrations", "apply", "DB", "--local", "--persist-to", this.options.dir],
      { encoding: "utf8", env: { ...process.env, CI: "1" } },
    );
    if (out.status !== 0) throw new Error(`D1 migrations failed: ${out.stderr || out.stdout}`);
  }

  /** Starts `wrangler dev` and waits for /healthz. */
  async start(): Promise<void> {
    if (this.child) throw new Error("platform already running");
    this.starts += 1;
    const log = createWriteStream(join(this.options.dir, `platform-${this.starts}.log`));
    const vars = Object.entries(this.options.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
    const child = spawn(
      "npx",
      [
        "wrangler",
        "dev",
        "--port",
        String(this.options.port),
        "--ip",
        "127.0.0.1",
        "--persist-to",
        this.options.dir,
        "--test-scheduled",
        "--show-interactive-dev-session=false",
        ...vars,
      ],
      { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "1" } },
    );
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}; see ${log.path}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`wrangler dev did not become healthy in 120 s; see ${log.path}`);
  }

  /** SIGKILL to the whole process group, then waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    this.child = null;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await gone;
    // workerd is in the group too; give the kernel a moment to free the port.
    await waitPortFree(this.options.port);
  }

  /** Runs the cron handler once (`scheduled`, what the 15-minute trigger runs). */
  async cronTick(): Promise<void> {
    const res = await fetch(`${this.url}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);
    if (!res.ok) throw new Error(`scheduled: ${res.status} ${await res.text()}`);
  }
}

async function waitPortFree(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(200) });
    } catch {
      return;
    }
    await sleep(100);
  }
  throw new Error(`port ${port} still answers after the kill`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
