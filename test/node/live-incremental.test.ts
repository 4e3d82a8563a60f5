import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { dayOf, readDataset } from "../../src/datasets/collab";
import type { FeatureRow } from "../../src/recommend/feature-store";
import { snapshotToRows } from "../../src/recommend/features";
import { SAME_DAY_WINDOW } from "../../src/recommend/features/snapshot";
import { dirtyOf, extendOrder, livePatch } from "../../src/recommend/live-incremental";
import {
  buildLiveSnapshot,
  datasetRows,
  type LiveRows,
  type LiveVectors,
  liveCut,
} from "../../src/recommend/live-rows";

// An incremental build must give, row for row, what a full build of the
// whole ledger gives. Two years of rails-collab rows are split into a
// ledger already built and rows arriving since, the rows the store would
// read are selected by the rule live-incremental.ts states, and the patched
// rows are compared with a full build.

function twoYears(): LiveRows {
  const read = (f: string) => gunzipSync(readFileSync(`datasets/rails-collab/${f}.csv.gz`)).toString("utf8");
  const ds = readDataset("rails-collab", {
    channels: read("channels"),
    activity: read("activity"),
    interactions: read("interactions"),
    hours: read("hours"),
  });
  const inSlice = (d: number) => d >= dayOf("2022-07-01") && d < dayOf("2024-07-01");
  return datasetRows({
    ...ds,
    activity: ds.activity.filter((a) => inSlice(a.day)),
    interactions: ds.interactions.filter((i) => inSlice(i.day)),
    hours: ds.hours.filter((h) => inSlice(h.day)),
  });
}

/** A seeded coin (mulberry32). */
function coin(seed: number): (p: number) => boolean {
  let a = seed;
  return (p) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 < p;
  };
}

/** The store's selection (live-ledger.ts ledgerRowsAround), stated in JS. */
function around(all: LiveRows, dirty: ReturnType<typeof dirtyOf>, cut: number): LiveRows {
  const groups = new Set(
    all.activity
      .filter((r) => dirty.channels.has(r.channel) && r.day >= cut - SAME_DAY_WINDOW)
      .map((r) => `${r.user} ${r.day}`),
  );
  const before = new Set<LiveRows["activity"][number]>();
  const days = new Set<string>();
  for (const r of all.activity) {
    if (!dirty.channels.has(r.channel) || r.day >= cut - SAME_DAY_WINDOW || days.has(`${r.channel} ${r.day}`)) continue;
    days.add(`${r.channel} ${r.day}`);
    before.add(r);
  }
  return {
    activity: all.activity.filter((r) => dirty.users.has(r.user) || before.has(r) || groups.has(`${r.user} ${r.day}`)),
    interactions: all.interactions.filter((r) => dirty.users.has(r.user) || dirty.users.has(r.other)),
    hours: all.hours.filter((r) => dirty.users.has(r.user)),
  };
}

const vectors: LiveVectors = {
  dims: 2,
  users: new Map([
    ["U1", [1, 0]],
    ["U5", [0, 1]],
  ]),
  channels: new Map([["C1", [0.6, 0.8]]]),
};

const byKey = (rows: readonly FeatureRow[]) => new Map(rows.map((r) => [`${r.kind} ${r.key}`, r.data]));
const join = (a: LiveRows, b: LiveRows): LiveRows => ({
  activity: [...a.activity, ...b.activity],
  interactions: [...a.interactions, ...b.interactions],
  hours: [...a.hours, ...b.hours],
});

/** The base ledger's full build, patched with the rows `since` changed; and the full build of both. */
function patchedAndFull(base: LiveRows, since: LiveRows) {
  const all = join(base, since);
  const cut = liveCut(all) as number;
  expect(liveCut(base)).toBe(cut);
  const stored = byKey(snapshotToRows(buildLiveSnapshot("live", base, cut, vectors)));
  const ids = (kind: string) =>
    [...stored.keys()].filter((k) => k.startsWith(`${kind} `)).map((k) => k.slice(kind.length + 1));
  const dirty = dirtyOf(since);
  const patch = livePatch(around(all, dirty, cut), cut, vectors, dirty, {
    users: ids("user"),
    channels: ids("channel"),
  });
  const full = snapshotToRows(buildLiveSnapshot("live", all, cut, vectors));
  return { stored, patch, full, dirty };
}

