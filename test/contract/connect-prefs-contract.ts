import { describe, expect, it } from "vitest";
import { changePrefs, effectivePrefs, levelPrefs } from "../../src/connect/prefs-service";
import { ORG_LEVEL } from "../../src/connect/prefs-store";
import { connectPrefsStore } from "../../storage/connect-prefs-sql";
import { type Backend, fixedClock, uniqueTeamId } from "./fixtures";

// Connect prefs on every adapter: the protobuf payload round-trips as bytes,
// resolution partner -> org -> default, every change audited in the same
// unit, invalid patches change nothing, concurrent writers lose nothing.

export function connectPrefsContract(open: () => Promise<Backend>): void {
  describe("connect prefs", () => {
    const setup = async () => {
      const { driver } = await open();
      const clock = fixedClock();
      let ids = 0;
      const ports = { store: connectPrefsStore(driver), now: () => clock.now(), newId: () => `A${++ids}` };
      return { ports, clock, team: uniqueTeamId("TC") };
    };

    it("resolves partner over org over default, with the source of each value", async () => {
      const { ports, team } = await setup();
      await changePrefs(ports, {
        teamId: team,
        targetTeamId: ORG_LEVEL,
        actor: "UADMIN",
        patch: { file_uploads: { allowed: false }, channel_creation: { who: "members" } },
      });
      await changePrefs(ports, {
        teamId: team,
        targetTeamId: "TPARTNER",
        actor: "UADMIN",
        patch: { channel_creation: { who: "nobody" } },
      });
      const { prefs, problems } = await effectivePrefs(ports, team, "TPARTNER");
      expect(problems).toEqual([]);
      expect(prefs.channel_creation).toEqual({ value: { who: "nobody" }, source: "partner" });
      expect(prefs.file_uploads).toEqual({ value: { allowed: false, max_bytes: 0, blocked_types: [] }, source: "org" });
      expect(prefs.auto_approval?.source).toBe("default");
      // Another partner gets the org level.
      expect((await effectivePrefs(ports, team, "TOTHER")).prefs.channel_creation?.source).toBe("org");
      expect(await levelPrefs(ports, team, "TPARTNER")).toEqual({
        prefs: { channel_creation: { who: "nobody" } },
        problems: [],
      });
      // Another team sees none of it.
      expect((await effectivePrefs(ports, uniqueTeamId("TX"), "TPARTNER")).prefs.channel_creation?.source).toBe(
        "default",
      );
    });

    it("audits every changed pref with who, when, before and after, and nothing for a no-op", async () => {
      const { ports, clock, team } = await setup();
      const change = (patch: Record<string, unknown>) =>
        changePrefs(ports, { teamId: team, targetTeamId: "TP", actor: "UADMIN", patch });
      await change({ auto_approval: { mode: "all" } });
      clock.advance(1000);
      const second = await change({
        auto_approval: { mode: "listed", users: ["U7"] },
        channel_creation: { who: "admins" },
      });
      expect(second.changed).toEqual(["auto_approval", "channel_creation"]);
      expect(second.effects).toContainEqual({ kind: "review_invitations" });
      expect((await change({ channel_creation: { who: "admins" } })).changed).toEqual([]);
      const audit = await ports.store.audit(team, 10);
      expect(audit.map((a) => [a.prefKey, a.before, a.after])).toEqual([
        ["channel_creation", null, '{"who":"admins"}'],
        ["auto_approval", '{"mode":"all","users":[]}', '{"mode":"listed","users":["U7"]}'],
        ["auto_approval", null, '{"mode":"all","users":[]}'],
      ]);
      expect(audit[0]).toMatchObject({ actor: "UADMIN", targetTeamId: "TP" });
    });

    it("refuses an invalid patch whole, naming each pref's problem, and changes nothing", async () => {
      const { ports, team } = await setup();
      await changePrefs(ports, {
        teamId: team,
        targetTeamId: "TP",
        actor: "U1",
        patch: { channel_creation: { who: "members" } },
      });
      const refused = changePrefs(ports, {
        teamId: team,
        targetTeamId: "TP",
        actor: "U1",
        patch: { channel_creation: { who: "admins" }, auto_approval: { mode: "sometimes" } },
      });
      await expect(refused).rejects.toMatchObject({
        kind: "invalid",
        details: { prefs: { auto_approval: [expect.any(String)] } },
      });
      expect((await levelPrefs(ports, team, "TP")).prefs).toEqual({ channel_creation: { who: "members" } });
      expect(await ports.store.audit(team, 10)).toHaveLength(1);
    });

    it("loses no change when admins write the same level at once", async () => {
      const { ports, team } = await setup();
      const keys = ["auto_approval", "file_uploads", "profile_fields", "channel_creation"] as const;
      const patches: Record<(typeof keys)[number], unknown> = {
        auto_approval: { mode: "all" },
        file_uploads: { allowed: false },
        profile_fields: { visible: ["real_name"] },
        channel_creation: { who: "nobody" },
      };
      await Promise.all(
        keys.map((key) =>
          changePrefs(ports, { teamId: team, targetTeamId: ORG_LEVEL, actor: "U1", patch: { [key]: patches[key] } }),
        ),
      );
      const { prefs } = await levelPrefs(ports, team, ORG_LEVEL);
      expect(Object.keys(prefs).sort()).toEqual([...keys].sort());
      expect(await ports.store.audit(team, 10)).toHaveLength(4);
    });
  });
}
