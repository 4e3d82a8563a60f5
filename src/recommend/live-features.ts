import { isoOf } from "../datasets/collab";
import type { ConversationKind } from "../directory/model";
import { badRequest, conflict } from "../errors";
import {
  type DirectFeatureEvent,
  FEATURE_EVENT_VERSION,
  type FeatureEvent,
  hasHour,
  type InviteFeatureEvent,
  isEventId,
  isId,
  type JoinFeatureEvent,
  type LedgerTooLarge,
  MAX_EVENT_TARGETS,
  MAX_INVITE_TARGETS,
  type MessageFeatureEvent,
  parseFeatureEvent,
  type ReactionFeatureEvent,
  tooLargeReason,
  utcDay,
} from "./live-rows";

// Live features, the use cases around the ledger (live-rows.ts is the
// mapping): the producers' events, the feature-events consumer's routing by
// team, and the admin rebuild. The ledger and the rebuild live in the team's
// RecStore object; these functions only see it through ports.

/** The snapshot a team's ledger was last built into. */
export interface LiveSnapshotMeta {
  snapshotId: string;
  /** The cut: the day after the ledger's latest row (days since 1970-01-01). */
  cut: number;
  rows: number;
  users: number;
  channels: number;
  /** When it was built, and when the newest event it holds was counted (ms since the epoch). */
  builtAt: number;
  lastEventAt: number;
  /** Milliseconds the build and write took. */
  ms: number;
  /** A build from the whole ledger, or of the rows the events since the last build changed (live-incremental.ts). */
  build?: LiveBuild;
}

/** A build's result: the snapshot now (the last one when refused), and why a full build was refused. */
export interface LiveBuildOutcome {
  live: LiveSnapshotMeta | null;
  refused: LedgerTooLarge | null;
}

/** `full`: everything from the ledger; `changed`: the rows new events changed, when that gives what `full` would. */
export type LiveBuild = "full" | "changed";

export interface LiveIngest {
  added: number;
  duplicates: number;
  /** Events naming another team (refused). */
  foreign: number;
}

/** A team's RecStore, as the consumer and the rebuild route use it. */
export interface LiveFeatureStore {
  ingest(team: string, events: FeatureEvent[]): Promise<LiveIngest>;
  /**
   * The IANA time zones of these users (their profiles), as far as known;
   * the consumer asks once per team and batch, off the request path, for
   * events whose producer did not have the poster's zone.
   */
  zones?(team: string, users: string[]): Promise<ReadonlyMap<string, string>>;
  rebuild(team: string, build: LiveBuild): Promise<LiveBuildOutcome & { serving: "imported" | "live" | null }>;
  /**
   * Records that the team's ledger took rows on these UTC days, for the
   * day's retraining export (export.ts `activeTeams`). Called after the
   * ingest; a failure retries the team's events (they count once by id).
   */
  markActive?(team: string, days: number[]): Promise<void>;
}

// --- producers ----------------------------------------------------------------

/** A message posted in a channel, as a feature event; its id is the message's place in the channel's topic. */
export function messageEvent(m: {
  team: string;
  user: string;
  channel: string;
  mentions: readonly string[];
  topic: string;
  seq: number;
  ts: number;
  tz?: string;
}): MessageFeatureEvent {
  const e: MessageFeatureEvent = {
    v: FEATURE_EVENT_VERSION,
    id: `msg:${m.team}:${m.topic}:${m.seq}`,
    team: m.team,
    user: m.user,
    ts: m.ts,
    type: "message",
    channel: m.channel,
    // A mention that is no user id cannot be a partner; dropped here, so the event stays valid.
    mentions: [...new Set(m.mentions)].filter((x) => isId(x) && x !== m.user).slice(0, MAX_EVENT_TARGETS),
  };
  if (m.tz) e.tz = m.tz;
  return e;
}

/**
 * A message posted to a conversation's history (POST
 * /v1/conversations/:id/messages): in a channel, a message event (its
 * mentions); in a DM or group DM, a direct one to its other members
 * (live-rows.ts maps each). Named by the conversation and the message's id,
 * which the history gives once, so a retried send counts once.
 */
