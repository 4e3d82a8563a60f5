import { describe, expect, it } from "vitest";
import { coalesce, deltasForChange } from "../../src/domains/deltas";

const T = "T1";

describe("deltas for a lifecycle change", () => {
  it("a join adds the domain row and the team total", () => {
    expect(deltasForChange(T, null, { domain: "a.test", role: "member", active: true })).toEqual([
      { teamId: T, domain: "a.test", role: "member", delta: 1 },
      { teamId: T, domain: "*", role: "member", delta: 1 },
    ]);
  });

  it("a role change decrements the old role and increments the new one", () => {
    const out = deltasForChange(
      T,
      { domain: "a.test", role: "member", active: true },
      { domain: "a.test", role: "admin", active: true },
    );
    expect(out).toEqual([
      { teamId: T, domain: "a.test", role: "member", delta: -1 },
      { teamId: T, domain: "*", role: "member", delta: -1 },
      { teamId: T, domain: "a.test", role: "admin", delta: 1 },
      { teamId: T, domain: "*", role: "admin", delta: 1 },
    ]);
  });

  it("an email change within one domain, or a change of an inactive user, is nothing", () => {
    const a = { domain: "a.test", role: "member" as const, active: true };
    expect(deltasForChange(T, a, a)).toEqual([]);
    expect(deltasForChange(T, { ...a, active: false }, { ...a, domain: "b.test", active: false })).toEqual([]);
  });

  it("deactivation removes the contribution; reactivation restores it", () => {
    const a = { domain: "a.test", role: "guest" as const, active: true };
    expect(deltasForChange(T, a, { ...a, active: false }).map((d) => d.delta)).toEqual([-1, -1]);
    expect(deltasForChange(T, { ...a, active: false }, a).map((d) => d.delta)).toEqual([1, 1]);
  });
});

describe("coalesce", () => {
  it("sums per key, drops zeros and keeps first-seen order", () => {
    expect(
      coalesce([
        { teamId: T, domain: "b", role: "member", delta: 1 },
        { teamId: T, domain: "a", role: "member", delta: 1 },
        { teamId: T, domain: "b", role: "member", delta: 2 },
        { teamId: T, domain: "a", role: "member", delta: -1 },
        { teamId: "T2", domain: "b", role: "member", delta: 1 },
      ]),
    ).toEqual([
      { teamId: T, domain: "b", role: "member", delta: 3 },
      { teamId: "T2", domain: "b", role: "member", delta: 1 },
    ]);
  });
});
