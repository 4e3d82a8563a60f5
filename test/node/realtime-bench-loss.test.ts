import { describe, expect, it } from "vitest";
import { DIGEST_SEED, foldDigest, SeqLedger } from "../../bench/realtime-client";

// The real-time bench counts loss from what each client received, not from
// what a server says it sent (bench/realtime-client.ts): every seq of a phase
// a client never got is missing, every seq at or below the last one it got is
// a duplicate. These feed it sequences with a drop and a duplicate, so a
// benchmark reporting 0 lost is known to be able to report something else.

function feed(ledger: SeqLedger, seqs: number[]): void {
  for (const s of seqs) ledger.event(s);
}

describe("real-time bench: loss counted from the clients' own sequences", () => {
  it("counts nothing for a complete, ordered sequence", () => {
    const l = new SeqLedger();
    l.begin(1);
    feed(l, [1, 2, 3, 4, 5]);
    expect(l.missing(5)).toBe(0);
    expect(l.dups).toBe(0);
    expect(l.gaps).toBe(0);
  });

  it("counts a dropped event as missing and a repeated one as a duplicate", () => {
    const l = new SeqLedger();
    l.begin(1);
    // 3 was dropped, 4 came twice.
    feed(l, [1, 2, 4, 4, 5]);
    expect(l.missing(5)).toBe(1);
    expect(l.gaps).toBe(1);
    expect(l.dups).toBe(1);
  });

  it("counts events lost at the end of a phase, which no later event reveals as a gap", () => {
    const l = new SeqLedger();
    l.begin(1);
    feed(l, [1, 2, 3]);
    expect(l.gaps).toBe(0);
    // 4 and 5 were published but never arrived.
    expect(l.missing(5)).toBe(2);
  });

  it("counts events lost at the start of a phase (a client that reconnected without resuming)", () => {
    const l = new SeqLedger();
    l.begin(1);
    feed(l, [1, 2]);
    l.begin(3);
    // The phase published 3..6; the client's socket dropped and came back for 5 and 6 only.
    feed(l, [5, 6]);
    expect(l.missing(6)).toBe(2);
    expect(l.gaps).toBe(2);
  });

  it("does not let a duplicate hide a loss (received count = expected count, yet one is missing)", () => {
    const l = new SeqLedger();
    l.begin(10);
    feed(l, [10, 11, 11, 13]);
    // Four frames for four seqs (10..13), but 12 never came.
    expect(l.missing(13)).toBe(1);
    expect(l.dups).toBe(1);
  });

  it("counts out-of-order delivery as a duplicate and keeps the later seq", () => {
    const l = new SeqLedger();
    l.begin(1);
    feed(l, [1, 3, 2]);
    expect(l.dups).toBe(1);
    expect(l.last).toBe(3);
    expect(l.missing(3)).toBe(1);
  });

  it("counts what a reload gave up as missing too (lost with notice)", () => {
    const l = new SeqLedger();
    l.begin(1);
    feed(l, [1, 2]);
    l.reload(6);
    feed(l, [7]);
    expect(l.reloaded).toBe(4);
    expect(l.missing(7)).toBe(4);
  });

  it("starts a first subscription where the server says, without counting what came before", () => {
    const l = new SeqLedger();
    l.start(41);
    l.begin(42);
    feed(l, [42, 43]);
    expect(l.missing(43)).toBe(0);
    // A resumed subscription keeps its own position.
    l.start(100);
    expect(l.last).toBe(43);
  });

  it("digests the received messages in order, duplicates included", () => {
    const digest = (xs: number[]) => xs.reduce(foldDigest, DIGEST_SEED);
    expect(digest([0, 1, 2])).toBe(digest([0, 1, 2]));
    expect(digest([0, 1, 2])).not.toBe(digest([0, 2, 1]));
    expect(digest([0, 1, 2])).not.toBe(digest([0, 1, 1, 2]));
    expect(digest([0, 1, 2])).not.toBe(digest([0, 1]));
  });
});
