import { describe, expect, it } from "vitest";
import {
  classifyDomain,
  classifyDomains,
  type RoleCounts,
  type TeamContext,
  uniqueDomains,
  weightedShare,
} from "../../src/invites/classify";
import { type ClassifyPolicy, DEFAULT_POLICY } from "../../src/invites/classify-policy";
import { isPublicProvider, PUBLIC_EMAIL_PROVIDERS } from "../../src/invites/public-providers";
import type { Role } from "../../src/teams/model";

function counts(partial: Partial<RoleCounts> = {}): RoleCounts {
  return { owner: 0, admin: 0, member: 0, guest: 0, ...partial };
}

function context(overrides: Partial<TeamContext> = {}): TeamContext {
  return {
    claimedDomains: new Set(),
    inviter: { role: "member", domain: "inviter.example" },
    domainCounts: new Map(),
    // Weighted total with the default policy: 3 + 2 + 10 + 0 = 15.
    totals: counts({ owner: 1, admin: 1, member: 10 }),
    ...overrides,
  };
}

function policy(weights: Partial<Record<Role, number>> = {}, threshold = 0.1): ClassifyPolicy {
  return { threshold, weights: { ...DEFAULT_POLICY.weights, ...weights } };
}

describe("public providers", () => {
  it("lists the major free mailbox providers", () => {
    for (const domain of ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "qq.com"]) {
      expect(PUBLIC_EMAIL_PROVIDERS.has(domain)).toBe(true);
    }
  });

  it("holds only lower-case, well-formed domains", () => {
    for (const domain of PUBLIC_EMAIL_PROVIDERS) {
      expect(domain).toMatch(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
    }
  });

  it("matches case-insensitively", () => {
    expect(isPublicProvider("GMail.Com")).toBe(true);
  });

  it("does not match subdomains or lookalikes", () => {
    expect(isPublicProvider("mail.gmail.com")).toBe(false);
    expect(isPublicProvider("notgmail.com")).toBe(false);
  });
});

describe("weightedShare", () => {
  it("is 0 for a domain with no counts", () => {
    expect(weightedShare(undefined, counts({ member: 5 }), DEFAULT_POLICY.weights)).toBe(0);
  });

  it("weights each role", () => {
    // (3 + 0.25) / (3 + 2 + 10 + 0.25 * 4) = 3.25 / 16
    const share = weightedShare(
      counts({ owner: 1, guest: 1 }),
      counts({ owner: 1, admin: 1, member: 10, guest: 4 }),
      DEFAULT_POLICY.weights,
    );
    expect(share).toBe(3.25 / 16);
  });

  it("is 0 when the team totals are zero", () => {
    expect(weightedShare(counts({ member: 1 }), counts(), DEFAULT_POLICY.weights)).toBe(0);
  });

  it("is 0 when the totals weigh nothing", () => {
    const weights = { owner: 0, admin: 0, member: 0, guest: 1 };
    expect(weightedShare(counts({ member: 3 }), counts({ member: 10 }), weights)).toBe(0);
  });

  it("clamps negative domain counts at 0", () => {
    // Without clamping, -5 owners would cancel the member: (1 - 15) / 10 < 0.
    const share = weightedShare(counts({ owner: -5, member: 1 }), counts({ member: 10 }), DEFAULT_POLICY.weights);
    expect(share).toBe(0.1);
  });

  it("clamps negative totals at 0", () => {
    // Without clamping the total would be 10 - 6 = 4 and the share 0.25.
    const share = weightedShare(counts({ member: 1 }), counts({ admin: -3, member: 10 }), DEFAULT_POLICY.weights);
    expect(share).toBe(0.1);
  });

  it("is 0 when every total is negative", () => {
    expect(weightedShare(counts({ member: 1 }), counts({ member: -2 }), DEFAULT_POLICY.weights)).toBe(0);
  });

  it("never exceeds 1 when drifted domain counts exceed the totals", () => {
    expect(weightedShare(counts({ member: 12 }), counts({ member: 10 }), DEFAULT_POLICY.weights)).toBe(1);
  });
});

