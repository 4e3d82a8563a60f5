import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { type CollabDataset, channelIdOf, dayOf, readDataset, snapshotAt, userIdOf } from "../../src/datasets/collab";
import { buildSnapshot, type EmbeddingArtifact, snapshotToRows } from "../../src/recommend/features";
import {
  consumeFeatureEvents,
  inviteEvent,
  joinEvents,
  messageEvent,
  reactionEvent,
} from "../../src/recommend/live-features";
import { parseHistoryLine } from "../../src/recommend/live-history";
import {
  aggregateRows,
  buildLiveSnapshot,
  datasetRows,
  eventRows,
  type FeatureEvent,
  type LiveRows,
  liveCut,
  localHour,
  orderIds,
  parseFeatureEvent,
} from "../../src/recommend/live-rows";

// Live features, the pure part: the one definition of event -> row
// (src/recommend/live-rows.ts, FEATURES.md "Live traffic"), the id order, and
// parity: raw rows kept in a ledger (summed per key) and built by the live
// path give the very snapshot rows the import path (buildSnapshot) gives for
// the same rows of datasets/rails-collab.

const T0 = Date.UTC(2026, 2, 10, 14, 30); // 2026-03-10 14:30 UTC
const DAY = dayOf("2026-03-10");

const base = { v: 1 as const, team: "TLIVE", ts: T0 };

