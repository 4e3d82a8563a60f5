import { describe, expect, it } from "vitest";
import { checkPolicy, DEFAULT_HISTORY, mayDelete, mayEdit, REACTION_NAME } from "../../src/conversations/history";
import {
  decodeCursor,
  encodeCursor,
  formatMessageId,
  nextMessageId,
  parseMessageId,
} from "../../src/conversations/ids";
import { DomainError } from "../../src/errors";

// Message ids, cursors and the rules of src/conversations, without a runtime.

describe("message ids", () => {
  it("sort by time, stay unique within a millisecond and never go back with the clock", () => {
    const now = 1_765_000_000_000;
    const ids: number[] = [];
    let last = 0;
    for (let i = 0; i < 2_500; i++) {
      last = nextMessageId(last, now);
      ids.push(last);
    }
    // The clock steps back an hour: still after the last.
    last = nextMessageId(last, now - 3_600_000);
    ids.push(last);
    last = nextMessageId(last, now + 10_000);
    ids.push(last);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const text = ids.map(formatMessageId);
    expect(text.every((t) => /^\d{16}$/.test(t))).toBe(true);
    expect([...text].sort()).toEqual(text);
    expect(last).toBe((now + 10_000) * 1000);
  });

  it("parses only what it formats", () => {
    expect(parseMessageId(formatMessageId(1_765_000_000_000_123))).toBe(1_765_000_000_000_123);
    for (const bad of ["", "123", "17650000000001234", "1765000000000x12", " 1765000000000123", "-765000000000123"]) {
      expect(parseMessageId(bad), bad).toBeNull();
    }
  });
});

describe("history cursors", () => {
  it("round-trip, and refuse anything else with a 400", () => {
    const id = 1_765_000_000_000_042;
    expect(decodeCursor(encodeCursor(id))).toBe(id);
    for (const bad of ["", "nope", "h1.", "h1.!!!", `h1.${btoa("before:12")}`, encodeCursor(id).slice(1)]) {
      expect(() => decodeCursor(bad), bad).toThrow(DomainError);
    }
  });
});

describe("rules", () => {
  const ada = { team: "T1", user: "UADA" };
  const bob = { team: "T1", user: "UBOB" };
  const partner = { team: "T2", user: "UADA" };

  it("only the author edits; the author or an admin of the host or the author's team deletes", () => {
    expect(mayEdit(ada, ada)).toBe(true);
    expect(mayEdit(ada, bob)).toBe(false);
    // The same user id in another team is someone else.
    expect(mayEdit(ada, partner)).toBe(false);
    expect(mayDelete(ada, bob, "member", "T1")).toBe(false);
    expect(mayDelete(ada, bob, "admin", "T1")).toBe(true);
    expect(mayDelete(ada, bob, "owner", "T1")).toBe(true);
    expect(mayDelete(ada, bob, null, "T1")).toBe(false);
    // A partner team's admin moderates its own people in a shared channel, not the host's.
    expect(mayDelete(ada, { team: "T2", user: "UADMIN" }, "admin", "T1")).toBe(false);
    expect(mayDelete(partner, { team: "T2", user: "UADMIN" }, "admin", "T1")).toBe(true);
  });

  it("bounds a team's policy and names reactions like emoji", () => {
    expect(checkPolicy(DEFAULT_HISTORY)).toEqual({ maxMessages: 1000, maxAgeDays: 90 });
    expect(() => checkPolicy({ maxMessages: 0, maxAgeDays: 1 })).toThrow(DomainError);
    expect(() => checkPolicy({ maxMessages: 1, maxAgeDays: 3651 })).toThrow(DomainError);
    for (const ok of ["thumbsup", "+1", "thumbsup::skin-tone-2", "man-woman-boy", "e-mail", "100"]) {
      expect(REACTION_NAME.test(ok), ok).toBe(true);
    }
    for (const bad of ["", "Thumbsup", "a b", "x::skin-tone-7", ":smile:", "a".repeat(65), "_x"]) {
      expect(REACTION_NAME.test(bad), bad).toBe(false);
    }
  });
});
