import { env, SELF } from "cloudflare:test";
import { expect, it } from "vitest";

it("serves healthz on D1", async () => {
  const res = await SELF.fetch("https://edge.test/healthz");
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ ok: true, storage: "d1" });
  const { results } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type='table' AND name='domains'",
  ).all();
  expect(results).toHaveLength(1);
});
