import type { ConnectPrefsStore, PrefLevelRow } from "./prefs-store";

// A team's prefs levels, kept in memory by the one object that serves the
// team (its TeamCache: platform/deps.ts routes every read of a team's
// levels there). Every write clears it before it returns
// (cachedLevelsStore), so no read after a successful write is stale. A read that began before a forget never fills the cache with
// what it read (a generation count), and what a write cut off before its
// forget could leave lives at most `ttlMs`.

/** How long a level is reused without a write clearing it. */
export const PREFS_CACHE_TTL_MS = 60_000;
/** Levels kept at most (the org level and one row per partner asked about); the oldest go first. */
export const PREFS_CACHE_MAX = 10_000;

export class PrefsLevelsCache {
  /** By target team ("0": the org level); null: the level has no row. */
  private readonly rows = new Map<string, { row: PrefLevelRow | null; at: number }>();
  private generation = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly load: ConnectPrefsStore["levels"],
    private readonly now: () => number = () => Date.now(),
    private readonly ttlMs = PREFS_CACHE_TTL_MS,
    private readonly max = PREFS_CACHE_MAX,
  ) {}

  /** The rows of these levels that exist (as ConnectPrefsStore.levels answers), from memory where fresh. */
  async levels(teamId: string, targets: readonly string[]): Promise<PrefLevelRow[]> {
    const at = this.now();
    const out: PrefLevelRow[] = [];
    const missing: string[] = [];
    for (const target of new Set(targets)) {
      const hit = this.rows.get(target);
      if (hit && at - hit.at < this.ttlMs) {
        if (hit.row) out.push(hit.row);
      } else missing.push(target);
    }
    this.hits += targets.length - missing.length;
    if (missing.length === 0) return out;
    this.misses += missing.length;
    const generation = this.generation;
    const loaded = await this.load(teamId, missing);
    if (generation === this.generation) {
      const found = new Map(loaded.map((r) => [r.targetTeamId, r]));
      for (const target of missing) this.keep(target, found.get(target) ?? null, at);
    }
    return [...out, ...loaded];
  }

  /** A level changed: everything is read again, and reads already under way keep what they read to themselves. */
  forget(): void {
    this.generation++;
    this.rows.clear();
  }

  private keep(target: string, row: PrefLevelRow | null, at: number): void {
    this.rows.delete(target);
    this.rows.set(target, { row, at });
    if (this.rows.size > this.max) {
      const oldest = this.rows.keys().next().value;
      if (oldest !== undefined) this.rows.delete(oldest);
    }
  }
}

/** Where a team's cached levels live (its TeamCache when deployed: platform/deps.ts). */
export interface LevelsCachePort {
  levels(teamId: string, targets: readonly string[]): Promise<PrefLevelRow[]>;
  forget(teamId: string): Promise<void>;
}

/**
 * A store whose reads of levels go through the team's cache, and whose
 * writes clear it before they return: a successful write is answered only
 * once no cache can serve the level it replaced, and a write that lost its
 * compare-and-set clears it too, so the retry reads the level as it is. A
 * cache that cannot be cleared fails the write's answer (the write stands;
 * the same patch again is no change, and clears it).
 */
export function cachedLevelsStore(store: ConnectPrefsStore, cache: LevelsCachePort): ConnectPrefsStore {
  return {
    ...store,
    levels: (teamId, targets) => cache.levels(teamId, targets),
    async writeLevel(teamId, targetTeamId, prefs, previous, audit, now) {
      const written = await store.writeLevel(teamId, targetTeamId, prefs, previous, audit, now);
      await cache.forget(teamId);
      return written;
    },
  };
}
