import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { type CollabDataset, channelIdOf, dayOf, snapshotAt, userIdOf } from "../../src/datasets/collab";
import { buildSnapshot, snapshotToRows } from "../../src/recommend/features/index";
import { SOURCE_NAMES } from "../../src/recommend/sources";
import { uniqueTeamId } from "../contract/fixtures";
import { addUsers, api, eventually, newTeam, ok, platformToken, token } from "./client";

// POST /v1/recommend and /feedback end to end inside workerd: a small team
// built from a synthetic dataset in the rails-collab format through the admin
// API (directory) and the feature snapshot upload, every source served by
// its recommender with the bundled ONNX default models, visibility enforced,
// feedback checked and everything logged to R2 through the rec-logs queue.

const CUT = "2024-01-01";
const T = dayOf(CUT);

/** Twelve people, eight places; place 8 becomes private (members 1 and 2); person 12 arrives after the cut. */
function dataset(): CollabDataset {
  const activity: CollabDataset["activity"] = [];
  const hours: CollabDataset["hours"] = [];
  const interactions: CollabDataset["interactions"] = [];
  const act = (day: number, user: number, channel: number, commits = 1) => {
    activity.push({ day, user, channel, commits, files: commits });
    hours.push({ day, user, hour: (user * 3 + channel) % 24, commits });
  };
  for (let u = 1; u <= 11; u++) {
    for (let k = 0; k < 6; k++) {
      const channel = 1 + ((u + k) % 7);
      act(T - 10 - ((u * 37 + k * 53) % 700), u, channel, 1 + (k % 3));
    }
  }
  act(T - 20, 1, 8);
  act(T - 25, 2, 8);
  act(T + 5, 12, 1);
  for (let u = 1; u <= 10; u++)
    interactions.push({ day: T - 30 - u, user: u, other: u + 1, kind: "merged_pr", count: 1 });
  const channels = Array.from({ length: 8 }, (_, i) => ({
    channel: i + 1,
    name: i === 7 ? "secret/plans" : `lib/part${i + 1}`,
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

const ndjson = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;

interface Answer {
  request_id: string;
  source: string;
  user: string;
  items: Array<{ id: string; score: number; rank: number }>;
  model: { name: string; version: string; kind: string; fallback: null | { code: string } };
  experiment: { name: string; arm: string };
  degraded: Array<{ step: string; error: string }>;
}

describe("recommend API", () => {
  const team = uniqueTeamId("TREC");
  /** Setup goes through the operator, which administers any team without being one of its users. */
  const admin = () => platformToken();
  const as = (u: number) => token(team, userIdOf(u));
  const recommend = async (u: number, body: Record<string, unknown>) =>
    api<Answer & { error?: { code: string; message: string } }>("POST", "/v1/recommend", {
      token: await as(u),
      json: body,
    });

  beforeAll(async () => {
    const ds = dataset();
    const snap = snapshotAt(ds, T);
    await ok(api("POST", "/v1/admin/teams", { token: await platformToken(), json: { id: team, name: "Rec Co" } }), 201);
    const base = `/v1/admin/teams/${team}`;
    const users = Array.from({ length: 12 }, (_, i) => ({ id: userIdOf(i + 1), email: `u${i + 1}@rec.test` }));
    await ok(api("POST", `${base}/users/import`, { token: await admin(), json: { users } }), 201);
    const channels = snap.channels.map((c) => ({ id: channelIdOf(c.channel), name: c.name, private: c.channel === 8 }));
    await ok(api("POST", `${base}/channels/import`, { token: await admin(), json: { channels } }), 201);
    const memberships = snap.memberships.map((m) => ({
      channel_id: channelIdOf(m.channel),
      user_id: userIdOf(m.user),
    }));
    await ok(api("POST", `${base}/memberships/import`, { token: await admin(), json: { memberships } }), 201);
    const rows = snapshotToRows(buildSnapshot(ds, T, embeddings()));
    const res = await SELF.fetch(`https://edge.test${base}/features/import?as_of=${CUT}&dataset=synthetic`, {
      method: "POST",
      headers: { authorization: `Bearer ${await admin()}`, "content-type": "application/x-ndjson" },
      body: ndjson(rows.map((r) => ({ kind: r.kind, key: r.key, data: JSON.parse(r.data) }))),
    });
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it("serves every source with its bundled ONNX default model and says which model and arm", async () => {
    for (const source of SOURCE_NAMES) {
      const res = await recommend(3, { source, limit: 5 });
      expect(res.status, `${source}: ${JSON.stringify(res.body)}`).toBe(200);
      const a = res.body;
      expect(a.source).toBe(source);
      expect(a.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(a.items.length, source).toBeGreaterThan(0);
      expect(a.items.length).toBeLessThanOrEqual(5);
      expect(a.items.map((i) => i.rank)).toEqual(a.items.map((_, i) => i + 1));
      for (let i = 1; i < a.items.length; i++) {
        expect((a.items[i - 1] as { score: number }).score).toBeGreaterThanOrEqual(
          (a.items[i] as { score: number }).score,
        );
      }
      expect(["lr", "xgboost"]).toContain(a.model.kind);
      expect(a.model.fallback).toBeNull();
      expect(a.experiment).toEqual({ name: `${source}-default`, arm: "default" });
      expect(a.degraded).toEqual([]);
    }
  });

  it("says why each item was chosen, and with ?include=profile how to show it, as the caller may see it", async () => {
    type Shown = Answer["items"][number] & {
      reason: null | { feature: string; value: number; direction: "high" | "low" };
      profile?: Record<string, unknown>;
    };
    const ask = async (source: string, query = "") =>
      api<Omit<Answer, "items"> & { items: Shown[] }>("POST", `/v1/recommend${query}`, {
        token: await as(3),
        json: { source, limit: 5 },
      });
    const channels = await ask("channel_browser", "?include=profile");
    expect(channels.status, JSON.stringify(channels.body)).toBe(200);
    expect(channels.body.items.length).toBeGreaterThan(0);
    for (const item of channels.body.items) {
      if (item.reason) expect(item.reason.feature).toMatch(/^[a-z0-9_]+$/);
      expect(item.profile).toMatchObject({ name: expect.stringMatching(/^lib-part\d/), is_private: false });
    }
    const people = await ask("composer_dm", "?include=profile");
    expect(people.status).toBe(200);
    // Several people ranked apart: at least one stands out on some feature.
    expect(people.body.items.length).toBeGreaterThan(1);
    expect(people.body.items.some((i) => i.reason !== null)).toBe(true);
    for (const item of people.body.items) {
      expect(item.profile).toMatchObject({ name: expect.any(String), avatar_hash: expect.any(String) });
      expect(item.profile).not.toHaveProperty("email");
    }
    // Hours have nothing to show; without the parameter, nothing is added.
    const hours = await ask("send_time", "?include=profile");
    expect(hours.body.items.every((i) => i.profile === undefined)).toBe(true);
    const plain = await ask("channel_browser");
    expect(plain.body.items.every((i) => i.profile === undefined && "reason" in i)).toBe(true);
    const bad = await api<{ error: { code: string } }>("POST", "/v1/recommend?include=everything", {
      token: await as(3),
      json: { source: "channel_browser" },
    });
    expect(bad.status).toBe(400);
  });

  it("never offers a private channel to a non-member, nor a channel the user is in", async () => {
    const member = new Map<number, Set<string>>();
    for (const m of snapshotAt(dataset(), T).memberships) {
      const set = member.get(m.user) ?? new Set();
      set.add(channelIdOf(m.channel));
      member.set(m.user, set);
    }
    for (const u of [3, 4, 5, 6, 7]) {
      const a = (await recommend(u, { source: "channel_browser", limit: 20 })).body;
      for (const item of a.items) {
        expect(item.id).not.toBe("C8");
        expect(member.get(u)?.has(item.id)).toBe(false);
      }
      const leave = (await recommend(u, { source: "leave", limit: 20 })).body;
      for (const item of leave.items) expect(member.get(u)?.has(item.id)).toBe(true);
      const archive = (await recommend(u, { source: "archive", limit: 20 })).body;
      expect(archive.items.map((i) => i.id)).not.toContain("C8");
    }
  });

  it("never suggests a deactivated person, the user, or people already in the conversation", async () => {
    const before = (await recommend(4, { source: "composer_dm", limit: 20 })).body;
    const victim = before.items[0]?.id;
    expect(victim).toBeDefined();
    await ok(api("DELETE", `/v1/admin/teams/${team}/users/${victim}`, { token: await admin() }));
    const after = (await recommend(4, { source: "composer_dm", limit: 20 })).body;
    expect(after.items.map((i) => i.id)).not.toContain(victim);
    expect(after.items.map((i) => i.id)).not.toContain(userIdOf(4));
    const keep = after.items[0]?.id ?? "";
    const withContext = (await recommend(4, { source: "composer_dm", limit: 20, context: { members: [keep] } })).body;
    expect(withContext.items.map((i) => i.id)).not.toContain(keep);
  });

  it("composes in a DM or group DM: its members, read live, are not suggested again", async () => {
    const before = (await recommend(4, { source: "composer_dm", limit: 20 })).body;
    const [a, b] = before.items.map((i) => i.id);
    expect(a && b).toBeTruthy();
    const open = async (u: number, users: string[]) =>
      (
        await api<{ conversation: { id: string } }>("POST", "/v1/conversations", {
          token: await as(u),
          json: { users },
        })
      ).body.conversation.id;
    const group = await open(4, [a ?? "", b ?? ""]);
    const inGroup = (await recommend(4, { source: "composer_dm", limit: 20, context: { conversation: group } })).body;
    expect(inGroup.items.length).toBeGreaterThan(0);
    expect(inGroup.items.map((i) => i.id)).not.toContain(a);
    expect(inGroup.items.map((i) => i.id)).not.toContain(b);
    // A DM the caller is not in, one that does not exist, and another team's: the same 404.
    const others = await open(5, [userIdOf(6)]);
    const stranger = await newTeam();
    await addUsers(stranger.id, [["UOTHER", "member"]]);
    const theirs = (
      await ok<{ conversation: { id: string } }>(
        api("POST", "/v1/conversations", { token: stranger.admin, json: { users: ["UOTHER"] } }),
        201,
      )
    ).conversation.id;
    for (const id of [others, "DNOSUCHCONVERSATION0", theirs]) {
      const res = await recommend(4, { source: "composer_dm", context: { conversation: id } });
      expect(res.status, id).toBe(404);
      expect(res.body.error?.message).toBe(`conversation ${id} not found`);
    }
    // A channel, or another source: 400.
    const channel = await recommend(4, { source: "composer_dm", context: { conversation: channelIdOf(1) } });
    expect(channel.status).toBe(400);
    const other = await recommend(4, { source: "channel_browser", context: { conversation: group } });
    expect(other.status).toBe(400);
  });

  it("answers send_time with hours and invite for a new member named by an admin", async () => {
    const hours = (await recommend(6, { source: "send_time", limit: 24 })).body;
    expect(hours.items).toHaveLength(24);
    expect(new Set(hours.items.map((i) => Number(i.id)))).toEqual(new Set(Array.from({ length: 24 }, (_, h) => h)));
    // Asking on behalf of someone takes a live admin role: a member may not; once promoted, it may;
    // once deactivated, its token is worth nothing (rights come from live state, not the token).
    const ask = async (u: number) =>
      api<Answer>("POST", "/v1/recommend", {
        token: await as(u),
        json: { source: "invite", limit: 5, context: { user: userIdOf(12), channels: ["C1"] } },
      });
    expect((await ask(3)).status).toBe(403);
    await ok(
      api("PATCH", `/v1/admin/teams/${team}/users/${userIdOf(3)}`, { token: await admin(), json: { role: "admin" } }),
    );
    const invite = await ask(3);
    expect(invite.status).toBe(200);
    expect(invite.body.user).toBe(userIdOf(12));
    expect(invite.body.items.map((i) => i.id)).not.toContain(userIdOf(12));
    await ok(
      api("PATCH", `/v1/admin/teams/${team}/users/${userIdOf(3)}`, { token: await admin(), json: { role: "member" } }),
    );
    expect((await ask(3)).status).toBe(403);
    // A deactivated admin: its token still verifies, and is refused.
    await ok(
      api("PATCH", `/v1/admin/teams/${team}/users/${userIdOf(3)}`, { token: await admin(), json: { role: "admin" } }),
    );
    await ok(api("DELETE", `/v1/admin/teams/${team}/users/${userIdOf(3)}`, { token: await admin() }));
    expect((await ask(3)).status).toBe(403);
  });

  it("keeps a user in the same experiment arm, and falls back to the hand-tuned model when the arm's model fails", async () => {
    const platform = await platformToken();
    const source = "send_time";
    const listed = await ok<{ models: Array<{ name: string; version: string; origin: string }> }>(
      api("GET", `/v1/admin/models/${source}`, { token: platform }),
    );
    const bundled = listed.models.find((m) => m.origin === "bundled");
    expect(bundled).toBeDefined();
    await ok(
      api("PUT", `/v1/admin/recommend/experiments/${source}`, {
        token: platform,
        json: {
          name: "st-test",
          arms: [
            { name: "model", weight: 1, model: `${bundled?.name}@${bundled?.version}` },
            { name: "rules", weight: 1, model: "hand_tuned" },
          ],
        },
      }),
    );
    const arms = new Map<number, string>();
    for (let u = 1; u <= 11; u++) {
      const first = await recommend(u, { source });
      if (first.status !== 200) continue; // deactivated by an earlier test
      const second = await recommend(u, { source });
      expect(second.body.experiment.arm).toBe(first.body.experiment.arm);
      arms.set(u, first.body.experiment.arm);
    }
    expect(new Set(arms.values()).size).toBe(2);
    const rulesUser = [...arms].find(([, arm]) => arm === "rules")?.[0] ?? 0;
    expect((await recommend(rulesUser, { source })).body.model.kind).toBe("hand_tuned");
    // An arm naming a model that is not there: the hand-tuned model answers, and says why.
    await env.MODELS.put(
      `experiments/${source}.json`,
      JSON.stringify({ name: "st-broken", arms: [{ name: "ghost", weight: 1, model: "ghost-lr@0" }] }),
    );
    await new Promise((r) => setTimeout(r, 10_500));
    const broken = (await recommend(rulesUser, { source })).body;
    expect(broken.model.kind).toBe("hand_tuned");
    expect(broken.model.fallback).toMatchObject({ code: "not_found" });
    expect(broken.items).toHaveLength(10);
    await ok(api("DELETE", `/v1/admin/recommend/experiments/${source}`, { token: platform }));
  });

  it("refuses bad requests with 4xx JSON", async () => {
    const bad: Array<[Record<string, unknown>, number, string]> = [
      [{ source: "nope" }, 400, "unknown_source"],
      [{ source: "channel_browser", limit: 0 }, 400, "invalid_body"],
      [{ source: "channel_browser", limit: 101 }, 400, "invalid_body"],
      [{ source: "channel_browser", extra: 1 }, 400, "invalid_body"],
      [{ source: "channel_browser", context: { user: "U5" } }, 400, "bad_request"],
      [{ source: "invite", context: { user: "U5" } }, 403, "forbidden"],
      [{ source: "composer_dm", context: { members: ["bad id!"] } }, 400, "invalid_body"],
    ];
    for (const [body, status, code] of bad) {
      const res = await recommend(3, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error?.code).toBe(code);
    }
    const stranger = await api("POST", "/v1/recommend", {
      token: await token(team, "UNOBODY"),
      json: { source: "channel_browser" },
    });
    expect(stranger.status).toBe(403);
  });

  it("records feedback for the user's own requests and served items only, and logs both to R2", async () => {
    const a = (await recommend(5, { source: "channel_browser", limit: 3 })).body;
    const item = a.items[0]?.id ?? "";
    const click = await api("POST", "/v1/recommend/feedback", {
      token: await as(5),
      json: {
        request_id: a.request_id,
        events: [
          { item, action: "impression" },
          { item, action: "click" },
        ],
      },
    });
    expect(click.status).toBe(202);
    expect(click.body).toEqual({ recorded: 2 });
    const someoneElse = await api<{ error: { code: string } }>("POST", "/v1/recommend/feedback", {
      token: await as(6),
      json: { request_id: a.request_id, events: [{ item, action: "click" }] },
    });
    expect(someoneElse.status).toBe(404);
    const notServed = await api<{ error: { code: string } }>("POST", "/v1/recommend/feedback", {
      token: await as(5),
      json: { request_id: a.request_id, events: [{ item: "C999", action: "click" }] },
    });
    expect(notServed.status).toBe(400);
    expect(notServed.body.error.code).toBe("unknown_item");
    const lines = await eventually(
      async () => {
        const listed = await env.REC_LOG_STORE.list({ prefix: "rec-logs/source=channel_browser/" });
        const out: Array<Record<string, unknown>> = [];
        for (const o of listed.objects) {
          const text = (await (await env.REC_LOG_STORE.get(o.key))?.text()) ?? "";
          for (const l of text.split("\n").filter(Boolean)) out.push(JSON.parse(l) as Record<string, unknown>);
        }
        return out.filter((l) => l.request_id === a.request_id);
      },
      (l) => l.length >= 3,
    );
    const served = lines.find((l) => l.kind === "served") as {
      feature_names: string[];
      items: Array<{ item: string; features: Array<number | null> }>;
      arm: string;
      model: string;
    };
    expect(served.items.map((i) => i.item)).toEqual(a.items.map((i) => i.id));
    expect(served.feature_names).toContain("ch_members_log");
    // Each item's features line up with the names, and carry numbers.
    for (const it of served.items) {
      expect(it.features).toHaveLength(served.feature_names.length);
      expect(it.features.some((v) => typeof v === "number")).toBe(true);
    }
    expect(served.arm).toBe(a.experiment.arm);
    expect(
      lines
        .filter((l) => l.kind === "feedback")
        .map((l) => l.action)
        .sort(),
    ).toEqual(["click", "impression"]);
  });

  it("answers an empty list that says why for a team without a feature snapshot", async () => {
    const bare = uniqueTeamId("TREC");
    await ok(api("POST", "/v1/admin/teams", { token: await platformToken(), json: { id: bare, name: "Bare" } }), 201);
    await ok(
      api("POST", `/v1/admin/teams/${bare}/users`, {
        token: await platformToken(),
        json: { id: "U1", email: "u1@bare.test" },
      }),
      201,
    );
    const res = await api<Answer>("POST", "/v1/recommend", {
      token: await token(bare, "U1"),
      json: { source: "channel_browser" },
    });
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([]);
    expect(res.body.degraded[0]?.error).toMatch(/no feature snapshot/);
  });
});
