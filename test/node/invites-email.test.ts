import { describe, expect, it } from "vitest";
import { parseEmail } from "../../src/invites/email";

describe("parseEmail", () => {
  it.each([
    ["alice@example.com", "alice", "example.com"],
    ["first.last@example.co.uk", "first.last", "example.co.uk"],
    ["a+tag@sub.example.org", "a+tag", "sub.example.org"],
    ["o'brien@example.ie", "o'brien", "example.ie"],
    ["x!#$%&'*+/=?^_`{|}~-y@example.com", "x!#$%&'*+/=?^_`{|}~-y", "example.com"],
    ["user@my-company.io", "user", "my-company.io"],
    ["user@123.example.com", "user", "123.example.com"],
    ["user@example.xn--p1ai", "user", "example.xn--p1ai"],
    ["user@xn--bcher-kva.de", "user", "xn--bcher-kva.de"],
  ])("accepts %s", (raw, local, domain) => {
    expect(parseEmail(raw)).toEqual({ ok: true, email: raw, local, domain });
  });

  it("trims surrounding whitespace and lower-cases", () => {
    expect(parseEmail("  Alice.Smith@Example.COM \n")).toEqual({
      ok: true,
      email: "alice.smith@example.com",
      local: "alice.smith",
      domain: "example.com",
    });
  });

  it("accepts the maximum lengths", () => {
    const local = "a".repeat(64);
    const label = "b".repeat(63);
    // 64 + 1 + (63 + 1) * 2 + 58 + 1 + 2 = 254
    const email = `${local}@${label}.${label}.${"c".repeat(58)}.io`;
    expect(email).toHaveLength(254);
    expect(parseEmail(email)).toMatchObject({ ok: true, email });
  });

  it.each([
    [42, "not a string"],
    [null, "not a string"],
    [undefined, "not a string"],
    [{ email: "a@b.co" }, "not a string"],
    ["", "empty"],
    ["   ", "empty"],
    ["aliceexample.com", "missing @"],
    ["a@b@example.com", "more than one @"],
    ["@example.com", "missing local part"],
    ["alice@", "missing domain"],
    ["ali ce@example.com", "contains whitespace"],
    ["alice@exam\u00a0ple.com", "contains whitespace"],
    ["alice\u0000@example.com", "contains control characters"],
    ["alice@example.com\u007f", "contains control characters"],
    ["al\tice@example.com", "contains control characters"],
    ["alice\u0085@example.com", "contains control characters"],
    ["alice\u200b@example.com", "contains non-ASCII characters"],
    ["jürgen@example.de", "contains non-ASCII characters"],
    ["alice@bücher.de", "contains non-ASCII characters"],
    ["\u212Aate@example.com", "contains non-ASCII characters"],
    ['"alice"@example.com', "quoted local parts are not supported"],
    ['"a@b"@example.com', "quoted local parts are not supported"],
    ["ali(ce)@example.com", "local part has invalid characters"],
    ["a,b@example.com", "local part has invalid characters"],
    [".alice@example.com", "local part has a misplaced dot"],
    ["alice.@example.com", "local part has a misplaced dot"],
    ["al..ice@example.com", "local part has a misplaced dot"],
    ["alice@[192.168.0.1]", "IP address domains are not supported"],
    ["alice@192.168.0.1", "IP address domains are not supported"],
    ["alice@localhost", "domain has no dot"],
    ["alice@.example.com", "domain has an empty label"],
    ["alice@example..com", "domain has an empty label"],
    ["alice@example.com.", "domain has an empty label"],
    ["alice@exa_mple.com", "domain has invalid characters"],
    ["alice@-example.com", "domain label starts or ends with a hyphen"],
    ["alice@example-.com", "domain label starts or ends with a hyphen"],
    ["alice@example.c", "top-level domain is invalid"],
    ["alice@example.c0m", "top-level domain is invalid"],
    ["alice@example.123", "top-level domain is invalid"],
  ])("rejects %j (%s)", (raw, reason) => {
    expect(parseEmail(raw)).toEqual({ ok: false, reason });
  });

  it("rejects a local part over 64 characters", () => {
    expect(parseEmail(`${"a".repeat(65)}@example.com`)).toEqual({
      ok: false,
      reason: "local part too long",
    });
  });

  it("rejects a domain label over 63 characters", () => {
    expect(parseEmail(`a@${"b".repeat(64)}.com`)).toEqual({
      ok: false,
      reason: "domain label too long",
    });
  });

  it("rejects an address over 254 characters", () => {
    const email = `a@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}.${"e".repeat(57)}.com`;
    expect(email).toHaveLength(255);
    expect(parseEmail(email)).toEqual({ ok: false, reason: "too long" });
  });
});
