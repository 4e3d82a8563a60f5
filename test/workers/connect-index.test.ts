import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { connectIndexOf } from "../../platform/stubs";
import { type ConnectionDoc, type IndexedConnection, parseSearchQuery } from "../../src/connect/search";

// The admin search over a team's connections, inside workerd on the
// object's real SQLite (FTS5): text, status and pref filters, sorts, stable
// cursors, and a rebuild that equals the incremental result.

let n = 0;
const freshTeam = () => `TIDX${++n}${Date.now()}`;

function doc(i: number, over: Partial<IndexedConnection> = {}): IndexedConnection {
  return {
    connectionId: `K${String(i).padStart(4, "0")}`,
    partnerId: `TP${i}`,
    partnerName: `Partner ${i}`,
    partnerDomains: [`p${i}.example`],
    status: "accepted",
    channelCount: i % 7,
    pendingInvitations: 0,
    connectedAt: 1_000 + i,
    own: { auto_approval: { auto_approval: i % 3 === 0 ? "all" : "off" }, file_uploads: { file_uploads: i % 2 === 0 } },
    ...over,
  };
}

const q = (params: Record<string, string>) => parseSearchQuery(params);

describe("connection index", () => {
  it("finds partners by a prefix of a word of their name or domains, accents and case folded", async () => {
    const index = connectIndexOf(env, freshTeam());
    await index.upsert(doc(1, { partnerName: "Acmé Corporation", partnerDomains: ["acme.co.uk", "acme-eu.com"] }));
    await index.upsert(doc(2, { partnerName: "Globex", partnerDomains: ["globex.io"] }));
    const ids = async (params: Record<string, string>) =>
      (await index.search(q(params))).items.map((d) => d.connectionId);
    expect(await ids({ q: "acme" })).toEqual(["K0001"]);
    expect(await ids({ q: "CORP" })).toEqual(["K0001"]);
    expect(await ids({ q: "globex.io" })).toEqual(["K0002"]);
    expect(await ids({ q: "uk" })).toEqual(["K0001"]);
    expect(await ids({ q: "acme globex" })).toEqual([]);
    expect(await ids({ q: '"; DROP TABLE conn; --' })).toEqual([]);
  });

  it("filters on status and on any pref's effective value, and sorts by name, date or channels", async () => {
    const index = connectIndexOf(env, freshTeam());
    await index.rebuild([1, 2, 3, 4, 5, 6].map((i) => doc(i, { status: i === 6 ? "disconnected" : "accepted" })));
    const ids = async (params: Record<string, string>) =>
      (await index.search(q(params))).items.map((d) => d.connectionId);
    expect(await ids({ "pref.auto_approval": "all" })).toEqual(["K0003", "K0006"]);
    expect(await ids({ "pref.auto_approval": "all", status: "accepted" })).toEqual(["K0003"]);
    expect(await ids({ "pref.file_uploads": "true", sort: "date" })).toEqual(["K0006", "K0004", "K0002"]);
    expect(await ids({ sort: "channels", limit: "3" })).toEqual(["K0006", "K0005", "K0004"]);
    expect(await ids({ "pref.no_such_pref": "x" })).toEqual([]);
  });

  it("pages with a stable cursor: a connection added mid-way does not shift the pages", async () => {
    const index = connectIndexOf(env, freshTeam());
    await index.rebuild(Array.from({ length: 25 }, (_, i) => doc(i + 1)));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { items: ConnectionDoc[]; next_cursor: string | null } = await index.search(
        q({ sort: "name", limit: "10", ...(cursor ? { cursor } : {}) }),
      );
      seen.push(...page.items.map((d) => d.connectionId));
      cursor = page.next_cursor;
      // Sorted before everything: never shows up on a later page.
      if (pages++ === 0) await index.upsert(doc(99, { partnerName: "Aaa First" }));
    } while (cursor);
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(() => q({ sort: "date", cursor: "eyJzIjoibmFtZSJ9" })).toThrow(/cursor/);
  });

  it("rebuilt from the source of truth, equals what the change events built", async () => {
    const incremental = connectIndexOf(env, freshTeam());
    const rebuilt = connectIndexOf(env, freshTeam());
    const truth = new Map<string, IndexedConnection>();
    const apply = async (d: IndexedConnection | string) => {
      if (typeof d === "string") {
        truth.delete(d);
        await incremental.remove(d);
      } else {
        truth.set(d.connectionId, d);
        await incremental.upsert(d);
      }
    };
    for (let i = 1; i <= 30; i++) await apply(doc(i));
    for (let i = 1; i <= 30; i += 4)
      await apply(doc(i, { channelCount: 40 + i, own: { auto_approval: { auto_approval: "listed" } } }));
    for (let i = 2; i <= 30; i += 5) await apply(doc(i).connectionId);
    await apply(doc(7, { status: "disconnected", partnerName: "Renamed Seven" }));
    await rebuilt.rebuild([...truth.values()]);
    expect(await rebuilt.all()).toEqual(await incremental.all());
    const queries: Array<Record<string, string>> = [
      { q: "partner" },
      { "pref.auto_approval": "listed" },
      { sort: "channels" },
      { q: "seven" },
    ];
    for (const params of queries) {
      expect(await rebuilt.search(q(params))).toEqual(await incremental.search(q(params)));
    }
  });

  it("answers the org level's value for every connection whose partner level does not set that pref", async () => {
    const index = connectIndexOf(env, freshTeam());
    await index.setOrg({ auto_approval: { auto_approval: "off" }, file_uploads: { file_uploads: true } });
    // 1 and 2 set nothing; 3 sets auto_approval only; 4 sets both.
    await index.rebuild([
      doc(1, { own: {} }),
      doc(2, { own: {} }),
      doc(3, { own: { auto_approval: { auto_approval: "all" } } }),
      doc(4, { own: { auto_approval: { auto_approval: "off" }, file_uploads: { file_uploads: false } } }),
    ]);
    const ids = async (params: Record<string, string>) =>
      (await index.search(q(params))).items.map((d) => d.connectionId);
    expect(await ids({ "pref.auto_approval": "off" })).toEqual(["K0001", "K0002", "K0004"]);
    expect(await ids({ "pref.auto_approval": "all" })).toEqual(["K0003"]);
    expect(await ids({ "pref.file_uploads": "true" })).toEqual(["K0001", "K0002", "K0003"]);
    expect(await ids({ "pref.file_uploads": "false" })).toEqual(["K0004"]);
    expect((await index.search(q({}))).items.map((d) => d.prefs)).toEqual([
      { auto_approval: "off", file_uploads: true },
      { auto_approval: "off", file_uploads: true },
      { auto_approval: "all", file_uploads: true },
      { auto_approval: "off", file_uploads: false },
    ]);
    // An org-level change is one write, and every answer follows it at once.
    await index.setOrg({ auto_approval: { auto_approval: "all" }, file_uploads: { file_uploads: true } });
    expect(await ids({ "pref.auto_approval": "all" })).toEqual(["K0001", "K0002", "K0003"]);
    expect(await ids({ "pref.auto_approval": "off" })).toEqual(["K0004"]);
  });

  it("keeps teams apart: each team's index is its own object", async () => {
    const a = connectIndexOf(env, freshTeam());
    const b = connectIndexOf(env, freshTeam());
    await a.upsert(doc(1));
    expect((await b.search(q({}))).items).toEqual([]);
    expect((await a.search(q({}))).items).toHaveLength(1);
  });
});