describe("incremental live build", () => {
  const rows = twoYears();
  const cut = liveCut(rows) as number;

  it("patching the rows the new ones changed gives the full build, row for row (rails-collab, 2 years)", () => {
    // Arriving since the last build: a seeded 3% of the last 400 days' rows, so
    // every window and the same-day groups are touched; the latest day stays
    // in the base so the cut does not move.
    const flip = coin(7);
    const last = (r: { day: number }) => r.day === cut - 1;
    const pick = (r: { day: number }) => r.day >= cut - 400 && !last(r) && flip(0.03);
    const split = <T extends { day: number }>(list: T[]) => [list.filter((r) => !pick(r)), list.filter(pick)];
    const [baseA, newA] = split(rows.activity);
    const [baseI, newI] = split(rows.interactions);
    const [baseH, newH] = split(rows.hours);
    const base = { activity: baseA ?? [], interactions: baseI ?? [], hours: baseH ?? [] };
    const since = { activity: newA ?? [], interactions: newI ?? [], hours: newH ?? [] };
    expect(since.activity.length).toBeGreaterThan(100);

    const { stored, patch, full, dirty } = patchedAndFull(base, since);
    expect(patch).not.toBeNull();
    if (!patch) return;
    expect(dirty.users.size).toBeGreaterThan(10);
    for (const r of patch.rows) stored.set(`${r.kind} ${r.key}`, r.data);
    expect(stored).toEqual(byKey(full));
    expect(patch.users).toBe(full.filter((r) => r.kind === "user").length);
    expect(patch.channels).toBe(full.filter((r) => r.kind === "channel").length);
  });

  it("a new user and a new channel whose ids sort after every other get the next ranks; a few events patch a few rows", () => {
    const known = rows.activity.find((r) => r.day === cut - 1) as LiveRows["activity"][number];
    const since: LiveRows = {
      activity: [
        { day: cut - 1, user: "U999999", channel: "C999999", commits: 2 },
        { day: cut - 1, user: "U999999", channel: known.channel, commits: 1 },
        { day: cut - 1, user: known.user, channel: known.channel, commits: 1 },
      ],
      interactions: [{ day: cut - 2, user: "U999999", other: known.user, kind: "mention", count: 1 }],
      hours: [{ day: cut - 1, user: "U999999", hour: 9, commits: 2 }],
    };
    const { stored, patch, full } = patchedAndFull(rows, since);
    expect(patch).not.toBeNull();
    // Two users' and two channels' rows, their pairs and same-day pairs: a sliver of the snapshot.
    expect(patch?.rows.length).toBeLessThan(full.length / 20);
    for (const r of patch?.rows ?? []) stored.set(`${r.kind} ${r.key}`, r.data);
    expect(stored).toEqual(byKey(full));
  });

  it("a new id that would move an existing one's rank: no patch (the store builds in full)", () => {
    const since: LiveRows = {
      activity: [{ day: cut - 1, user: "U0", channel: "C1", commits: 1 }],
      interactions: [],
      hours: [],
    };
    expect(rows.activity.some((r) => r.user === "U0")).toBe(false);
    expect(patchedAndFull(rows, since).patch).toBeNull();
  });

  it("extendOrder keeps existing ranks or refuses", () => {
    expect(extendOrder(["U2", "U10"], ["U11"])).toEqual(
      new Map([
        ["U2", 0],
        ["U10", 1],
        ["U11", 2],
      ]),
    );
    expect(extendOrder(["U2", "U10"], ["U3"])).toBeNull();
    // A non-platform id turns the order to strings: "U10" < "U2" then, so ranks move.
    expect(extendOrder(["U2", "U10"], ["alice"])).toBeNull();
    expect(extendOrder(["a", "b"], ["c"])?.get("c")).toBe(2);
  });
});
