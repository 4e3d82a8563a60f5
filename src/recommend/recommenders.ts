import { handTunedScorer } from "./hand-tuned";
import type { Recommender } from "./pipeline";
import type { RecDeps } from "./ports";
import type { Source } from "./sources";
import { activePeople, notInConversation, prefixDiversity, snapshotCandidates, visibleChannels } from "./steps";

// Every source's recommender, as a declaration of reusable steps. Candidate
// generation and features come from the team's feature snapshot (the same
// generators and features the offline pipeline trains on); the directory
// filters enforce what this user may see now; the model is chosen per
// request by the source's experiment.

export const recommenders: { readonly [S in Source]: Recommender<RecDeps> } = {
  channel_browser: {
    fetchers: [snapshotCandidates],
    filters: [visibleChannels(false)],
    rerankers: [prefixDiversity(3)],
    handTuned: handTunedScorer("channel_browser"),
  },
  composer_dm: {
    fetchers: [snapshotCandidates],
    filters: [notInConversation, activePeople],
    rerankers: [],
    handTuned: handTunedScorer("composer_dm"),
  },
  invite: {
    fetchers: [snapshotCandidates],
    filters: [activePeople],
    rerankers: [],
    handTuned: handTunedScorer("invite"),
  },
  leave: {
    fetchers: [snapshotCandidates],
    filters: [visibleChannels(true)],
    rerankers: [],
    handTuned: handTunedScorer("leave"),
  },
  archive: {
    fetchers: [snapshotCandidates],
    filters: [visibleChannels()],
    rerankers: [],
    handTuned: handTunedScorer("archive"),
  },
  send_time: {
    fetchers: [snapshotCandidates],
    filters: [],
    rerankers: [],
    handTuned: handTunedScorer("send_time"),
  },
};
