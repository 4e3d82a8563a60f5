import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import archiveManifest from "../../models/archive/manifest.json";
import inviteManifest from "../../models/invite/manifest.json";
import { type RecLogMessage, recLogEnvelope } from "../../src/recommend/logs";
import { api, eventually, ok, platformToken, token } from "./client";
import { recommendTeam, userIdOf } from "./rec-team";

// Feature health on GET /metrics inside workerd: served answers go through
// the rec-logs queue, whose consumer counts their feature values; the
// Metrics object derives drift against the bundled models' training
// statistics (manifest feature_stats) and raises rec_feature_alert for a
// feature whose served values moved, or went missing.

async function scrape(): Promise<string> {
  const res = await SELF.fetch("https://edge.test/metrics", {
    headers: { authorization: `Bearer ${await platformToken()}` },
  });
  expect(res.status).toBe(200);
  return res.text();
}

/** A series' value, or null when /metrics has no such series. */
function seriesValue(text: string, name: string, source: string, feature: string): number | null {
  const prefix = `${name}{feature="${feature}",source="${source}"} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  if (!line) return null;
  const v = line.slice(prefix.length);
  return v === "+Inf" ? Number.POSITIVE_INFINITY : Number(v);
}

interface ServedLine {
  request_id: string;
  feature_names: string[];
  items: Array<{ features: Array<number | null> }>;
}

describe("feature health on /metrics", () => {
  let team = "";
  beforeAll(async () => {
    team = await recommendTeam("TFH");
  });

  it("counts the feature values of served answers, with their range and drift against training", async () => {
    const before = await scrape();
    const requests: string[] = [];
    for (const u of [1, 2, 3, 4]) {
      const a = await ok<{ request_id: string; model: { name: string } }>(
        api("POST", "/v1/recommend", { token: await token(team, userIdOf(u)), json: { source: "archive", limit: 5 } }),
      );
      requests.push(a.request_id);
    }
    // What the consumer saw: the served lines of these requests, once written.
    const lines = await eventually(
      async () => {
        const out: ServedLine[] = [];
        const listed = await env.REC_LOG_STORE.list({ prefix: "rec-logs/source=archive/" });
        for (const o of listed.objects) {
          const text = (await (await env.REC_LOG_STORE.get(o.key))?.text()) ?? "";
          for (const l of text.split("\n").filter(Boolean)) {
            const m = JSON.parse(l) as ServedLine & { kind: string };
            if (m.kind === "served" && requests.includes(m.request_id)) out.push(m);
          }
        }
        return out;
      },
      (l) => l.length === requests.length,
    );
    const feature = archiveManifest.features[0]?.name ?? "";
    let values = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const l of lines) {
      const i = l.feature_names.indexOf(feature);
      expect(i, `${feature} in ${l.feature_names}`).toBeGreaterThanOrEqual(0);
      for (const it of l.items) {
        const v = it.features[i];
        if (typeof v !== "number") continue;
        values++;
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    }
    expect(values).toBeGreaterThan(0);
    const was = seriesValue(before, "rec_feature_values_total", "archive", feature) ?? 0;
    // Other suites may serve archive answers too: at least ours were counted.
    const after = await eventually(
      scrape,
      (t) => (seriesValue(t, "rec_feature_values_total", "archive", feature) ?? 0) >= was + values,
    );
    expect(seriesValue(after, "rec_feature_min", "archive", feature)).toBeLessThanOrEqual(min);
    expect(seriesValue(after, "rec_feature_max", "archive", feature)).toBeGreaterThanOrEqual(max);
    expect(seriesValue(after, "rec_feature_sum", "archive", feature)).not.toBeNull();
    expect(seriesValue(after, "rec_feature_missing_total", "archive", feature)).not.toBeNull();
    const drift = seriesValue(after, "rec_feature_drift", "archive", feature);
    expect(drift).not.toBeNull();
    expect(Number.isFinite(drift)).toBe(true);
    expect([0, 1]).toContain(seriesValue(after, "rec_feature_alert", "archive", feature));
    expect(after).toContain("# TYPE rec_feature_min gauge");
  });

  it("raises the alert for a feature whose served values moved far from training, and one that went missing", async () => {
    const [shifted, dropped] = inviteManifest.features.map((f) => f.name);
    const stats = (inviteManifest as unknown as { feature_stats: Record<string, { mean: number; std: number }> })
      .feature_stats;
    const far = (stats[shifted ?? ""]?.mean ?? 0) + 1000 * Math.max(1, stats[shifted ?? ""]?.std ?? 1);
    const names = inviteManifest.features.map((f) => f.name);
    // Served lines as the Worker logs them, straight onto the queue: 20 answers of 50 items.
    for (let r = 0; r < 20; r++) {
      const m: RecLogMessage = {
        kind: "served",
        request_id: `shift-${r}-${crypto.randomUUID()}`,
        team: "TSHIFT",
        user: "U1",
        source: "invite",
        experiment: "invite-default",
        arm: "default",
        model: inviteManifest.name,
        version: inviteManifest.version,
        fallback: false,
        ts: Date.now(),
        feature_names: names,
        items: Array.from({ length: 50 }, (_, i) => ({
          item: `U${i}`,
          rank: i + 1,
          score: 0.5,
          features: names.map((n) => (n === shifted ? far : n === dropped ? null : 0)),
        })),
      };
      await env.REC_LOGS.send(recLogEnvelope(m));
    }
    const text = await eventually(
      scrape,
      (t) =>
        seriesValue(t, "rec_feature_alert", "invite", shifted ?? "") === 1 &&
        seriesValue(t, "rec_feature_alert", "invite", dropped ?? "") === 1,
    );
    expect(seriesValue(text, "rec_feature_drift", "invite", shifted ?? "")).toBeGreaterThan(0.5);
    expect(seriesValue(text, "rec_feature_max", "invite", shifted ?? "")).toBeGreaterThanOrEqual(far);
    expect(seriesValue(text, "rec_feature_missing_total", "invite", dropped ?? "")).toBeGreaterThanOrEqual(1000);
  });
});
