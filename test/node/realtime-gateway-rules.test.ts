import { describe, expect, it } from "vitest";
import { FrameRate, RATE_LIMIT_RETRY_MS } from "../../durable-objects/gateway/frame-rate";
import { channelAccessChange } from "../../src/realtime/directory-events";
import { FRAME_BURST, FRAME_RATE, MAX_DROPPED_FRAMES } from "../../src/realtime/protocol";

// Two small gateway rules that need no socket: the client frame rate, and
// which channel events take access away.

describe("FrameRate", () => {
  it("lets a burst through, drops what is over the rate with when to retry, and closes a socket that keeps on", () => {
    const rate = new FrameRate(() => 0.5);
    const now = 1_000_000;
    for (let i = 0; i < FRAME_BURST; i++) expect(rate.take("s1", now).kind).toBe("ok");
    const dropped = rate.take("s1", now);
    expect(dropped).toMatchObject({ kind: "drop" });
    expect(dropped.kind === "drop" && dropped.message).toContain(`at most ${FRAME_RATE} frames a second`);
    // Another socket has its own bucket.
    expect(rate.take("s2", now).kind).toBe("ok");
    let last = dropped;
    for (let i = 1; i < MAX_DROPPED_FRAMES; i++) last = rate.take("s1", now);
    expect(last).toEqual({ kind: "close", retryAfterMs: RATE_LIMIT_RETRY_MS * 1.5 });
    expect(rate.dropped).toBe(MAX_DROPPED_FRAMES);
    // Refilled with time; a forgotten socket starts afresh.
    expect(rate.take("s1", now + 1_000).kind).toBe("ok");
    rate.forget("s1");
    for (let i = 0; i < FRAME_BURST; i++) expect(rate.take("s1", now + 1_000).kind).toBe("ok");
  });
});

describe("channelAccessChange", () => {
  it("reads member_left and channel_changed events, and nothing from a message that merely says so", () => {
    expect(channelAccessChange(JSON.stringify({ type: "member_left", channel: "C1", user: "U1" }))).toEqual({
      kind: "member_left",
      user: "U1",
    });
    expect(channelAccessChange(JSON.stringify({ type: "channel_changed", channel: { id: "C1" } }))).toEqual({
      kind: "channel_changed",
    });
    expect(channelAccessChange(JSON.stringify({ type: "message", text: '"member_left" "channel_changed"' }))).toBe(
      null,
    );
    expect(channelAccessChange('"member_left" not json')).toBeNull();
    expect(channelAccessChange(JSON.stringify({ type: "member_left", user: 7 }))).toBeNull();
  });
});
