import { describe, expect, it } from "vitest";
import type { AuditLineView } from "../../src/connect/team-prefs";
import { addUsers, api, connectTeams, newTeam, ok, platformToken, token } from "./client";

// The Slack Connect prefs routes end to end, on D1: an admin sets the org
// level and a partner's level, reads each pref's effective value with its
// source, clears with null; members and operators are refused; another
// team's admin, and any partner the team was never connected to, get the
// answers for ids that do not exist; a patch with any wrong pref changes
// nothing; concurrent patches all land; the audit says who changed what.

type Source = "default" | "org" | "partner";
interface Resolved {
  value: unknown;
  source: Source;
}
interface PrefsJson {
  prefs: Record<string, Resolved>;
  problems: unknown[];
  partner?: string;
  changed?: string[];
}
interface AuditJson {
  audit: AuditLineView[];
}
interface ErrorJson {
  error: { code: string; message: string; details?: { prefs?: Record<string, string[]> } };
}

const DEFAULTS: Record<string, unknown> = {
  auto_approval: { mode: "off", users: [] },
  file_uploads: { allowed: true, max_bytes: 0, blocked_types: [] },
  profile_fields: { visible: ["real_name", "display_name", "title", "avatar_hash"] },
  channel_creation: { who: "admins" },
};

const ORG = "/v1/connect/prefs/org";
const AUDIT = "/v1/connect/prefs/audit";
const partnerPath = (partner: string) => `/v1/connect/prefs/partners/${partner}`;

/** Team A (an admin, an owner, a member) connected to team B; and B's admin. */
async function connectedPair() {
  const a = await newTeam();
  const b = await newTeam({ admin: "UBADMIN" });
  await addUsers(a.id, [
    ["UOWNER", "owner"],
    ["UMEMBER", "member"],
  ]);
  const connection = await connectTeams(a.admin, b.admin);
  return {
    a: { ...a, owner: await token(a.id, "UOWNER"), member: await token(a.id, "UMEMBER") },
    b,
    connection,
  };
}

const values = (prefs: Record<string, Resolved>) =>
  Object.fromEntries(Object.entries(prefs).map(([k, r]) => [k, r.value]));
const sources = (prefs: Record<string, Resolved>) =>
  Object.fromEntries(Object.entries(prefs).map(([k, r]) => [k, r.source]));

/** Everything A's admin can read of A's prefs: what a refused request must leave as it was. */
async function prefsState(admin: string, partner: string) {
  const [org, toPartner, audit] = await Promise.all([
    ok<PrefsJson>(api("GET", ORG, { token: admin })),
    ok<PrefsJson>(api("GET", partnerPath(partner), { token: admin })),
    ok<AuditJson>(api("GET", `${AUDIT}?limit=200`, { token: admin })),
  ]);
  return { org, toPartner, audit };
}

