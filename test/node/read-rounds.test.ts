import { describe, expect, it } from "vitest";
import { ReadRounds } from "../../src/auth/read-rounds";

// The coalescer alone, over a store whose reads the test releases by hand:
// which calls were made, with which keys, and what each caller got.

interface Call {
  keys: string[];
  answer: (values?: Record<string, number>) => void;
  fail: (error: Error) => void;
}

function fixture(options: { maxBatch?: number; deadlineMs?: number } = {}) {
  const calls: Call[] = [];
  const rounds = new ReadRounds<string, number>(
    (keys) =>
      new Promise((resolve, reject) => {
        calls.push({
          keys,
          answer: (values = {}) => resolve(new Map(Object.entries(values))),
          fail: reject,
        });
      }),
    { maxBatch: options.maxBatch ?? 100, deadlineMs: options.deadlineMs ?? 1000 },
  );
  return { calls, rounds };
}

const turn = () => new Promise((r) => setTimeout(r, 0));
/** Long enough for every waiter to have looked at its record again (they look at least every 50 ms). */
const looked = () => new Promise((r) => setTimeout(r, 60));

describe("read rounds", () => {
  it("sends a read at once when nothing is in flight", async () => {
    const { calls, rounds } = fixture();
    const a = rounds.get("a");
    expect(calls.map((c) => c.keys)).toEqual([["a"]]);
    calls[0]?.answer({ a: 1 });
    expect(await a).toBe(1);
    expect(rounds.idle).toBe(true);
  });

  it("sends the reads that arrived during a round together, as the next round", async () => {
    const { calls, rounds } = fixture();
    const a = rounds.get("a");
    const later = ["b", "c", "b", "d"].map((k) => rounds.get(k));
    expect(calls).toHaveLength(1); // nobody joins the round in flight
    calls[0]?.answer({ a: 1 });
    expect(await a).toBe(1);
    await looked();
    expect(calls.map((c) => c.keys)).toEqual([["a"], ["b", "c", "d"]]);
    calls[1]?.answer({ b: 2, c: 3 });
    expect(await Promise.all(later)).toEqual([2, 3, 2, undefined]);
    expect(rounds.calls).toBe(2);
  });

  it("answers a read that arrived during a round with a value read after it arrived", async () => {
    let value = 1;
    const rounds = new ReadRounds<string, number>(
      async (keys) => {
        const seen = value;
        await turn();
        return new Map(keys.map((k) => [k, seen]));
      },
      { maxBatch: 10, deadlineMs: 1000 },
    );
    const first = rounds.get("u");
    value = 2; // changed while the first round is out
    const second = rounds.get("u");
    expect(await first).toBe(1);
    expect(await second).toBe(2);
  });

  it("starts the next round at once, beside the one in flight, when a round's worth is waiting", async () => {
    const { calls, rounds } = fixture({ maxBatch: 3 });
    const all = ["a", "b", "c", "d", "e"].map((k) => rounds.get(k));
    // a went alone; b and c waited; d found a full round waiting and led it at once; e waits.
    expect(calls.map((c) => c.keys)).toEqual([["a"], ["d", "b", "c"]]);
    calls[1]?.answer({ b: 2, c: 3, d: 4 });
    calls[0]?.answer({ a: 1 });
    await looked();
    expect(calls.map((c) => c.keys)).toEqual([["a"], ["d", "b", "c"], ["e"]]);
    calls[2]?.answer({ e: 5 });
    expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5]);
  });

  it("has every rider read alone when a round fails, and gives the leader the error", async () => {
    const { calls, rounds } = fixture();
    const a = rounds.get("a");
    await turn();
    calls[0]?.answer({ a: 1 });
    await a;
    const lead = rounds.get("x");
    const riders = [rounds.get("b"), rounds.get("c")];
    calls[1]?.fail(new Error("down"));
    await expect(lead).rejects.toThrow("down");
    await looked();
    // b and c each read alone, in their own turns.
    for (const c of calls.slice(2)) c.answer({ b: 2, c: 3 });
    expect(await Promise.all(riders)).toEqual([2, 3]);
  });

  it("lets waiters read alone when their round's leader never answers, and does not stay stuck", async () => {
    const { calls, rounds } = fixture({ deadlineMs: 30 });
    void rounds.get("a"); // its call never answers
    const b = rounds.get("b");
    await new Promise((r) => setTimeout(r, 80));
    expect(calls.map((c) => c.keys)).toEqual([["a"], ["b"]]);
    calls[1]?.answer({ b: 2 });
    expect(await b).toBe(2);
    // The abandoned round no longer holds the queue: a new read goes at once.
    const c = rounds.get("c");
    expect(calls.at(-1)?.keys).toEqual(["c"]);
    calls.at(-1)?.answer({ c: 3 });
    expect(await c).toBe(3);
  });
});
