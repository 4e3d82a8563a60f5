import { describe, expect, it } from "vitest";
import { slackEventLog, slackInstallationsStore } from "../../storage/slackbot-sql";
import type { Backend } from "./fixtures";

// The Slack bot's tables on every adapter (storage/slackbot-sql.ts):
// installations replace by workspace and list without tokens; an event id is
// claimed once, by one of several racing deliveries, taken again after a
// failure or a stale claim, and `done` once replied or dead-lettered.

let n = 0;
const id = (prefix: string) => `${prefix}${Date.now().toString(36).toUpperCase()}${(++n).toString(36).toUpperCase()}`;

export function slackbotContract(open: () => Promise<Backend>): void {
  describe("slack bot storage", () => {
    it("stores an installation per workspace; a reinstall replaces it; lists carry no token", async () => {
      const { driver } = await open();
      const store = slackInstallationsStore(driver);
      const team = id("TS");
      expect(await store.get(team)).toBeNull();
      await store.put({ teamId: team, botToken: "xoxb-old", botUserId: "UB1", appId: "A1", installedAt: 1 });
      await store.put({ teamId: team, botToken: "xoxb-new", botUserId: "UB2", appId: "A1", installedAt: 2 });
      expect(await store.get(team)).toEqual({
        teamId: team,
        botToken: "xoxb-new",
        botUserId: "UB2",
        appId: "A1",
        installedAt: 2,
      });
      // Ids compare byte for byte on both engines.
      expect(await store.get(team.toLowerCase())).toBeNull();
      const listed = await store.list(10_000);
      expect(listed.find((i) => i.teamId === team)).toEqual({
        teamId: team,
        botUserId: "UB2",
        appId: "A1",
        installedAt: 2,
      });
      expect(JSON.stringify(listed)).not.toContain("xoxb");
    });

    it("claims an event once; a duplicate waits while claimed and is done once replied", async () => {
      const { driver } = await open();
      const log = slackEventLog(driver);
      const ev = id("Ev");
      expect(await log.claim(ev, "T1", 1000, 0)).toEqual({ outcome: "claimed", attempts: 1 });
      expect(await log.claim(ev, "T1", 1001, 0)).toEqual({ outcome: "busy" });
      await log.finish(ev, "replied", null, 1002);
      expect(await log.claim(ev, "T1", 99_999, 99_000)).toEqual({ outcome: "done" });
    });

    it("takes a failed or stale claim again, counting tries; a dead one never", async () => {
      const { driver } = await open();
      const log = slackEventLog(driver);
      const ev = id("Ev");
      await log.claim(ev, "T1", 1000, 0);
      await log.finish(ev, "failed", "chat.postMessage: HTTP 429", 1001);
      expect(await log.claim(ev, "T1", 1002, 0)).toEqual({ outcome: "claimed", attempts: 2 });
      // Claimed at 1002 and never finished (a crash): stale once the claim is older than staleBefore.
      expect(await log.claim(ev, "T1", 1003, 1000)).toEqual({ outcome: "busy" });
      expect(await log.claim(ev, "T1", 70_000, 10_000)).toEqual({ outcome: "claimed", attempts: 3 });
      await log.finish(ev, "dead", "x".repeat(1000), 70_001);
      expect(await log.claim(ev, "T1", 999_999, 999_000)).toEqual({ outcome: "done" });
      const [row] = await driver.all("SELECT state, detail FROM slack_events WHERE event_id = ?", [ev]);
      expect(row?.state).toBe("dead");
      expect(String(row?.detail).length).toBe(400);
    });

    it("purges replied and dead events claimed before the cut, never one still owed", async () => {
      const { driver } = await open();
      const log = slackEventLog(driver);
      const [replied, dead, failed, claimed, recent] = [id("Ev"), id("Ev"), id("Ev"), id("Ev"), id("Ev")];
      for (const ev of [replied, dead, failed, claimed]) await log.claim(ev, "T1", 1000, 0);
      await log.claim(recent, "T1", 9_000_000_000_000, 0);
      await log.finish(replied, "replied", null, 1001);
      await log.finish(dead, "dead", "channel_not_found", 1001);
      await log.finish(failed, "failed", "HTTP 503", 1001);
      await log.finish(recent, "replied", null, 9_000_000_000_001);
      const purged = await log.purge(2000, 10_000);
      expect(purged).toBeGreaterThanOrEqual(2);
      const left = await driver.all("SELECT event_id FROM slack_events WHERE event_id IN (?, ?, ?, ?, ?)", [
        replied,
        dead,
        failed,
        claimed,
        recent,
      ]);
      expect(left.map((r) => String(r.event_id)).sort()).toEqual([failed, claimed, recent].sort());
    });

    it("of deliveries racing for one event, exactly one claims it", async () => {
      const { driver } = await open();
      const log = slackEventLog(driver);
      const ev = id("Ev");
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => log.claim(ev, "T1", 5000, 0)));
      expect(outcomes.filter((o) => o.outcome === "claimed")).toHaveLength(1);
      expect(outcomes.filter((o) => o.outcome === "busy")).toHaveLength(5);
      await log.finish(ev, "failed", "HTTP 503", 5001);
      const retries = await Promise.all(Array.from({ length: 6 }, () => log.claim(ev, "T1", 6000, 0)));
      expect(retries.filter((o) => o.outcome === "claimed")).toHaveLength(1);
    });
  });
}
