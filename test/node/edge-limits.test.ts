import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/tokens";
import { type Backend, serveAsDeployed } from "../../tools/harness/backend";
import { secondsLeftInWindow } from "../../workers/rate-limit";

// What sits in front of every /v1 route, served as built for deploy in
// Miniflare with wrangler.toml's bindings and two changes a test needs: a
// rate limit of 5 requests a minute (wrangler.toml: 1,200) so it trips
// quickly, and CORS_ORIGINS naming one origin (wrangler.toml: none).
// - API_RATE_LIMIT (workers/rate-limit.ts): per caller, 429 + Retry-After,
//   the refused request changes nothing, other callers unaffected;
// - CORS (workers/cors.ts): preflight and headers for the allowed origin
//   only, before any token check;
// - REQUEST_METRICS (Analytics Engine) bound: requests are answered as usual.

const SECRET = "edge-limits-test-secret-0123456789abcdef";
const OPERATOR = { team: "TOPS", user: "UOPS" };
const TEAM = "TLIM";
const ALLOWED = "https://app.example.com";
const LIMIT = 5;

let backend: Backend;

const tokenOf = (team: string, user: string) => signToken({ team, user, ttlSeconds: 600 }, SECRET);

async function call(method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}) {
  return fetch(`${backend.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

beforeAll(async () => {
  backend = await serveAsDeployed("edge-limits-test", {
    vars: { JWT_SECRET: SECRET, PLATFORM_OPERATORS: `${OPERATOR.team}:${OPERATOR.user}`, CORS_ORIGINS: ALLOWED },
    extra: {
      ratelimits: { API_RATE_LIMIT: { namespace_id: "1001", simple: { limit: LIMIT, period: 60 } } },
      analyticsEngineDatasets: { REQUEST_METRICS: { dataset: "edge_collab_requests" } },
    },
  });
  // The operator's own requests count too: setup stays within its 5.
  const operator = await tokenOf(OPERATOR.team, OPERATOR.user);
  const made = await call("POST", "/v1/admin/teams", operator, { id: TEAM, name: TEAM });
  expect(made.status).toBe(201);
  for (const id of ["UANN", "UBEN"]) {
    const res = await call("POST", `/v1/admin/teams/${TEAM}/users`, operator, { id, email: `${id}@lim.example` });
    expect(res.status).toBe(201);
  }
}, 180_000);

afterAll(async () => {
  await backend?.close();
});

describe("per-caller rate limit (API_RATE_LIMIT)", () => {
  it("answers 429 rate_limited with Retry-After past the limit, and the refused write changes nothing", async () => {
    const ann = await tokenOf(TEAM, "UANN");
    // The limiter counts in fixed minutes: start well inside one, or the
    // sixth request can land in the next minute and pass.
    const left = secondsLeftInWindow(Date.now(), 60);
    if (left < 15) await new Promise((r) => setTimeout(r, left * 1000 + 100));
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) statuses.push((await call("GET", "/v1/directory/switcher?q=b", ann)).status);
    expect(statuses).toEqual(Array(LIMIT).fill(200));
    const refused = await call("POST", "/v1/rtm.connect", ann);
    expect(refused.status).toBe(429);
    const retry = Number(refused.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect(await refused.json()).toMatchObject({ error: { code: "rate_limited" } });
    // Another user of the same team is counted apart.
    const ben = await tokenOf(TEAM, "UBEN");
    expect((await call("GET", "/v1/directory/switcher?q=a", ben)).status).toBe(200);
  });

  it("computes Retry-After as the time left in the window", () => {
    expect(secondsLeftInWindow(60_000, 60)).toBe(60);
    expect(secondsLeftInWindow(60_500, 60)).toBe(60);
    expect(secondsLeftInWindow(119_001, 60)).toBe(1);
    expect(secondsLeftInWindow(119_999, 60)).toBe(1);
  });
});

describe("CORS (CORS_ORIGINS)", () => {
  it("answers a preflight from an allowed origin without a token", async () => {
    const res = await fetch(`${backend.url}/v1/directory/switcher`, {
      method: "OPTIONS",
      headers: {
        origin: ALLOWED,
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("sends no CORS headers to another origin, and still requires a token", async () => {
    const pre = await fetch(`${backend.url}/v1/directory/switcher`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
    });
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    const plain = await fetch(`${backend.url}/v1/directory/switcher`, { headers: { origin: ALLOWED } });
    expect(plain.status).toBe(401);
    expect(plain.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(plain.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("retry-after");
  });
});
