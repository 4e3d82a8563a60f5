import { describe, expect, it } from "vitest";
import type { Actor } from "../../src/connect/connections";
import { disconnectConnection } from "../../src/connect/connections-service";
import { changePrefs } from "../../src/connect/prefs-service";
import { ORG_LEVEL } from "../../src/connect/prefs-store";
import type { SharedChannelInvite } from "../../src/connect/shared-channels";
import {
  answerChannel,
  endConnectionChannels,
  inviteChannel,
  listSharedChannels,
  newSharedChannelId,
  type SharedChannelsPorts,
  sharedUploadRefusal,
  withdrawChannel,
} from "../../src/connect/shared-channels-service";
import { newAuditId } from "../../src/connect/team-prefs";
import { addMembers, removeMember, shareChannel, unshareChannel } from "../../src/directory/admin";
import type { ChangeEvent } from "../../src/directory/model";
import { newChannelId } from "../../src/directory/writer";
import { connectPrefsStore } from "../../storage/connect-prefs-sql";
import { directoryStore } from "../../storage/directory-store";
import { sharedChannelsStore } from "../../storage/shared-channels-sql";
import { type Backend, connectFixture, fixedClock } from "./fixtures";

// Shared-channel invitations on every adapter, through the real SQL stores
// and the real directory: what the database must settle (an invitation only
// over a live connection, one open invitation per channel and partner, a
// status changed once, a disconnect closing its invitations in its own unit)
// and that an accept shares the channel in the directory and a disconnect
// unshares it. The team caches are not part of this suite: the directory's
// published events are recorded, not delivered.

