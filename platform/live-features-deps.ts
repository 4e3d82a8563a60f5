import { systemClock } from "../src/clock";
import type { WriteAnswer } from "../src/conversations/messages";
import {
  conversationMessageEvent,
  type LiveFeatureStore,
  publishFeatureEvents,
  reactionEvent,
} from "../src/recommend/live-features";
import type { HistoryPorts } from "../src/recommend/live-history";
import { type FeatureEvent, utcDay } from "../src/recommend/live-rows";
import { exportActivity } from "./rec-export-store";
import { recStoreOf, teamCacheOf } from "./stubs";

// Live features' ports from env: the team's RecStore (named by the team, so
// one team's events and ledger never reach another's object) and the
// feature-events queue.

export function liveFeatureStore(env: Pick<Env, "REC_STORE" | "TEAM_CACHE" | "REC_LOG_STORE">): LiveFeatureStore {
  return {
    ingest: (team, events) => recStoreOf(env, team).ingestEvents(team, events),
    rebuild: (team, build) => recStoreOf(env, team).rebuildNow(team, build),
    markActive: (team, days) => exportActivity(env.REC_LOG_STORE).mark(team, days),
    // The profiles' zones from the team's edge cache, read as the first
    // poster (an active member sees the team's people; one who is no more
    // gets an error, and the hours stay UTC).
    zones: async (team, users) => {
      const r = await teamCacheOf(env, team).lookup(team, users[0] as string, users, []);
      if (!r.ok) throw new Error(`team cache lookup: ${r.code}`);
      return new Map(r.value.users.filter((u) => u.tz).map((u) => [u.id, u.tz]));
    },
  };
}

/** At most 100 messages per sendBatch (Queues' limit); a message post or a join sends one or a few. */
export function featureEventSender(env: Pick<Env, "FEATURE_EVENTS">): (events: FeatureEvent[]) => Promise<void> {
  return async (events) => {
    for (let i = 0; i < events.length; i += 100) {
      await env.FEATURE_EVENTS.sendBatch(events.slice(i, i + 100).map((body) => ({ body })));
    }
  };
}

/**
 * The feature event of a message posted to a conversation's history, sent
 * after the post: the conversation's kind and members come from the
 * poster's team cache (as the poster sees it, live). Never the poster's
 * failure: a lost event moves a count by one.
 */
export async function sendConversationPostEvent(
  env: Pick<Env, "FEATURE_EVENTS" | "TEAM_CACHE">,
  poster: { team: string; user: string },
  conversation: string,
  posted: WriteAnswer,
): Promise<void> {
  const message = posted.message;
  if (!message) return;
  try {
    const card = await teamCacheOf(env, poster.team).channel(poster.team, poster.user, conversation);
    if (!card.ok) return;
    const event = conversationMessageEvent({
      ...poster,
      conversation,
      kind: card.value.kind,
      members: card.value.members ?? [],
      mentions: message.mentions,
      messageId: message.id,
      ts: message.ts,
    });
    if (event) await publishFeatureEvents(featureEventSender(env), [event]);
  } catch (error) {
    console.error("feature-events: a conversation post's event was not sent", error);
  }
}

/**
 * The feature event of a reaction the caller just added (`answer.seq` is
 * null when it was there already: nothing new happened). The message's
 * author comes from the answer, as the conversation stored it.
 */
export async function sendReactionEvent(
  env: Pick<Env, "FEATURE_EVENTS">,
  reactor: { team: string; user: string },
  conversation: string,
  name: string,
  answer: WriteAnswer,
  ts: number,
): Promise<void> {
  const message = answer.message;
  if (!message || answer.seq === null) return;
  const event = reactionEvent({
    ...reactor,
    conversation,
    message: message.id,
    name,
    author: message.user,
    authorTeam: message.team,
    ts,
  });
  if (event) await publishFeatureEvents(featureEventSender(env), [event]);
}

/** The team's RecStore as the history import writes to it. */
export function historyPorts(env: Pick<Env, "REC_STORE" | "REC_LOG_STORE">): HistoryPorts {
  return {
    begin: (team) => recStoreOf(env, team).beginHistory(),
    append: (team, upload, rows) => recStoreOf(env, team).appendHistory(upload, rows),
    // The ledger changes today: the team is in today's retraining export.
    // Marked first: a mark without the upload only exports the team once
    // more; an upload without its mark would be missed.
    publish: async (team, upload) => {
      await exportActivity(env.REC_LOG_STORE).mark(team, [utcDay(systemClock.now())]);
      return recStoreOf(env, team).publishHistory(team, upload);
    },
    discard: (team, upload) => recStoreOf(env, team).discardHistory(upload),
  };
}
