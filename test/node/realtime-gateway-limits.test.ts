import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_SOCKETS_PER_USER, ShardLimits } from "../../durable-objects/gateway/limits";

// A gateway shard's limits: read from the vars on first use, changed by
// configure() only when every given limit is valid.

const vars = {
  GATEWAY_MAX_SOCKETS: "100",
  GATEWAY_ACCEPT_PER_SECOND: "10",
  GATEWAY_MAX_SOCKETS_PER_USER: undefined,
  GATEWAY_BATCH_FRAMES: "8",
} as unknown as ConstructorParameters<typeof ShardLimits>[0];

describe("ShardLimits", () => {
  it("reads the vars, with defaults for what is not set", () => {
    const limits = new ShardLimits(vars);
    expect(limits.admission().limits).toEqual({ maxSockets: 100, perSecond: 10 });
    expect(limits.batchFrames()).toBe(8);
    expect(limits.socketsPerUser()).toBe(DEFAULT_MAX_SOCKETS_PER_USER);
  });

  it("changes what configure() is given, and nothing when one of them is wrong", () => {
    const limits = new ShardLimits(vars);
    expect(limits.configure({ batchFrames: 1, maxSocketsPerUser: 2 })).toEqual({
      maxSockets: 100,
      perSecond: 10,
      batchFrames: 1,
      maxSocketsPerUser: 2,
    });
    expect(() => limits.configure({ batchFrames: 4, maxSocketsPerUser: 0 })).toThrow(/maxSocketsPerUser/);
    expect(() => limits.configure({ maxSocketsPerUser: 3, perSecond: -1 })).toThrow(/positive/);
    expect(() => limits.configure({ batchFrames: 1.5 })).toThrow(/batchFrames/);
    expect(limits.configure({})).toEqual({ maxSockets: 100, perSecond: 10, batchFrames: 1, maxSocketsPerUser: 2 });
  });
});
