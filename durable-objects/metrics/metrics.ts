import { DurableObject } from "cloudflare:workers";
import { platformRegistry } from "../../src/metrics/platform-metrics";
import type { Registry, Snapshot } from "../../src/metrics/registry";

// The one place where every isolate's counters add up (a single object,
// "global"). Isolates send what they counted since their last flush, at most
// about once a second each, so a scrape sees the whole deployment and a
// request never waits on this object. The totals are kept in SQLite too:
// an evicted object comes back with its counts (no reset in Prometheus).

export class Metrics extends DurableObject<Env> {
  private registry: Registry | null = null;

  async merge(snapshot: Snapshot): Promise<void> {
    const r = this.load();
    r.merge(snapshot);
    this.ctx.storage.sql.exec(
      "INSERT OR REPLACE INTO totals (id, json) VALUES (1, ?)",
      JSON.stringify(this.snapshotOf(r)),
    );
  }

  async render(): Promise<string> {
    return this.load().render();
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
