import { createExecutionContext, createScheduledController, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { gzipSink, ledgerPages } from "../../platform/rec-export-store";
import { isoOf } from "../../src/datasets/collab";
import { LEDGER_TABLES } from "../../src/recommend/export";
import type { LiveRows } from "../../src/recommend/live-rows";
import { logObjects, type RecLogMessage, recLogEnvelope } from "../../src/recommend/logs";
import worker from "../../workers/index";
import { api, eventually, newTeam, ok, platformToken, token } from "./client";

/** A team's whole ledger up to `lastDay`, each table read a page of `pageRows` at a time (what the export streams). */
async function readLedger(env: Env, team: string, lastDay: number, pageRows?: number): Promise<LiveRows> {
  const all: LiveRows = { activity: [], interactions: [], hours: [] };
  for (const table of LEDGER_TABLES) {
    for await (const page of ledgerPages(env, team, lastDay, table, pageRows)) {
      all.activity.push(...page.activity);
      all.interactions.push(...page.interactions);
      all.hours.push(...page.hours);
    }
  }
  return all;
}

// The scheduled export for retraining (src/recommend/export.ts) inside
// workerd: the cron tick writes yesterday's rec logs and each team's ledger
// (imported history and live events) under exports/<window>/ once, a later
// tick writes nothing, a team's files hold its own rows only and no text,
// and only platform operators read them (a team's admin gets 403, whichever
// team's export it asks for).

const workerEnv = env as unknown as Env;
const SECRET_TEXT = "the-launch-code-is-swordfish";
const SECRET_NAME = "secret-room-marmalade";
const DAY_MS = 86_400_000;
const today = Math.floor(Date.now() / DAY_MS);
const yesterday = isoOf(today - 1);
const todayIso = isoOf(today);

interface Manifest {
  window: string;
  complete: boolean;
  exported_at: string;
  dropped_lines: number;
  teams: Array<{
    team: string;
    files: string[];
    rec_logs: { served: number; feedback: number };
    dataset: { activity: number; interactions: number; hours: number; users: number; ids: string };
  }>;
}

let a: { id: string; admin: string };
let b: { id: string; admin: string };

/** History rows: team A's users U1..U3 in C1, C2; team B's U101..U103 in C101. */
function history(users: number[], channels: number[], day: string): string {
  const lines: unknown[] = [];
  for (const u of users) {
    for (const c of channels) lines.push({ table: "activity", day, user_id: `U${u}`, channel_id: `C${c}`, commits: u });
    lines.push({ table: "hours", day, user_id: `U${u}`, local_hour: u % 24, commits: 1 });
  }
  lines.push({
    table: "interactions",
    day,
    user_id: `U${users[0]}`,
    other_user_id: `U${users[1]}`,
    kind: "merged_pr",
    count: 2,
  });
  return `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
}

function served(team: string, user: string, requestId: string, items: string[], ts: number): RecLogMessage {
  return {
    kind: "served",
    request_id: requestId,
    team,
    user,
    source: "channel_browser",
    experiment: "channel_browser-default",
    arm: "default",
    model: "channel_browser-xgboost",
    version: "v1",
    fallback: false,
    ts,
    feature_names: ["ch_members_log"],
    items: items.map((item, i) => ({ item, rank: i + 1, score: 1 / (i + 1), features: [i] })),
  };
}

/** Rec logs of yesterday as the consumer files them: both teams' lines mixed in one object, and a bad line. */
async function writeLogs(): Promise<void> {
  const ts = (today - 1) * DAY_MS + 3_600_000;
  const messages: RecLogMessage[] = [
    served(a.id, "U1", "req-a1", ["C1", "C2"], ts),
    {
      kind: "feedback",
      request_id: "req-a1",
      team: a.id,
      user: "U1",
      source: "channel_browser",
      arm: "default",
      item: "C2",
      action: "click",
      ts,
    },
    served(b.id, "U101", "req-b1", ["C101"], ts),
  ];
  const objects = logObjects(messages.map((m, i) => ({ id: `m${i}`, body: recLogEnvelope(m) })));
  for (const o of objects) await workerEnv.REC_LOG_STORE.put(o.key, `${o.body}{"not json\n`);
}

async function tick(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ scheduledTime: Date.now(), cron: "*/15 * * * *" }),
    workerEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
}

