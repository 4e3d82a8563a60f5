import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type RecLogMessage, recLogEnvelope } from "../../src/recommend/logs";
import { eventually } from "./client";

// The rec-logs consumer inside workerd: a batch much larger than one upload
// slice (16 KB) reaches R2 whole, every line intact and once.

const SOURCE = `slices_${Date.now().toString(36)}`;

function served(n: number): RecLogMessage {
  const names = Array.from({ length: 30 }, (_, f) => `feature_${f}`);
  return {
    kind: "served",
    request_id: `r${n}`,
    team: "TLOGS",
    user: "U1",
    source: SOURCE,
    experiment: "e",
    arm: "default",
    model: "m",
    version: "v",
    fallback: false,
    ts: Date.UTC(2026, 0, 2),
    feature_names: names,
    items: Array.from({ length: 60 }, (_, r) => ({
      item: `C${r}`,
      rank: r + 1,
      score: 1 / (r + 2),
      features: names.map((_, f) => (f === 3 ? null : Math.log1p(n * 1000 + r * 30 + f))),
    })),
  };
}

describe("rec-logs consumer", () => {
  it("writes a batch of many upload slices whole: every message once, byte for byte", async () => {
    const messages = Array.from({ length: 12 }, (_, n) => served(n));
    const envelopes = messages.map(recLogEnvelope);
    for (const e of envelopes) expect(e.line.length).toBeGreaterThan(2 * 16 * 1024);
    // One send each: a batch send is capped at 256 KB. Every message alone spans two slices.
    for (const body of envelopes) await env.REC_LOGS.send(body);
    const lines = await eventually(
      async () => {
        const listed = await env.REC_LOG_STORE.list({ prefix: `rec-logs/source=${SOURCE}/day=2026-01-02/` });
        const out: string[] = [];
        for (const o of listed.objects) {
          const text = (await (await env.REC_LOG_STORE.get(o.key))?.text()) ?? "";
          expect(text.endsWith("\n")).toBe(true);
          out.push(...text.split("\n").filter(Boolean));
        }
        return out;
      },
      (l) => l.length >= messages.length,
    );
    const byRequest = new Map<string, string>();
    for (const line of lines) {
      const { message_id, ...rest } = JSON.parse(line) as { message_id: string; request_id: string };
      expect(typeof message_id).toBe("string");
      expect(line).toBe(`{"message_id":${JSON.stringify(message_id)},${JSON.stringify(rest).slice(1)}`);
      expect(byRequest.has(rest.request_id)).toBe(false);
      byRequest.set(rest.request_id, JSON.stringify(rest));
    }
    expect(byRequest.size).toBe(messages.length);
    for (const m of messages) expect(byRequest.get(m.request_id)).toBe(JSON.stringify(m));
  });
});