describe("event -> rows", () => {
  it("a message: activity (commits 1), the poster's local hour, a mention interaction per other mentioned user", () => {
    const rows = eventRows({
      ...base,
      id: "m1",
      type: "message",
      user: "U1",
      channel: "C7",
      mentions: ["U2", "U3", "U2", "U1"],
      tz: "Asia/Tokyo",
    });
    expect(rows.activity).toEqual([{ day: DAY, user: "U1", channel: "C7", commits: 1 }]);
    // 14:30 UTC is 23:30 in Tokyo; the day stays the UTC day (the dataset's days are UTC).
    expect(rows.hours).toEqual([{ day: DAY, user: "U1", hour: 23, commits: 1 }]);
    // Duplicates once, the poster's own mention dropped (the pipeline drops a == b).
    expect(rows.interactions).toEqual([
      { day: DAY, user: "U1", other: "U2", kind: "mention", count: 1 },
      { day: DAY, user: "U1", other: "U3", kind: "mention", count: 1 },
    ]);
  });

  it("no time zone or an unknown one: the UTC hour", () => {
    const msg = { ...base, id: "m", type: "message" as const, user: "U1", channel: "C1", mentions: [] };
    expect(eventRows(msg).hours[0]?.hour).toBe(14);
    expect(eventRows({ ...msg, tz: "Mars/Olympus" }).hours[0]?.hour).toBe(14);
    expect(localHour(T0, "America/New_York")).toBe(10);
  });

  it("a reply adds a reply interaction; a direct message adds dm interactions and an hour, no activity", () => {
    const reply = eventRows({
      ...base,
      id: "r",
      type: "message",
      user: "U1",
      channel: "C1",
      mentions: [],
      replyTo: "U9",
    });
    expect(reply.interactions).toEqual([{ day: DAY, user: "U1", other: "U9", kind: "reply", count: 1 }]);
    const dm = eventRows({ ...base, id: "d", type: "direct", user: "U1", to: ["U4", "U5"] });
    expect(dm.activity).toEqual([]);
    expect(dm.hours).toEqual([{ day: DAY, user: "U1", hour: 14, commits: 1 }]);
    expect(dm.interactions.map((i) => [i.other, i.kind])).toEqual([
      ["U4", "dm"],
      ["U5", "dm"],
    ]);
  });

  it("a join: an activity row with commits 0 (membership is having an activity row), nothing else", () => {
    const [join] = joinEvents("TLIVE", "C3", ["U8"], T0);
    expect(eventRows(join as FeatureEvent)).toEqual({
      activity: [{ day: DAY, user: "U8", channel: "C3", commits: 0 }],
      interactions: [],
      hours: [],
    });
  });

  it("a reaction: one interaction of the reactor with the author, no activity, no hour", () => {
    const r = {
      team: "TLIVE",
      user: "U1",
      conversation: "C1",
      message: "M7",
      author: "U2",
      authorTeam: "TLIVE",
      ts: T0,
    };
    const e = reactionEvent({ ...r, name: "+1" }) as FeatureEvent;
    expect(eventRows(e)).toEqual({
      activity: [],
      interactions: [{ day: DAY, user: "U1", other: "U2", kind: "reaction", count: 1 }],
      hours: [],
    });
    // Named by message, reactor and name (+ spelled as its code): added again, it is the same event.
    expect(e.id).toBe("react:TLIVE:C1:M7:U1:.2b1");
    expect(parseFeatureEvent(JSON.parse(JSON.stringify(e)))).toEqual({ ok: true, event: e });
    // One's own message, or another team's author (ids are per team): no event.
    expect(reactionEvent({ ...r, name: "eyes", author: "U1" })).toBeNull();
    expect(reactionEvent({ ...r, name: "eyes", authorTeam: "TOTHER" })).toBeNull();
  });

  it("an invite: one interaction of the inviter with each added user; bulk adds and self-adds are no invite", () => {
    const e = inviteEvent("TLIVE", "C3", "U1", ["U2", "U1", "U3", "U2"], T0) as FeatureEvent;
    expect(eventRows(e)).toEqual({
      activity: [],
      interactions: [
        { day: DAY, user: "U1", other: "U2", kind: "invite", count: 1 },
        { day: DAY, user: "U1", other: "U3", kind: "invite", count: 1 },
      ],
      hours: [],
    });
    expect(parseFeatureEvent(JSON.parse(JSON.stringify(e)))).toEqual({ ok: true, event: e });
    expect(inviteEvent("TLIVE", "C3", "U1", ["U1"], T0)).toBeNull();
    const many = Array.from({ length: 21 }, (_, i) => `U${i + 2}`);
    expect(inviteEvent("TLIVE", "C3", "U1", many, T0)).toBeNull();
    expect(inviteEvent("TLIVE", "C3", "U1", many.slice(0, 20), T0)?.to).toHaveLength(20);
  });

  it("the message producer keeps only mentions that are user ids, and names the event by its topic position", () => {
    const e = messageEvent({
      team: "TLIVE",
      user: "U1",
      channel: "C1",
      mentions: ["U2", "not an id", "U1", "U2"],
      topic: "channel:C1",
      seq: 42,
      ts: T0,
    });
    expect(e.mentions).toEqual(["U2"]);
    expect(e.id).toBe("msg:TLIVE:channel:C1:42");
    expect(parseFeatureEvent(JSON.parse(JSON.stringify(e)))).toEqual({ ok: true, event: e });
  });

  it("refuses bodies that are no event, with a reason", () => {
    const good = { ...base, id: "x", type: "join", user: "U1", channel: "C1" };
    expect(parseFeatureEvent(good).ok).toBe(true);
    const bad: unknown[] = [
      null,
      "join",
      [],
      { ...good, v: 2 },
      { ...good, id: "has space" },
      { ...good, team: "" },
      { ...good, user: "U 1" },
      { ...good, ts: "now" },
      { ...good, ts: 1 },
      { ...good, type: "reaction" },
      { ...good, type: "reaction", to: "U 2" },
      { ...good, type: "invite", to: [] },
      { ...good, type: "invite", to: Array.from({ length: 21 }, (_, i) => `U${i}`) },
      { ...good, type: "invite", to: ["U2"], channel: "C 1" },
      { ...good, type: "poke" },
      { ...good, channel: undefined },
      { ...good, type: "message", mentions: "U2" },
      { ...good, type: "message", mentions: [], tz: 7 },
      { ...good, type: "direct", to: [] },
    ];
    for (const b of bad) expect(parseFeatureEvent(b).ok, JSON.stringify(b)).toBe(false);
  });
});

