import { describe, expect, it } from "vitest";
import {
  isOperator,
  mayActFor,
  mayAdminister,
  mayChangeUser,
  mayManageConnections,
  mayOperate,
  maySeeChannel,
  maySeeUser,
  mayShareAcrossTeams,
  mayUseTeam,
  type Principal,
  parseOperators,
} from "../../src/auth/policy";
import { ROLES, type Role } from "../../src/teams/model";

// The policy over every kind of caller: the table is the specification.

const member = (role: Role, active = true, team = "TA", user = "U1"): Principal => ({
  kind: "member",
  team,
  user,
  role,
  active,
});
const operator: Principal = { kind: "operator", team: "TPLATFORM", user: "UOP" };
const unknown: Principal = { kind: "unknown", team: "TA", user: "UX" };

describe("policy", () => {
  it("lets only active members use their own team; other teams are not found", () => {
    for (const role of ROLES) {
      expect(mayUseTeam(member(role), "TA").ok).toBe(true);
      expect(mayUseTeam(member(role, false), "TA")).toMatchObject({ ok: false, kind: "forbidden" });
      expect(mayUseTeam(member(role), "TB")).toMatchObject({ ok: false, kind: "not_found" });
    }
    expect(mayUseTeam(unknown, "TA")).toMatchObject({ ok: false, kind: "forbidden" });
    // An operator is not a member of anyone's team.
    expect(mayUseTeam(operator, "TA").ok).toBe(false);
  });

  it("gives admin routes to active owners and admins of the team, and to operators", () => {
    const allowed = (p: Principal, team = "TA") => mayAdminister(p, team).ok;
    expect(ROLES.filter((r) => allowed(member(r)))).toEqual(["owner", "admin"]);
    expect(ROLES.filter((r) => allowed(member(r, false)))).toEqual([]);
    expect(allowed(member("owner"), "TB")).toBe(false);
    expect(mayAdminister(member("owner"), "TB")).toMatchObject({ kind: "not_found" });
    expect(allowed(operator, "TB")).toBe(true);
    expect(allowed(unknown)).toBe(false);
  });

  it("keeps owners to owners and nobody's own role to themselves", () => {
    const target = (id: string, role: Role) => ({ id, role });
    const admin = member("admin");
    const owner = member("owner");
    expect(mayChangeUser(admin, "TA", target("U2", "member"), { role: "guest" }).ok).toBe(true);
    expect(mayChangeUser(admin, "TA", target("U2", "member"), { role: "owner" }).ok).toBe(false);
    expect(mayChangeUser(admin, "TA", target("U2", "owner"), { deactivated: true }).ok).toBe(false);
    expect(mayChangeUser(admin, "TA", null, { role: "owner" }).ok).toBe(false);
    expect(mayChangeUser(owner, "TA", target("U2", "owner"), { role: "admin" }).ok).toBe(true);
    expect(mayChangeUser(owner, "TA", target("U1", "owner"), { role: "admin" }).ok).toBe(false);
    expect(mayChangeUser(member("admin", false), "TA", target("U1", "admin"), { deactivated: false }).ok).toBe(false);
    expect(mayChangeUser(member("member"), "TA", target("U2", "member"), { role: "admin" }).ok).toBe(false);
    expect(mayChangeUser(operator, "TA", target("U2", "owner"), { deactivated: true }).ok).toBe(true);
    // A profile-only change of oneself is not an access change.
    expect(mayChangeUser(admin, "TA", target("U1", "admin"), {}).ok).toBe(true);
  });

  it("lets a caller act for itself, and admins for a teammate", () => {
    expect(mayActFor(member("member"), "TA", "U1").ok).toBe(true);
    expect(mayActFor(member("member"), "TA", "U2")).toMatchObject({ ok: false, kind: "forbidden" });
    expect(mayActFor(member("admin"), "TA", "U2").ok).toBe(true);
    expect(mayActFor(member("admin", false), "TA", "U2").ok).toBe(false);
    expect(mayActFor(member("admin", false), "TA", "U1").ok).toBe(false);
  });

  it("keeps operator routes and cross-team sharing to operators", () => {
    for (const p of [member("owner"), member("admin"), unknown]) {
      expect(mayOperate(p).ok).toBe(false);
      expect(mayShareAcrossTeams(p).ok).toBe(false);
    }
    expect(mayOperate(operator).ok).toBe(true);
  });

  it("reads operators from config as team:user pairs", () => {
    const ops = parseOperators(" TPLATFORM:UOP , bad, a:b:c, :x, TOPS:U2");
    expect([...ops]).toEqual(["TPLATFORM:UOP", "TOPS:U2"]);
    expect(isOperator(ops, "TPLATFORM", "UOP")).toBe(true);
    expect(isOperator(ops, "TPLATFORM", "UOTHER")).toBe(false);
    expect(parseOperators(undefined).size).toBe(0);
  });

  it("shows guests only their channels and the people they share one with", () => {
    const ch = (isPrivate: boolean, viewerIsMember: boolean) => ({ isPrivate, viewerIsMember });
    const active = (role: Role) => ({ role, active: true });
    expect(maySeeChannel(active("member"), ch(false, false))).toBe(true);
    expect(maySeeChannel(active("member"), ch(true, false))).toBe(false);
    expect(maySeeChannel(active("member"), ch(true, true))).toBe(true);
    expect(maySeeChannel(active("guest"), ch(false, false))).toBe(false);
    expect(maySeeChannel(active("guest"), ch(false, true))).toBe(true);
    expect(maySeeChannel({ role: "owner", active: false }, ch(false, true))).toBe(false);
    expect(maySeeUser(active("guest"), { isSelf: false, sharesChannel: false })).toBe(false);
    expect(maySeeUser(active("guest"), { isSelf: false, sharesChannel: true })).toBe(true);
    expect(maySeeUser(active("guest"), { isSelf: true, sharesChannel: false })).toBe(true);
    expect(maySeeUser(active("member"), { isSelf: false, sharesChannel: false })).toBe(true);
    expect(maySeeUser({ role: "member", active: false }, { isSelf: true, sharesChannel: true })).toBe(false);
  });
  it("lets only active owners and admins of the team itself manage its connections", () => {
    for (const role of ROLES) {
      const allowed = role === "owner" || role === "admin";
      expect(mayManageConnections(member(role), "TA").ok, role).toBe(allowed);
      if (!allowed) expect(mayManageConnections(member(role), "TA")).toMatchObject({ ok: false, kind: "forbidden" });
      expect(mayManageConnections(member(role, false), "TA")).toMatchObject({ ok: false, kind: "forbidden" });
      expect(mayManageConnections(member(role), "TB")).toMatchObject({ ok: false, kind: "not_found" });
    }
    expect(mayManageConnections(unknown, "TA")).toMatchObject({ ok: false, kind: "forbidden" });
    // An operator gives no team's consent.
    expect(mayManageConnections(operator, "TPLATFORM")).toMatchObject({ ok: false, kind: "forbidden" });
    expect(mayManageConnections(operator, "TA")).toMatchObject({ ok: false, kind: "forbidden" });
  });
});