async function raw(path: string, tokenText: string): Promise<Response> {
  return SELF.fetch(`https://edge.test${path}`, { headers: { authorization: `Bearer ${tokenText}` } });
}

async function gunzipText(res: Response): Promise<string> {
  const body = res.body;
  if (!body) throw new Error("no body");
  return new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
}

/** Every file of a team's export, as text (the .gz ones decompressed). */
async function filesOf(window: string, team: string): Promise<Record<string, string>> {
  const operator = await platformToken();
  const out: Record<string, string> = {};
  for (const file of ["rec-logs.ndjson", "channels.csv.gz", "activity.csv.gz", "interactions.csv.gz", "hours.csv.gz"]) {
    const res = await raw(`/v1/admin/exports/${window}/${team}/${file}`, operator);
    expect(res.status, file).toBe(200);
    out[file] = file.endsWith(".gz") ? await gunzipText(res) : new TextDecoder().decode(await res.arrayBuffer());
  }
  return out;
}

beforeAll(async () => {
  a = await newTeam();
  b = await newTeam();
  for (const [t, users, channels] of [
    [a, [1, 2, 3], [1, 2]],
    [b, [101, 102, 103], [101]],
  ] as const) {
    await ok(
      api("POST", `/v1/admin/teams/${t.id}/features/history`, {
        token: t.admin,
        body: history([...users], [...channels], isoOf(today - 30)),
        contentType: "application/x-ndjson",
      }),
      201,
    );
  }
  await writeLogs();
});

