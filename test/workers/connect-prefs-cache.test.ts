import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PrefContainer } from "../../src/connect/prefs/registry";
import { connectPrefsStore } from "../../storage/connect-prefs-sql";
import { d1Driver } from "../../storage/d1-driver";
import { api, connectTeams, newTeam, ok } from "./client";

// The prefs cache end to end on D1: a team's prefs levels are read from its
// TeamCache's memory (a change made behind the API's back is not seen), and
// a write through the API clears it before answering, so the answer and
// every read after it show the level as the database holds it, including
// what changed behind its back (the write lost its compare-and-set to it,
// cleared the cache, and re-applied its patch over it).

interface PrefsJson {
  prefs: Record<string, { value: Record<string, unknown>; source: string }>;
}

describe("connect prefs cache", () => {
  it("serves reads from memory, and no read after a successful write is stale", async () => {
    const a = await newTeam();
    const b = await newTeam();
    await connectTeams(a.admin, b.admin);
    const path = `/v1/connect/prefs/partners/${b.id}`;
    const read = async () => (await ok<PrefsJson>(api("GET", path, { token: a.admin }))).prefs;
    expect((await read()).channel_creation).toMatchObject({ value: { who: "admins" }, source: "default" });

    // Behind the API's back (another writer whose clearing was cut off): the cache still answers.
    const container = new PrefContainer();
    const prefs = container.decode(null, "partner", []);
    container.patch(prefs, "partner", { channel_creation: { who: "nobody" } }, []);
    const raw = connectPrefsStore(d1Driver(env.DB));
    expect(await raw.writeLevel(a.id, b.id, container.encode(prefs), null, [], Date.now())).toBe(true);
    expect((await read()).channel_creation).toMatchObject({ value: { who: "admins" }, source: "default" });

    // A write through the API: answered with, and followed by, what the database holds.
    const changed = await ok<PrefsJson>(
      api("PATCH", path, { token: a.admin, json: { auto_approval: { mode: "all" } } }),
    );
    for (const view of [changed.prefs, await read()]) {
      expect(view.auto_approval).toMatchObject({ value: { mode: "all" }, source: "partner" });
      expect(view.channel_creation).toMatchObject({ value: { who: "nobody" }, source: "partner" });
    }
  });
});