describe("id order", () => {
  it("U<n> ids compare by n (the import path's integer order), anything else as strings", () => {
    expect(orderIds(["U10", "U2", "U1", "U2"])).toEqual(["U1", "U2", "U10"]);
    expect(orderIds(["C10", "C9"])).toEqual(["C9", "C10"]);
    expect(orderIds(["U10", "U2", "UX"])).toEqual(["U10", "U2", "UX"]);
    // A leading zero is no canonical integer: strings.
    expect(orderIds(["U010", "U9"])).toEqual(["U010", "U9"]);
    expect(orderIds(["10", "9"])).toEqual(["9", "10"]);
  });
});

function loadDataset(): CollabDataset {
  const read = (f: string) => gunzipSync(readFileSync(`datasets/rails-collab/${f}.csv.gz`)).toString("utf8");
  return readDataset("rails-collab", {
    channels: read("channels"),
    activity: read("activity"),
    interactions: read("interactions"),
    hours: read("hours"),
  });
}

/** Deterministic unit vectors for some ids (the live path carries imported vectors by platform id). */
function vectorsFor(ds: CollabDataset): EmbeddingArtifact {
  const vec = (i: number) => {
    const v = [Math.cos(i), Math.sin(i * 1.3), Math.cos(i * 0.7)];
    const n = Math.hypot(...v);
    return v.map((x) => Math.round((x / n) * 1e4) / 1e4);
  };
  const users = Object.fromEntries(
    [...new Set(ds.activity.map((a) => a.user))].filter((u) => u % 3 !== 0).map((u) => [String(u), vec(u)]),
  );
  const channels = Object.fromEntries(
    [...new Set(ds.activity.map((a) => a.channel))].filter((c) => c % 4 !== 0).map((c) => [String(c), vec(c)]),
  );
  return { dims: 3, cut: "2024-07-01", users, channels };
}

