import type { Role } from "../teams/model";

// What the real-time logic needs from the rest of the platform. The Worker
// and the Durable Objects build these from their bindings.

type Denied = { ok: false; code: "forbidden" | "not_found"; message: string };
export type Access = { ok: true } | Denied;
/** A visible channel, with the team hosting it (its topic is keyed by the host). */
export type ChannelAccess = { ok: true; host: string } | Denied;

/**
 * A visible channel, its host, and whether every active full member of the
 * viewer's team may see it (public and hosted by that team: the directory
 * shows such a channel to every non-guest member).
 */
export type ChannelGrant = { ok: true; host: string; everyMember: boolean } | Denied;

/** Who may follow what: answered by the team's edge cache. */
export interface TopicAccess {
  /** The viewer may see the channel (a private one only as a member, a guest only as a member). */
  channel(team: string, viewer: string, channelId: string): Promise<ChannelAccess>;
  /** The viewer is an active member of the team. */
  team(team: string, viewer: string): Promise<Access>;
  /**
   * channel(), answered with whether the answer holds for every full member
   * (the gateway's subscribe-time check may then serve the team's other
   * members from it for a while: durable-objects/gateway/grants.ts).
   */
  channelGrant?(team: string, viewer: string, channelId: string): Promise<ChannelGrant>;
}

/** A user as live state knows it (the team cache's row): what every trust decision reads. */
export interface Actor {
  role: Role;
  active: boolean;
}

/** Of the users and channels asked about, those the viewer may see (the directory's rules). */
export type Visible = { ok: true; users: Set<string>; channels: Set<string> } | Denied;

/**
 * Live state for the gateway's re-checks: answered by the team's edge cache,
 * which change events keep current, so a demotion or a removal is seen as
 * soon as it is committed, never what a token said.
 */
export interface LiveState {
  /** Each user's role and active state; users the team does not have are absent. */
  actors(team: string, users: string[]): Promise<Map<string, Actor>>;
  /** Which of these the viewer may see now; Denied when the viewer is not an active member. */
  visible(team: string, viewer: string, users: string[], channels: string[]): Promise<Visible>;
  /**
   * Of these users (active members), the members of each channel, for many
   * viewers in one call (a gateway's audience of a DM's announcement).
   * Absent: the gateway asks visible() viewer by viewer instead.
   */
  membersAmong?(team: string, channels: string[], users: string[]): Promise<Map<string, Set<string>>>;
}

/** A user's profile as clients see it (the edge cache's user card). */
export type Profile = { id: string } & Record<string, unknown>;

/** Profiles for just-in-time annotation, each viewer seeing only whom the directory lets it see. */
export interface ProfileSource {
  /**
   * The profiles of `users` that exist, and per viewer the ids among them it
   * may not see (guests see only people they share a channel with). Viewers
   * that are not active members get every id hidden.
   */
  profiles(
    team: string,
    viewers: string[],
    users: string[],
  ): Promise<{ profiles: Profile[]; hidden: Record<string, string[]> }>;
}

export type PublishResult =
  | { ok: true; seq: number }
  /** Over a rate: the poster's own in this topic, or the topic's for everyone. */
  | { ok: false; retryAfterMs: number; limit: "poster" | "topic" };

export interface PublishOptions {
  /** Keep this event as the topic's current state for the key (presence per user). */
  stateKey?: string;
  /**
   * A client's publish, by this poster (`team:user`): subject to the poster's
   * rate in this topic and to the topic's overall rate. System events (no
   * poster) never are.
   */
  poster?: string;
}

/** Publishes an event (JSON text) to a topic, which numbers it. */
export interface TopicPublisher {
  publish(topicKey: string, eventJson: string, options?: PublishOptions): Promise<PublishResult>;
}
