// What a gateway may remember of a channel's access check, so that the
// thousand members of a team subscribing to #general within a few seconds
// (a morning, a deploy, a reconnect storm) cost one team-cache check, not a
// thousand. Only one fact is kept: "channel C is public and hosted by this
// team", which any active full member may follow (the directory's rule:
// a public channel is visible to every non-guest member). Who asks is not
// cached: the socket's role (read live by the gateway at connect, lowered by
// every re-check and by user_changed events) must be a full member's, and
// guests always ask the team cache.
//
// Why a remembered fact is still right, and how it stays fail-closed. A
// channel stops being public only by a change the directory publishes on
// the channel's own topic (channel_changed), after the team cache has
// applied it; a user stops being a full member by a re-check (recheckUsers)
// that lowers the socket's role. So a fact is trusted only
// - while this gateway follows the channel's topic without a break since
//   before the check that learned it began (`follow`: a token the gateway
//   renews each time it starts following a topic): every change after the
//   check then reaches this gateway as an event, and every change before it
//   was seen by the check itself;
// - in the access epoch it was learned in: any re-check here (a channel
//   event's, a user's) starts a new epoch, which forgets everything, and a
//   subscribe that was already past this point is re-checked by the
//   gateway's epoch rule like any other;
// - for at most GRANT_TTL_MS, a bound for the case nothing above foresaw
//   (a directory event that failed to publish leaves existing subscribers
//   in place too; this bounds how long new ones join them).
// A subscribe using a fact is exactly as current as a socket that was
// already subscribed: a change reaching the gateway re-checks both, live,
// within the same round (the re-checks themselves are never cached, and a
// check that cannot be made still denies).

/** How long a learned fact may be used at most (ms). */
export const GRANT_TTL_MS = 5_000;
/** Facts kept at most (channels, per gateway): beyond it the oldest go. */
const MAX_GRANTS = 4_096;

interface Grant {
  host: string;
  epoch: number;
  follow: number;
  at: number;
}

export class ChannelGrants {
  private readonly grants = new Map<string, Grant>();

  /** The host of a public channel of `team` that a full member may follow, if a valid fact says so. */
  get(team: string, channel: string, epoch: number, follow: number | undefined, now: number): string | null {
    const key = `${team}\n${channel}`;
    const g = this.grants.get(key);
    if (!g) return null;
    if (g.epoch !== epoch || follow === undefined || g.follow !== follow || now - g.at >= GRANT_TTL_MS) {
      this.grants.delete(key);
      return null;
    }
    return g.host;
  }

  /**
   * Remembers that a live check which began in `epoch`, while the gateway
   * followed the topic under token `follow`, found the channel public and
   * hosted by `team`. Nothing is kept when the epoch or the following
   * changed meanwhile, or the gateway did not follow the topic when it began.
   */
  put(
    team: string,
    channel: string,
    host: string,
    epoch: { asked: number; now: number },
    follow: { asked: number | undefined; now: number | undefined },
    at: number,
  ): void {
    if (epoch.asked !== epoch.now || follow.asked === undefined || follow.asked !== follow.now) return;
    if (this.grants.size >= MAX_GRANTS) {
      const oldest = this.grants.keys().next().value;
      if (oldest !== undefined) this.grants.delete(oldest);
    }
    this.grants.set(`${team}\n${channel}`, { host, epoch: epoch.asked, follow: follow.asked, at });
  }

  clear(): void {
    this.grants.clear();
  }

  get size(): number {
    return this.grants.size;
  }
}
