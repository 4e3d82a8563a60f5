import { describe, expect, it } from "vitest";
import type { Actor } from "../../src/connect/connections";
import { disconnectConnection } from "../../src/connect/connections-service";
import { docPages, type IndexFeedPorts, orgGroups, refreshQueued } from "../../src/connect/index-feed";
import type { PrefGroups } from "../../src/connect/prefs/registry";
import { changePrefs } from "../../src/connect/prefs-service";
import { ORG_LEVEL } from "../../src/connect/prefs-store";
import { type ConnectionDoc, effectiveDoc, type IndexedConnection } from "../../src/connect/search";
import { newAuditId } from "../../src/connect/team-prefs";
import { connectionFacts } from "../../storage/connect-facts-sql";
import { indexQueue, queueRefresh } from "../../storage/connect-index-queue-sql";
import { connectPrefsStore } from "../../storage/connect-prefs-sql";
import { type Backend, connectFixture, fixedClock } from "./fixtures";

// The admin search's feed on every adapter (src/connect/index-feed.ts): each
// connect write queues its refreshes in its own unit (storage/*-sql.ts), the
// drain computes those documents from the database and leaves a row queued
// by a change that landed during the drain, and the documents a drain built
// equal the rebuild from the source of truth. The index object itself is
// durable-objects/connect-index/ (tested in workerd); here the documents
// land in a map keyed as it keys them.

