import { describe, expect, it } from "vitest";
import type { Candidate } from "../../src/recommend/pipeline";
import { reasonsFor } from "../../src/recommend/reasons";

const c = (id: string, score: number, features: Record<string, number>): Candidate => ({
  id,
  from: ["snapshot-candidates"],
  features,
  score,
});

describe("reasonsFor: the feature that lifted an item above the other candidates", () => {
  it("names the feature the item stands out on, in the direction the scores rose", () => {
    // Scores rise with `members` and fall with `age`; A stands out on members, B on being young.
    const scored = [
      c("A", 0.9, { members: 10, age: 5 }),
      c("B", 0.8, { members: 3, age: 0 }),
      c("C", 0.2, { members: 2, age: 6 }),
      c("D", 0.1, { members: 1, age: 7 }),
    ];
    const reasons = reasonsFor(scored, scored.slice(0, 2));
    expect(reasons.get("A")).toEqual({ feature: "members", value: 10, direction: "high" });
    expect(reasons.get("B")).toEqual({ feature: "age", value: 0, direction: "low" });
  });

  it("gives no reason when nothing varies, or the item stands out on nothing that helped", () => {
    const flat = [c("A", 0.5, { x: 1 }), c("B", 0.4, { x: 1 })];
    expect(reasonsFor(flat, flat).size).toBe(0);
    const scored = [c("A", 0.9, { x: 3 }), c("B", 0.1, { x: 1 }), c("C", 0.5, { x: 2 })];
    // B is lowest on the one feature that raised scores: nothing lifted it.
    expect(reasonsFor(scored, [scored[1] as Candidate]).has("B")).toBe(false);
  });

  it("gives no reason for a single candidate or equal scores", () => {
    expect(reasonsFor([c("A", 1, { x: 1 })], [c("A", 1, { x: 1 })]).size).toBe(0);
    const same = [c("A", 0.5, { x: 1 }), c("B", 0.5, { x: 2 })];
    expect(reasonsFor(same, same).size).toBe(0);
  });
});
