import { describe, expect, it } from "vitest";
import { labelKey, Registry } from "../../src/metrics/registry";

// The series key is what isolates' snapshots merge by: it must be the same
// JSON whatever order the labels were written in, and two different label
// sets must never share one (the key is memoized on a join of the labels).

describe("labelKey", () => {
  it("is canonical JSON, whatever the order the labels were given in", () => {
    expect(labelKey({ status: "200", route: "/v1/rtm" })).toBe('{"route":"/v1/rtm","status":"200"}');
    expect(labelKey({ route: "/v1/rtm", status: "200" })).toBe('{"route":"/v1/rtm","status":"200"}');
    expect(labelKey({})).toBe("{}");
  });

  it("keeps label sets apart that a plain join would merge", () => {
    const a = labelKey({ a: "1b", b: "" });
    const b = labelKey({ a: "1", bb: "" });
    const c = labelKey({ a: "x:1:y" });
    const d = labelKey({ a: "x", y: "" });
    expect(new Set([a, b, c, d]).size).toBe(4);
    expect(JSON.parse(a)).toEqual({ a: "1b", b: "" });
    expect(JSON.parse(c)).toEqual({ a: "x:1:y" });
  });

  it("counts into one series from either label order", () => {
    const r = new Registry([{ name: "hits_total", help: "hits", type: "counter" }]);
    r.inc("hits_total", { route: "/a", status: "200" });
    r.inc("hits_total", { status: "200", route: "/a" });
    expect(r.take().series.hits_total).toEqual({ '{"route":"/a","status":"200"}': [2] });
  });
});
