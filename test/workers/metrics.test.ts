import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, platformToken, token } from "./client";

// GET /metrics: Prometheus text aggregated over isolates by the Metrics object.

async function scrape(t?: string): Promise<Response> {
  return SELF.fetch("https://edge.test/metrics", t ? { headers: { authorization: `Bearer ${t}` } } : {});
}

describe("GET /metrics", () => {
  it("counts requests by route pattern and status, and errors by code", async () => {
    const member = await token("TMETRICS", "U1");
    await api("GET", "/v1/directory/switcher?q=a", { token: member });
    await api("GET", "/v1/nowhere", { token: member });
    await api("GET", "/v1/directory/switcher?q=a");
    const res = await scrape(await platformToken());
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain("# TYPE http_requests_total counter");
    // A request the handler answered is labelled by its route; one stopped by middleware by the middleware's.
    const has = (line: string) => expect(text.split("\n").some((l) => l.startsWith(line))).toBe(true);
    has('http_requests_total{route="/v1/directory/switcher",source="",status="403"} ');
    has('http_request_errors_total{code="forbidden",route="/v1/directory/switcher",source=""} ');
    has('http_request_errors_total{code="unauthorized",route="/v1/*",source=""} ');
    has('http_request_errors_total{code="not_found",route="/v1/*",source=""} ');
    has('http_request_duration_ms_bucket{route="/v1/directory/switcher",source="",le="+Inf"} ');
    // Raw paths never become labels.
    expect(text).not.toContain("/v1/nowhere");
  });

  it("needs a platform token", async () => {
    expect((await scrape()).status).toBe(401);
    const res = await scrape(await token("T1", "U1"));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: "forbidden" } });
  });
});
