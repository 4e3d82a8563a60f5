import type { Source } from "../sources";
import { prepareArchive } from "./archive";
import { prepareChannelBrowser } from "./channel-browser";
import type { PreparedSubject } from "./common";
import { prepareComposerDm } from "./composer-dm";
import { prepareInvite } from "./invite";
import { prepareLeave } from "./leave";
import { prepareSendTime } from "./send-time";
import type { FeatureTables } from "./tables";

// The online side of training/features.py: for a subject and a source, the
// candidate set (`Cut.candidates`) and the feature records (`Cut.features`),
// computed from a FeatureTables built once per snapshot. Pure: no bindings,
// no I/O.
//
//   const tables = new FeatureTables(snapshotFromRows(rows));   // once per snapshot
//   const s = prepareSubject(tables, "channel_browser", "U12");  // once per request
//   const cands = s.candidates();
//   const records = s.features(cands.map((c) => c.id));
//
// Measured on rails-collab (latest cut, this 2-core machine, warm): a
// request (prepare + candidates + features of 500 items) takes ~1-2.5 ms at
// the median for the heaviest subjects of channel_browser, composer_dm and
// invite, under 0.5 ms for the other sources.

export type { FeatureValues, GeneratedCandidate, PreparedSubject } from "./common";
export { contextPartner } from "./composer-dm";
export { snapshotFromRows, snapshotToRows } from "./rows";
export {
  buildSnapshot,
  describeSnapshot,
  type EmbeddingArtifact,
  type FeatureSnapshot,
  type SnapshotIds,
} from "./snapshot";
export {
  BASELINES,
  type BaselineName,
  baselineScore,
  featureDefaults,
  featureNames,
  HAND_TUNED,
  handTunedScore,
} from "./spec";
export { FeatureTables } from "./tables";

export interface SubjectContext {
  /** composer_dm: the conversation's other members; absent = the offline context partner (composer-dm.ts). */
  conversation?: readonly string[];
  /** invite: the new member's first-day (or current) channels and partners (invite.ts). */
  firstDayChannels?: readonly string[];
  firstDayPartners?: readonly string[];
}

/**
 * Prepares a subject (a person id; ignored for archive) for one request. An id
 * the snapshot does not know is a subject without history (cold start).
 */
export function prepareSubject(
  tables: FeatureTables,
  source: Source,
  subject: string | null,
  context: SubjectContext = {},
): PreparedSubject {
  switch (source) {
    case "channel_browser":
      return prepareChannelBrowser(tables, subject);
    case "composer_dm":
      return prepareComposerDm(tables, subject, context);
    case "invite":
      return prepareInvite(tables, subject, context);
    case "leave":
      return prepareLeave(tables, subject);
    case "archive":
      return prepareArchive(tables);
    case "send_time":
      return prepareSendTime(tables, subject);
  }
}
