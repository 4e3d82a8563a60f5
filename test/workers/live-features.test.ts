import {
  createExecutionContext,
  createMessageBatch,
  env,
  getQueueResult,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { ledgerSize } from "../../durable-objects/rec-store/live-ledger";
import type { RecStore } from "../../durable-objects/rec-store/rec-store";
import { type CollabDataset, historyLinesOf, isoOf } from "../../src/datasets/collab";
import { fromBlock } from "../../src/recommend/candidate-block";
import { buildSnapshot, snapshotToRows } from "../../src/recommend/features/index";
import { joinEvents } from "../../src/recommend/live-features";
import worker from "../../workers/index";
import { api, eventually, newTeam, ok, platformToken, token } from "./client";

// Live features inside workerd: messages posted and channels joined through
// the real routes reach the feature-events queue, its consumer sums them in
// the team's RecStore ledger, a rebuild (the route, or the coalescing alarm)
// turns the ledger into a snapshot, and both the features of a candidate and
// the served ranking of POST /v1/recommend change. Events count once by id,
// stay in their own team, and bad ones are dropped, never retried.

const workerEnv = env as unknown as Env;
const recStore = (team: string) => env.REC_STORE.get(env.REC_STORE.idFromName(team));

interface Ledger {
  activity: Array<{ day: number; user: string; channel: string; commits: number }>;
  interactions: Array<{ user: string; other: string; kind: string; count: number }>;
}

async function ledgerOf(team: string): Promise<Ledger> {
  return runInDurableObject(recStore(team), (_i, state) => ({
    activity: state.storage.sql
      .exec<{ day: number; user: string; channel: string; commits: number }>(
        "SELECT day, user, channel, commits FROM live_activity ORDER BY day, user, channel",
      )
      .toArray(),
    interactions: state.storage.sql
      .exec<{ user: string; other: string; kind: string; count: number }>(
        "SELECT user, other, kind, count FROM live_interactions ORDER BY user, other",
      )
      .toArray(),
  }));
}

const commitsOf = (l: Ledger, user: string, channel: string) =>
  l.activity.filter((r) => r.user === user && r.channel === channel).reduce((s, r) => s + r.commits, 0);

/** A team with users U1..U8 and public channels C1..C4, set up by import (an import is no event). */
async function world(): Promise<{ team: string; admin: string }> {
  const t = await newTeam();
  const users = Array.from({ length: 8 }, (_, i) => ({ id: `U${i + 1}`, email: `u${i + 1}@live.test` }));
  await ok(api("POST", `/v1/admin/teams/${t.id}/users/import`, { token: t.admin, json: { users } }), 201);
  const channels = Array.from({ length: 4 }, (_, i) => ({ id: `C${i + 1}`, name: `room-${i + 1}` }));
  await ok(api("POST", `/v1/admin/teams/${t.id}/channels/import`, { token: t.admin, json: { channels } }), 201);
  return { team: t.id, admin: t.admin };
}

async function join(w: { team: string; admin: string }, channel: string, users: string[]): Promise<void> {
  await ok(
    api("POST", `/v1/admin/teams/${w.team}/channels/${channel}/members`, {
      token: w.admin,
      json: { user_ids: users },
    }),
    200,
  );
}

async function post(team: string, user: string, channel: string, mentions: string[] = []): Promise<void> {
  const res = await api("POST", `/v1/channels/${channel}/messages`, {
    token: await token(team, user),
    json: { text: "hello", mentions },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** Waits until the consumer has counted at least `n` events for the team. */
async function counted(team: string, n: number): Promise<void> {
  await eventually(
    async () => (await recStore(team).stats()).ledger.events,
    (events) => events >= n,
  );
}

async function rebuild(w: { team: string; admin: string }, build?: "full" | "changed") {
  const res = await api<{
    live: null | { cut: string; rows: number; users: number; channels: number; build: string };
    serving: string | null;
  }>("POST", `/v1/admin/teams/${w.team}/features/rebuild${build ? `?build=${build}` : ""}`, { token: w.admin });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** A candidate's features for a subject, straight from the team's RecStore (what the scorer gets). */
async function featuresOf(team: string, source: string, subject: string, item: string) {
  const block = await recStore(team).candidates(team, source, subject, {});
  return fromBlock(block).find((c) => c.id === item)?.features ?? null;
}

async function ranking(team: string, user: string, source: string): Promise<string[]> {
  const res = await api<{ items: Array<{ id: string }>; degraded: unknown[] }>("POST", "/v1/recommend", {
    token: await token(team, user),
    json: { source, limit: 10 },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.items.map((i) => i.id);
}

describe("live features", () => {
  let w: { team: string; admin: string };
  let before: { ranking: string[]; c3: Record<string, number> | null; c2: Record<string, number> | null };

  beforeAll(async () => {
    w = await world();
    // U1 lives in C1 with U2..U4, who are U1's partners (mentions); U5 alone
    // keeps C2 and C3 going. Everything through the routes.
    await join(w, "C1", ["U1", "U2", "U3", "U4"]);
    await join(w, "C2", ["U5"]);
    await join(w, "C3", ["U5"]);
    await post(w.team, "U1", "C1", ["U2", "U3", "U4"]);
    await post(w.team, "U2", "C1", ["U1"]);
    await post(w.team, "U5", "C2");
    await post(w.team, "U5", "C3");
    // 4 + 1 + 1 joins, 3 invites (the admin added them), 4 messages.
    await counted(w.team, 13);
    const built = await rebuild(w);
    expect(built.serving).toBe("live");
    // U1..U5, and the admin who invited them.
    expect(built.live).toMatchObject({ users: 6, channels: 3 });
    before = {
      ranking: await ranking(w.team, "U1", "channel_browser"),
      c3: await featuresOf(w.team, "channel_browser", "U1", "C3"),
      c2: await featuresOf(w.team, "channel_browser", "U1", "C2"),
    };
  });

  it("posting and joining through the routes change a candidate's features and the served ranking", async () => {
    expect(before.ranking).toEqual(expect.arrayContaining(["C2", "C3"]));
    // C2 and C3 look alike (one member, one message): C3 is not first yet.
    expect(before.ranking[0]).not.toBe("C3");
    expect(before.c3?.partners_active_365_log).toBe(0);
    expect(before.c3?.ch_members_log).toBeCloseTo(Math.log1p(1), 9);
    // U1's partners move into C3 and talk there.
    await join(w, "C3", ["U2", "U3", "U4", "U6"]);
    for (const u of ["U2", "U3", "U4", "U6"]) {
      await post(w.team, u, "C3");
      await post(w.team, u, "C3");
    }
    await counted(w.team, 13 + 4 + 1 + 8);
    await rebuild(w);
    const c3 = await featuresOf(w.team, "channel_browser", "U1", "C3");
    expect(c3?.partners_active_365_log).toBeCloseTo(Math.log1p(3), 9);
    expect(c3?.ch_members_log).toBeCloseTo(Math.log1p(5), 9);
    expect(c3?.ch_commits_30_log).toBeCloseTo(Math.log1p(9), 9);
    // C2 did not move.
    expect(await featuresOf(w.team, "channel_browser", "U1", "C2")).toEqual(before.c2);
    const after = await ranking(w.team, "U1", "channel_browser");
    expect(after[0]).toBe("C3");
    expect(after.indexOf("C3")).toBeLessThan(after.indexOf("C2"));
    expect(after).not.toEqual(before.ranking);
  });

  it("messages posted to a conversation's history count: in a channel as a message, in a DM or group DM as direct", async () => {
    const events0 = (await recStore(w.team).stats()).ledger.events;
    const as = (u: string) => token(w.team, u);
    const opened = await ok<{ conversation: { id: string } }>(
      api("POST", "/v1/conversations", { token: await as("U5"), json: { users: ["U6", "U7"] } }),
      201,
    );
    const group = opened.conversation.id;
    const say = async (u: string, conversation: string, mentions: string[] = []) =>
      ok(
        api("POST", `/v1/conversations/${conversation}/messages`, {
          token: await as(u),
          json: { text: "hi", mentions },
        }),
        201,
      );
    await say("U5", group);
    await say("U6", group);
    await say("U8", "C2", ["U5"]);
    await counted(w.team, events0 + 3);
    const ledger = await ledgerOf(w.team);
    const dm = (from: string, to: string) =>
      ledger.interactions
        .filter((r) => r.user === from && r.other === to && r.kind === "dm")
        .reduce((n, r) => n + r.count, 0);
    expect([dm("U5", "U6"), dm("U5", "U7"), dm("U6", "U5"), dm("U6", "U7")]).toEqual([1, 1, 1, 1]);
    // No channel activity for a DM; the channel message is activity and a mention.
    expect(ledger.activity.some((r) => r.channel === group)).toBe(false);
    expect(commitsOf(ledger, "U8", "C2")).toBe(1);
    const mention = ledger.interactions.filter((r) => r.user === "U8" && r.other === "U5" && r.kind === "mention");
    expect(mention.reduce((n, r) => n + r.count, 0)).toBe(1);
  });

  it("a reaction and an invite through the routes are interactions that move a person's features", async () => {
    const t = await world();
    const as = (u: string) => token(t.team, u);
    const posted = await ok<{ message: { id: string } }>(
      api("POST", "/v1/conversations/C1/messages", { token: await as("U1"), json: { text: "ship it?" } }),
      201,
    );
    const react = async (u: string, add: boolean) =>
      ok(
        api(add ? "POST" : "DELETE", `/v1/conversations/C1/messages/${posted.message.id}/reactions/white_check_mark`, {
          token: await as(u),
        }),
        200,
      );
    await react("U2", true);
    // Already there, taken back, added again: the same reaction, counted once.
    await react("U2", true);
    await react("U2", false);
    await react("U2", true);
    // One's own message: no one else involved.
    await react("U1", true);
    // The admin adds U3 and U4 to C2: two joins and one invite.
    await join(t, "C2", ["U3", "U4"]);
    await counted(t.team, 5);
    const ledger = await ledgerOf(t.team);
    const kinds = ledger.interactions.filter((r) => r.kind === "reaction" || r.kind === "invite");
    expect(kinds.map((r) => [r.user, r.other, r.kind, r.count])).toEqual([
      ["U2", "U1", "reaction", 1],
      ["UADMIN", "U3", "invite", 1],
      ["UADMIN", "U4", "invite", 1],
    ]);
    // A reaction is no activity: U2 has no row in C1.
    expect(commitsOf(ledger, "U2", "C1")).toBe(0);
    expect(ledger.activity.some((r) => r.user === "U2")).toBe(false);
    await rebuild(t);
    // U2's partner is U1 (the reaction); U3 and U4 share a partner (the inviter).
    expect((await featuresOf(t.team, "composer_dm", "U3", "U2"))?.v_partners_log).toBeCloseTo(Math.log1p(1), 9);
    expect((await featuresOf(t.team, "composer_dm", "U3", "U4"))?.common_partners_log).toBeCloseTo(Math.log1p(1), 9);
  });

  it("the coalescing alarm rebuilds after new events without the route", async () => {
    const stats0 = await recStore(w.team).stats();
    await post(w.team, "U7", "C4");
    await counted(w.team, stats0.ledger.events + 1);
    // The alarm is due REC_LIVE_REBUILD_SECONDS after the first new event; run it now.
    expect(await runDurableObjectAlarm(recStore(w.team))).toBe(true);
    const stats = await recStore(w.team).stats();
    expect(stats.live?.snapshotId).not.toBe(stats0.live?.snapshotId);
    expect(stats.live?.channels).toBe(4);
    expect((await featuresOf(w.team, "archive", "U1", "C4"))?.ch_members_log).toBeCloseTo(Math.log1p(1), 9);
  });

  it("the alarm rebuilds only the rows new events changed, the rows a full build gives; a new id that moves the order builds in full", async () => {
    const v = await world();
    // A history with days before the same-day window (365 days) and inside it.
    const today = Math.floor(Date.now() / 86_400_000);
    const ds: CollabDataset = { name: "old", channels: [], activity: [], interactions: [], hours: [] };
    for (const [ago, user, channel] of [
      [700, 1, 2],
      [700, 2, 2],
      [500, 3, 1],
      [500, 3, 2],
      [200, 1, 2],
      [200, 1, 1],
      [200, 4, 1],
    ] as const) {
      ds.activity.push({ day: today - ago, user, channel, commits: 2, files: 0 });
      ds.hours.push({ day: today - ago, user, hour: 10, commits: 2 });
    }
    ds.interactions.push({ day: today - 500, user: 3, other: 1, kind: "merged_pr", count: 1 });
    const history = await api("POST", `/v1/admin/teams/${v.team}/features/history`, {
      token: v.admin,
      body: `${historyLinesOf(ds)
        .map((l) => JSON.stringify(l))
        .join("\n")}\n`,
      contentType: "application/x-ndjson",
    });
    expect(history.status, JSON.stringify(history.body)).toBe(201);
    await join(v, "C1", ["U1", "U2", "U3"]);
    await join(v, "C2", ["U4"]);
    await post(v.team, "U1", "C1", ["U2"]);
    await post(v.team, "U4", "C2");
    // 4 joins, 2 invites (one per add), 2 messages.
    await counted(v.team, 8);
    // Today's first events move the cut: a full build, whatever was asked.
    expect((await rebuild(v)).live).toMatchObject({ build: "full" });
    const rowsOf = () =>
      runInDurableObject(recStore(v.team), (_i, state) =>
        state.storage.sql
          .exec<{ kind: string; key: string; data: string }>("SELECT kind, key, data FROM live_rows ORDER BY kind, key")
          .toArray(),
      );

    // Today again (the cut stays): U1 posts in C2 mentioning U4, U4 in C1. C1's
    // day 500 days ago was U3's only, who is not among the rows read for U1 and U4.
    await post(v.team, "U1", "C2", ["U4"]);
    await post(v.team, "U4", "C1");
    await counted(v.team, 10);
    expect(await runDurableObjectAlarm(recStore(v.team))).toBe(true);
    const changed = await recStore(v.team).stats();
    expect(changed.live?.build).toBe("changed");
    const patched = await rowsOf();
    // U1 in C2: 700 and 200 days ago (history) and today, in the windows 30, 90, 365, all.
    expect(JSON.parse(patched.find((r) => r.kind === "member" && r.key === "U1 C2")?.data ?? "{}").d).toEqual([
      1, 1, 2, 3,
    ]);
    const full = await rebuild(v, "full");
    expect(full.live).toMatchObject({ build: "full", rows: changed.live?.rows, users: changed.live?.users });
    expect(patched).toEqual(await rowsOf());

    // U7 is new and sorts before the admin's id "UADMIN" (string order): every
    // later rank moves, so the alarm builds in full, and gives the same rows.
    await post(v.team, "U7", "C1");
    await counted(v.team, 11);
    expect(await runDurableObjectAlarm(recStore(v.team))).toBe(true);
    expect((await recStore(v.team).stats()).live?.build).toBe("full");
    const rebuilt = await rowsOf();
    await rebuild(v, "full");
    expect(rebuilt).toEqual(await rowsOf());

    // The route builds what changed too, unless asked for everything; anything else is refused.
    await post(v.team, "U3", "C2");
    await counted(v.team, 12);
    expect((await rebuild(v)).live).toMatchObject({ build: "changed" });
    const bad = await api<{ error: { code: string } }>("POST", `/v1/admin/teams/${v.team}/features/rebuild?build=all`, {
      token: v.admin,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBeTruthy();
  });

  it("a ledger past what a full build takes: the history upload is refused (413), the build refused (409), the last snapshot serves", async () => {
    // REC_LIVE_MAX_ROWS is 500 in the tests (vitest.config.ts).
    const v = await world();
    const today = Math.floor(Date.now() / 86_400_000);
    const lines = (n: number) =>
      `${Array.from({ length: n }, (_, i) =>
        JSON.stringify({
          table: "activity",
          day: isoOf(today - 1 - (i % 200)),
          user_id: `U${1 + (i % 6)}`,
          channel_id: `C${1 + (i % 3)}`,
          commits: 1,
        }),
      ).join("\n")}\n`;
    const upload = (n: number) =>
      api<{ rows?: number; error?: { code: string; message: string } }>(
        "POST",
        `/v1/admin/teams/${v.team}/features/history`,
        { token: v.admin, body: lines(n), contentType: "application/x-ndjson" },
      );
    const first = await upload(300);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const built = await recStore(v.team).stats();
    expect(built.live?.snapshotId).toBeTruthy();
    // The snapshot-size estimate the build is also held to (LIVE_SNAPSHOT_MAX_ROWS): 6 people,
    // 3 channels, 6 memberships (person i % 6 is always in channel i % 3), no pairs or hours.
    const size = await runInDurableObject(recStore(v.team), (_i, state) => ledgerSize(state.storage.sql));
    expect(size).toEqual({ rows: 300, live: 0, features: 15 });

    const tooMany = await upload(600);
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error?.message).toMatch(
      /with this history, a ledger of 600 rows \(0 of them live events\) is more than the 500 a full live feature build reads; nothing was imported/,
    );
    expect((await recStore(v.team).stats()).ledger.history).toBe(first.body.rows);

    // 250 joins today: 550 rows, and today's cut needs a full build.
    const events = Array.from({ length: 250 }, (_, i) => joinEvents(v.team, `C${i}`, ["U1"], Date.now())[0]);
    await recStore(v.team).ingestEvents(
      v.team,
      events.filter((e) => e !== undefined),
    );
    const refused = await api<{ error: { code: string; message: string } }>(
      "POST",
      `/v1/admin/teams/${v.team}/features/rebuild`,
      { token: v.admin },
    );
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/a ledger of 550 rows \(250 of them live events\) is more than the 500/);
    expect(await runDurableObjectAlarm(recStore(v.team))).toBe(true);
    const after = await recStore(v.team).stats();
    expect(after.live?.snapshotId).toBe(built.live?.snapshotId);
    expect(after.serving).toBe("live");
  });

  it("a history published whose build did not follow (the object stopped between the two) is built in full next, never patched", async () => {
    const v = await world();
    await join(v, "C1", ["U1", "U2"]);
    // 2 joins and the admin's invite.
    await counted(v.team, 3);
    expect((await rebuild(v)).live).toMatchObject({ build: "full" });
    const today = Math.floor(Date.now() / 86_400_000);
    await runInDurableObject(recStore(v.team), async (instance: RecStore) => {
      const upload = await instance.beginHistory();
      await instance.appendHistory(upload, {
        activity: [{ day: today - 40, user: "U3", channel: "C2", commits: 2 }],
        interactions: [],
        hours: [],
      });
      // The build after the publish never runs: the object stops there.
      const build = instance.rebuildLive;
      instance.rebuildLive = async () => ({ live: null, refused: null });
      try {
        await instance.publishHistory(v.team, upload);
      } finally {
        instance.rebuildLive = build;
      }
    });
    // An event of today (the cut stays): what it changed alone would leave the history out.
    await post(v.team, "U1", "C1");
    await counted(v.team, 4);
    expect((await rebuild(v)).live).toMatchObject({ build: "full" });
    const member = await runInDurableObject(recStore(v.team), (_i, state) =>
      state.storage.sql.exec("SELECT data FROM live_rows WHERE kind = 'member' AND key = 'U3 C2'").toArray(),
    );
    expect(member).toHaveLength(1);
  });

  it("the same event delivered twice counts once", async () => {
    const [event] = joinEvents(w.team, "C4", ["U8"], Date.now());
    const marker = { ...event, id: `${event?.id}-marker`, user: "U7" };
    const events0 = (await recStore(w.team).stats()).ledger.events;
    await workerEnv.FEATURE_EVENTS.send(event);
    await counted(w.team, events0 + 1);
    // Again, in another batch, with a new event behind it.
    await workerEnv.FEATURE_EVENTS.sendBatch([{ body: event }, { body: marker }]);
    await counted(w.team, events0 + 2);
    // And a third time straight into the consumer.
    const batch = createMessageBatch("feature-events", [
      { id: "again", timestamp: new Date(), attempts: 1, body: event },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, workerEnv, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["again"]);
    const stats = await recStore(w.team).stats();
    expect(stats.ledger.events).toBe(events0 + 2);
    const ledger = await ledgerOf(w.team);
    expect(ledger.activity.filter((r) => r.user === "U8" && r.channel === "C4")).toHaveLength(1);
  });

  it("bad events are acknowledged and dropped with a log, never retried; good ones in the batch count", async () => {
    const events0 = (await recStore(w.team).stats()).ledger.events;
    const [good] = joinEvents(w.team, "C2", ["U8"], Date.now());
    const bodies: Array<{ id: string; body: unknown }> = [
      { id: "junk", body: { hello: "world" } },
      { id: "text", body: "message" },
      { id: "version", body: { ...good, v: 9 } },
      { id: "spaces", body: { ...good, id: "a b" } },
      { id: "kind", body: { ...good, type: "reaction" } },
      { id: "good", body: good },
    ];
    const batch = createMessageBatch<unknown>(
      "feature-events",
      bodies.map((b) => ({ ...b, timestamp: new Date(), attempts: 1 })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch, workerEnv, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual(bodies.map((b) => b.id).sort());
    expect((await recStore(w.team).stats()).ledger.events).toBe(events0 + 1);
    // A post whose mentions are no user ids still answers 201, and its event still counts (the mentions are dropped).
    await post(w.team, "U1", "C2", ["not an id!", "U5"]);
    await counted(w.team, events0 + 2);
    const ledger = await ledgerOf(w.team);
    expect(ledger.interactions.filter((i) => i.user === "U1" && i.kind === "mention").map((i) => i.other)).toContain(
      "U5",
    );
  });

  it("another team's events never reach this team's ledger", async () => {
    const other = await world();
    const mine0 = await ledgerOf(w.team);
    // The same user and channel ids in the other team.
    await join(other, "C1", ["U1"]);
    await post(other.team, "U1", "C1");
    await post(other.team, "U1", "C1");
    await counted(other.team, 4);
    const theirs = await ledgerOf(other.team);
    expect(commitsOf(theirs, "U1", "C1")).toBe(2);
    expect(await ledgerOf(w.team)).toEqual(mine0);
    // The object refuses an event naming another team even if one were sent to it.
    const [foreign] = joinEvents(other.team, "C1", ["U2"], Date.now());
    expect(await recStore(w.team).ingestEvents(w.team, [foreign as never])).toEqual({
      added: 0,
      duplicates: 0,
      foreign: 1,
    });
    expect(await ledgerOf(w.team)).toEqual(mine0);
    // And the rebuild route is the team's admins' (another team's admin: 404, a team not confirmed to strangers).
    const res = await api("POST", `/v1/admin/teams/${w.team}/features/rebuild`, { token: other.admin });
    expect(res.status).toBe(404);
  });

  it("live events alone never replace an imported count snapshot; with the raw history uploaded, the newer one is served", async () => {
    const t = await world();
    await join(t, "C1", ["U1", "U2"]);
    await counted(t.team, 3);
    expect((await rebuild(t)).serving).toBe("live");
    const rows = [
      { kind: "meta", key: "snapshot", data: { format: 1, dataset: "imported", cut: 20000, dims: 0 } },
      { kind: "user", key: "U1", data: { r: 0 } },
      { kind: "channel", key: "C1", data: { r: 0 } },
    ];
    const res = await api("POST", `/v1/admin/teams/${t.team}/features/import?as_of=2024-10-04&dataset=imported`, {
      token: await platformToken(),
      body: `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`,
      contentType: "application/x-ndjson",
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect((await rebuild(t)).serving).toBe("imported");
    expect((await recStore(t.team).stats()).serving).toBe("imported");
    // A live snapshot of a few events would replace the team's whole past: the import stays.
    await post(t.team, "U2", "C1");
    await counted(t.team, 4);
    expect((await rebuild(t)).serving).toBe("imported");
    // The raw history in the ledger too: the live snapshot holds the past, and is newer.
    const history = `${JSON.stringify({ table: "activity", day: "2024-10-01", user_id: "U1", channel_id: "C1", commits: 2 })}\n`;
    const up = await api("POST", `/v1/admin/teams/${t.team}/features/history`, {
      token: t.admin,
      body: history,
      contentType: "application/x-ndjson",
    });
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    expect((await recStore(t.team).stats()).serving).toBe("live");
    // An imported snapshot published after that is newer again.
    const again = await api("POST", `/v1/admin/teams/${t.team}/features/import?as_of=2024-10-04&dataset=imported`, {
      token: await platformToken(),
      body: `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`,
      contentType: "application/x-ndjson",
    });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect((await rebuild(t)).serving).toBe("imported");
  });

  it("the hours row is the poster's local hour when the profile has a time zone, else UTC", async () => {
    const t = await world();
    await ok(
      api("PATCH", `/v1/admin/teams/${t.team}/users/U1/profile`, { token: t.admin, json: { tz: "Asia/Kolkata" } }),
      200,
    );
    const at = Date.now();
    await post(t.team, "U1", "C1");
    await post(t.team, "U2", "C1");
    await counted(t.team, 2);
    const hours = await runInDurableObject(recStore(t.team), (_i, state) =>
      state.storage.sql
        .exec<{ user: string; hour: number }>("SELECT user, hour FROM live_hours ORDER BY user")
        .toArray(),
    );
    // Kolkata is UTC+5:30 all year; allow the post to straddle an hour boundary.
    const local = (ms: number) => new Date(ms + 5.5 * 3_600_000).getUTCHours();
    expect([local(at), local(Date.now())]).toContain(hours.find((h) => h.user === "U1")?.hour);
    expect([new Date(at).getUTCHours(), new Date().getUTCHours()]).toContain(hours.find((h) => h.user === "U2")?.hour);
  });

  it("a team without events has no live snapshot", async () => {
    const t = await world();
    expect(await rebuild(t)).toEqual({ live: null, serving: null });
  });

  it("an imported history is the same rows: built alone it equals the import path, then live events add to it, and a re-import replaces it", async () => {
    const t = await world();
    const day0 = Math.floor(Date.now() / 86_400_000) - 40;
    const ds: CollabDataset = { name: "live", channels: [], activity: [], interactions: [], hours: [] };
    for (let u = 1; u <= 6; u++) {
      for (let k = 0; k < 5; k++) {
        const day = day0 + ((u * 7 + k * 5) % 30);
        ds.activity.push({ day, user: u, channel: 1 + ((u + k) % 3), commits: 1 + (k % 2), files: 0 });
        ds.hours.push({ day, user: u, hour: (u * 5 + k) % 24, commits: 1 });
      }
      if (u < 6) ds.interactions.push({ day: day0 + u, user: u, other: u + 1, kind: "merged_pr", count: 2 });
    }
    const lines = historyLinesOf(ds);
    const upload = (body: string) =>
      api<{ rows?: number; lines?: number; error?: { code: string; message: string } }>(
        "POST",
        `/v1/admin/teams/${t.team}/features/history`,
        { token: t.admin, body, contentType: "application/x-ndjson" },
      );
    const ndjson = `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
    // An imported count snapshot first: its embedding vectors (trained offline) are carried by id.
    const vectors = [
      { kind: "meta", key: "snapshot", data: { format: 1, dataset: "imported", cut: day0, dims: 2 } },
      { kind: "user", key: "U1", data: { r: 0, v: [0.6, 0.8] } },
      { kind: "channel", key: "C2", data: { r: 0, v: [1, 0] } },
    ];
    const counts = await api(
      "POST",
      `/v1/admin/teams/${t.team}/features/import?as_of=${isoOf(day0)}&dataset=imported`,
      {
        token: t.admin,
        body: `${vectors.map((r) => JSON.stringify(r)).join("\n")}\n`,
        contentType: "application/x-ndjson",
      },
    );
    expect(counts.status, JSON.stringify(counts.body)).toBe(201);
    const first = await upload(ndjson);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body.lines).toBe(lines.length);
    const liveRows = async () =>
      runInDurableObject(recStore(t.team), (_i, state) =>
        state.storage.sql
          .exec<{ kind: string; key: string; data: string }>("SELECT kind, key, data FROM live_rows ORDER BY kind, key")
          .toArray(),
      );
    const byKey = (rows: Array<{ kind: string; key: string; data: string }>) =>
      rows
        .filter((r) => r.kind !== "meta")
        .map((r) => `${r.kind} ${r.key} ${r.data}`)
        .sort();
    const cut = Math.max(...ds.activity.map((a) => a.day), ...ds.interactions.map((i) => i.day)) + 1;
    const expected = snapshotToRows(
      buildSnapshot(ds, cut, { dims: 2, users: { "1": [0.6, 0.8] }, channels: { "2": [1, 0] } }),
    );
    expect(byKey(await liveRows())).toEqual(byKey(expected));
    expect((await recStore(t.team).stats()).serving).toBe("live");

    // A bad line anywhere: 400, the history stays.
    const bad = await upload(
      `${JSON.stringify(lines[0])}\n{"table":"activity","day":"2024-13-01","user_id":"U1","channel_id":"C1","commits":1}\n`,
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toMatch(/line 2/);
    expect(byKey(await liveRows())).toEqual(byKey(expected));

    // Live events add to the history: U1 posts in C3 today.
    await post(t.team, "U1", "C3");
    await counted(t.team, 1);
    await rebuild(t);
    const u1c3 = (await liveRows()).find((r) => r.kind === "member" && r.key === "U1 C3");
    const before = expected.find((r) => r.kind === "member" && r.key === "U1 C3");
    expect(JSON.parse(u1c3?.data ?? "{}").c[3]).toBe((before ? JSON.parse(before.data).c[3] : 0) + 1);

    // The same history again replaces the previous one: nothing counted twice.
    expect((await upload(ndjson)).status).toBe(201);
    expect(JSON.parse((await liveRows()).find((r) => r.key === "U1 C3")?.data ?? "{}").c[3]).toBe(
      JSON.parse(u1c3?.data ?? "{}").c[3],
    );
    expect((await recStore(t.team).stats()).ledger.history).toBeGreaterThan(0);
  });
});
