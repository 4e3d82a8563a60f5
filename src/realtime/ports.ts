// What the real-time logic needs from the rest of the platform. The Worker
// and the Durable Objects build these from their bindings.

export type Access = { ok: true } | { ok: false; code: "forbidden" | "not_found"; message: string };

/** Who may follow what: answered by the team's edge cache. */
export interface TopicAccess {
  /** The viewer may see the channel (a private one only as a member, a guest only as a member). */
  channel(team: string, viewer: string, channelId: string): Promise<Access>;
  /** The viewer is an active member of the team. */
  team(team: string, viewer: string): Promise<Access>;
}

/** Publishes an event (JSON text) to a topic, which numbers it. */
export interface TopicPublisher {
  publish(topicKey: string, eventJson: string): Promise<{ seq: number }>;
}