export function conversationMessageEvent(m: {
  team: string;
  user: string;
  conversation: string;
  kind: ConversationKind;
  /** A DM's or group DM's members (ignored for a channel). */
  members: readonly string[];
  mentions: readonly string[];
  messageId: string;
  ts: number;
}): MessageFeatureEvent | DirectFeatureEvent | null {
  const id = `conv:${m.team}:${m.conversation}:${m.messageId}`;
  if (m.kind === "channel") {
    return {
      ...messageEvent({ ...m, channel: m.conversation, topic: m.conversation, seq: 0 }),
      id,
    };
  }
  const to = [...new Set(m.members)].filter((u) => isId(u) && u !== m.user).slice(0, MAX_EVENT_TARGETS);
  // Someone alone in a group DM everyone else left writes to no one.
  if (to.length === 0) return null;
  return { v: FEATURE_EVENT_VERSION, id, team: m.team, user: m.user, ts: m.ts, type: "direct", to };
}

/** Users added to a channel by a membership write, one join each (the write's time names the events). */
export function joinEvents(team: string, channel: string, users: readonly string[], ts: number): JoinFeatureEvent[] {
  return users.map((user) => ({
    v: FEATURE_EVENT_VERSION,
    id: `join:${team}:${channel}:${user}:${ts}`,
    team,
    user,
    ts,
    type: "join",
    channel,
  }));
}

/**
 * The events of users added to a channel by a membership write: a join for
 * each user actually added, and an invite from the adder when the adder is
 * a member of the channel's team (an operator is not). Only the channel's
 * own team's users count: another team's users belong to their team's
 * features, which this write does not reach.
 */
export function membershipAddEvents(a: {
  team: string;
  channel: string;
  /** The added users' team (the channel's team when absent). */
  usersTeam?: string;
  actor: { team: string; user: string };
  added: readonly string[];
  ts: number;
}): FeatureEvent[] {
  if (a.usersTeam !== undefined && a.usersTeam !== a.team) return [];
  const events: FeatureEvent[] = joinEvents(a.team, a.channel, a.added, a.ts);
  const invite = a.actor.team === a.team ? inviteEvent(a.team, a.channel, a.actor.user, a.added, a.ts) : null;
  if (invite) events.push(invite);
  return events;
}

/**
 * The invite of users added to a channel by someone (`by`), or null when
 * there is no one else to invite or the add is provisioning (more than
 * MAX_INVITE_TARGETS at once): the joins still count either way.
 */
export function inviteEvent(
  team: string,
  channel: string,
  by: string,
  added: readonly string[],
  ts: number,
): InviteFeatureEvent | null {
  const to = [...new Set(added)].filter((u) => isId(u) && u !== by);
  if (to.length === 0 || to.length > MAX_INVITE_TARGETS || !isId(by)) return null;
  return {
    v: FEATURE_EVENT_VERSION,
    id: `invite:${team}:${channel}:${by}:${ts}`,
    team,
    user: by,
    ts,
    type: "invite",
    channel,
    to,
  };
}

/**
 * A reaction added to a message, or null when it says nothing about two
 * people: a reaction to one's own message, or to a message by another team's
 * member in a shared channel (ids are per team). Named by the message, the
 * reactor and the name, so adding the same reaction again after taking it
 * back counts once.
 */
export function reactionEvent(r: {
  team: string;
  user: string;
  conversation: string;
  message: string;
  name: string;
  author: string;
  authorTeam: string;
  ts: number;
}): ReactionFeatureEvent | null {
  if (r.authorTeam !== r.team || r.author === r.user || !isId(r.author)) return null;
  // Emoji names may hold + and ' (not id characters): those are spelled as their code.
  const name = r.name.replace(/[^A-Za-z0-9_:-]/g, (ch) => `.${ch.charCodeAt(0).toString(16)}`);
  const id = `react:${r.team}:${r.conversation}:${r.message}:${r.user}:${name}`;
  if (!isEventId(id)) return null;
  return { v: FEATURE_EVENT_VERSION, id, team: r.team, user: r.user, ts: r.ts, type: "reaction", to: r.author };
}

/**
 * Sends events after the write they describe succeeded. A failed send is
 * logged, never the caller's failure: the write is done, and features are
 * counts that one lost event moves by one.
 */
export async function publishFeatureEvents(
  send: (events: FeatureEvent[]) => Promise<void>,
  events: FeatureEvent[],
): Promise<void> {
  if (events.length === 0) return;
  try {
    await send(events);
  } catch (error) {
    console.error(`feature-events: ${events.length} event(s) not sent`, error);
  }
}