describe("parity: a ledger of rails-collab rows gives the import path's snapshot", () => {
  it("on two years of rows (live cut = the day after the latest row), row for row", () => {
    const full = loadDataset();
    const from = dayOf("2022-07-01");
    const to = dayOf("2024-07-01");
    const inSlice = (d: number) => d >= from && d < to;
    const ds: CollabDataset = {
      name: "rails-slice",
      channels: full.channels,
      activity: full.activity.filter((r) => inSlice(r.day)),
      interactions: full.interactions.filter((r) => inSlice(r.day)),
      hours: full.hours.filter((r) => inSlice(r.day)),
    };
    expect(ds.activity.length).toBeGreaterThan(5_000);
    const raw = datasetRows(ds);
    // Split into many small deliveries, as events arrive, then summed the ledger's way.
    const batches: LiveRows[] = [];
    for (let i = 0; i < raw.activity.length; i += 97) {
      batches.push({
        activity: raw.activity.slice(i, i + 97),
        interactions: raw.interactions.slice(i, i + 97),
        hours: raw.hours.slice(i, i + 97),
      });
    }
    const rest = Math.ceil(raw.activity.length / 97) * 97;
    batches.push({ activity: [], interactions: raw.interactions.slice(rest), hours: raw.hours.slice(rest) });
    const ledger = aggregateRows(batches);
    expect(ledger.activity.length).toBeLessThanOrEqual(raw.activity.length);
    const cut = liveCut(ledger) as number;
    const lastDay = Math.max(...ds.activity.map((r) => r.day), ...ds.interactions.map((r) => r.day));
    expect(cut).toBe(Math.max(lastDay, ...ds.hours.map((r) => r.day)) + 1);

    const art = vectorsFor(ds);
    const imported = snapshotToRows(buildSnapshot(ds, cut, art));
    const live = snapshotToRows(
      buildLiveSnapshot("rails-slice", ledger, cut, {
        dims: art.dims,
        cut: art.cut as string,
        users: new Map(Object.entries(art.users).map(([k, v]) => [userIdOf(Number(k)), v])),
        channels: new Map(Object.entries(art.channels).map(([k, v]) => [channelIdOf(Number(k)), v])),
      }),
    );
    expect(live.length).toBe(imported.length);
    expect(live).toEqual(imported);
    // Membership is "has an activity row": the live snapshot's members are the team snapshotAt imports.
    const team = snapshotAt(ds, cut);
    const members = live
      .filter((r) => r.kind === "member")
      .map((r) => r.key)
      .sort();
    expect(members).toEqual(team.memberships.map((m) => `${userIdOf(m.user)} ${channelIdOf(m.channel)}`).sort());
  });

  it("at an earlier cut too (rows on or after the cut left out, as the import path does)", () => {
    const full = loadDataset();
    const ds: CollabDataset = {
      ...full,
      activity: full.activity.filter((r) => r.day >= dayOf("2019-01-01") && r.day < dayOf("2020-01-01")),
      interactions: full.interactions.filter((r) => r.day >= dayOf("2019-01-01") && r.day < dayOf("2020-01-01")),
      hours: full.hours.filter((r) => r.day >= dayOf("2019-01-01") && r.day < dayOf("2020-01-01")),
    };
    const cut = dayOf("2019-09-15");
    const empty = { dims: 0, users: {}, channels: {} };
    expect(snapshotToRows(buildLiveSnapshot(ds.name, datasetRows(ds), cut))).toEqual(
      snapshotToRows(buildSnapshot(ds, cut, empty)),
    );
  });

  it("events give the snapshot of the rows they stand for", () => {
    // Three people, two channels: U1 and U2 post in C1, U2 mentions U3, U3 joins C2.
    const events: FeatureEvent[] = [
      { ...base, id: "a", type: "message", user: "U1", channel: "C1", mentions: [] },
      { ...base, id: "b", type: "message", user: "U2", channel: "C1", mentions: ["U3"], ts: T0 + 3_600_000 },
      { ...base, id: "c", type: "message", user: "U2", channel: "C1", mentions: ["U3"], ts: T0 + 86_400_000 },
      ...joinEvents("TLIVE", "C2", ["U3"], T0),
    ];
    const rows = aggregateRows(events.map(eventRows));
    const ds: CollabDataset = {
      name: "events",
      channels: [],
      activity: [
        { day: DAY, user: 1, channel: 1, commits: 1, files: 0 },
        { day: DAY, user: 2, channel: 1, commits: 1, files: 0 },
        { day: DAY + 1, user: 2, channel: 1, commits: 1, files: 0 },
        { day: DAY, user: 3, channel: 2, commits: 0, files: 0 },
      ],
      interactions: [
        { day: DAY, user: 2, other: 3, kind: "mention", count: 1 },
        { day: DAY + 1, user: 2, other: 3, kind: "mention", count: 1 },
      ],
      hours: [
        { day: DAY, user: 1, hour: 14, commits: 1 },
        { day: DAY, user: 2, hour: 15, commits: 1 },
        { day: DAY + 1, user: 2, hour: 14, commits: 1 },
      ],
    };
    const cut = liveCut(rows) as number;
    expect(cut).toBe(DAY + 2);
    const empty = { dims: 0, users: {}, channels: {} };
    expect(snapshotToRows(buildLiveSnapshot("events", rows, cut))).toEqual(
      snapshotToRows({ ...buildSnapshot(ds, cut, empty), dataset: "events" }),
    );
  });
});

