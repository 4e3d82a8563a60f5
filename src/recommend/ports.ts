import type { RecRequest } from "./pipeline";

// What the recommenders need from the rest of the platform; the Worker builds
// these from its bindings (workers/recommend-deps.ts).

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