// --- the consumer -------------------------------------------------------------

export interface QueuedEvent {
  id: string;
  body: unknown;
}

export interface ConsumeOutcome {
  /** Queue message ids to acknowledge (counted, duplicates, and bad bodies: those can never succeed). */
  ack: string[];
  /** Queue message ids whose team's store failed: delivered again. */
  retry: string[];
  dropped: number;
  added: number;
  duplicates: number;
}

/**
 * Routes a batch by each event's own team to that team's store: a bad body is
 * dropped with a log line (retrying cannot fix it), a team whose store fails
 * is retried whole (its events are idempotent by id).
 */
export async function consumeFeatureEvents(
  messages: readonly QueuedEvent[],
  store: LiveFeatureStore,
): Promise<ConsumeOutcome> {
  const out: ConsumeOutcome = { ack: [], retry: [], dropped: 0, added: 0, duplicates: 0 };
  const byTeam = new Map<string, Array<{ id: string; event: FeatureEvent }>>();
  for (const m of messages) {
    const parsed = parseFeatureEvent(m.body);
    if (!parsed.ok) {
      console.error(`feature-events: dropping message ${m.id}: ${parsed.reason}`);
      out.dropped++;
      out.ack.push(m.id);
      continue;
    }
    const list = byTeam.get(parsed.event.team) ?? [];
    list.push({ id: m.id, event: parsed.event });
    byTeam.set(parsed.event.team, list);
  }
  await Promise.all(
    [...byTeam].map(async ([team, list]) => {
      try {
        await withZones(store, team, list);
        const r = await store.ingest(
          team,
          list.map((x) => x.event),
        );
        await store.markActive?.(team, [...new Set(list.map((x) => utcDay(x.event.ts)))]);
        out.added += r.added;
        out.duplicates += r.duplicates;
        for (const x of list) out.ack.push(x.id);
      } catch (error) {
        console.error(`feature-events: team ${team}'s store failed; retrying ${list.length}`, error);
        for (const x of list) out.retry.push(x.id);
      }
    }),
  );
  return out;
}

/**
 * Sets the poster's zone on message and DM events that have none (the
 * message route does not read profiles: that would cost the post a lookup).
 * A failed lookup leaves the UTC hour (logged): the event still counts.
 */
async function withZones(store: LiveFeatureStore, team: string, list: Array<{ event: FeatureEvent }>): Promise<void> {
  if (!store.zones) return;
  const posters = [...new Set(list.filter((x) => hasHour(x.event) && !x.event.tz).map((x) => x.event.user))];
  if (posters.length === 0) return;
  let zones: ReadonlyMap<string, string>;
  try {
    zones = await store.zones(team, posters);
  } catch (error) {
    console.error(`feature-events: time zones of team ${team} unavailable; UTC hours`, error);
    return;
  }
  for (const { event } of list) {
    const tz = zones.get(event.user);
    if (hasHour(event) && !event.tz && tz) event.tz = tz;
  }
}

// --- the rebuild route ----------------------------------------------------------

/** POST /v1/admin/teams/:team/features/rebuild: builds the team's live snapshot now. */
export async function rebuildLiveFeatures(store: LiveFeatureStore, team: string, build: string | undefined) {
  if (build !== undefined && build !== "full" && build !== "changed") {
    throw badRequest(`build must be "full" or "changed", not "${build.slice(0, 40)}"`);
  }
  const { live, serving, refused } = await store.rebuild(team, build ?? "changed");
  if (refused) {
    throw conflict(
      `the team's features: ${tooLargeReason(refused)}; the last live snapshot keeps serving, and builds of what new events change go on within a day`,
      { ...refused, snapshot_id: live?.snapshotId ?? null },
    );
  }
  return {
    live: live
      ? {
          snapshot_id: live.snapshotId,
          cut: isoOf(live.cut),
          rows: live.rows,
          users: live.users,
          channels: live.channels,
          built_at: new Date(live.builtAt).toISOString(),
          last_event_at: new Date(live.lastEventAt).toISOString(),
          ms: live.ms,
          build: live.build ?? "full",
        }
      : null,
    serving,
  };
}
