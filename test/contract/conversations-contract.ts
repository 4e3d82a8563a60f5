import { describe, expect, it } from "vitest";
import { conversationId } from "../../src/conversations/directory-conversations";
import type { ChangeEvent, ConversationSpec } from "../../src/directory/model";
import { DomainError } from "../../src/errors";
import type { User } from "../../src/teams/model";
import { directoryStore } from "../../storage/directory-store";
import { type Backend, uniqueTeamId } from "./fixtures";

// DMs and group DMs in the directory's source of truth, the same on every
// adapter (D1: test/workers/conversations-d1.test.ts; MySQL through the real
// PlanetScale driver: test/node/conversations-mysql.test.ts): one unit per
// open, racing opens make one conversation, leaving logs once, and the
// channel writes that would break a DM's identity are refused.

const NOW = 1_700_000_000_000;
const userId = (n: number) => `U${String(n).padStart(7, "0")}`;

function user(teamId: string, n: number): User {
  return {
    teamId,
    id: userId(n),
    email: `user${n}@dm.test`,
    domain: "dm.test",
    role: "member",
    deactivated: false,
    createdAt: NOW,
    updatedAt: NOW,
  };
}

async function setup(open: () => Promise<Backend>) {
  const { driver, store } = await open();
  const teamId = uniqueTeamId("T");
  await store.createTeam({ id: teamId, name: teamId, plan: "pro", claimedDomains: [], createdAt: NOW, healedAt: null });
  await store.insertUsers(Array.from({ length: 6 }, (_, i) => user(teamId, i + 1)));
  return { dir: directoryStore(driver), driver, teamId };
}

async function spec(teamId: string, members: string[]): Promise<ConversationSpec> {
  const sorted = [...new Set(members)].sort();
  return { id: await conversationId(teamId, sorted), kind: sorted.length <= 2 ? "im" : "mpim", members: sorted };
}

const kinds = (events: ChangeEvent[]) => events.map((e) => e.change.kind);

async function kindOfError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (error instanceof DomainError) return error.kind;
    throw error;
  }
  return "none";
}

