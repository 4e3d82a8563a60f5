import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { type CollabDataset, channelIdOf, dayOf, snapshotAt, userIdOf } from "../../src/datasets/collab";
import { buildSnapshot, snapshotToRows } from "../../src/recommend/features/index";
import { uniqueTeamId } from "../contract/fixtures";
import { api, ok, platformToken } from "./client";

// A small team that the Recommend API can serve (directory and feature
// snapshot, through the admin API), for the readout and feature-health
// suites: the synthetic dataset of recommend.test.ts, twelve people and eight
// places, at 2024-01-01.

const CUT = "2024-01-01";
const T = dayOf(CUT);

function dataset(): CollabDataset {
  const activity: CollabDataset["activity"] = [];
  const hours: CollabDataset["hours"] = [];
  const interactions: CollabDataset["interactions"] = [];
  const act = (day: number, user: number, channel: number, commits = 1) => {
    activity.push({ day, user, channel, commits, files: commits });
    hours.push({ day, user, hour: (user * 3 + channel) % 24, commits });
  };
  for (let u = 1; u <= 11; u++) {
    for (let k = 0; k < 6; k++) act(T - 10 - ((u * 37 + k * 53) % 700), u, 1 + ((u + k) % 7), 1 + (k % 3));
  }
  for (let u = 1; u <= 10; u++)
    interactions.push({ day: T - 30 - u, user: u, other: u + 1, kind: "merged_pr", count: 1 });
  const channels = Array.from({ length: 8 }, (_, i) => ({
    channel: i + 1,
    name: `lib/part${i + 1}`,
    firstDay: T - 800,
  }));
  return { name: "synthetic", channels, activity, interactions, hours };
}

function embeddings() {
  const vec = (i: number) => [Math.cos(i), Math.sin(i)];
  return {
    dims: 2,
    users: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [String(i + 1), vec(i + 1)])),
    channels: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [String(i + 1), vec(i * 2)])),
  };
}

/** Creates the team; its users are userIdOf(1..11). */
export async function recommendTeam(prefix = "TRDT"): Promise<string> {
  const team = uniqueTeamId(prefix);
  const operator = await platformToken();
  const ds = dataset();
  const snap = snapshotAt(ds, T);
  await ok(api("POST", "/v1/admin/teams", { token: operator, json: { id: team, name: "Readout Co" } }), 201);
  const base = `/v1/admin/teams/${team}`;
  const users = Array.from({ length: 11 }, (_, i) => ({ id: userIdOf(i + 1), email: `u${i + 1}@readout.test` }));
  await ok(api("POST", `${base}/users/import`, { token: operator, json: { users } }), 201);
  const channels = snap.channels.map((c) => ({ id: channelIdOf(c.channel), name: c.name }));
  await ok(api("POST", `${base}/channels/import`, { token: operator, json: { channels } }), 201);
  const memberships = snap.memberships.map((m) => ({ channel_id: channelIdOf(m.channel), user_id: userIdOf(m.user) }));
  await ok(api("POST", `${base}/memberships/import`, { token: operator, json: { memberships } }), 201);
  const rows = snapshotToRows(buildSnapshot(ds, T, embeddings()));
  const body = `${rows.map((r) => JSON.stringify({ kind: r.kind, key: r.key, data: JSON.parse(r.data) })).join("\n")}\n`;
  const res = await SELF.fetch(`https://edge.test${base}/features/import?as_of=${CUT}&dataset=synthetic`, {
    method: "POST",
    headers: { authorization: `Bearer ${operator}`, "content-type": "application/x-ndjson" },
    body,
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return team;
}

export { userIdOf };
