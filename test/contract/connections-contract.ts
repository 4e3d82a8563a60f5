import { describe, expect, it } from "vitest";
import { type Actor, INVITATION_TTL_MS } from "../../src/connect/connections";
import {
  answerInvitation,
  answerInvitationOnce,
  cancelInvitation,
  createInvitation,
  createInvitationOnce,
  disconnectConnection,
  listConnections,
  listInvitations,
  newConnectId,
} from "../../src/connect/connections-service";
import { connectionsStore } from "../../storage/connections-sql";
import { type Backend, fixedClock, uniqueTeamId } from "./fixtures";

// Connections on every adapter, through the use cases over the real SQL
// store: invitations and codes, answers, the two races the schema must
// settle (one code redeemed once; one live connection per pair), disconnect
// and reconnect, pages, and that a team's calls see only its own rows.

export function connectionsContract(open: () => Promise<Backend>): void {
  describe("connections", () => {
    const setup = async () => {
      const { driver, store } = await open();
      const clock = fixedClock();
      const ports = { store: connectionsStore(driver), now: () => clock.now(), newId: newConnectId };
      const admin = (label: string): Actor => ({ team: uniqueTeamId(`T${label}`), user: `UADM${label}` });
      /** An admin of a team that exists (an Idempotency-Key's record is kept for a team row). */
      const adminOfTeam = async (label: string): Promise<Actor> => {
        const a = admin(label);
        await store.createTeam({
          id: a.team,
          name: a.team,
          plan: "pro",
          claimedDomains: [],
          createdAt: 0,
          healedAt: null,
        });
        return a;
      };
      return { ports, clock, admin, adminOfTeam };
    };

    it("replays a keyed create and a keyed accept with the same answer, writing nothing twice", async () => {
      const { ports, clock, adminOfTeam } = await setup();
      const a = await adminOfTeam("A");
      const b = await adminOfTeam("B");
      const create = { key: "create-1", requestHash: "h-create" };
      const first = await createInvitationOnce(ports, a, create);
      clock.advance(1);
      const again = await createInvitationOnce(ports, a, create);
      expect(first.replayed).toBe(false);
      expect(again).toEqual({ value: first.value, replayed: true });
      expect((await listInvitations(ports, a.team)).invitations).toHaveLength(1);
      // The same key with another request is refused, and writes nothing.
      await expect(createInvitationOnce(ports, a, { key: "create-1", requestHash: "other" })).rejects.toMatchObject({
        kind: "invalid",
      });
      expect((await listInvitations(ports, a.team)).invitations).toHaveLength(1);

      const accept = { key: "accept-1", requestHash: "h-accept" };
      const accepted = await answerInvitationOnce(ports, b, first.value.code, "accept", accept);
      const replayed = await answerInvitationOnce(ports, b, first.value.code, "accept", accept);
      expect(accepted.value.decision).toBe("accepted");
      expect(replayed).toEqual({ value: accepted.value, replayed: true });
      expect((await listConnections(ports, b.team)).connections).toHaveLength(1);
      // Without the key, the redeemed code is what it is now: nothing.
      await expect(answerInvitation(ports, b, first.value.code, "accept")).rejects.toMatchObject({ kind: "not_found" });
      // Another team's same key value is its own.
      const c = await adminOfTeam("C");
      expect((await createInvitationOnce(ports, c, create)).replayed).toBe(false);
    });

    it("keeps no record for a keyed answer that failed, so its retry is checked again", async () => {
      const { ports, adminOfTeam } = await setup();
      const b = await adminOfTeam("B");
      const key = { key: "answer-x", requestHash: "h" };
      await expect(answerInvitationOnce(ports, b, "00".repeat(20), "accept", key)).rejects.toMatchObject({
        kind: "not_found",
      });
      expect(await ports.store.idempotencyRecord(b.team, "answer-x")).toBeNull();
    });

    it("an invitation round-trips, and its code connects the team that redeems it", async () => {
      const { ports, clock, admin } = await setup();
      const a = admin("A");
      const b = admin("B");
      const created = await createInvitation(ports, a);
      expect(created.code).toMatch(/^[0-9a-f]{40}$/);
      expect(created.invitation).toMatchObject({ status: "pending", created_by: a.user, answered: null });
      const stored = await ports.store.invitationOf(a.team, created.invitation.id);
      expect(stored).toMatchObject({ fromTeam: a.team, fromUser: a.user, status: "pending" });
      // Only the hash is kept.
      expect(JSON.stringify(stored)).not.toContain(created.code);
      expect(await ports.store.invitationByCode(stored?.codeHash ?? "")).toEqual(stored);

      clock.advance(1000);
      const answered = await answerInvitation(ports, b, created.code, "accept");
      expect(answered.decision).toBe("accepted");
      expect(answered.connection).toMatchObject({
        partner: a.team,
        status: "accepted",
        invited_by_us: false,
        requested: { team: a.team, user: a.user },
        accepted: { team: b.team, user: b.user, at: clock.now() },
        disconnected: null,
      });
      const id = answered.connection?.id ?? "";
      const ofA = await listConnections(ports, a.team);
      expect(ofA.connections).toEqual([{ ...answered.connection, partner: b.team, invited_by_us: true }]);
      expect((await listConnections(ports, b.team)).connections.map((c) => c.id)).toEqual([id]);
      const [invitation] = (await listInvitations(ports, a.team)).invitations;
      expect(invitation).toMatchObject({ status: "accepted", answered: { team: b.team, user: b.user } });
      expect(await ports.store.liveConnection(b.team, a.team)).toMatchObject({ id, inviter: a.team });
    });

    it("answers every code that cannot be redeemed as one that never existed", async () => {
      const { ports, clock, admin } = await setup();
      const a = admin("A");
      const b = admin("B");
      const notFound = { kind: "not_found", message: "no such invitation" };
      await expect(answerInvitation(ports, b, "00".repeat(20), "accept")).rejects.toMatchObject(notFound);
      // Its own team's code.
      const own = await createInvitation(ports, a);
      await expect(answerInvitation(ports, { ...a, user: "UOTHER" }, own.code, "accept")).rejects.toMatchObject(
        notFound,
      );
      // Declined, then anything after.
      expect(await answerInvitation(ports, b, own.code, "decline")).toEqual({ decision: "declined", connection: null });
      await expect(answerInvitation(ports, b, own.code, "accept")).rejects.toMatchObject(notFound);
      // Cancelled.
      clock.advance(1);
      const cancelled = await createInvitation(ports, a);
      expect((await cancelInvitation(ports, a, cancelled.invitation.id)).status).toBe("cancelled");
      await expect(answerInvitation(ports, b, cancelled.code, "accept")).rejects.toMatchObject(notFound);
      await expect(cancelInvitation(ports, a, cancelled.invitation.id)).rejects.toMatchObject({ kind: "conflict" });
      // Expired: listed as such, redeems nothing.
      clock.advance(1);
      const expiring = await createInvitation(ports, a);
      clock.advance(INVITATION_TTL_MS);
      await expect(answerInvitation(ports, b, expiring.code, "accept")).rejects.toMatchObject(notFound);
      const listed = (await listInvitations(ports, a.team)).invitations.map((i) => [i.id, i.status]);
      expect(listed).toEqual([
        [expiring.invitation.id, "expired"],
        [cancelled.invitation.id, "cancelled"],
        [own.invitation.id, "declined"],
      ]);
      // Used.
      const used = await createInvitation(ports, a);
      await answerInvitation(ports, b, used.code, "accept");
      await expect(answerInvitation(ports, admin("C"), used.code, "accept")).rejects.toMatchObject(notFound);
    });

    it("redeems a code once when two teams accept it at once", async () => {
      const { ports, admin } = await setup();
      const a = admin("A");
      for (let round = 0; round < 3; round++) {
        const { code } = await createInvitation(ports, a);
        const takers = [admin("B"), admin("C"), admin("D")];
        const results = await Promise.allSettled(takers.map((t) => answerInvitation(ports, t, code, "accept")));
        const won = results.filter((r) => r.status === "fulfilled");
        expect(won, JSON.stringify(results)).toHaveLength(1);
        for (const r of results) {
          if (r.status === "rejected") expect(r.reason).toMatchObject({ kind: "not_found" });
        }
      }
      expect((await listConnections(ports, a.team)).connections).toHaveLength(3);
    });

    it("redeems a code once when the same team accepts it twice at once", async () => {
      const { ports, admin } = await setup();
      const a = admin("A");
      const b = admin("B");
      const { code } = await createInvitation(ports, a);
      const results = await Promise.allSettled([
        answerInvitation(ports, b, code, "accept"),
        answerInvitation(ports, { ...b, user: "USECOND" }, code, "accept"),
        answerInvitation(ports, b, code, "decline"),
      ]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect((await listConnections(ports, b.team)).connections.length).toBeLessThanOrEqual(1);
    });

    it("keeps one live connection per pair when two invitations between them are accepted at once", async () => {
      const { ports, admin } = await setup();
      const a = admin("A");
      const b = admin("B");
      // Each side invited the other, and both answer at once; plus a second code of A's.
      const fromA = await createInvitation(ports, a);
      const fromA2 = await createInvitation(ports, a);
      const fromB = await createInvitation(ports, b);
      const results = await Promise.allSettled([
        answerInvitation(ports, b, fromA.code, "accept"),
        answerInvitation(ports, b, fromA2.code, "accept"),
        answerInvitation(ports, a, fromB.code, "accept"),
      ]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results) {
        if (r.status === "rejected") expect(r.reason).toMatchObject({ kind: "conflict" });
      }
      const live = (await listConnections(ports, a.team)).connections.filter((c) => c.status === "accepted");
      expect(live).toHaveLength(1);
      // A refused accept wrote nothing: the losers' invitations are still pending.
      const pending = [
        ...(await listInvitations(ports, a.team)).invitations,
        ...(await listInvitations(ports, b.team)).invitations,
      ].filter((i) => i.status === "pending");
      expect(pending).toHaveLength(2);
    });

    it("lets the schema refuse a second live connection for a pair even when no check ran first", async () => {
      const { ports, clock, admin } = await setup();
      const a = admin("A");
      const b = admin("B");
      const one = await createInvitation(ports, a);
      const two = await createInvitation(ports, b);
      const [inv1, inv2] = await Promise.all([
        ports.store.invitationOf(a.team, one.invitation.id),
        ports.store.invitationOf(b.team, two.invitation.id),
      ]);
      // Both accepted straight through the store, as two requests that each
      // read "no live connection" before either wrote would do.
      const at = clock.now();
      const accepted = (inv: typeof inv1, by: typeof a) => {
        if (!inv) throw new Error("missing invitation");
        const id = newConnectId("connection");
        return ports.store.accept(
          { ...inv, status: "accepted", answeredBy: { team: by.team, user: by.user, at } },
          {
            id,
            inviter: inv.fromTeam,
            invitee: by.team,
            status: "accepted",
            invitationId: inv.id,
            requestedBy: { team: inv.fromTeam, user: inv.fromUser, at: inv.createdAt },
            acceptedBy: { team: by.team, user: by.user, at },
            disconnectedBy: null,
          },
        );
      };
      const outcomes = await Promise.all([accepted(inv1, b), accepted(inv2, a)]);
      expect(outcomes.sort()).toEqual(["accepted", "pair_taken"]);
      const statuses = [
        (await ports.store.invitationOf(a.team, one.invitation.id))?.status,
        (await ports.store.invitationOf(b.team, two.invitation.id))?.status,
      ];
      // The loser's unit was rolled back whole: its invitation is still pending.
      expect(statuses.sort()).toEqual(["accepted", "pending"]);
      expect((await listConnections(ports, a.team)).connections).toHaveLength(1);
    });

    it("disconnects once, after which a new invitation connects the pair again", async () => {
      const { ports, clock, admin } = await setup();
      const a = admin("A");
      const b = admin("B");
      const first = await answerInvitation(ports, b, (await createInvitation(ports, a)).code, "accept");
      const id = first.connection?.id ?? "";
      // Still connected: another code of the pair is refused, and stays pending.
      const early = await createInvitation(ports, b);
      await expect(answerInvitation(ports, a, early.code, "accept")).rejects.toMatchObject({ kind: "conflict" });
      clock.advance(10);
      const ended = await disconnectConnection(ports, a, id);
      expect(ended).toMatchObject({
        status: "disconnected",
        disconnected: { team: a.team, user: a.user, at: clock.now() },
      });
      await expect(disconnectConnection(ports, b, id)).rejects.toMatchObject({ kind: "conflict" });
      expect(await ports.store.liveConnection(a.team, b.team)).toBeNull();
      // Ended, the pair was still connected once (what the prefs routes let a team name), either way round.
      expect(await ports.store.everConnected(a.team, b.team)).toBe(true);
      expect(await ports.store.everConnected(b.team, a.team)).toBe(true);
      expect(await ports.store.everConnected(a.team, admin("C").team)).toBe(false);
      expect(await ports.store.everConnected(a.team, a.team)).toBe(false);
      // Disconnecting twice at once ends it once.
      clock.advance(10);
      const again = await answerInvitation(ports, a, early.code, "accept");
      expect(again.connection).toMatchObject({ partner: b.team, invited_by_us: false, status: "accepted" });
      const both = await Promise.allSettled([
        disconnectConnection(ports, a, again.connection?.id ?? ""),
        disconnectConnection(ports, b, again.connection?.id ?? ""),
      ]);
      expect(both.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      clock.advance(10);
      const third = await answerInvitation(ports, b, (await createInvitation(ports, a)).code, "accept");
      const listed = (await listConnections(ports, b.team)).connections;
      expect(listed.map((c) => [c.id, c.status])).toEqual([
        [third.connection?.id, "accepted"],
        [again.connection?.id, "disconnected"],
        [id, "disconnected"],
      ]);
    });

    it("pages connections and invitations newest first, each exactly once", async () => {
      const { ports, clock, admin } = await setup();
      const a = admin("A");
      const made: string[] = [];
      for (let i = 0; i < 7; i++) {
        // Pairs of rows at the same instant: the id breaks the tie.
        if (i % 2 === 0) clock.advance(1000);
        const { code } = await createInvitation(ports, a);
        // Half of them A's, half of them the partner's invitations.
        const partner = admin(`P${i}`);
        if (i % 2 === 0) {
          made.push((await answerInvitation(ports, partner, code, "accept")).connection?.id ?? "");
        } else {
          const theirs = await createInvitation(ports, partner);
          made.push((await answerInvitation(ports, a, theirs.code, "accept")).connection?.id ?? "");
        }
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = await listConnections(ports, a.team, { limit: 2, cursor });
        seen.push(...page.connections.map((c) => c.id));
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      expect(new Set(seen).size).toBe(7);
      expect(seen.sort()).toEqual([...made].sort());
      const all = (await listConnections(ports, a.team)).connections;
      const keys = all.map((c) => [c.accepted.at, c.id] as const);
      const sorted = [...keys].sort((x, y) => y[0] - x[0] || (y[1] < x[1] ? -1 : y[1] > x[1] ? 1 : 0));
      expect(keys).toEqual(sorted);

      const invitations: string[] = [];
      cursor = undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = await listInvitations(ports, a.team, { limit: 3, cursor });
        invitations.push(...page.invitations.map((i) => i.id));
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      expect(new Set(invitations).size).toBe(7);
      await expect(listConnections(ports, a.team, { cursor: "not-a-cursor" })).rejects.toMatchObject({
        kind: "invalid",
      });
    });

    it("never answers one team's call with another team's rows", async () => {
      const { ports, admin } = await setup();
      const a = admin("A");
      const b = admin("B");
      const outsider = admin("X");
      const pending = await createInvitation(ports, a);
      const connected = await answerInvitation(ports, b, (await createInvitation(ports, a)).code, "accept");
      const connectionId = connected.connection?.id ?? "";
      // The outsider names A's invitation and A and B's connection: missing, as ids that exist nowhere.
      for (const id of [pending.invitation.id, "INOSUCHINVITE"]) {
        await expect(cancelInvitation(ports, outsider, id)).rejects.toMatchObject({
          kind: "not_found",
          message: "no such invitation",
        });
      }
      for (const id of [connectionId, "KNOSUCHCONNECT"]) {
        await expect(disconnectConnection(ports, outsider, id)).rejects.toMatchObject({
          kind: "not_found",
          message: "no such connection",
        });
      }
      expect(await ports.store.connectionFor(outsider.team, connectionId)).toBeNull();
      expect(await ports.store.invitationOf(outsider.team, pending.invitation.id)).toBeNull();
      expect(await listInvitations(ports, outsider.team)).toEqual({ invitations: [], next_cursor: null });
      expect(await listConnections(ports, outsider.team)).toEqual({ connections: [], next_cursor: null });
      // B is a party to the connection but not the owner of A's invitations.
      await expect(cancelInvitation(ports, b, pending.invitation.id)).rejects.toMatchObject({ kind: "not_found" });
      expect((await listInvitations(ports, b.team)).invitations).toEqual([]);
      expect((await listInvitations(ports, a.team)).invitations).toHaveLength(2);
    });
  });
}
