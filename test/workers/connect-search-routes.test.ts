import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { pingQueuedIndexes } from "../../platform/deps";
import { connectIndexOf } from "../../platform/stubs";
import { d1Driver } from "../../storage/d1-driver";
import { addUsers, api, connectTeams, newTeam, ok, platformToken, token } from "./client";

// The admin search over a team's connections, end to end on D1: every
// connect write (a connection, a shared channel, a prefs level, a partner's
// new name) is visible in the team's search within a second; filters and
// sorts answer from the index; the rebuild from the source of truth equals
// what the writes built; refreshes a crash left queued are taken by the
// sweep; and only the team's own admins search it.

interface HitJson {
  connection: string;
  partner: { id: string; name: string; domains: string[] };
  status: string;
  channels: number;
  pending_invitations: number;
  prefs: Record<string, string | number | boolean>;
}
interface PageJson {
  connections: HitJson[];
  next_cursor: string | null;
}

const workerEnv = env as unknown as Env;

async function team(name: string, domains: string[] = []) {
  const t = await newTeam();
  const operator = await platformToken();
  await ok(api("PATCH", `/v1/admin/teams/${t.id}`, { token: operator, json: { name, claimed_domains: domains } }));
  await addUsers(t.id, [["UMEMBER", "member"]]);
  return { ...t, member: await token(t.id, "UMEMBER") };
}
type TestTeam = Awaited<ReturnType<typeof team>>;

const connect = (a: TestTeam, b: TestTeam) => connectTeams(a.admin, b.admin);

const search = (as: string, query = "") => ok<PageJson>(api("GET", `/v1/admin/connections${query}`, { token: as }));

