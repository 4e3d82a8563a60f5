import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import mysql from "mysql2/promise";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { planetscaleDriver } from "../../storage/planetscale-driver";
import { applyMysqlMigrations } from "../mysql-migrations";
import { startPsdbServer } from "../psdb-server/server";

// A Worker bundle built the way a deploy would, served by Miniflare on D1 or
// on MySQL (through tools/psdb-server): what the benchmarks (bench/) and the
// replay loop (scripts/replay-backend.ts) run the platform on.

/**
 * A dry-run build is the main module plus the .wasm (onnxruntime-web) and
 * .onnx (bundled models) files it imports by relative name; Miniflare needs
 * them listed.
 */
export function bundleAssets(outdir: string): Array<{ type: "CompiledWasm" | "Data"; path: string }> {
  return readdirSync(outdir).flatMap((f): Array<{ type: "CompiledWasm" | "Data"; path: string }> => {
    if (f.endsWith(".wasm")) return [{ type: "CompiledWasm", path: join(outdir, f) }];
    if (f.endsWith(".onnx")) return [{ type: "Data", path: join(outdir, f) }];
    return [];
  });
}

/** Builds with wrangler; returns the absolute outdir (wrangler resolves it against the config's folder otherwise). */
export function bundle(config: string, outdir: string): string {
  const abs = resolve(outdir);
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--config", config, "--outdir", abs], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  return abs;
}

export interface BackendOptions {
  /** Worker vars and secrets (STORAGE and DATABASE_URL are set here). */
  vars: Record<string, string>;
  durableObjects?: Record<string, { className: string; useSQLite: boolean }>;
  /** Extra Miniflare options (logging while debugging a bench). */
  extra?: Record<string, unknown>;
}

export interface Backend {
  url: string;
  mf: Miniflare;
  close(): Promise<void>;
}

/**
 * The bundle served by Miniflare on one storage adapter, migrated: D1 (its
 * local SQLite), or MySQL through the real PlanetScale driver and
 * tools/psdb-server on a fresh MariaDB database dropped by close().
 */
export async function startBackend(adapter: "d1" | "mysql", script: string, options: BackendOptions): Promise<Backend> {
  const cleanup: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const fn of cleanup) await fn().catch((e) => console.error("cleanup:", e));
  };
  try {
    let storage: Record<string, string> = { STORAGE: "d1" };
    if (adapter === "mysql") {
      const database = `edge_bench_${Date.now()}`;
      const conn = { host: "127.0.0.1", port: 3306, user: "root", password: "" };
      const admin = await mysql.createConnection(conn);
      await admin.query(`CREATE DATABASE \`${database}\``);
      cleanup.push(async () => {
        await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
        await admin.end();
      });
      const server = await startPsdbServer({ mysql: { ...conn, database }, poolSize: 8 });
      cleanup.unshift(server.close);
      await applyMysqlMigrations(planetscaleDriver({ url: server.url }));
      storage = { STORAGE: "planetscale", DATABASE_URL: server.url };
    }
    const mf = new Miniflare(
      convertV4MiniflareOptions({
        modules: [{ type: "ESModule", path: script }, ...bundleAssets(dirname(script))],
        modulesRoot: dirname(script),
        compatibilityDate: "2026-11-01",
        compatibilityFlags: ["nodejs_compat"],
        bindings: { ...options.vars, ...storage },
        d1Databases: ["DB"],
        ...(options.durableObjects ? { durableObjects: options.durableObjects } : {}),
        queueProducers: { DOMAIN_MUTATIONS: "domain-mutations", HEALS: "heals" },
        ...options.extra,
      }),
    );
    cleanup.unshift(() => mf.dispose());
    const url = (await mf.ready).toString().replace(/\/$/, "");
    if (adapter === "d1") {
      const db = await mf.getD1Database("DB");
      for (const file of readdirSync("migrations/d1")
        .filter((f) => f.endsWith(".sql"))
        .sort()) {
        for (const sql of readFileSync(`migrations/d1/${file}`, "utf8").split("--> statement-breakpoint")) {
          if (sql.trim()) await db.prepare(sql).run();
        }
      }
    }
    return { url, mf, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * What Miniflare needs to serve a dry-run build of `config` (a wrangler.toml),
 * read by wrangler itself from that file (vars, Durable Objects, R2, queue
 * producers, module rules for the bundled .wasm): the Worker keeps gaining
 * bindings, and a hand-written copy would fall behind.
 */
export function workerOptionsOf(
  config: string,
  outdir: string,
): {
  vars: Record<string, string>;
  durableObjects: Record<string, { className: string; useSQLite: boolean }>;
  extra: Record<string, unknown>;
} {
  const w = unstable_getMiniflareWorkerOptions(config).workerOptions;
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(w.bindings ?? {})) if (typeof v === "string") vars[k] = v;
  const durableObjects: Record<string, { className: string; useSQLite: boolean }> = {};
  for (const [k, v] of Object.entries(w.durableObjects ?? {})) {
    if (typeof v === "object" && v !== null && "className" in v && typeof v.className === "string") {
      durableObjects[k] = { className: v.className, useSQLite: v.useSQLite === true };
    }
  }
  // The bundle's modules, typed by wrangler.toml's rules ("**/*.wasm" →
  // CompiledWasm, ...): Miniflare 5 takes them as a list, not as rules.
  const rules = (w.modulesRules ?? []).flatMap((r) =>
    r.include.map((glob) => ({ type: r.type, ext: glob.replace(/^\*\*\/\*/, "") })),
  );
  const modules: Array<{ type: string; path: string }> = [{ type: "ESModule", path: join(outdir, "index.js") }];
  for (const f of readdirSync(outdir)) {
    const rule = rules.find((r) => f.endsWith(r.ext));
    if (rule && f !== "index.js") modules.push({ type: rule.type, path: join(outdir, f) });
  }
  return {
    vars,
    durableObjects,
    extra: {
      scriptPath: undefined,
      modules,
      modulesRoot: outdir,
      r2Buckets: w.r2Buckets,
      queueProducers: w.queueProducers,
    },
  };
}

/**
 * The Worker as `wrangler deploy` would build it from `config` (wrangler.toml
 * by default), served by Miniflare on D1 with that config's bindings; `vars`
 * and `extra` add to them or override them. The node tests of the bundle as
 * deployed start here: one place that knows how.
 */
export async function serveAsDeployed(
  name: string,
  options: { vars?: Record<string, string>; extra?: Record<string, unknown>; config?: string } = {},
): Promise<Backend> {
  const config = options.config ?? "wrangler.toml";
  const outdir = bundle(config, `.bench/${name}`);
  const w = workerOptionsOf(config, outdir);
  return startBackend("d1", `${outdir}/index.js`, {
    vars: { ...w.vars, ...options.vars },
    durableObjects: w.durableObjects,
    extra: { ...w.extra, ...options.extra },
  });
}
