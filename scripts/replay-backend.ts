import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Log, LogLevel } from "miniflare";
import { type Backend, bundle, bundleAssets, startBackend } from "../tools/harness/backend";

// The main Worker (wrangler.toml) built the way a deploy would and served by
// Miniflare on D1, with every binding it declares: the Durable Objects, the
// queues (rec-logs with its consumer, so served/feedback lines reach R2), and
// the R2 buckets. Used by the replay loop (scripts/replay-loop.ts) and the
// endpoint section of bench/recommend.ts.

export const PLATFORM_SECRET = "replay-secret-0123456789abcdef-0123456789";

/** The [vars] table of wrangler.toml (flat `KEY = "value"` lines only). */
export function wranglerVars(file = "wrangler.toml"): Record<string, string> {
  const vars: Record<string, string> = {};
  let inVars = false;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (line.startsWith("[")) {
      inVars = line === "[vars]";
      continue;
    }
    const m = inVars ? /^([A-Z0-9_]+)\s*=\s*"([^"]*)"/.exec(line) : null;
    if (m) vars[m[1] as string] = m[2] as string;
  }
  return vars;
}

export interface PlatformOptions {
  /** Build output folder (default .bench/platform). */
  outdir?: string;
  /** rec-logs consumer batch timeout in seconds (wrangler.toml: 5). */
  recLogsBatchTimeout?: number;
  debug?: boolean;
  /** Vars over wrangler.toml's (experiments: REC_CANDIDATES_PER_GENERATOR, ...). */
  vars?: Record<string, string>;
  /** Serves Miniflare's inspector here (CPU profiles: bench:recommend -- --profile). */
  inspectorPort?: number;
}

export async function startPlatform(o: PlatformOptions = {}): Promise<Backend & { secret: string }> {
  const outdir = bundle("wrangler.toml", o.outdir ?? ".bench/platform");
  const backend = await startBackend("d1", `${outdir}/index.js`, {
    vars: { ...wranglerVars(), ...o.vars, JWT_SECRET: PLATFORM_SECRET },
    durableObjects: {
      TEAM_CACHE: { className: "TeamCache", useSQLite: true },
      SHARED_CHANNEL: { className: "SharedChannel", useSQLite: true },
      GATEWAY: { className: "Gateway", useSQLite: true },
      TOPIC: { className: "Topic", useSQLite: true },
      REC_STORE: { className: "RecStore", useSQLite: true },
      METRICS: { className: "Metrics", useSQLite: true },
    },
    extra: {
      modules: [{ type: "ESModule", path: join(outdir, "index.js") }, ...bundleAssets(outdir)],
      modulesRoot: outdir,
      queueProducers: { DOMAIN_MUTATIONS: "domain-mutations", HEALS: "heals", REC_LOGS: "rec-logs" },
      queueConsumers: {
        "rec-logs": { maxBatchSize: 100, maxBatchTimeout: o.recLogsBatchTimeout ?? 5, maxRetries: 5 },
      },
      r2Buckets: ["MODELS", "REC_LOG_STORE"],
      cf: false,
      ...(o.inspectorPort === undefined ? {} : { inspectorPort: o.inspectorPort }),
      log: new Log(o.debug ? LogLevel.DEBUG : LogLevel.WARN),
    },
  });
  return { ...backend, secret: PLATFORM_SECRET };
}
