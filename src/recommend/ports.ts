import type { RecLogMessage } from "./logs";
import type { RecRequest } from "./pipeline";

// What the recommenders and the recommend use cases need from the rest of the
// platform; the Worker builds these from its bindings
// (platform/recommend-deps.ts).

/** Candidates with their features, from the team's feature snapshot at the edge (RecStore). */
export interface CandidateSource {
  candidates(req: RecRequest): Promise<Array<{ id: string; features: Record<string, number> }>>;
}

export interface ChannelView {
  id: string;
  name: string;
  is_private: boolean;
  is_archived: boolean;
  is_member: boolean;
}

export interface UserView {
  id: string;
  deleted: boolean;
  is_bot: boolean;
}

/** The directory as the requesting user may see it (the team's edge cache): what is absent is not visible. */
export interface DirectoryView {
  channels(team: string, viewer: string, ids: string[]): Promise<ChannelView[]>;
  users(team: string, viewer: string, ids: string[]): Promise<UserView[]>;
}

export interface RecDeps {
  store: CandidateSource;
  directory: DirectoryView;
}

/** Whether a user is an active member the caller may see (the team's edge cache), and their channels when asked. */
export interface MemberLookup {
  find(
    team: string,
    user: string,
    options: { withChannels: boolean },
  ): Promise<{ ok: true; channels: string[] | null } | { ok: false; message: string }>;
  /**
   * The members of a DM or group DM the user is in, read live: null when
   * the user does not see it (another team's, one it is not in, or none),
   * "channel" when it is a channel.
   */
  conversationMembers(team: string, user: string, id: string): Promise<string[] | null | "channel">;
}

/** What a client shows for a recommended user (`?include=profile`): the directory card's display fields. */
export interface UserDisplay {
  name: string;
  real_name: string;
  display_name: string;
  title: string;
  avatar_hash: string;
}

/** What a client shows for a recommended channel (`?include=profile`). */
export interface ChannelDisplay {
  name: string;
  topic: string;
  purpose: string;
  is_private: boolean;
}

/**
 * Display fields of users or channels as `viewer` may see them (the team's
 * edge cache): one call per answer, so a client needs no second round trip
 * per item. Ids the viewer may not see are absent, never described.
 */
export interface DisplayLookup {
  users(team: string, viewer: string, ids: string[]): Promise<Map<string, UserDisplay>>;
  channels(team: string, viewer: string, ids: string[]): Promise<Map<string, ChannelDisplay>>;
}

/** An answer as the team's served log keeps it, for checking feedback. */
export interface ServedRequest {
  requestId: string;
  user: string;
  source: string;
  experiment: string;
  arm: string;
  items: string[];
  ts: number;
}

export type FeedbackCheck =
  | { ok: true; request: ServedRequest }
  | { ok: false; code: "not_found" | "unknown_item"; message: string };

/** What a team's answers were (its RecStore): written when serving, read when feedback comes. */
export interface ServedLog {
  record(team: string, served: ServedRequest): Promise<void>;
  /** Feedback may only name the user's own request, and only items it served. */
  check(team: string, requestId: string, user: string, items: string[]): Promise<FeedbackCheck>;
}

/** The rec-logs queue, for training. */
export interface RecLogSink {
  send(message: RecLogMessage): Promise<unknown>;
  sendBatch(messages: readonly RecLogMessage[]): Promise<unknown>;
}

/** The series the use cases count and time (the platform's metrics registry). */
export interface RecMetrics {
  inc(name: string, labels?: Readonly<Record<string, string>>, by?: number): void;
  observe(name: string, labels: Readonly<Record<string, string>>, value: number): void;
}