describe("classifyDomain", () => {
  it("classifies a public provider as external", () => {
    expect(classifyDomain("gmail.com", context(), DEFAULT_POLICY)).toEqual({
      domain: "gmail.com",
      classification: "external",
      reason: "public_provider",
      flow: "slack_connect",
      share: 0,
    });
  });

  it("keeps a public provider external even when the team claimed it", () => {
    const ctx = context({ claimedDomains: new Set(["gmail.com"]) });
    expect(classifyDomain("gmail.com", ctx, DEFAULT_POLICY).reason).toBe("public_provider");
  });

  it("keeps a public provider external even when the inviter uses it", () => {
    const ctx = context({ inviter: { role: "owner", domain: "gmail.com" } });
    expect(classifyDomain("gmail.com", ctx, DEFAULT_POLICY).reason).toBe("public_provider");
  });

  it("keeps a public provider external and still reports its share", () => {
    const ctx = context({ domainCounts: new Map([["gmail.com", counts({ member: 12 })]]) });
    const decision = classifyDomain("gmail.com", ctx, DEFAULT_POLICY);
    expect(decision).toMatchObject({ classification: "external", reason: "public_provider" });
    expect(decision.share).toBe(12 / 15);
  });

  it("classifies a claimed domain as internal", () => {
    const ctx = context({ claimedDomains: new Set(["acme.com"]) });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY)).toEqual({
      domain: "acme.com",
      classification: "internal",
      reason: "claimed_domain",
      flow: "workspace_invite",
      share: 0,
    });
  });

  it("prefers claimed_domain over inviter_domain", () => {
    const ctx = context({
      claimedDomains: new Set(["acme.com"]),
      inviter: { role: "admin", domain: "acme.com" },
    });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY).reason).toBe("claimed_domain");
  });

  it("classifies the inviter's own domain as internal", () => {
    const ctx = context({ inviter: { role: "member", domain: "acme.com" } });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY)).toEqual({
      domain: "acme.com",
      classification: "internal",
      reason: "inviter_domain",
      flow: "workspace_invite",
      share: 0,
    });
  });

  it("prefers inviter_domain over team_share", () => {
    const ctx = context({
      inviter: { role: "member", domain: "acme.com" },
      domainCounts: new Map([["acme.com", counts({ member: 10 })]]),
    });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY).reason).toBe("inviter_domain");
  });

  it("does not trust a guest inviter's domain", () => {
    const ctx = context({ inviter: { role: "guest", domain: "acme.com" } });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY)).toMatchObject({
      classification: "external",
      reason: "below_threshold",
      flow: "slack_connect",
    });
  });

  it("lets a guest inviter's domain still qualify by team share", () => {
    const ctx = context({
      inviter: { role: "guest", domain: "acme.com" },
      domainCounts: new Map([["acme.com", counts({ member: 2 })]]),
    });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY).reason).toBe("team_share");
  });

  it("classifies a domain above the threshold as internal by team share", () => {
    const ctx = context({ domainCounts: new Map([["acme.com", counts({ member: 3 })]]) });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY)).toEqual({
      domain: "acme.com",
      classification: "internal",
      reason: "team_share",
      flow: "workspace_invite",
      share: 3 / 15,
    });
  });

  it("classifies a domain exactly at the threshold as internal", () => {
    // One member and two guests: (1 + 0.25 * 2) / 15 = 0.1 exactly.
    const ctx = context({
      domainCounts: new Map([["acme.com", counts({ member: 1, guest: 2 })]]),
    });
    const decision = classifyDomain("acme.com", ctx, DEFAULT_POLICY);
    expect(decision.share).toBe(0.1);
    expect(decision.reason).toBe("team_share");
  });

  it("classifies a domain at the threshold as internal despite float rounding", () => {
    // Exactly 0.3 / 3.0 = 0.1, but in floating point the share is 0.0999…
    const ctx = context({
      domainCounts: new Map([["acme.com", counts({ guest: 1 })]]),
      totals: counts({ member: 3, guest: 9 }),
    });
    const decision = classifyDomain("acme.com", ctx, policy({ member: 0.1, guest: 0.3 }));
    expect(decision.share).toBeLessThan(0.1);
    expect(decision.reason).toBe("team_share");
  });

  it("classifies a domain just below the threshold as external", () => {
    // 1 / 15 < 0.1
    const ctx = context({ domainCounts: new Map([["acme.com", counts({ member: 1 })]]) });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY)).toEqual({
      domain: "acme.com",
      classification: "external",
      reason: "below_threshold",
      flow: "slack_connect",
      share: 1 / 15,
    });
  });

  it("classifies an unknown domain as external with share 0", () => {
    expect(classifyDomain("stranger.io", context(), DEFAULT_POLICY)).toMatchObject({
      classification: "external",
      reason: "below_threshold",
      share: 0,
    });
  });

  it("lets weights change the outcome", () => {
    // Two guests: 0.5 / 15 under the defaults, 2 / 16.5 when guests weigh 1.
    const ctx = context({ domainCounts: new Map([["acme.com", counts({ guest: 2 })]]) });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY).reason).toBe("below_threshold");
    expect(classifyDomain("acme.com", ctx, policy({ guest: 1 })).reason).toBe("team_share");
  });

  it("lets the threshold change the outcome", () => {
    const ctx = context({ domainCounts: new Map([["acme.com", counts({ member: 3 })]]) });
    expect(classifyDomain("acme.com", ctx, policy({}, 0.25)).reason).toBe("below_threshold");
  });

  it("clamps negative counts so drift cannot push a domain over the threshold", () => {
    // Unclamped, -10 members in the totals would leave 5 and make 1 member 0.2.
    const ctx = context({
      domainCounts: new Map([["acme.com", counts({ member: 1 })]]),
      totals: counts({ owner: 1, admin: 1, member: -10 }),
    });
    const decision = classifyDomain("acme.com", ctx, DEFAULT_POLICY);
    expect(decision.share).toBe(0.2);
    expect(decision.reason).toBe("team_share");
  });

  it("classifies as external with share 0 when the team has no active users", () => {
    const ctx = context({
      domainCounts: new Map([["acme.com", counts({ member: 1 })]]),
      totals: counts(),
    });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY)).toMatchObject({
      classification: "external",
      reason: "below_threshold",
      share: 0,
    });
  });

  it("normalizes the requested domain's case", () => {
    const ctx = context({ claimedDomains: new Set(["acme.com"]) });
    expect(classifyDomain("ACME.Com", ctx, DEFAULT_POLICY)).toMatchObject({
      domain: "acme.com",
      reason: "claimed_domain",
    });
  });

  it("matches the inviter's domain regardless of case", () => {
    const ctx = context({ inviter: { role: "admin", domain: "Acme.COM" } });
    expect(classifyDomain("acme.com", ctx, DEFAULT_POLICY).reason).toBe("inviter_domain");
  });

  it("looks up counts with the normalized domain", () => {
    const ctx = context({ domainCounts: new Map([["acme.com", counts({ member: 3 })]]) });
    expect(classifyDomain("ACME.COM", ctx, DEFAULT_POLICY).reason).toBe("team_share");
  });

  it("treats an upper-case public provider as public", () => {
    const ctx = context({ claimedDomains: new Set(["gmail.com"]) });
    expect(classifyDomain("GMAIL.COM", ctx, DEFAULT_POLICY).reason).toBe("public_provider");
  });
});

