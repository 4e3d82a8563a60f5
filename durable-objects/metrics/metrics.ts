import { DurableObject } from "cloudflare:workers";
import { bundledModels } from "../../models/index";
import { platformRegistry } from "../../src/metrics/platform-metrics";
import type { Registry, Snapshot } from "../../src/metrics/registry";
import {
  deriveFeatureHealth,
  driftThreshold,
  type FeatureStats,
  trainingStatsBySource,
} from "../../src/recommend/feature-health";

// The one place where every isolate's counters add up (a single object,
// "global"). Isolates send what they counted since their last flush, at most
// about once a second each, so a scrape sees the whole deployment and a
// request never waits on this object. The totals are kept in SQLite too:
// an evicted object comes back with its counts (no reset in Prometheus).
// Feature drift and alerts are derived here, at render, from the totals and
// the bundled models' training statistics (src/recommend/feature-health.ts).

export class Metrics extends DurableObject<Env> {
  private registry: Registry | null = null;
  private training: Map<string, Map<string, FeatureStats>> | null = null;

  async merge(snapshot: Snapshot): Promise<void> {
    const r = this.load();
    r.merge(snapshot);
    this.ctx.storage.sql.exec(
      "INSERT OR REPLACE INTO totals (id, json) VALUES (1, ?)",
      JSON.stringify(this.snapshotOf(r)),
    );
  }

  async render(): Promise<string> {
    const r = this.load();
    this.training ??= trainingStatsBySource(bundledModels.map((m) => m.manifest));
    // An optional var (not every deployment sets it): read without widening Env.
    const vars = this.env as unknown as { REC_FEATURE_DRIFT_THRESHOLD?: string };
    deriveFeatureHealth(r, this.training, driftThreshold(vars.REC_FEATURE_DRIFT_THRESHOLD));
    return r.render();
  }

  private load(): Registry {
    if (this.registry) return this.registry;
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY, json TEXT NOT NULL)");
    const r = platformRegistry();
    const row = sql.exec<{ json: string }>("SELECT json FROM totals WHERE id = 1").toArray()[0];
    if (row) r.merge(JSON.parse(row.json) as Snapshot);
    this.registry = r;
    return r;
  }

  /** The totals as a snapshot, without resetting them. */
  private snapshotOf(r: Registry): Snapshot {
    const taken = r.take();
    r.merge(taken);
    return taken;
  }
}