export function sharedChannelsContract(open: () => Promise<Backend>): void {
  describe("shared channels", () => {
    const setup = async () => {
      const { driver, store } = await open();
      const clock = fixedClock(Date.now());
      const published: ChangeEvent[] = [];
      const directory = directoryStore(driver);
      const dirDeps = {
        store,
        directory,
        clock,
        changes: {
          async publish(_team: string, events: ChangeEvent[]) {
            published.push(...events);
          },
        },
      };
      const { connections, team: named, connect } = connectFixture(driver, store, clock);
      const ports: SharedChannelsPorts = {
        store: sharedChannelsStore(driver),
        connections: connections.store,
        prefs: { store: connectPrefsStore(driver) },
        sharing: {
          share: async (host, channel, guest) => void (await shareChannel(dirDeps, host, channel, guest)),
          unshare: async (host, channel, guest) => void (await unshareChannel(dirDeps, host, channel, guest)),
          addMembers: (host, channel, users, usersTeam) => addMembers(dirDeps, host, channel, users, usersTeam),
          removeMember: (host, channel, user) => removeMember(dirDeps, host, channel, user),
        },
        now: () => clock.now(),
        newId: newSharedChannelId,
      };
      const team = (label: string) => named(`Team ${label}`, { user: `UADM${label}` });
      const channel = async (a: Actor, name: string): Promise<string> => {
        const id = newChannelId();
        await directory.createChannel(
          a.team,
          { id, name: `${name}-${id.slice(-5).toLowerCase()}`, topic: "", purpose: "", isPrivate: false },
          clock.now(),
        );
        return id;
      };
      const admin = (a: Actor) => ({ ...a, role: "admin" as const });
      const sharedInto = async (team: string) => (await directory.pageChannels(team, null, 100)).map((c) => c.id);
      return { ports, connections, clock, team, connect, channel, admin, sharedInto, published, driver };
    };

    it("an invitation travels only over a live connection, one open per channel and partner", async () => {
      const { ports, connections, team, connect, channel, admin } = await setup();
      const a = await team("A");
      const b = await team("B");
      const k = await connect(a, b);
      const ch = await channel(a, "general");
      const first = await inviteChannel(ports, admin(a), k, ch);
      expect(first).toMatchObject({ status: "pending", partner: b.team });
      // A second open one for the same channel and partner: refused, naming the first.
      await expect(inviteChannel(ports, admin(a), k, ch)).rejects.toMatchObject({
        kind: "conflict",
        details: { invitation: first.id },
      });
      // Straight through the store too: the unique key alone holds.
      const dup: SharedChannelInvite = {
        ...((await ports.store.inviteFor(a.team, first.id)) as SharedChannelInvite),
        id: newSharedChannelId(),
      };
      expect(await ports.store.insert(dup)).toBe("already_open");

      await disconnectConnection(connections, a, k);
      // The disconnect cancelled the pending one in its own unit.
      expect(await ports.store.inviteFor(a.team, first.id)).toMatchObject({ status: "cancelled", applied: true });
      // An insert that read the connection live a moment ago: the database refuses it now.
      expect(await ports.store.insert({ ...dup, id: newSharedChannelId() })).toBe("connection_ended");
      await expect(inviteChannel(ports, admin(a), k, ch)).rejects.toMatchObject({ kind: "conflict" });
    });

    it("an accept shares the channel in the directory; the disconnect unshares it for both", async () => {
      const { ports, connections, team, connect, channel, admin, sharedInto, published } = await setup();
      const a = await team("A");
      const b = await team("B");
      const k = await connect(a, b);
      const ch = await channel(a, "partners");
      const invited = await inviteChannel(ports, admin(a), k, ch);
      expect(await sharedInto(b.team)).toEqual([]);
      expect(await ports.store.sharedWith(a.team, ch)).toEqual([]);
      const accepted = await answerChannel(ports, b, invited.id, "accept");
      expect(accepted).toMatchObject({ status: "accepted", in_effect: true });
      expect(await sharedInto(b.team)).toEqual([ch]);
      expect(await ports.store.sharedWith(a.team, ch)).toEqual([b.team]);
      // Files in it: B's org-level file_uploads (off) refuses A's uploads there, and B's own.
      const file = { bytes: 1, type: "text/plain", name: "a.txt" };
      expect(await sharedUploadRefusal(ports, a.team, ch, a.team, file)).toBeNull();
      await changePrefs(
        { store: ports.prefs.store, newId: newAuditId, now: () => Date.now() },
        { teamId: b.team, targetTeamId: ORG_LEVEL, actor: "UADMIN", patch: { file_uploads: { allowed: false } } },
      );
      expect(await sharedUploadRefusal(ports, a.team, ch, a.team, file)).toMatch(/not allowed/);
      expect(await sharedUploadRefusal(ports, a.team, ch, b.team, file)).toMatch(/not allowed/);
      expect(published.some((e) => e.teamId === b.team && e.change.kind === "channel")).toBe(true);
      // Answered once: a second answer, even the same, changes nothing.
      await expect(answerChannel(ports, b, invited.id, "accept")).rejects.toMatchObject({ kind: "conflict" });

      await disconnectConnection(connections, b, k);
      const closed = await ports.store.inviteFor(a.team, invited.id);
      expect(closed).toMatchObject({ status: "ended", applied: false, endedBy: { team: b.team, user: null } });
      expect(await ports.store.unappliedOf(k)).toHaveLength(1);
      expect(await endConnectionChannels(ports, k)).toBe(1);
      expect(await sharedInto(b.team)).toEqual([]);
      expect(await sharedInto(a.team)).toEqual([ch]);
      expect(await ports.store.inviteFor(b.team, invited.id)).toMatchObject({ status: "ended", applied: true });
      expect(await ports.store.unappliedOf(k)).toEqual([]);
    });

    it("a status changes once: of two answers at once one wins, and an accept cannot slip past a disconnect", async () => {
      const { ports, connections, team, connect, channel, admin } = await setup();
      const a = await team("A");
      const b = await team("B");
      const k = await connect(a, b);
      const ch = await channel(a, "race");
      const invited = await inviteChannel(ports, admin(a), k, ch);
      const results = await Promise.allSettled([
        answerChannel(ports, b, invited.id, "accept"),
        answerChannel(ports, b, invited.id, "decline"),
      ]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);

      // An accept read while the connection was live, written after the disconnect: refused by the store.
      const ch2 = await channel(a, "late");
      const late = await inviteChannel(ports, admin(a), k, ch2);
      const row = (await ports.store.inviteFor(b.team, late.id)) as SharedChannelInvite;
      await disconnectConnection(connections, a, k);
      const now = Date.now();
      const accepted = { ...row, status: "accepted" as const, answeredBy: { user: b.user, at: now, auto: false } };
      expect(await ports.store.update({ ...accepted, applied: false, updatedAt: now }, "pending")).toBe(false);
    });

    it("a disconnect whose unshare ran before an accept's share still ends with the channel unshared", async () => {
      const { ports, connections, team, connect, channel, admin, sharedInto } = await setup();
      const a = await team("A");
      const b = await team("B");
      const k = await connect(a, b);
      const ch = await channel(a, "racing");
      const invited = await inviteChannel(ports, admin(a), k, ch);
      // The accept's share is slow: the disconnect commits, closes the invitation and
      // runs its (then empty) unshare first; only then does the share land.
      const racing: SharedChannelsPorts = {
        ...ports,
        sharing: {
          ...ports.sharing,
          share: async (host, channelId, guest) => {
            await disconnectConnection(connections, a, k);
            await endConnectionChannels(ports, k);
            await ports.sharing.share(host, channelId, guest);
          },
        },
      };
      const answered = await answerChannel(racing, b, invited.id, "accept");
      expect(answered.status).toBe("ended");
      expect(await sharedInto(b.team)).toEqual([]);
      expect(await ports.store.unappliedOf(k)).toEqual([]);
    });

    it("an end whose unshare lands after a newer accept's share leaves the channel shared by the newer one", async () => {
      const { ports, team, connect, channel, admin, sharedInto } = await setup();
      const a = await team("A");
      const b = await team("B");
      const k = await connect(a, b);
      const ch = await channel(a, "reopened");
      const first = await inviteChannel(ports, admin(a), k, ch);
      await answerChannel(ports, b, first.id, "accept");
      // The end's unshare is slow: meanwhile the channel is invited again and accepted
      // (its share a no-op: the channel is still shared), and only then the unshare lands.
      let newer = "";
      const racing: SharedChannelsPorts = {
        ...ports,
        sharing: {
          ...ports.sharing,
          unshare: async (host, channelId, guest) => {
            newer = (await inviteChannel(ports, admin(a), k, ch)).id;
            await answerChannel(ports, b, newer, "accept");
            await ports.sharing.unshare(host, channelId, guest);
          },
        },
      };
      expect((await withdrawChannel(racing, admin(a), first.id)).status).toBe("ended");
      expect(await ports.store.inviteFor(a.team, newer)).toMatchObject({ status: "accepted", applied: true });
      expect(await sharedInto(b.team)).toEqual([ch]);
    });

    it("lists a team's invitations from both sides, newest first, in stable pages; other teams see none", async () => {
      const { ports, team, connect, channel, admin, clock } = await setup();
      const a = await team("A");
      const b = await team("B");
      const c = await team("C");
      const k = await connect(a, b);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        clock.advance(1);
        ids.push((await inviteChannel(ports, admin(a), k, await channel(a, `a${i}`))).id);
        clock.advance(1);
        ids.push((await inviteChannel(ports, admin(b), k, await channel(b, `b${i}`))).id);
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 5; page++) {
        const got = await listSharedChannels(ports, b.team, { limit: 4, cursor });
        seen.push(...got.shared_channels.map((s) => s.id));
        if (!got.next_cursor) break;
        cursor = got.next_cursor;
      }
      expect(seen).toEqual([...ids].reverse());
      expect((await listSharedChannels(ports, c.team)).shared_channels).toEqual([]);
      expect(await ports.store.inviteFor(c.team, ids[0] as string)).toBeNull();
    });

    it("finds what a crash left unapplied, oldest first, and forgets it once applied", async () => {
      const { ports, team, connect, channel, admin, clock } = await setup();
      const a = await team("A");
      const b = await team("B");
      const k = await connect(a, b);
      const invited = await inviteChannel(ports, admin(a), k, await channel(a, "crash"));
      const row = (await ports.store.inviteFor(a.team, invited.id)) as SharedChannelInvite;
      const at = clock.now();
      const cut = { ...row, status: "accepted" as const, answeredBy: { user: b.user, at, auto: false } };
      expect(await ports.store.update({ ...cut, applied: false, updatedAt: at }, "pending")).toBe(true);
      expect((await ports.store.unapplied(at, 10)).map((i) => i.id)).toContain(invited.id);
      expect((await ports.store.unapplied(at - 1, 10)).map((i) => i.id)).not.toContain(invited.id);
      // Marking applied for another status than the row's changes nothing.
      await ports.store.markApplied(invited.id, "ended");
      expect((await ports.store.unapplied(at, 10)).map((i) => i.id)).toContain(invited.id);
      await ports.store.markApplied(invited.id, "accepted");
      expect((await ports.store.unapplied(at, 10)).map((i) => i.id)).not.toContain(invited.id);
    });
  });
}