/** Polls the search until `check` holds; answers how long the write took to show (ms). */
async function visibleWithin(as: string, query: string, check: (p: PageJson) => boolean): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (check(await search(as, query))) return Date.now() - started;
    if (Date.now() - started > 5_000) throw new Error(`not visible after 5 s: ${query}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const word = () => `w${crypto.randomUUID().slice(0, 8)}`;

describe("admin search over a team's connections", () => {
  it("shows each kind of write within a second: a connection, shared channels, prefs, a disconnect", async () => {
    const tag = word();
    const a = await team(`Alpha ${tag}`);
    const b = await team(`Bravo ${tag} Industries`, [`bravo-${tag}.example`]);
    const connection = await connect(a, b);
    const lag: number[] = [];
    lag.push(await visibleWithin(a.admin, `?q=bravo ${tag}`, (p) => p.connections[0]?.connection === connection));
    // Either side finds the other, by any word of the name or a domain's prefix.
    lag.push(await visibleWithin(b.admin, `?q=alph`, (p) => p.connections.some((h) => h.partner.id === a.id)));
    expect((await search(a.admin, `?q=bravo-${tag}.exam`)).connections.map((h) => h.partner.id)).toEqual([b.id]);

    // A shared channel: pending, then accepted.
    const { channel } = await ok<{ channel: { id: string } }>(
      api("POST", `/v1/admin/teams/${a.id}/channels`, { token: a.admin, json: { name: `sc-${tag}` } }),
      201,
    );
    const { shared_channel } = await ok<{ shared_channel: { id: string } }>(
      api("POST", "/v1/connect/shared-channels", { token: a.admin, json: { connection, channel: channel.id } }),
      201,
    );
    lag.push(await visibleWithin(b.admin, "", (p) => p.connections[0]?.pending_invitations === 1));
    await ok(
      api("POST", `/v1/connect/shared-channels/${shared_channel.id}/answer`, {
        token: b.admin,
        json: { decision: "accept" },
      }),
    );
    lag.push(
      await visibleWithin(
        a.admin,
        "",
        (p) => p.connections[0]?.channels === 1 && p.connections[0]?.pending_invitations === 0,
      ),
    );

    // A partner-level pref, then the org level: filters on any pref's effective value.
    await ok(
      api("PATCH", `/v1/connect/prefs/partners/${b.id}`, { token: a.admin, json: { auto_approval: { mode: "all" } } }),
    );
    lag.push(await visibleWithin(a.admin, "?pref.auto_approval=all", (p) => p.connections.length === 1));
    await ok(api("PATCH", "/v1/connect/prefs/org", { token: a.admin, json: { channel_creation: { who: "members" } } }));
    lag.push(await visibleWithin(a.admin, "?pref.channel_creation=members", (p) => p.connections.length === 1));

    // The partner's new name.
    const renamed = word();
    await ok(
      api("PATCH", `/v1/admin/teams/${b.id}`, { token: await platformToken(), json: { name: `Renamed ${renamed}` } }),
    );
    lag.push(await visibleWithin(a.admin, `?q=${renamed}`, (p) => p.connections.length === 1));

    await ok(api("DELETE", `/v1/connect/connections/${connection}`, { token: b.admin }));
    lag.push(await visibleWithin(a.admin, "?status=disconnected", (p) => p.connections[0]?.connection === connection));
    expect((await search(a.admin, "?status=accepted")).connections).toEqual([]);
    // Every write showed within a second (the write-up's search had a five-second lag).
    expect(Math.max(...lag), JSON.stringify(lag)).toBeLessThan(1_000);
  });

  it("sorts and pages with stable cursors, and the rebuild from the database equals what the writes built", async () => {
    const tag = word();
    const a = await team(`Hub ${tag}`);
    const partners: TestTeam[] = [];
    for (const name of ["Delta", "Charlie", "Echo", "Bravo"]) {
      const p = await team(`${name} ${tag}`);
      partners.push(p);
      await connect(p, a);
    }
    await visibleWithin(a.admin, `?q=${tag}`, (p) => p.connections.length === 4);
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const page: PageJson = await search(a.admin, `?q=${tag}&sort=name&limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      names.push(...page.connections.map((h) => h.partner.name.split(" ")[0] ?? ""));
      cursor = page.next_cursor;
    } while (cursor);
    expect(names).toEqual(["Bravo", "Charlie", "Delta", "Echo"]);

    const index = connectIndexOf(workerEnv, a.id);
    const incremental = await index.all();
    // A document the database has no connection for (an index gone wrong): the rebuild drops it.
    const [first] = incremental;
    if (!first) throw new Error("nothing indexed");
    const { prefs: _effective, ...stray } = first;
    await index.upsert({ ...stray, own: {}, connectionId: "KSTRAY", partnerName: "Stray" });
    const rebuilt = await ok<{ rebuilt: number }>(api("POST", "/v1/admin/connections/rebuild", { token: a.admin }));
    expect(rebuilt.rebuilt).toBe(4);
    expect(await index.all()).toEqual(incremental);
  });

  it("a refresh a crash left queued is taken by the sweep", async () => {
    const tag = word();
    const a = await team(`Sweep ${tag}`);
    const b = await team(`Partner ${tag}`);
    await connect(a, b);
    await visibleWithin(a.admin, `?q=partner ${tag}`, (p) => p.connections.length === 1);
    // As a process killed after its write's unit committed and before the index heard of it:
    // the partner's new name and its queued refresh, and no ping.
    const fresh = word();
    await d1Driver(env.DB).atomic([
      { sql: "UPDATE teams SET name = ? WHERE id = ?", params: [`Fresh ${fresh}`, b.id] },
      {
        sql: "INSERT INTO connect_index_queue (team_id, partner_id, seq, queued_at) VALUES (?, ?, 1, ?)",
        params: [a.id, b.id, Date.now() - 60_000],
      },
    ]);
    expect((await search(a.admin, `?q=${fresh}`)).connections).toEqual([]);
    expect(await pingQueuedIndexes(workerEnv, 0, Date.now() - 10_000)).toBeGreaterThanOrEqual(1);
    expect((await search(a.admin, `?q=${fresh}`)).connections.map((h) => h.partner.id)).toEqual([b.id]);
  });

  it("only the team's own admins search it; bad queries are 400s", async () => {
    const tag = word();
    const a = await team(`Own ${tag}`);
    const b = await team(`Other ${tag}`);
    await connect(a, b);
    await visibleWithin(a.admin, `?q=${tag}`, (p) => p.connections.length === 1);
    const c = await team(`Stranger ${tag}`);
    expect((await search(c.admin, `?q=${tag}`)).connections).toEqual([]);
    expect((await api("GET", "/v1/admin/connections", { token: a.member })).status).toBe(403);
    expect((await api("GET", "/v1/admin/connections", { token: await platformToken() })).status).toBe(403);
    expect((await api("POST", "/v1/admin/connections/rebuild", { token: a.member })).status).toBe(403);
    for (const q of ["?sort=size", "?limit=0", "?status=maybe", "?cursor=%%%", "?pref.Bad-Field=1"]) {
      expect((await api("GET", `/v1/admin/connections${q}`, { token: a.admin })).status, q).toBe(400);
    }
  });
});