export function indexFeedContract(open: () => Promise<Backend>): void {
  describe("admin search feed", () => {
    const setup = async () => {
      const { driver, store } = await open();
      const clock = fixedClock(Date.now());
      const { connections, team: named, connect } = connectFixture(driver, store, clock);
      const prefsPorts = { store: connectPrefsStore(driver), newId: newAuditId, now: () => clock.now() };
      const index = new Map<string, IndexedConnection>();
      let org: PrefGroups | null = null;
      const feed: IndexFeedPorts = {
        queue: indexQueue(driver),
        source: connectionFacts(driver),
        prefs: prefsPorts,
        upsert: (docs) => {
          for (const d of docs) index.set(d.connectionId, d);
        },
        setOrg: (groups) => {
          org = groups;
        },
        orgKnown: () => org !== null,
      };
      const team = (name: string, domains: string[] = []) => named(name, { domains });
      const byId = (x: ConnectionDoc, y: ConnectionDoc) => (x.connectionId < y.connectionId ? -1 : 1);
      const rebuilt = async (t: Actor) => {
        const out: ConnectionDoc[] = [];
        const orgNow = await orgGroups(feed, t.team);
        for await (const page of docPages(feed, t.team, null)) out.push(...page.map((d) => effectiveDoc(d, orgNow)));
        return out.sort(byId);
      };
      const indexed = () => [...index.values()].map((d) => effectiveDoc(d, org ?? {})).sort(byId);
      return { driver, store, clock, connections, prefsPorts, feed, index, team, connect, rebuilt, indexed };
    };

    it("queues both sides of a connection and of its end; the drain equals the rebuild", async () => {
      const { connections, feed, team, connect, rebuilt, indexed, clock } = await setup();
      const hub = await team("Hub Co", ["hub.example"]);
      const partners = [await team("Acme Corp", ["acme.example"]), await team("Zenith Ltd")];
      const ids: string[] = [];
      for (const p of partners) ids.push(await connect(hub, p));
      expect((await feed.queue.queued(hub.team, 10)).map((q) => q.partner).sort()).toEqual(
        partners.map((p) => p.team).sort(),
      );
      expect((await feed.queue.queued(partners[0]?.team ?? "", 10)).map((q) => q.partner)).toEqual([hub.team]);
      expect(await refreshQueued(feed, hub.team)).toBe(2);
      expect(await feed.queue.queued(hub.team, 10)).toEqual([]);
      expect(indexed()).toEqual(await rebuilt(hub));
      expect(indexed().map((d) => [d.partnerName, d.partnerDomains, d.status])).toEqual(
        expect.arrayContaining([
          ["Acme Corp", ["acme.example"], "accepted"],
          ["Zenith Ltd", [], "accepted"],
        ]),
      );

      clock.advance(1);
      await disconnectConnection(connections, hub, ids[0] as string);
      expect(await refreshQueued(feed, hub.team)).toBe(1);
      expect(indexed().find((d) => d.connectionId === ids[0])?.status).toBe("disconnected");
      expect(indexed()).toEqual(await rebuilt(hub));
    });

    it("a prefs level queues its partner (the org level: the index's org values, no document), and answers carry the effective values", async () => {
      const { feed, prefsPorts, team, connect, rebuilt, indexed } = await setup();
      const hub = await team("Prefs Hub");
      const a = await team("Alpha");
      const b = await team("Bravo");
      await connect(hub, a);
      await connect(hub, b);
      await refreshQueued(feed, hub.team);
      await changePrefs(prefsPorts, {
        teamId: hub.team,
        targetTeamId: a.team,
        actor: "UADMIN",
        patch: { auto_approval: { mode: "all" } },
      });
      expect((await feed.queue.queued(hub.team, 10)).map((q) => q.partner)).toEqual([a.team]);
      expect(await refreshQueued(feed, hub.team)).toBe(1);
      await changePrefs(prefsPorts, {
        teamId: hub.team,
        targetTeamId: ORG_LEVEL,
        actor: "UADMIN",
        patch: { channel_creation: { who: "nobody" } },
      });
      expect((await feed.queue.queued(hub.team, 10)).map((q) => q.partner)).toEqual(["*"]);
      expect(await refreshQueued(feed, hub.team)).toBe(0);
      const byPartner = new Map(indexed().map((d) => [d.partnerId, d.prefs]));
      expect(byPartner.get(a.team)).toMatchObject({ auto_approval: "all", channel_creation: "nobody" });
      expect(byPartner.get(b.team)).toMatchObject({ auto_approval: "off", channel_creation: "nobody" });
      expect(indexed()).toEqual(await rebuilt(hub));
    });

    it("refreshes a team with more partners than one statement may name (D1 binds at most 100 values)", async () => {
      const { feed, prefsPorts, team, connect, rebuilt, indexed } = await setup();
      const hub = await team("Busy Hub");
      const partners: Actor[] = [];
      for (let i = 0; i < 130; i++) partners.push(await team(`Partner ${i}`));
      for (const p of partners) await connect(hub, p);
      // Every partner queued at once (130 rows), then the org level (no document rewritten).
      expect(await refreshQueued(feed, hub.team)).toBe(130);
      await changePrefs(prefsPorts, {
        teamId: hub.team,
        targetTeamId: ORG_LEVEL,
        actor: "UADMIN",
        patch: { channel_creation: { who: "members" } },
      });
      expect(await refreshQueued(feed, hub.team)).toBe(0);
      expect(indexed().every((d) => d.prefs.channel_creation === "members")).toBe(true);
      expect(indexed()).toEqual(await rebuilt(hub));
      expect((await prefsPorts.store.levels(hub.team, ["0", ...partners.map((p) => p.team)])).length).toBe(1);
    });

    it("keeps a row re-queued while a drain read it, and a new name reaches every partner's documents", async () => {
      const { driver, store, feed, team, connect, indexed } = await setup();
      const hub = await team("Old Name");
      const p = await team("Partner");
      await connect(hub, p);
      const read = await feed.queue.queued(p.team, 10);
      expect(read).toHaveLength(1);
      // A change lands after the drain read the row, before it removed it.
      await driver.atomic(queueRefresh(driver.dialect, [{ team: p.team, partner: hub.team }], Date.now()));
      await feed.queue.taken(p.team, read);
      expect((await feed.queue.queued(p.team, 10)).map((q) => q.partner)).toEqual([hub.team]);
      await refreshQueued(feed, p.team);

      await store.updateTeam(hub.team, { name: "New Name" });
      expect((await feed.queue.queued(p.team, 10)).map((q) => q.partner)).toEqual([hub.team]);
      await refreshQueued(feed, p.team);
      expect(indexed().map((d) => d.partnerName)).toEqual(["New Name"]);
      expect(await feed.queue.teamsQueued(0, Date.now() + 1_000, 10)).not.toContain(p.team);
    });
  });
}
