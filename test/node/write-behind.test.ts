import { describe, expect, it } from "vitest";
import { WriteBehind } from "../../durable-objects/write-behind";

function recorder(ms = 5) {
  const writes: Array<[string, number | null]> = [];
  const kept: Array<Promise<unknown>> = [];
  const behind = new WriteBehind<string, number | null>(
    ms,
    (work) => kept.push(work),
    (key, value) => writes.push([key, value]),
  );
  return { behind, writes, kept };
}

describe("WriteBehind", () => {
  it("writes nothing in the turn of the change, then each key's latest value once", async () => {
    const { behind, writes, kept } = recorder();
    behind.set("a", 1);
    behind.set("b", 2);
    behind.set("a", 3);
    expect(writes).toEqual([]);
    expect(kept).toHaveLength(1); // one timer for every change meanwhile
    await kept[0];
    expect(writes).toEqual([
      ["a", 3],
      ["b", 2],
    ]);
  });

  it("a change after a flush starts a new timer", async () => {
    const { behind, writes, kept } = recorder();
    behind.set("a", 1);
    await kept[0];
    behind.set("a", null);
    expect(kept).toHaveLength(2);
    await kept[1];
    expect(writes).toEqual([
      ["a", 1],
      ["a", null],
    ]);
  });

  it("flush writes at once and leaves nothing for the timer; forget drops a pending change", async () => {
    const { behind, writes, kept } = recorder();
    behind.set("a", 1);
    behind.set("b", 2);
    behind.forget("b");
    behind.flush();
    expect(writes).toEqual([["a", 1]]);
    await kept[0];
    expect(writes).toEqual([["a", 1]]);
  });
});
