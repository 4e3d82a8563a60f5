import { type PresenceState, presenceEventJson, presenceShardOf, presenceTopic } from "../../src/realtime/presence";
import { topicKey } from "../../src/realtime/topics";
import { AwayLedger } from "./away";
import { type PresenceChange, PresenceOutbox } from "./presence-outbox";

// A gateway owns its users' presence: all of a user's sockets are on it.
// A user's first socket makes them active (unless they only blinked: back
// within the grace period of their last one, never shown away); their last
// socket closing makes them away once the grace period ends, unless they
// came back (away.ts keeps who is due when, through hibernation). Changes
// go to the user's presence shard topic in rounds (presence-outbox.ts).

export interface PresencePorts {
  publish(key: string, changes: PresenceChange[]): Promise<unknown>;
  /** The grace period (ms) a user who left is still shown active. */
  graceMs(): number;
  /** Keeps the instance alive for work nobody awaits (ctx.waitUntil). */
  background(work: Promise<unknown>): void;
}

export class PresenceKeeper {
  private readonly away: AwayLedger;
  private readonly outbox: PresenceOutbox;

  constructor(
    sql: SqlStorage,
    private readonly ports: PresencePorts,
  ) {
    this.away = new AwayLedger(sql, ports.background);
    this.outbox = new PresenceOutbox(ports.publish, (key, changes, error) =>
      console.error(`gateway: ${changes.length} presence changes to ${key} not published`, error),
    );
  }

  /** Users waiting out their grace period. */
  get pending(): number {
    return this.away.size;
  }

  /**
   * The user's first socket here: active, unless they only blinked. Nothing
   * is written either way: the pending entry of a user who came back stays
   * until its alarm, which finds them connected and drops it.
   */
  arrived(team: string, user: string): void {
    if (this.away.has(user)) return;
    this.ports.background(this.publish(team, user, "active"));
  }

  /** The user's last socket here closed: away at the returned time, unless they come back (the alarm calls due()). */
  left(team: string, user: string): number {
    const due = Date.now() + this.ports.graceMs();
    this.away.leave(user, team, due);
    return due;
  }

  /** Users whose grace period ended and who are still gone: away. Resolves once published. */
  async due(now: number, connected: (user: string) => boolean): Promise<void> {
    const published: Array<Promise<void>> = [];
    for (const { user, team } of this.away.takeDue(now)) {
      if (!connected(user)) published.push(this.publish(team, user, "away"));
    }
    await Promise.all(published);
  }

  /** When the next user turns away (null: nobody pending). */
  earliest(): number | null {
    return this.away.earliest();
  }

  /** Resolves once published (or failed, and logged): changes for one shard go out in rounds. */
  private publish(team: string, user: string, presence: PresenceState): Promise<void> {
    const key = topicKey(team, presenceTopic(presenceShardOf(user)));
    return this.outbox.send(key, { json: presenceEventJson(user, presence), stateKey: user });
  }
}
