import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { uniqueTeamId } from "../contract/fixtures";
import { platformToken, token } from "./client";

// The feature store's upload route and the team's RecStore: whole snapshots
// only, copied to the edge on publish; and the served log feedback is checked
// against.

const ndjson = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;

async function upload(team: string, body: string, as = "admin", asOf = "2020-01-01"): Promise<Response> {
  // "admin": the operator (administers any team); else a user the team does not have.
  const t = as === "admin" ? await platformToken() : await token(team, "UMEMBER");
  return SELF.fetch(`https://edge.test/v1/admin/teams/${team}/features/import?as_of=${asOf}&dataset=fixture`, {
    method: "POST",
    headers: { authorization: `Bearer ${t}`, "content-type": "application/x-ndjson" },
    body,
  });
}

const recStore = (team: string) => env.REC_STORE.get(env.REC_STORE.idFromName(team));

describe("feature snapshots", () => {
  it("publishes an uploaded snapshot and copies it to the team's RecStore", async () => {
    const team = uniqueTeamId("TR");
    const rows = [
      { kind: "u", key: "U1", data: { days_90: 3, vec: [0.1, 0.2] } },
      { kind: "c", key: "C1", data: { users_90: 2 } },
      { kind: "uc", key: "U1:C1", data: { days_all: 5, first: 18000 } },
    ];
    const res = await upload(team, ndjson(rows));
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ as_of: "2020-01-01", dataset: "fixture", rows: 3 });
    const stats = await recStore(team).stats();
    expect(stats.snapshot).toMatchObject({ asOf: 18262, dataset: "fixture", rows: 3 });
    expect(stats.rows).toBe(3);
    // A newer snapshot replaces it whole.
    expect(
      (await upload(team, ndjson([{ kind: "u", key: "U2", data: { days_90: 1 } }]), "admin", "2021-01-01")).status,
    ).toBe(201);
    expect(await recStore(team).stats()).toMatchObject({ rows: 1, snapshot: { asOf: 18628 } });
  });

  it("refuses bad rows, text, duplicates and non-admins with 4xx, keeping the current snapshot", async () => {
    const team = uniqueTeamId("TR");
    await upload(team, ndjson([{ kind: "u", key: "U1", data: { n: 1 } }]));
    const bad: Array<[string, number, RegExp]> = [
      [
        ndjson([
          { kind: "u", key: "U2", data: { n: 1 } },
          { kind: "u", key: "U3", data: { name: "ada" } },
        ]),
        400,
        /line 2: data.name must be a number/,
      ],
      [
        ndjson([
          { kind: "u", key: "U2", data: { n: 1 } },
          { kind: "u", key: "U2", data: { n: 2 } },
        ]),
        400,
        /appears twice/,
      ],
      ["{not json\n", 400, /line 1: not valid JSON/],
      [ndjson([{ kind: "USER", key: "U2", data: {} }]), 400, /kind must be/],
      ["", 400, /empty snapshot/],
    ];
    for (const [body, status, message] of bad) {
      const res = await upload(team, body);
      expect(res.status, body.slice(0, 60)).toBe(status);
      const json = (await res.json()) as { error: { message: string } };
      expect(json.error.message).toMatch(message);
    }
    expect((await upload(team, ndjson([{ kind: "u", key: "U9", data: {} }]), "member")).status).toBe(403);
    const noDate = await SELF.fetch(`https://edge.test/v1/admin/teams/${team}/features/import?dataset=x`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${await platformToken()}`,
        "content-type": "application/x-ndjson",
      },
      body: ndjson([{ kind: "u", key: "U1", data: {} }]),
    });
    expect(noDate.status).toBe(400);
    const stats = await recStore(team).stats();
    expect(stats.rows).toBe(1);
    expect(stats.snapshot?.asOf).toBe(18262);
  });
});

describe("served log", () => {
  it("accepts feedback only for the user's own request and items it served", async () => {
    const team = uniqueTeamId("TR");
    const store = recStore(team);
    await store.recordServed({
      requestId: "r1",
      user: "U1",
      source: "channel_browser",
      experiment: "e",
      arm: "a",
      items: ["C1", "C2"],
      ts: Date.now(),
    });
    expect(await store.checkFeedback("r1", "U1", ["C2"])).toMatchObject({
      ok: true,
      request: { source: "channel_browser", arm: "a" },
    });
    expect(await store.checkFeedback("r1", "U2", ["C2"])).toMatchObject({ ok: false, code: "not_found" });
    expect(await store.checkFeedback("nope", "U1", ["C2"])).toMatchObject({ ok: false, code: "not_found" });
    expect(await store.checkFeedback("r1", "U1", ["C3"])).toMatchObject({ ok: false, code: "unknown_item" });
  });
});
