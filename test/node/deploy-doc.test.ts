import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";

// docs/deploy.md takes a Workers user from an empty account to a working
// deployment, so it must name every binding wrangler.toml declares (read by
// wrangler itself, as `wrangler deploy` reads it), every resource to create,
// every var and every secret. A binding added without its line here fails.

const config = unstable_readConfig({ config: "wrangler.toml" });
const doc = readFileSync("docs/deploy.md", "utf8");
const envDeclarations = readFileSync("workers/env.d.ts", "utf8");

/** `name` appears in the doc as code (`name`), the way the doc writes every binding and resource. */
const named = (name: string) => doc.includes(`\`${name}\``) || doc.includes(`\`${name},`) || doc.includes(` ${name} `);

function everyName(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const d of config.d1_databases) out.push(["D1 binding", d.binding], ["D1 database", d.database_name ?? ""]);
  for (const r of config.r2_buckets) out.push(["R2 binding", r.binding], ["R2 bucket", r.bucket_name ?? ""]);
  for (const p of config.queues.producers ?? []) out.push(["queue binding", p.binding], ["queue", p.queue]);
  for (const c of config.queues.consumers ?? []) {
    out.push(["consumed queue", c.queue]);
    if (c.dead_letter_queue) out.push(["dead-letter queue", c.dead_letter_queue]);
  }
  for (const b of config.durable_objects.bindings)
    out.push(["Durable Object binding", b.name], ["class", b.class_name]);
  for (const m of config.migrations) out.push(["Durable Object migration", m.tag]);
  for (const r of config.ratelimits ?? []) out.push(["rate limit", r.name], ["rate limit namespace", r.namespace_id]);
  for (const a of config.analytics_engine_datasets)
    out.push(["Analytics Engine binding", a.binding], ["dataset", a.dataset ?? ""]);
  if (config.assets?.directory) out.push(["assets directory", config.assets.directory]);
  for (const s of config.secrets?.required ?? []) out.push(["required secret", s]);
  for (const v of Object.keys(config.vars)) out.push(["var", v]);
  for (const m of envDeclarations.matchAll(/^\s+([A-Z][A-Z0-9_]+)\??:/gm)) out.push(["optional secret", m[1] ?? ""]);
  return out;
}

describe("docs/deploy.md against wrangler.toml", () => {
  it("names every binding, resource, migration, var and secret", () => {
    const all = everyName();
    // The config does declare these kinds (a reader returning nothing would pass vacuously).
    for (const kind of [
      "D1 binding",
      "R2 bucket",
      "dead-letter queue",
      "Durable Object migration",
      "rate limit",
      "dataset",
      "required secret",
      "var",
    ]) {
      expect(
        all.some(([k]) => k === kind),
        kind,
      ).toBe(true);
    }
    const missing = all.filter(([, name]) => !named(name)).map(([kind, name]) => `${kind} ${name}`);
    expect(missing).toEqual([]);
  });

  it("keeps API_RATE_LIMIT_PERIOD_SECONDS equal to the rate limit binding's period", () => {
    const limit = (config.ratelimits ?? []).find((r: { name: string }) => r.name === "API_RATE_LIMIT");
    expect(limit?.simple.period).toBeDefined();
    expect(String(limit?.simple.period)).toBe(config.vars.API_RATE_LIMIT_PERIOD_SECONDS);
  });

  it("turns on observability and source maps, and requires JWT_SECRET", () => {
    expect(config.observability?.enabled).toBe(true);
    expect(config.upload_source_maps).toBe(true);
    expect(config.secrets?.required).toContain("JWT_SECRET");
  });
});
