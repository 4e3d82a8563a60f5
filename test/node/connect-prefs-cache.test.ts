import { describe, expect, it } from "vitest";
import { cachedLevelsStore, PrefsLevelsCache } from "../../src/connect/prefs-cache";
import type { ConnectPrefsStore, PrefLevelRow } from "../../src/connect/prefs-store";

// The prefs levels cache (src/connect/prefs-cache.ts) alone: hits within the
// TTL, a level without a row remembered as such, a forget that a read already
// under way cannot undo, the size cap, and the store decorator clearing the
// cache after every write, won or lost.

const row = (target: string, byte: number): PrefLevelRow => ({
  targetTeamId: target,
  prefs: new Uint8Array([byte]),
  dateCreate: 0,
  dateUpdate: 0,
});

function source(initial: PrefLevelRow[]) {
  const rows = new Map(initial.map((r) => [r.targetTeamId, r]));
  const calls: string[][] = [];
  let gate: Promise<void> | null = null;
  return {
    rows,
    calls,
    hold() {
      let open = () => {};
      gate = new Promise((r) => {
        open = r;
      });
      return () => {
        gate = null;
        open();
      };
    },
    async load(_team: string, targets: readonly string[]) {
      calls.push([...targets]);
      const answer = targets.flatMap((t) => {
        const r = rows.get(t);
        return r ? [r] : [];
      });
      if (gate) await gate;
      return answer;
    },
  };
}

describe("prefs levels cache", () => {
  it("answers from memory within the TTL, remembers a level that has no row, and reads again after it", async () => {
    const src = source([row("0", 1)]);
    let now = 0;
    const cache = new PrefsLevelsCache(src.load, () => now, 1_000);
    expect(await cache.levels("T1", ["0", "TP"])).toEqual([row("0", 1)]);
    src.rows.set("TP", row("TP", 2));
    now = 999;
    expect(await cache.levels("T1", ["0", "TP"])).toEqual([row("0", 1)]);
    expect(src.calls).toEqual([["0", "TP"]]);
    now = 1_000;
    expect(await cache.levels("T1", ["TP", "0"])).toEqual([row("TP", 2), row("0", 1)]);
    expect(src.calls).toHaveLength(2);
  });

  it("a read under way when a level is forgotten keeps what it read to itself", async () => {
    const src = source([row("0", 1)]);
    const cache = new PrefsLevelsCache(src.load);
    const open = src.hold();
    const early = cache.levels("T1", ["0"]);
    src.rows.set("0", row("0", 9));
    cache.forget();
    open();
    expect(await early).toEqual([row("0", 1)]);
    expect(await cache.levels("T1", ["0"])).toEqual([row("0", 9)]);
  });

  it("keeps at most its cap of levels, dropping the oldest", async () => {
    const src = source([row("A", 1), row("B", 2), row("C", 3)]);
    const cache = new PrefsLevelsCache(src.load, () => 0, 60_000, 2);
    await cache.levels("T1", ["A"]);
    await cache.levels("T1", ["B"]);
    await cache.levels("T1", ["C"]);
    src.calls.length = 0;
    await cache.levels("T1", ["B", "C"]);
    expect(src.calls).toEqual([]);
    await cache.levels("T1", ["A"]);
    expect(src.calls).toEqual([["A"]]);
  });

  it("through the store: every write clears the team's cache before it returns, won or lost", async () => {
    const src = source([row("0", 1)]);
    const cache = new PrefsLevelsCache(src.load);
    const forgotten: string[] = [];
    let wins = true;
    const raw = {
      levels: src.load,
      async writeLevel(_team: string, target: string, prefs: Uint8Array) {
        if (wins) src.rows.set(target, { ...row(target, 0), prefs });
        return wins;
      },
    } as unknown as ConnectPrefsStore;
    const store = cachedLevelsStore(raw, {
      levels: (team, targets) => cache.levels(team, targets),
      async forget(team) {
        forgotten.push(team);
        cache.forget();
      },
    });
    expect(await store.levels("T1", ["0"])).toEqual([row("0", 1)]);
    expect(await store.writeLevel("T1", "0", new Uint8Array([5]), null, [], 0)).toBe(true);
    expect((await store.levels("T1", ["0"]))[0]?.prefs).toEqual(new Uint8Array([5]));
    wins = false;
    expect(await store.writeLevel("T1", "0", new Uint8Array([6]), null, [], 0)).toBe(false);
    expect(forgotten).toEqual(["T1", "T1"]);
  });
});