describe("classifyDomains", () => {
  it("classifies each domain once, keyed by the normalized domain", () => {
    const ctx = context({
      claimedDomains: new Set(["acme.com"]),
      domainCounts: new Map([["partner.io", counts({ member: 5 })]]),
    });
    const decisions = classifyDomains(
      ["acme.com", "gmail.com", "ACME.com", "partner.io", "stranger.io"],
      ctx,
      DEFAULT_POLICY,
    );
    expect([...decisions.keys()]).toEqual(["acme.com", "gmail.com", "partner.io", "stranger.io"]);
    expect([...decisions.values()].map((d) => d.reason)).toEqual([
      "claimed_domain",
      "public_provider",
      "team_share",
      "below_threshold",
    ]);
  });

  it("returns an empty map for no domains", () => {
    expect(classifyDomains([], context(), DEFAULT_POLICY).size).toBe(0);
  });

  it("accepts any iterable", () => {
    const decisions = classifyDomains(new Set(["gmail.com"]).values(), context(), DEFAULT_POLICY);
    expect(decisions.get("gmail.com")?.reason).toBe("public_provider");
  });
});

describe("uniqueDomains", () => {
  it("dedupes in first-seen order", () => {
    expect(
      uniqueDomains([
        { domain: "b.com" },
        { domain: "a.com" },
        { domain: "b.com" },
        { domain: "c.com" },
        { domain: "a.com" },
      ]),
    ).toEqual(["b.com", "a.com", "c.com"]);
  });

  it("treats domains differing only in case as one", () => {
    expect(uniqueDomains([{ domain: "Acme.com" }, { domain: "acme.COM" }])).toEqual(["acme.com"]);
  });

  it("returns an empty list for no emails", () => {
    expect(uniqueDomains([])).toEqual([]);
  });
});
