import { describe, expect, it } from "vitest";
import { coveredByLastHeal } from "../../src/domains/healer";

describe("heal request coverage", () => {
  it("is covered only by a heal that started after the request", () => {
    expect(coveredByLastHeal({ healedAt: null }, { requestedAt: 5 })).toBe(false);
    expect(coveredByLastHeal({ healedAt: 5 }, { requestedAt: 5 })).toBe(false);
    expect(coveredByLastHeal({ healedAt: 6 }, { requestedAt: 5 })).toBe(true);
  });
});
