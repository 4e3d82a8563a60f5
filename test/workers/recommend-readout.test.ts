import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { dcgOfClicks } from "../../src/recommend/readout";
import { api, eventually, newTeam, ok, platformToken, token } from "./client";
import { recommendTeam, userIdOf } from "./rec-team";

// GET /v1/admin/experiments/:source/readout end to end inside workerd: a
// two-arm experiment stored through the admin API, answers served by POST
// /v1/recommend, impressions and clicks through /v1/recommend/feedback, the
// rec-logs queue consumer writing R2, and the readout counting from R2
// exactly what was sent, once.

const SOURCE = "archive";
// Fixed, so the split of the eleven users between the arms is fixed too.
const EXPERIMENT = "archive-readout-suite";

interface Served {
  request_id: string;
  items: Array<{ id: string; rank: number }>;
  experiment: { name: string; arm: string };
}
interface ArmReadout {
  arm: string;
  models: string[];
  requests: number;
  served_items: number;
  impression_events: number;
  impressions: number;
  clicks: number;
  ctr: { value: number; low: number; high: number };
  dcg: { mean: number; low: number; high: number; sd: number };
  vs_baseline: null | { ctr: { diff: number; low: number; high: number }; dcg: { diff: number } };
}
interface Readout {
  experiment: { name: string; current: boolean };
  from: string;
  to: string;
  impression_basis: string;
  baseline: string;
  arms: ArmReadout[];
  dropped: Record<string, number>;
  read: { objects: number; bytes: number; lines: number };
}

const today = () => new Date().toISOString().slice(0, 10);
const yesterday = () => new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const readoutPath = (q: string) => `/v1/admin/experiments/${SOURCE}/readout${q}`;