export function conversationsContract(open: () => Promise<Backend>): void {
  describe("conversations in the directory", () => {
    it("opens a DM as one unit: a private row of its kind, its members, dense versions", async () => {
      const { dir, teamId } = await setup(open);
      const before = await dir.version(teamId);
      const s = await spec(teamId, [userId(2), userId(1)]);
      const opened = await dir.openConversation(teamId, s, userId(1), NOW);
      expect(opened.created).toBe(true);
      expect(opened.members).toEqual([userId(1), userId(2)]);
      expect(opened.conversation).toMatchObject({ id: s.id, kind: "im", isPrivate: true, name: s.id });
      expect(kinds(opened.events)).toEqual(["channel", "member_added", "member_added"]);
      expect(opened.events.map((e) => e.version)).toEqual([before + 1, before + 2, before + 3]);
      // What a cache loads and catches up from says the same.
      expect(await dir.changesSince(teamId, before, 10)).toEqual(opened.events);
      const channels = await dir.pageChannels(teamId, null, 100);
      expect(channels.find((c) => c.id === s.id)?.kind).toBe("im");
      const members = await dir.pageMemberships(teamId, null, 100);
      expect(members.filter((m) => m.channelId === s.id).map((m) => m.userId)).toEqual([userId(1), userId(2)]);

      const again = await dir.openConversation(teamId, s, userId(2), NOW + 1);
      expect(again).toMatchObject({ created: false, members: [userId(1), userId(2)], events: [] });
      expect(await dir.version(teamId)).toBe(before + 3);
    });

    it("racing opens of the same members make one conversation", async () => {
      const { dir, driver, teamId } = await setup(open);
      const s = await spec(teamId, [userId(1), userId(2), userId(3)]);
      const opens = await Promise.all(
        Array.from({ length: 6 }, (_, i) => dir.openConversation(teamId, s, userId((i % 3) + 1), NOW)),
      );
      expect(opens.filter((o) => o.created)).toHaveLength(1);
      expect(new Set(opens.map((o) => o.conversation.id))).toEqual(new Set([s.id]));
      for (const o of opens) expect(o.members).toEqual(s.members);
      const rows = await driver.all("SELECT COUNT(*) AS n FROM channels WHERE `team_id` = ? AND `id` = ?", [
        teamId,
        s.id,
      ]);
      expect(Number(rows[0]?.n)).toBe(1);
      const logged = await driver.all(
        "SELECT `kind` FROM directory_changes WHERE `team_id` = ? AND `entity_id` = ? ORDER BY `version`",
        [teamId, s.id],
      );
      expect(logged.map((r) => String(r.kind))).toEqual(["channel", "member_added", "member_added", "member_added"]);
      // Versions stayed dense: the losers bumped nothing.
      expect(await dir.version(teamId)).toBe(4);
    });

    it("leaves a group DM once (racing leaves log one removal); a member who left comes back by opening it", async () => {
      const { dir, teamId } = await setup(open);
      const s = await spec(teamId, [userId(1), userId(2), userId(3)]);
      await dir.openConversation(teamId, s, userId(1), NOW);
      const v = await dir.version(teamId);
      const leaves = await Promise.all([1, 2, 3].map(() => dir.leaveConversation(teamId, s.id, userId(2), NOW)));
      expect(leaves.filter((l) => l.left)).toHaveLength(1);
      expect(await dir.version(teamId)).toBe(v + 1);
      const removed = await dir.changesSince(teamId, v, 10);
      expect(removed.map((e) => e.change)).toEqual([
        { kind: "member_removed", membership: { channelId: s.id, userId: userId(2), userTeamId: teamId } },
      ]);
      // Another member opening it again does not pull the leaver back in...
      const other = await dir.openConversation(teamId, s, userId(1), NOW);
      expect(other.members).toEqual([userId(1), userId(3)]);
      // ...the leaver opening it does.
      const back = await dir.openConversation(teamId, s, userId(2), NOW);
      expect(back).toMatchObject({ created: false, members: s.members });
      expect(kinds(back.events)).toEqual(["member_added"]);
    });

    it("refuses leaving a DM or a channel, and the channel writes that would change a DM", async () => {
      const { dir, teamId } = await setup(open);
      const s = await spec(teamId, [userId(1), userId(2)]);
      await dir.openConversation(teamId, s, userId(1), NOW);
      expect(await kindOfError(dir.leaveConversation(teamId, s.id, userId(1), NOW))).toBe("invalid");
      await dir.createChannel(teamId, { id: "CPLAIN1", name: "plain", topic: "", purpose: "", isPrivate: false }, NOW);
      expect(await kindOfError(dir.leaveConversation(teamId, "CPLAIN1", userId(1), NOW))).toBe("invalid");
      expect(await kindOfError(dir.leaveConversation(teamId, "GNOTHERE", userId(1), NOW))).toBe("not_found");
      expect(await kindOfError(dir.updateChannel(teamId, s.id, { name: "renamed" }, NOW))).toBe("invalid");
      expect(await kindOfError(dir.addMembers(teamId, s.id, [{ userId: userId(3) }], NOW))).toBe("invalid");
      expect(await kindOfError(dir.removeMembers(teamId, s.id, [userId(2)], NOW))).toBe("invalid");
      expect(await kindOfError(dir.importMemberships(teamId, [{ channelId: s.id, userId: userId(3) }], NOW))).toBe(
        "not_found",
      );
      // An id a channel already holds is a conflict, not that channel.
      const taken: ConversationSpec = { id: "CPLAIN1", kind: "im", members: [userId(1), userId(2)] };
      expect(await kindOfError(dir.openConversation(teamId, taken, userId(1), NOW))).toBe("conflict");
    });
  });
}
