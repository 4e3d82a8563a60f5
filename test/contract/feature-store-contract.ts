import { describe, expect, it } from "vitest";
import type { FeatureRow } from "../../src/recommend/feature-store";
import { featureStore } from "../../storage/feature-store";
import { type Backend, uniqueTeamId } from "./fixtures";

// The feature store contract, on every adapter: a snapshot is invisible
// until published, publishing replaces the previous one whole, and rows page
// in (kind, key) order without gaps or repeats.

const rows = (kind: string, n: number, tag = ""): FeatureRow[] =>
  Array.from({ length: n }, (_, i) => ({
    kind,
    key: `k${String(i).padStart(5, "0")}`,
    data: JSON.stringify({ n: i, tag }),
  }));

export function featureStoreContract(open: () => Promise<Backend>): void {
  describe("feature store", () => {
    it("publishes a snapshot whole and pages its rows in order", async () => {
      const { driver } = await open();
      const store = featureStore(driver);
      const team = uniqueTeamId("TF");
      expect(await store.current(team)).toBeNull();
      await store.createSnapshot(team, { snapshotId: "s1", asOf: 20000, dataset: "fixture", createdAt: 1 });
      const all = [...rows("uc", 2500), ...rows("c", 30), ...rows("u", 40)];
      await store.appendRows(team, "s1", all);
      // Not visible before publishing.
      expect(await store.current(team)).toBeNull();
      await store.publishSnapshot(team, "s1", all.length, 2);
      expect(await store.current(team)).toEqual({
        snapshotId: "s1",
        asOf: 20000,
        dataset: "fixture",
        rows: all.length,
        createdAt: 1,
      });
      const seen: FeatureRow[] = [];
      let after: { kind: string; key: string } | null = null;
      for (;;) {
        const page = await store.pageRows(team, "s1", after, 700);
        seen.push(...page);
        const last = page.at(-1);
        if (!last || page.length < 700) break;
        after = { kind: last.kind, key: last.key };
      }
      const order = (a: FeatureRow, b: FeatureRow) =>
        a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      expect(seen).toEqual([...all].sort(order));
    });

    it("replaces the previous snapshot on publish, and keeps teams apart", async () => {
      const { driver } = await open();
      const store = featureStore(driver);
      const team = uniqueTeamId("TF");
      const other = uniqueTeamId("TF");
      await store.createSnapshot(other, { snapshotId: "s1", asOf: 1, dataset: "d", createdAt: 1 });
      await store.appendRows(other, "s1", rows("u", 3, "other"));
      await store.publishSnapshot(other, "s1", 3, 1);
      await store.createSnapshot(team, { snapshotId: "s1", asOf: 1, dataset: "d", createdAt: 1 });
      await store.appendRows(team, "s1", rows("u", 5, "old"));
      await store.publishSnapshot(team, "s1", 5, 1);
      await store.createSnapshot(team, { snapshotId: "s2", asOf: 2, dataset: "d", createdAt: 2 });
      await store.appendRows(team, "s2", rows("u", 2, "new"));
      // Until s2 is published, readers keep s1.
      expect((await store.current(team))?.snapshotId).toBe("s1");
      await store.publishSnapshot(team, "s2", 2, 3);
      expect(await store.current(team)).toMatchObject({ snapshotId: "s2", asOf: 2, rows: 2 });
      expect(await store.pageRows(team, "s1", null, 100)).toEqual([]);
      expect((await store.pageRows(team, "s2", null, 100)).map((r) => JSON.parse(r.data).tag)).toEqual(["new", "new"]);
      expect((await store.pageRows(other, "s1", null, 100)).map((r) => JSON.parse(r.data).tag)).toEqual([
        "other",
        "other",
        "other",
      ]);
    });

    it("discards an unpublished snapshot, never the current one", async () => {
      const { driver } = await open();
      const store = featureStore(driver);
      const team = uniqueTeamId("TF");
      await store.createSnapshot(team, { snapshotId: "good", asOf: 1, dataset: "d", createdAt: 1 });
      await store.appendRows(team, "good", rows("u", 2));
      await store.publishSnapshot(team, "good", 2, 1);
      await store.createSnapshot(team, { snapshotId: "bad", asOf: 2, dataset: "d", createdAt: 2 });
      await store.appendRows(team, "bad", rows("u", 3));
      await store.discardSnapshot(team, "bad");
      await store.discardSnapshot(team, "good");
      expect((await store.current(team))?.snapshotId).toBe("good");
      expect(await store.pageRows(team, "bad", null, 10)).toEqual([]);
      expect(await store.pageRows(team, "good", null, 10)).toHaveLength(2);
    });

    it("refuses a key written twice in one snapshot", async () => {
      const { driver } = await open();
      const store = featureStore(driver);
      const team = uniqueTeamId("TF");
      await store.createSnapshot(team, { snapshotId: "s1", asOf: 1, dataset: "d", createdAt: 1 });
      await store.appendRows(team, "s1", rows("u", 2));
      await expect(store.appendRows(team, "s1", rows("u", 1))).rejects.toThrow();
    });
  });
}
