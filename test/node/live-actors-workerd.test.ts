import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/tokens";
import { type Backend, serveAsDeployed } from "../../tools/harness/backend";

// The Worker reads each caller's live state in rounds per team
// (platform/live-actors.ts). The workers suites run that code too, but under
// vitest-pool-workers' runner, which differs from a deploy (it turns
// handle_cross_request_promise_resolution off, for one). This suite serves
// the bundle as built for deploy in Miniflare and sends bursts of requests
// at once: every caller gets its own answer, a deactivation counts from the
// next request on, and the reads did coalesce.

const SECRET = "live-actors-test-secret-0123456789abcdef";
const OPERATOR = { team: "TOPS", user: "UOPS" };
const TEAM = "TLIVE";
const OTHER = "TOTHER";
const USERS = 60;

let backend: Backend;
let operator: string;

async function call(method: string, path: string, token: string, body?: unknown): Promise<Response> {
  return fetch(`${backend.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function admin(method: string, path: string, body?: unknown): Promise<void> {
  const res = await call(method, path, operator, body);
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status}: ${await res.text()}`);
}

const tokenOf = (team: string, user: string) => signToken({ team, user, ttlSeconds: 600 }, SECRET);
const userId = (i: number) => `U${String(i).padStart(3, "0")}`;

/** Counter totals from /metrics (the scraping isolate flushes first). */
async function counters(): Promise<{ reads: number; calls: number }> {
  const text = await (await call("GET", "/metrics", operator)).text();
  const total = (name: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith(name))
      .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
  return { reads: total("live_actor_reads_total"), calls: total("live_actor_calls_total") };
}

/** Everyone at once: the ticket route answers 200 only to an active member of the token's team. */
async function burst(tokens: Array<{ token: string; key: string }>): Promise<Map<string, number[]>> {
  const answers = await Promise.all(
    tokens.map(async ({ token, key }) => [key, (await call("POST", "/v1/rtm.connect", token)).status] as const),
  );
  const byKey = new Map<string, number[]>();
  for (const [key, status] of answers) byKey.set(key, [...(byKey.get(key) ?? []), status]);
  return byKey;
}

beforeAll(async () => {
  backend = await serveAsDeployed("live-actors-test", {
    vars: { JWT_SECRET: SECRET, PLATFORM_OPERATORS: `${OPERATOR.team}:${OPERATOR.user}` },
  });
  operator = await signToken({ ...OPERATOR, ttlSeconds: 600 }, SECRET);
  for (const team of [TEAM, OTHER]) await admin("POST", "/v1/admin/teams", { id: team, name: team });
  for (let i = 0; i < USERS; i++)
    await admin("POST", `/v1/admin/teams/${TEAM}/users`, { id: userId(i), email: `u${i}@live.example` });
  await admin("POST", `/v1/admin/teams/${OTHER}/users`, { id: "UOTHER", email: "o@other.example" });
  for (let i = 0; i < 10; i++) await admin("DELETE", `/v1/admin/teams/${TEAM}/users/${userId(i)}`);
}, 180_000);

afterAll(async () => {
  await backend?.close();
});

describe("live state read in rounds, in workerd as deployed", () => {
  it("answers each caller of a burst from its own live state", async () => {
    const before = await counters();
    const tokens: Array<{ token: string; key: string }> = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < USERS; i++) tokens.push({ token: await tokenOf(TEAM, userId(i)), key: userId(i) });
      // A user this team does not have, and another team's user claiming this team.
      tokens.push({ token: await tokenOf(TEAM, "UNOBODY"), key: "UNOBODY" });
      tokens.push({ token: await tokenOf(TEAM, "UOTHER"), key: "UOTHER" });
    }
    const answers = await burst(tokens);
    for (let i = 0; i < USERS; i++) expect(answers.get(userId(i))).toEqual(Array(4).fill(i < 10 ? 403 : 200));
    expect(answers.get("UNOBODY")).toEqual([403, 403, 403, 403]);
    expect(answers.get("UOTHER")).toEqual([403, 403, 403, 403]);
    const after = await counters();
    const reads = after.reads - before.reads;
    const calls = after.calls - before.calls;
    // Every request read (the metrics scrape reads too); far fewer calls went out.
    expect(reads).toBeGreaterThanOrEqual(tokens.length);
    expect(calls).toBeLessThan(reads / 2);
  });

  it("denies a user deactivated a moment ago in the very next burst", async () => {
    const victim = userId(USERS - 1);
    const token = await tokenOf(TEAM, victim);
    expect((await burst([{ token, key: victim }])).get(victim)).toEqual([200]);
    await admin("DELETE", `/v1/admin/teams/${TEAM}/users/${victim}`);
    const others = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => ({ token: await tokenOf(TEAM, userId(10 + i)), key: "other" })),
    );
    const answers = await burst([...others, { token, key: victim }, ...others]);
    expect(answers.get(victim)).toEqual([403]);
    expect(answers.get("other")).toEqual(Array(80).fill(200));
  });
});
