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
    source: "channel_browser",
    corpus: "channel",
    candidates: 200,
    fetchers: [snapshotCandidates],
    filters: [visibleChannels(false)],
    augmenters: [],
    rerankers: [prefixDiversity(3)],
    handTuned: handTunedScorer("channel_browser"),
  },
  composer_dm: {
    source: "composer_dm",
    corpus: "user",
    candidates: 300,
    fetchers: [snapshotCandidates],
    filters: [notInConversation, activePeople],
    augmenters: [],
    rerankers: [],
    handTuned: handTunedScorer("composer_dm"),
  },
  invite: {
    source: "invite",
    corpus: "user",
    candidates: 250,
    fetchers: [snapshotCandidates],
    filters: [activePeople],
    augmenters: [],
    rerankers: [],
    handTuned: handTunedScorer("invite"),
  },
  leave: {
    source: "leave",
    corpus: "channel",
    candidates: 500,
    fetchers: [snapshotCandidates],
    filters: [visibleChannels(true)],
    augmenters: [],
    rerankers: [],
    handTuned: handTunedScorer("leave"),
  },
  archive: {
    source: "archive",
    corpus: "channel",
    candidates: 2000,
    fetchers: [snapshotCandidates],
    filters: [visibleChannels()],
    augmenters: [],
    rerankers: [],
    handTuned: handTunedScorer("archive"),
  },
  send_time: {
    source: "send_time",
    corpus: "hour",
    candidates: 24,
    fetchers: [snapshotCandidates],
    filters: [],
    augmenters: [],
    rerankers: [],
    handTuned: handTunedScorer("send_time"),
  },
};