describe("the consumer's routing", () => {
  it("routes by each event's team, drops bad bodies (acknowledged), retries a failing team's events", async () => {
    const seen = new Map<string, string[]>();
    const store = {
      ingest: async (team: string, events: FeatureEvent[]) => {
        if (team === "TDOWN") throw new Error("object unavailable");
        seen.set(team, [...(seen.get(team) ?? []), ...events.map((e) => e.id)]);
        return { added: events.length, duplicates: 0, foreign: 0 };
      },
      rebuild: async () => ({ live: null, serving: null, refused: null }),
    };
    const ev = (team: string, id: string) => ({ ...base, team, id, type: "join", user: "U1", channel: "C1" });
    const out = await consumeFeatureEvents(
      [
        { id: "q1", body: ev("TA", "e1") },
        { id: "q2", body: ev("TB", "e2") },
        { id: "q3", body: { junk: true } },
        { id: "q4", body: ev("TDOWN", "e4") },
        { id: "q5", body: ev("TA", "e5") },
      ],
      store,
    );
    expect(Object.fromEntries(seen)).toEqual({ TA: ["e1", "e5"], TB: ["e2"] });
    expect(out.ack.sort()).toEqual(["q1", "q2", "q3", "q5"]);
    expect(out.retry).toEqual(["q4"]);
    expect(out.dropped).toBe(1);
    expect(out.added).toBe(3);
  });
});

describe("the consumer's time zones", () => {
  it("sets the profile's zone on message events without one (joins and events that have one untouched); a failed lookup leaves UTC", async () => {
    const got: FeatureEvent[] = [];
    const store = (zones: () => Promise<ReadonlyMap<string, string>>) => ({
      ingest: async (_team: string, events: FeatureEvent[]) => {
        got.push(...events);
        return { added: events.length, duplicates: 0, foreign: 0 };
      },
      rebuild: async () => ({ live: null, serving: null, refused: null }),
      zones,
    });
    const msg = (id: string, user: string, tz?: string) => ({
      ...base,
      id,
      type: "message",
      user,
      channel: "C1",
      mentions: [],
      ...(tz ? { tz } : {}),
    });
    await consumeFeatureEvents(
      [
        { id: "1", body: msg("a", "U1") },
        { id: "2", body: msg("b", "U2", "Europe/Paris") },
        { id: "3", body: joinEvents("TLIVE", "C1", ["U1"], T0)[0] },
      ],
      store(
        async () =>
          new Map([
            ["U1", "Asia/Tokyo"],
            ["U2", "Asia/Tokyo"],
          ]),
      ),
    );
    expect(got.map((e) => ("tz" in e ? e.tz : undefined))).toEqual(["Asia/Tokyo", "Europe/Paris", undefined]);
    expect(eventRows(got[0] as FeatureEvent).hours[0]?.hour).toBe(23);
    got.length = 0;
    const out = await consumeFeatureEvents(
      [{ id: "1", body: msg("a", "U1") }],
      store(async () => {
        throw new Error("cache down");
      }),
    );
    expect(out.ack).toEqual(["1"]);
    expect(eventRows(got[0] as FeatureEvent).hours[0]?.hour).toBe(14);
  });
});

describe("history rows", () => {
  it("reads the dataset's three tables with platform ids, and refuses anything else", () => {
    expect(
      parseHistoryLine({ table: "activity", day: "2026-03-10", user_id: "U1", channel_id: "C2", commits: 3 }),
    ).toEqual({
      ok: true,
      rows: { activity: [{ day: DAY, user: "U1", channel: "C2", commits: 3 }], interactions: [], hours: [] },
    });
    const i = {
      table: "interactions",
      day: "2026-03-10",
      user_id: "U1",
      other_user_id: "U2",
      kind: "merged_pr",
      count: 2,
    };
    expect(parseHistoryLine(i)).toMatchObject({
      ok: true,
      rows: { interactions: [{ other: "U2", kind: "merged_pr", count: 2 }] },
    });
    const h = { table: "hours", day: "2026-03-10", user_id: "U1", local_hour: 23, commits: 1 };
    expect(parseHistoryLine(h)).toMatchObject({ ok: true, rows: { hours: [{ hour: 23, commits: 1 }] } });
    for (const bad of [
      null,
      { ...h, local_hour: 24 },
      { ...h, day: "2026-3-10" },
      { ...h, user_id: "U 1" },
      { ...h, commits: -1 },
      { ...h, commits: 1.5 },
      { ...h, name: "text" },
      { ...i, kind: "Has Text" },
      { ...i, table: "messages" },
    ]) {
      expect(parseHistoryLine(bad).ok, JSON.stringify(bad)).toBe(false);
    }
  });
});
