import { describe, expect, it } from "vitest";
import { DEFAULT_POLICY, parsePolicy } from "../../src/invites/classify-policy";

describe("DEFAULT_POLICY", () => {
  it("has threshold 0.10 and weights owner 3, admin 2, member 1, guest 0.25", () => {
    expect(DEFAULT_POLICY).toEqual({
      threshold: 0.1,
      weights: { owner: 3, admin: 2, member: 1, guest: 0.25 },
    });
  });

  it("cannot be mutated by a caller", () => {
    expect(Object.isFrozen(DEFAULT_POLICY)).toBe(true);
    expect(Object.isFrozen(DEFAULT_POLICY.weights)).toBe(true);
  });
});

describe("parsePolicy", () => {
  it("returns the defaults when nothing is set", () => {
    expect(parsePolicy({})).toEqual(DEFAULT_POLICY);
  });

  it("treats blank values as unset", () => {
    expect(parsePolicy({ CLASSIFY_THRESHOLD: "", CLASSIFY_WEIGHTS: "  " })).toEqual(DEFAULT_POLICY);
  });

  it("returns weights the caller may modify without touching the defaults", () => {
    const policy = parsePolicy({});
    policy.weights.owner = 99;
    expect(DEFAULT_POLICY.weights.owner).toBe(3);
  });

  it.each([
    ["0.25", 0.25],
    [" 0.5 ", 0.5],
    ["1", 1],
    [".05", 0.05],
    ["5e-2", 0.05],
  ])("parses threshold %j", (raw, expected) => {
    expect(parsePolicy({ CLASSIFY_THRESHOLD: raw }).threshold).toBe(expected);
  });

  it.each(["0", "-0.1", "1.01", "2", "abc", "0x1", "Infinity", "NaN", "10%", "0.1.2"])(
    "rejects threshold %j",
    (raw) => {
      expect(() => parsePolicy({ CLASSIFY_THRESHOLD: raw })).toThrow(/CLASSIFY_THRESHOLD must be a number in \(0, 1\]/);
    },
  );

  it("parses a full weight list", () => {
    expect(parsePolicy({ CLASSIFY_WEIGHTS: "owner=5,admin=4,member=2,guest=0" }).weights).toEqual({
      owner: 5,
      admin: 4,
      member: 2,
      guest: 0,
    });
  });

  it("keeps defaults for roles a subset leaves out", () => {
    expect(parsePolicy({ CLASSIFY_WEIGHTS: "guest=0.5" }).weights).toEqual({
      owner: 3,
      admin: 2,
      member: 1,
      guest: 0.5,
    });
  });

  it("tolerates whitespace around entries, names and values", () => {
    expect(parsePolicy({ CLASSIFY_WEIGHTS: " member = 1.5 , admin=2.5 " }).weights).toEqual({
      owner: 3,
      admin: 2.5,
      member: 1.5,
      guest: 0.25,
    });
  });

  it("rejects an unknown role name", () => {
    expect(() => parsePolicy({ CLASSIFY_WEIGHTS: "owner=3,superuser=9" })).toThrow(/unknown role "superuser"/);
  });

  it("rejects role names in another case", () => {
    expect(() => parsePolicy({ CLASSIFY_WEIGHTS: "Owner=3" })).toThrow(/unknown role "Owner"/);
  });

  it("rejects an entry without =", () => {
    expect(() => parsePolicy({ CLASSIFY_WEIGHTS: "owner:3" })).toThrow(/entry "owner:3" must look like role=number/);
  });

  it("rejects an empty entry", () => {
    expect(() => parsePolicy({ CLASSIFY_WEIGHTS: "owner=3,,member=1" })).toThrow(/entry "" must look like role=number/);
  });

  it("rejects a role set twice", () => {
    expect(() => parsePolicy({ CLASSIFY_WEIGHTS: "member=1,member=2" })).toThrow(/sets "member" more than once/);
  });

  it.each(["-1", "", "abc", "Infinity", "1e400", "0x2", "NaN"])("rejects weight %j", (value) => {
    expect(() => parsePolicy({ CLASSIFY_WEIGHTS: `admin=${value}` })).toThrow(
      /CLASSIFY_WEIGHTS admin must be a finite number >= 0/,
    );
  });

  it("rejects weights that are all zero", () => {
    expect(() => parsePolicy({ CLASSIFY_WEIGHTS: "owner=0,admin=0,member=0,guest=0" })).toThrow(
      /at least one role a positive weight/,
    );
  });
});