describe("the scheduled export", () => {
  it("writes yesterday's window once: each team's logs and ledger, in training's format", async () => {
    await tick();
    const operator = await platformToken();
    const m = await ok<Manifest>(api("GET", `/v1/admin/exports/${yesterday}`, { token: operator }));
    expect(m.complete).toBe(true);
    expect(m.dropped_lines).toBe(1);
    const teamA = m.teams.find((t) => t.team === a.id);
    const teamB = m.teams.find((t) => t.team === b.id);
    expect(teamA?.rec_logs).toEqual({ served: 1, feedback: 1 });
    expect(teamB?.rec_logs).toEqual({ served: 1, feedback: 0 });
    expect(teamA?.dataset).toMatchObject({ activity: 6, interactions: 1, hours: 3, users: 3, ids: "numeric" });

    const files = await filesOf(yesterday, a.id);
    const day = isoOf(today - 30);
    expect(files["activity.csv.gz"]?.split("\n")[0]).toBe("day,user_id,channel_id,commits,files");
    expect(files["activity.csv.gz"]).toContain(`${day},3,2,3,0\n`);
    expect(files["interactions.csv.gz"]).toBe(`day,user_id,other_user_id,kind,count\n${day},1,2,merged_pr,2\n`);
    expect(files["channels.csv.gz"]).toBe(`channel_id,name,first_day\n1,,${day}\n2,,${day}\n`);
    expect(files["hours.csv.gz"]?.trim().split("\n")).toHaveLength(4);
    const lines = (files["rec-logs.ndjson"] ?? "")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { team: string });
    expect(lines.map((l) => l.team)).toEqual([a.id, a.id]);

    // The ledger is read a page per call: pages of 2 rows give what one page of all gives, in the same order.
    const whole = await readLedger(workerEnv, a.id, today - 1);
    expect(whole.activity.length + whole.interactions.length + whole.hours.length).toBe(10);
    expect(await readLedger(workerEnv, a.id, today - 1, 2)).toEqual(whole);
    expect(await readLedger(workerEnv, a.id, today - 1, 3)).toEqual(whole);
    // Days after the window are left out in the query.
    expect(await readLedger(workerEnv, a.id, today - 31)).toEqual({ activity: [], interactions: [], hours: [] });

    // Another tick (the cron runs every 15 minutes): nothing is written again.
    const before = await workerEnv.REC_LOG_STORE.head(`exports/${yesterday}/manifest.json`);
    const fileBefore = await workerEnv.REC_LOG_STORE.head(`exports/${yesterday}/${a.id}/activity.csv.gz`);
    await tick();
    const after = await workerEnv.REC_LOG_STORE.head(`exports/${yesterday}/manifest.json`);
    const fileAfter = await workerEnv.REC_LOG_STORE.head(`exports/${yesterday}/${a.id}/activity.csv.gz`);
    expect(after?.etag).toBe(before?.etag);
    expect(after?.uploaded.getTime()).toBe(before?.uploaded.getTime());
    expect(fileAfter?.uploaded.getTime()).toBe(fileBefore?.uploaded.getTime());
    expect((await ok<Manifest>(api("GET", `/v1/admin/exports/${yesterday}`, { token: operator }))).exported_at).toBe(
      m.exported_at,
    );
    // An operator asking for it again: 409, written once.
    const again = await api("POST", `/v1/admin/exports/${yesterday}`, { token: operator });
    expect(again.status).toBe(409);
    const listed = await ok<{ exports: Array<{ window: string; complete: boolean; teams: string[] }> }>(
      api("GET", "/v1/admin/exports", { token: operator }),
    );
    expect(listed.exports.find((e) => e.window === yesterday)?.teams).toEqual(expect.arrayContaining([a.id, b.id]));
  });

  it("a gzip file bigger than an upload part goes up in equal 5 MiB parts and reads back whole", async () => {
    // ~16 MB of base64 (random bytes: gzip keeps ~3/4 of it), written 48 KiB at a time.
    const pieces: string[] = [];
    for (let i = 0; i < 340; i++) {
      const bytes = crypto.getRandomValues(new Uint8Array(36 * 1024));
      pieces.push(btoa(String.fromCharCode(...bytes)));
    }
    const key = "exports/test/T/big.csv.gz";
    const sink = await gzipSink(workerEnv.REC_LOG_STORE, key);
    for (const p of pieces) await sink.write(p);
    await sink.close();
    const object = await workerEnv.REC_LOG_STORE.get(key);
    expect(object?.size).toBeGreaterThan(10 * 1024 * 1024);
    // The multipart etag names its part count: "<md5>-<parts>".
    expect(object?.etag).toMatch(/-[3-9]$/);
    const text = await new Response(object?.body.pipeThrough(new DecompressionStream("gzip"))).text();
    expect(text.length).toBe(pieces.reduce((n, p) => n + p.length, 0));
    expect(text === pieces.join("")).toBe(true);
  });

  it("holds no other team's rows and no text (a posted message, a channel's name)", async () => {
    // A live event today: a message with text in a named channel.
    const operator = await platformToken();
    await ok(
      api("POST", `/v1/admin/teams/${a.id}/users`, {
        token: operator,
        json: { id: "U1", email: "u1@export.test" },
      }),
      201,
    );
    await ok(
      api("POST", `/v1/admin/teams/${a.id}/channels`, { token: a.admin, json: { id: "C1", name: SECRET_NAME } }),
      201,
    );
    await ok(
      // Added by the operator (no member of the team), so no invite row names the admin: every id stays U<n>.
      api("POST", `/v1/admin/teams/${a.id}/channels/C1/members`, { token: operator, json: { user_ids: ["U1"] } }),
    );
    const posted = await api("POST", "/v1/channels/C1/messages", {
      token: await token(a.id, "U1"),
      json: { text: SECRET_TEXT },
    });
    expect(posted.status, JSON.stringify(posted.body)).toBe(201);
    await eventually(
      () => readLedger(workerEnv, a.id, today),
      (rows) => rows.activity.some((r) => r.day === today && r.commits > 0),
    );
    // Today so far, by an operator: written as incomplete (the cron redoes it tomorrow).
    await writeTodayLogs();
    const m = await ok<Manifest>(api("POST", `/v1/admin/exports/${todayIso}`, { token: operator }), 201);
    expect(m.complete).toBe(false);
    const files = await filesOf(todayIso, a.id);
    const all = Object.values(files).join("\n");
    expect(files["activity.csv.gz"]).toContain(`${todayIso},1,1,1,0\n`);
    for (const word of [SECRET_TEXT, SECRET_NAME, "room", b.id, "U101", ",101,"]) expect(all).not.toContain(word);
    for (const line of files["activity.csv.gz"]?.trim().split("\n").slice(1) ?? []) {
      expect(Number(line.split(",")[1])).toBeLessThan(100);
    }
    // B's export holds B's rows only.
    const filesB = await filesOf(todayIso, b.id);
    expect(Object.values(filesB).join("\n")).not.toContain(a.id);
    for (const line of filesB["activity.csv.gz"]?.trim().split("\n").slice(1) ?? []) {
      expect(Number(line.split(",")[1])).toBeGreaterThan(100);
    }
  });

  it("exports a team whose people posted that day even when nothing was served to it", async () => {
    const operator = await platformToken();
    const c = await newTeam();
    await ok(
      api("POST", `/v1/admin/teams/${c.id}/users`, { token: operator, json: { id: "U1", email: "u1@quiet.test" } }),
      201,
    );
    await ok(
      api("POST", `/v1/admin/teams/${c.id}/channels`, { token: c.admin, json: { id: "C1", name: "quiet" } }),
      201,
    );
    const posted = await api("POST", "/v1/channels/C1/messages", {
      token: await token(c.id, "U1"),
      json: { text: "hi" },
    });
    expect(posted.status, JSON.stringify(posted.body)).toBe(201);
    // The consumer marks the team's day once its ledger took the post.
    await eventually(
      () => workerEnv.REC_LOG_STORE.head(`export-teams/${todayIso}/${c.id}`),
      (o) => o !== null,
    );
    const m = await ok<Manifest>(api("POST", `/v1/admin/exports/${todayIso}`, { token: operator }), 201);
    const quiet = m.teams.find((t) => t.team === c.id);
    expect(quiet?.rec_logs).toEqual({ served: 0, feedback: 0 });
    expect(quiet?.dataset).toMatchObject({ activity: 1, hours: 1, users: 1 });
    expect((await filesOf(todayIso, c.id))["activity.csv.gz"]).toContain(`${todayIso},1,1,1,0\n`);
    // The teams served that day are still there.
    expect(m.teams.map((t) => t.team)).toEqual(expect.arrayContaining([a.id, b.id, c.id]));
  });

  it("is for platform operators only: a team's admin reads neither another team's export nor its own", async () => {
    const operator = await platformToken();
    await ok(api("GET", `/v1/admin/exports/${yesterday}`, { token: operator }));
    const member = await token(a.id, "U1");
    for (const who of [a.admin, member]) {
      for (const path of [
        "/v1/admin/exports",
        `/v1/admin/exports/${yesterday}`,
        `/v1/admin/exports/${yesterday}/${b.id}/activity.csv.gz`,
        `/v1/admin/exports/${yesterday}/${a.id}/activity.csv.gz`,
        `/v1/admin/exports/${yesterday}/${b.id}/rec-logs.ndjson`,
      ]) {
        const res = await api("GET", path, { token: who });
        expect(res.status, path).toBe(403);
        expect((res.body as { error: { code: string } }).error.code).toBe("forbidden");
      }
      expect((await api("POST", `/v1/admin/exports/${todayIso}`, { token: who })).status).toBe(403);
    }
    // An operator: what names nothing is a 404, what is no day a 400.
    expect(
      (await api("GET", `/v1/admin/exports/${yesterday}/TNOBODY/activity.csv.gz`, { token: operator })).status,
    ).toBe(404);
    expect((await api("GET", `/v1/admin/exports/${yesterday}/${a.id}/secrets.txt`, { token: operator })).status).toBe(
      404,
    );
    expect((await api("GET", "/v1/admin/exports/1999-01-01", { token: operator })).status).toBe(404);
    const notADay = await api("GET", "/v1/admin/exports/yesterday", { token: operator });
    expect(notADay.status, JSON.stringify(notADay.body)).toBe(400);
    const future = await api("POST", `/v1/admin/exports/${isoOf(today + 2)}`, { token: operator });
    expect(future.status, JSON.stringify(future.body)).toBe(400);
  });
});

/** A served line of team A today, so today's export names the team. */
async function writeTodayLogs(): Promise<void> {
  const m = served(a.id, "U1", "req-a-today", ["C1"], Date.now());
  const mb = served(b.id, "U101", "req-b-today", ["C101"], Date.now());
  for (const o of logObjects([
    { id: "today-a", body: recLogEnvelope(m) },
    { id: "today-b", body: recLogEnvelope(mb) },
  ])) {
    await workerEnv.REC_LOG_STORE.put(o.key, o.body);
  }
}