describe("experiment readout", () => {
  let team = "";
  let bundled = "";

  beforeAll(async () => {
    team = await recommendTeam();
    const listed = await ok<{ models: Array<{ name: string; version: string; origin: string }> }>(
      api("GET", `/v1/admin/models/${SOURCE}`, { token: await platformToken() }),
    );
    const b = listed.models.find((m) => m.origin === "bundled");
    bundled = `${b?.name}@${b?.version}`;
  });

  it("counts each arm's requests, impressions, clicks and DCG from the logs, exactly and once", async () => {
    const operator = await platformToken();
    await ok(
      api("PUT", `/v1/admin/recommend/experiments/${SOURCE}`, {
        token: operator,
        json: {
          name: EXPERIMENT,
          arms: [
            { name: "treatment", weight: 1, model: bundled },
            { name: "control", weight: 1, model: "hand_tuned" },
          ],
        },
      }),
    );
    type Expect = { requests: number; served: number; impressions: number; clicks: number; dcg: number[] };
    const expected = new Map<string, Expect>();
    for (let u = 1; u <= 11; u++) {
      const as = await token(team, userIdOf(u));
      // Two answers for some users: the readout counts requests, not users.
      for (let k = 0; k < (u % 3 === 0 ? 2 : 1); k++) {
        const a = await ok<Served>(api("POST", "/v1/recommend", { token: as, json: { source: SOURCE, limit: 4 } }));
        expect(a.experiment.name).toBe(EXPERIMENT);
        const e = expected.get(a.experiment.arm) ?? { requests: 0, served: 0, impressions: 0, clicks: 0, dcg: [] };
        expected.set(a.experiment.arm, e);
        e.requests++;
        e.served += a.items.length;
        // Users 1-8 report what they saw; even users click the item at rank u % 3 + 1 (twice: one click).
        const events: Array<{ item: string; action: "impression" | "click" }> = [];
        if (u <= 8) for (const it of a.items) events.push({ item: it.id, action: "impression" });
        const clicked = a.items[u % 3];
        if (u % 2 === 0 && clicked)
          events.push({ item: clicked.id, action: "click" }, { item: clicked.id, action: "click" });
        // Users 9-11 send no impression events: a click counts as seen.
        e.impressions += u <= 8 ? a.items.length : u % 2 === 0 && clicked ? 1 : 0;
        e.clicks += u % 2 === 0 && clicked ? 1 : 0;
        e.dcg.push(u % 2 === 0 && clicked ? dcgOfClicks([clicked.rank]) : 0);
        if (events.length > 0) {
          await ok(
            api("POST", "/v1/recommend/feedback", { token: as, json: { request_id: a.request_id, events } }),
            202,
          );
        }
      }
    }
    expect([...expected.keys()].sort()).toEqual(["control", "treatment"]);
    const total = [...expected.values()].reduce((s, e) => s + e.requests, 0);
    const totalClicks = [...expected.values()].reduce((s, e) => s + e.clicks, 0);
    expect(totalClicks).toBeGreaterThan(0);

    // The consumer writes asynchronously: poll the readout until every request and click is in.
    const q = `?from=${yesterday()}&to=${today()}`;
    const r = await eventually(
      async () => (await api<Readout>("GET", readoutPath(q), { token: operator })).body,
      (b) =>
        Array.isArray(b.arms) &&
        b.arms.reduce((s, a) => s + a.requests, 0) === total &&
        b.arms.reduce((s, a) => s + a.clicks, 0) === totalClicks,
    );
    expect(r.experiment).toEqual({ name: EXPERIMENT, current: true });
    expect(r.impression_basis).toBe("feedback");
    expect(r.baseline).toBe("control");
    // The experiment's order: treatment first, compared with control.
    expect(r.arms.map((a) => a.arm)).toEqual(["treatment", "control"]);
    for (const a of r.arms) {
      const e = expected.get(a.arm) as Expect;
      expect([a.requests, a.served_items, a.impressions, a.clicks], a.arm).toEqual([
        e.requests,
        e.served,
        e.impressions,
        e.clicks,
      ]);
      expect(a.ctr.value).toBeCloseTo(e.clicks / e.impressions, 5);
      expect(a.ctr.low).toBeLessThanOrEqual(a.ctr.value);
      expect(a.ctr.high).toBeGreaterThanOrEqual(a.ctr.value);
      const mean = e.dcg.reduce((s, x) => s + x, 0) / e.dcg.length;
      expect(a.dcg.mean).toBeCloseTo(mean, 5);
      expect(a.dcg.low).toBeLessThanOrEqual(a.dcg.mean);
    }
    const treatment = r.arms[0] as ArmReadout;
    const control = r.arms[1] as ArmReadout;
    expect(control.vs_baseline).toBeNull();
    expect(control.models).toHaveLength(1);
    expect(control.models).not.toContain(bundled);
    expect(treatment.models).toEqual([bundled]);
    expect(treatment.vs_baseline?.ctr.diff).toBeCloseTo(treatment.ctr.value - control.ctr.value, 5);
    expect(treatment.vs_baseline?.dcg.diff).toBeCloseTo(treatment.dcg.mean - control.dcg.mean, 5);

    // The same readout by name, once the source has moved on to another experiment; the
    // moved-on current one has no answers yet.
    await ok(api("DELETE", `/v1/admin/recommend/experiments/${SOURCE}`, { token: operator }));
    const past = await ok<Readout>(api("GET", readoutPath(`${q}&experiment=${EXPERIMENT}`), { token: operator }));
    expect(past.experiment).toEqual({ name: EXPERIMENT, current: false });
    expect(past.arms.map((a) => [a.arm, a.requests, a.clicks])).toEqual(
      [...r.arms].sort((x, y) => (x.arm < y.arm ? -1 : 1)).map((a) => [a.arm, a.requests, a.clicks]),
    );
    const now = await ok<Readout>(api("GET", readoutPath(q), { token: operator }));
    expect(now.experiment).toEqual({ name: `${SOURCE}-default`, current: true });
    expect(now.arms.map((a) => a.arm)).toEqual(["default"]);
  });

  it("counts a message left twice by a retried batch once", async () => {
    const operator = await platformToken();
    const name = "archive-readout-dupes";
    const day = today();
    const line = (mid: string, body: Record<string, unknown>) => JSON.stringify({ message_id: mid, ...body });
    const served = {
      kind: "served",
      request_id: "dupe-r1",
      team: "TX",
      user: "U1",
      source: SOURCE,
      experiment: name,
      arm: "a",
      model: "hand_tuned",
      version: "hand_tuned",
      fallback: false,
      ts: Date.now(),
      feature_names: [],
      items: [
        { item: "C1", rank: 1, score: 1, features: [] },
        { item: "C2", rank: 2, score: 0.5, features: [] },
      ],
    };
    const click = {
      kind: "feedback",
      request_id: "dupe-r1",
      team: "TX",
      user: "U1",
      source: SOURCE,
      arm: "a",
      item: "C2",
      action: "click",
      ts: Date.now(),
    };
    // A batch and its regrouped retry: the same message ids in two objects.
    const body = `${line("m1", served)}\n${line("m2", click)}\n`;
    await env.REC_LOG_STORE.put(`rec-logs/source=${SOURCE}/day=${day}/dupe-first.ndjson`, body);
    await env.REC_LOG_STORE.put(`rec-logs/source=${SOURCE}/day=${day}/dupe-retry.ndjson`, body);
    const r = await ok<Readout>(api("GET", readoutPath(`?experiment=${name}`), { token: operator }));
    expect(r.arms.map((a) => [a.arm, a.requests, a.served_items, a.clicks])).toEqual([["a", 1, 2, 1]]);
    expect(r.arms[0]?.dcg.mean).toBeCloseTo(1 / Math.log2(3), 5);
    expect(r.dropped.duplicate_messages).toBe(2);
  });

  it("is for operators only: a member or another team's admin gets 403, an unknown source 404, bad ranges 400", async () => {
    const member = await token(team, userIdOf(1));
    const other = await newTeam();
    for (const t of [member, other.admin]) {
      const r = await api<{ error: { code: string } }>("GET", readoutPath(""), { token: t });
      expect([r.status, r.body.error.code]).toEqual([403, "forbidden"]);
      const ghost = await api<{ error: { code: string } }>("GET", "/v1/admin/experiments/nope/readout", { token: t });
      expect(ghost.status).toBe(403);
    }
    const operator = await platformToken();
    const unknown = await api<{ error: { code: string } }>("GET", "/v1/admin/experiments/nope/readout", {
      token: operator,
    });
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "unknown_source"]);
    for (const q of [
      "?from=2026-01-10&to=2026-01-01",
      "?from=2025-01-01&to=2025-12-31",
      "?from=2026-02-30",
      "?to=yesterday",
      "?experiment=no%20spaces",
      "?colour=blue",
    ]) {
      const r = await api<{ error: { code: string; message: string } }>("GET", readoutPath(q), { token: operator });
      expect(r.status, q).toBe(400);
      expect(r.body.error.message.length, q).toBeGreaterThan(0);
    }
  });

  it("refuses a range whose logs exceed the byte cap with a 400 that says so, reading nothing", async () => {
    const operator = await platformToken();
    // Past days of their own: the cap is checked on the listing before any object is read.
    const days = ["2025-06-01", "2025-06-02", "2025-06-03"];
    const big = `${JSON.stringify({ message_id: "x", kind: "feedback", pad: "p".repeat(12 * 1024 * 1024) })}\n`;
    for (const d of days) await env.REC_LOG_STORE.put(`rec-logs/source=${SOURCE}/day=${d}/big.ndjson`, big);
    const r = await api<{ error: { code: string; message: string; details: { over_at: string } } }>(
      "GET",
      readoutPath("?from=2025-06-01&to=2025-06-03"),
      { token: operator },
    );
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/exceed what one readout reads.*fewer days/);
    expect(r.body.error.details.over_at).toBe("2025-06-03");
    const one = await ok<Readout>(api("GET", readoutPath("?from=2025-06-01&to=2025-06-01"), { token: operator }));
    expect(one.read.objects).toBe(1);
  });
});