describe("Slack Connect prefs routes", () => {
  it("sets the org level and a partner's level, answers each effective value with its source, clears with null", async () => {
    const { a, b } = await connectedPair();

    // Nothing set: every pref is its default, at both levels.
    const blank = await ok<PrefsJson>(api("GET", ORG, { token: a.admin }));
    expect(values(blank.prefs)).toEqual(DEFAULTS);
    expect(new Set(Object.values(sources(blank.prefs)))).toEqual(new Set(["default"]));
    expect(blank.problems).toEqual([]);

    const org = await ok<PrefsJson>(
      api("PATCH", ORG, {
        token: a.admin,
        json: { channel_creation: { who: "members" }, file_uploads: { allowed: false } },
      }),
    );
    expect(org.changed?.sort()).toEqual(["channel_creation", "file_uploads"]);
    expect(org.prefs.channel_creation).toEqual({ value: { who: "members" }, source: "org" });
    expect(org.prefs.file_uploads).toEqual({
      value: { allowed: false, max_bytes: 0, blocked_types: [] },
      source: "org",
    });
    expect(org.prefs.auto_approval).toEqual({ value: DEFAULTS.auto_approval, source: "default" });
    expect(await ok<PrefsJson>(api("GET", ORG, { token: a.admin }))).toEqual({
      prefs: org.prefs,
      problems: [],
    });

    const partner = await ok<PrefsJson>(
      api("PATCH", partnerPath(b.id), {
        token: a.admin,
        json: {
          channel_creation: { who: "nobody" },
          auto_approval: { mode: "listed", users: [" UB1 ", "UB2", "UB1"] },
        },
      }),
    );
    expect(partner.partner).toBe(b.id);
    expect(partner.changed?.sort()).toEqual(["auto_approval", "channel_creation"]);
    const effective = await ok<PrefsJson>(api("GET", partnerPath(b.id), { token: a.admin }));
    expect(effective).toEqual({ partner: b.id, prefs: partner.prefs, problems: [] });
    expect(sources(effective.prefs)).toEqual({
      auto_approval: "partner",
      file_uploads: "org",
      profile_fields: "default",
      channel_creation: "partner",
    });
    expect(values(effective.prefs)).toEqual({
      ...DEFAULTS,
      auto_approval: { mode: "listed", users: ["UB1", "UB2"] },
      file_uploads: { allowed: false, max_bytes: 0, blocked_types: [] },
      channel_creation: { who: "nobody" },
    });
    // The partner's level is not the org's: the org level reads as before.
    expect((await ok<PrefsJson>(api("GET", ORG, { token: a.admin }))).prefs).toEqual(org.prefs);

    // null clears at that level: the partner falls back to the org level, the org level to the default.
    const cleared = await ok<PrefsJson>(
      api("PATCH", partnerPath(b.id), { token: a.admin, json: { channel_creation: null } }),
    );
    expect(cleared.changed).toEqual(["channel_creation"]);
    expect(cleared.prefs.channel_creation).toEqual({ value: { who: "members" }, source: "org" });
    await ok(api("PATCH", ORG, { token: a.admin, json: { channel_creation: null } }));
    const after = await ok<PrefsJson>(api("GET", partnerPath(b.id), { token: a.admin }));
    expect(after.prefs.channel_creation).toEqual({ value: DEFAULTS.channel_creation, source: "default" });
    expect(after.prefs.auto_approval?.source).toBe("partner");

    // Setting what is set already, or clearing what is not set, changes nothing (and writes no audit line).
    const audited = (await ok<AuditJson>(api("GET", AUDIT, { token: a.admin }))).audit.length;
    const same = await ok<PrefsJson>(
      api("PATCH", partnerPath(b.id), {
        token: a.admin,
        json: { auto_approval: { mode: "listed", users: ["UB1", "UB2"] }, profile_fields: null },
      }),
    );
    expect(same.changed).toEqual([]);
    expect((await ok<AuditJson>(api("GET", AUDIT, { token: a.admin }))).audit).toHaveLength(audited);

    // B's own prefs toward A are B's alone: untouched by A's.
    const fromB = await ok<PrefsJson>(api("GET", partnerPath(a.id), { token: b.admin }));
    expect(values(fromB.prefs)).toEqual(DEFAULTS);
  });

  it("refuses members and operators on every prefs route, and reads the role live", async () => {
    const { a, b } = await connectedPair();
    await ok(api("PATCH", ORG, { token: a.admin, json: { channel_creation: { who: "members" } } }));
    const before = await prefsState(a.admin, b.id);
    const operator = await platformToken();
    const calls: Array<[string, string, unknown?]> = [
      ["GET", ORG],
      ["PATCH", ORG, { channel_creation: { who: "nobody" } }],
      ["GET", partnerPath(b.id)],
      ["PATCH", partnerPath(b.id), { channel_creation: { who: "nobody" } }],
      ["GET", AUDIT],
    ];
    for (const [method, path, json] of calls) {
      for (const [who, t] of [
        ["member", a.member],
        ["operator", operator],
      ] as const) {
        const res = await api<ErrorJson>(method, path, { token: t, json });
        expect(res.status, `${who} ${method} ${path}`).toBe(403);
        expect(res.body.error.code).toBe("forbidden");
      }
    }
    expect(await prefsState(a.admin, b.id)).toEqual(before);
    // The owner may, as an admin may; the member made admin may, and not once deactivated.
    expect((await api("GET", ORG, { token: a.owner })).status).toBe(200);
    await ok(api("PATCH", `/v1/admin/teams/${a.id}/users/UMEMBER`, { token: operator, json: { role: "admin" } }));
    expect((await api("GET", partnerPath(b.id), { token: a.member })).status).toBe(200);
    await ok(api("DELETE", `/v1/admin/teams/${a.id}/users/UMEMBER`, { token: operator }));
    expect((await api("GET", partnerPath(b.id), { token: a.member })).status).toBe(403);
  });

  it("shows another team's admin nothing of A's prefs and lets it change none: the answers for nothing", async () => {
    const { a, b } = await connectedPair();
    await ok(api("PATCH", ORG, { token: a.admin, json: { file_uploads: { allowed: false } } }));
    await ok(api("PATCH", partnerPath(b.id), { token: a.admin, json: { channel_creation: { who: "nobody" } } }));
    const before = await prefsState(a.admin, b.id);
    const c = await newTeam({ admin: "UCADMIN" });

    // C's own levels and audit are C's: defaults, no lines, none of A's values.
    const cOrg = await ok<PrefsJson>(api("GET", ORG, { token: c.admin }));
    expect(values(cOrg.prefs)).toEqual(DEFAULTS);
    expect((await ok<AuditJson>(api("GET", AUDIT, { token: c.admin }))).audit).toEqual([]);

    // A's partner, and A itself, named by C: exactly what a team that does not exist gets.
    const ghost = "TNOSUCHTEAM1";
    const none = await api<ErrorJson>("GET", partnerPath(ghost), { token: c.admin });
    expect(none.status).toBe(404);
    for (const named of [b.id, a.id]) {
      const read = await api<ErrorJson>("GET", partnerPath(named), { token: c.admin });
      expect({ status: read.status, body: read.body }).toEqual({ status: 404, body: none.body });
      const write = await api<ErrorJson>("PATCH", partnerPath(named), {
        token: c.admin,
        json: { channel_creation: { who: "members" } },
      });
      const writeGhost = await api<ErrorJson>("PATCH", partnerPath(ghost), {
        token: c.admin,
        json: { channel_creation: { who: "members" } },
      });
      expect({ status: write.status, body: write.body }).toEqual({ status: 404, body: writeGhost.body });
    }
    expect(await prefsState(a.admin, b.id)).toEqual(before);
  });

  it("answers a partner the team was never connected to as one that does not exist; an ended connection keeps its prefs", async () => {
    const { a, b, connection } = await connectedPair();
    const stranger = await newTeam({ admin: "USADMIN" });
    const none = await api<ErrorJson>("GET", partnerPath("TNOSUCHTEAM2"), { token: a.admin });
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe("not_found");
    // An existing team never connected to A, A itself, the org level's storage key, an id no team can have.
    for (const named of [stranger.id, a.id, "0", "not.an.id", "x".repeat(41)]) {
      for (const method of ["GET", "PATCH"] as const) {
        const res = await api<ErrorJson>(method, partnerPath(named), {
          token: a.admin,
          json: method === "PATCH" ? { channel_creation: { who: "nobody" } } : undefined,
        });
        expect({ named, status: res.status, body: res.body }).toEqual({ named, status: 404, body: none.body });
      }
    }
    // Nothing was written for them, the org level least of all.
    expect((await ok<AuditJson>(api("GET", AUDIT, { token: a.admin }))).audit).toEqual([]);
    expect(values((await ok<PrefsJson>(api("GET", ORG, { token: a.admin }))).prefs)).toEqual(DEFAULTS);

    // A disconnected partner is still one A had: its prefs stay readable and changeable (for a reconnection).
    await ok(api("PATCH", partnerPath(b.id), { token: a.admin, json: { channel_creation: { who: "nobody" } } }));
    await ok(api("DELETE", `/v1/connect/connections/${connection}`, { token: b.admin }));
    const kept = await ok<PrefsJson>(api("GET", partnerPath(b.id), { token: a.admin }));
    expect(kept.prefs.channel_creation).toEqual({ value: { who: "nobody" }, source: "partner" });
    await ok(api("PATCH", partnerPath(b.id), { token: a.admin, json: { channel_creation: null } }));
  });

  it("refuses unknown prefs and bad values with 400 naming each pref, and changes nothing", async () => {
    const { a, b } = await connectedPair();
    await ok(api("PATCH", ORG, { token: a.admin, json: { channel_creation: { who: "members" } } }));
    const before = await prefsState(a.admin, b.id);
    const bad: Array<[unknown, string[]]> = [
      [{ colour: "blue" }, ["colour"]],
      [{ channel_creation: { who: "everyone" } }, ["channel_creation"]],
      [{ channel_creation: { who: "nobody" }, auto_approval: { mode: "listed" } }, ["auto_approval"]],
      [
        {
          channel_creation: { who: "nobody" },
          file_uploads: { allowed: "yes" },
          profile_fields: { visible: ["email"] },
          colour: null,
        },
        ["colour", "file_uploads", "profile_fields"],
      ],
      [{ file_uploads: { allowed: true, max_bytes: -1 } }, ["file_uploads"]],
      [{ file_uploads: { allowed: true, max_bytes: null } }, ["file_uploads"]],
      [{ file_uploads: { allowed: true, blocked_types: ["not a type"] } }, ["file_uploads"]],
      [{ auto_approval: { mode: "listed", users: ["x".repeat(41)] } }, ["auto_approval"]],
      [{ channel_creation: { who: "nobody", extra: 1 } }, ["channel_creation"]],
    ];
    for (const [path, level] of [
      [ORG, "org"],
      [partnerPath(b.id), "partner"],
    ] as const) {
      for (const [json, named] of bad) {
        const res = await api<ErrorJson>("PATCH", path, { token: a.admin, json });
        const label = `${level} ${JSON.stringify(json)}`;
        expect(res.status, label).toBe(400);
        expect(res.body.error.code, label).toBe("invalid_body");
        expect(Object.keys(res.body.error.details?.prefs ?? {}).sort(), label).toEqual(named);
        for (const pref of named) expect(res.body.error.message, label).toContain(`${pref}:`);
      }
      // "__proto__" as JSON sends it (an own key): refused by name, not dropped with the rest let through.
      const proto = await api<ErrorJson>("PATCH", path, {
        token: a.admin,
        body: '{"__proto__":{"isAdmin":true},"channel_creation":{"who":"nobody"}}',
        contentType: "application/json",
      });
      expect(proto.status).toBe(400);
      expect(proto.body.error.message).toContain("__proto__: no such pref");
      // Not an object of prefs at all, or none named.
      for (const json of [null, [], "x", {}, [{ channel_creation: null }]]) {
        const res = await api<ErrorJson>("PATCH", path, { token: a.admin, json });
        expect(res.status, JSON.stringify(json)).toBe(400);
      }
    }
    expect(await prefsState(a.admin, b.id)).toEqual(before);
    expect((await api<ErrorJson>("GET", `${AUDIT}?limit=0`, { token: a.admin })).status).toBe(400);
    expect((await api<ErrorJson>("GET", `${AUDIT}?limit=201`, { token: a.admin })).status).toBe(400);
  });

  it("lands every one of several admins' changes to one level at once", async () => {
    const { a, b } = await connectedPair();
    const patches = [
      { channel_creation: { who: "members" } },
      { file_uploads: { allowed: false } },
      { profile_fields: { visible: ["real_name"] } },
      { auto_approval: { mode: "all" } },
    ];
    for (const path of [ORG, partnerPath(b.id)]) {
      const answers = await Promise.all(
        patches.map((json, i) => api<PrefsJson>("PATCH", path, { token: i % 2 ? a.owner : a.admin, json })),
      );
      expect(
        answers.map((r) => r.status),
        JSON.stringify(answers.map((r) => r.body)),
      ).toEqual([200, 200, 200, 200]);
      const read = await ok<PrefsJson>(api("GET", path, { token: a.admin }));
      expect(values(read.prefs)).toMatchObject({
        channel_creation: { who: "members" },
        file_uploads: { allowed: false },
        profile_fields: { visible: ["real_name"] },
        auto_approval: { mode: "all" },
      });
    }
    expect((await ok<AuditJson>(api("GET", `${AUDIT}?limit=200`, { token: a.admin }))).audit).toHaveLength(8);
  });

  it("keeps an audit line per changed pref: who, which level, before and after, newest first", async () => {
    const { a, b } = await connectedPair();
    await ok(api("PATCH", ORG, { token: a.admin, json: { channel_creation: { who: "members" } } }));
    await ok(
      api("PATCH", partnerPath(b.id), {
        token: a.owner,
        json: { channel_creation: { who: "nobody" }, file_uploads: { allowed: false } },
      }),
    );
    await ok(api("PATCH", ORG, { token: a.owner, json: { channel_creation: null } }));
    const { audit } = await ok<AuditJson>(api("GET", `${AUDIT}?limit=200`, { token: a.admin }));
    const lines = audit.map(({ level, partner, pref, actor, before, after }) => ({
      level,
      partner,
      pref,
      actor,
      before,
      after,
    }));
    // Newest first by time; lines written in the same millisecond (one patch's lines) come in either order.
    expect(lines).toHaveLength(4);
    expect(lines).toEqual(
      expect.arrayContaining([
        {
          level: "org",
          partner: null,
          pref: "channel_creation",
          actor: a.adminId,
          before: null,
          after: { who: "members" },
        },
        {
          level: "partner",
          partner: b.id,
          pref: "channel_creation",
          actor: "UOWNER",
          before: null,
          after: { who: "nobody" },
        },
        {
          level: "partner",
          partner: b.id,
          pref: "file_uploads",
          actor: "UOWNER",
          before: null,
          after: { allowed: false, max_bytes: 0, blocked_types: [] },
        },
        {
          level: "org",
          partner: null,
          pref: "channel_creation",
          actor: "UOWNER",
          before: { who: "members" },
          after: null,
        },
      ]),
    );
    expect(audit.every((l, i) => i === 0 || (audit[i - 1]?.at ?? 0) >= l.at)).toBe(true);
    // ?limit= takes the newest lines.
    const newest = await ok<AuditJson>(api("GET", `${AUDIT}?limit=1`, { token: a.admin }));
    expect(newest.audit).toEqual([audit[0]]);
  });
});
