import { describe, expect, it } from "vitest";
import { encodeCursor, MAX_LIMIT, parseSearchQuery, wordsOf } from "../../src/connect/search";

// What an admin search may ask, read from URL parameters: every bad
// parameter is an `invalid` error naming it.

describe("connection search queries", () => {
  it("reads text, status, pref filters, sort, order and limit, with name ascending by default", () => {
    expect(parseSearchQuery({})).toEqual({ words: [], prefs: {}, sort: "name", order: "asc", limit: 50 });
    expect(
      parseSearchQuery({ q: "Acmé  Corp!", status: "accepted", "pref.auto_approval": "all", sort: "date", limit: "5" }),
    ).toEqual({
      words: ["acme", "corp"],
      status: "accepted",
      prefs: { auto_approval: "all" },
      sort: "date",
      order: "desc",
      limit: 5,
    });
  });

  it("refuses what it cannot read, naming the parameter", () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ status: "pending" }, /status/],
      [{ sort: "size" }, /sort/],
      [{ order: "up" }, /order/],
      [{ limit: "0" }, /limit/],
      [{ limit: String(MAX_LIMIT + 1) }, /limit/],
      [{ "pref.Bad-Name": "x" }, /pref\.Bad-Name/],
      [{ cursor: "not base64 json" }, /cursor/],
    ];
    for (const [params, message] of bad) {
      expect(() => parseSearchQuery(params)).toThrowError(
        expect.objectContaining({ kind: "invalid", message: expect.stringMatching(message) }),
      );
    }
  });

  it("gives cursors that only fit the sort they came from", () => {
    const q = parseSearchQuery({ sort: "channels" });
    const cursor = encodeCursor(q, { value: 3, id: "K1" });
    expect(parseSearchQuery({ sort: "channels", cursor }).after).toEqual({ value: 3, id: "K1" });
    expect(() => parseSearchQuery({ sort: "name", cursor })).toThrow(/another sort/);
  });

  it('gives cursors for names in any script (a page may end on "łodz" or "東京")', () => {
    const q = parseSearchQuery({ sort: "name", order: "desc" });
    for (const value of ["łodz foods bv", "東京 trading", "ελλάδα", "émile"]) {
      const cursor = encodeCursor(q, { value, id: "K9" });
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(parseSearchQuery({ sort: "name", order: "desc", cursor }).after).toEqual({ value, id: "K9" });
    }
    // Base64 of bytes that are not UTF-8 is no cursor of ours.
    expect(() => parseSearchQuery({ sort: "name", cursor: btoa("\xff\xfe{") })).toThrow(/cursor/);
  });

  it("keeps at most eight words of letters and digits", () => {
    expect(wordsOf("a b c d e f g h i j")).toHaveLength(8);
    expect(wordsOf("__--..")).toEqual([]);
  });
});
