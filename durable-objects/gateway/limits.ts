import { type AdmissionLimits, Admitter } from "../../src/realtime/admission";
import { batchFramesOf } from "../../src/realtime/protocol";
import { positiveVar, wholeVarOr } from "../../src/vars";

// A gateway shard's limits: admission (sockets at most, connects per
// second: admission.ts), sockets per user, and frames per batch message.
// Read from the Worker's vars on first use; configure() changes them until
// the next restart (an operator's lever for a hot gateway; tests).

const DEFAULT_MAX_SOCKETS = 20_000;
const DEFAULT_ACCEPT_PER_SECOND = 1_000;
/** Sockets one user may hold (GATEWAY_MAX_SOCKETS_PER_USER): tabs and devices, not a connection farm. */
export const DEFAULT_MAX_SOCKETS_PER_USER = 10;

/** What configure() sets: admission, sockets per user, and the most frames one message carries (1: no batching). */
export type GatewayLimits = AdmissionLimits & { batchFrames: number; maxSocketsPerUser: number };

type LimitVars = Pick<
  Env,
  "GATEWAY_MAX_SOCKETS" | "GATEWAY_ACCEPT_PER_SECOND" | "GATEWAY_MAX_SOCKETS_PER_USER" | "GATEWAY_BATCH_FRAMES"
>;

export class ShardLimits {
  private admitter: Admitter | null = null;
  private perUser: number | null = null;
  private frames: number | null = null;

  constructor(private readonly vars: LimitVars) {}

  /** Admission control for connects. */
  admission(): Admitter {
    this.admitter ??= new Admitter(
      {
        maxSockets: positiveVar("GATEWAY_MAX_SOCKETS", this.vars.GATEWAY_MAX_SOCKETS, DEFAULT_MAX_SOCKETS),
        perSecond: positiveVar(
          "GATEWAY_ACCEPT_PER_SECOND",
          this.vars.GATEWAY_ACCEPT_PER_SECOND,
          DEFAULT_ACCEPT_PER_SECOND,
        ),
      },
      Date.now(),
    );
    return this.admitter;
  }

  /** Frames per message at most. */
  batchFrames(): number {
    this.frames ??= batchFramesOf(this.vars.GATEWAY_BATCH_FRAMES);
    return this.frames;
  }

  /** Sockets per user at most. */
  socketsPerUser(): number {
    this.perUser ??= wholeVarOr(
      "GATEWAY_MAX_SOCKETS_PER_USER",
      this.vars.GATEWAY_MAX_SOCKETS_PER_USER,
      DEFAULT_MAX_SOCKETS_PER_USER,
    );
    return this.perUser;
  }

  /** Changes what is given (each checked first: nothing changes when one is wrong); answers them all. */
  configure(limits: Partial<GatewayLimits>): GatewayLimits {
    const { batchFrames, maxSocketsPerUser, ...admission } = limits;
    if (batchFrames !== undefined && !(Number.isInteger(batchFrames) && batchFrames >= 1)) {
      throw new Error("batchFrames must be a whole number ≥ 1");
    }
    if (maxSocketsPerUser !== undefined && !(Number.isInteger(maxSocketsPerUser) && maxSocketsPerUser >= 1)) {
      throw new Error("maxSocketsPerUser must be a whole number ≥ 1");
    }
    const next = { ...this.admission().limits, ...admission };
    if (!(next.maxSockets > 0) || !(next.perSecond > 0)) throw new Error("limits must be positive");
    if (maxSocketsPerUser !== undefined) this.perUser = maxSocketsPerUser;
    if (Object.keys(admission).length > 0) this.admitter = new Admitter(next, Date.now());
    if (batchFrames !== undefined) this.frames = batchFrames;
    return { ...this.admission().limits, batchFrames: this.batchFrames(), maxSocketsPerUser: this.socketsPerUser() };
  }
}
