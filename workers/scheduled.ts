import { type Deps, depsFor, pingQueuedIndexes, purgeSlackEvents, sharedChannelPortsOf } from "../platform/deps";
import { exportPortsFor } from "../platform/rec-export-store";
import { finishPending } from "../src/connect/shared-channels-service";
import { APPLIED_RETENTION_MS } from "../src/domains/mutation-consumer";
import { redeliverUnapplied, relayStranded } from "../src/domains/outbox";
import { scheduledExport } from "../src/recommend/export";
import { EVENT_RETENTION_MS } from "../src/slackbot/store";
import { IDEMPOTENCY_RETENTION_MS } from "../src/teams/idempotency";

/** Admin-search refreshes queued longer than this are a ping that never came: the sweep sends it. */
const INDEX_STRAGGLER_MS = 10_000;
/** Teams queued for a heal per cron tick; the next tick takes the rest. */
const SWEEP_LIMIT = 500;
/** Applied outbox rows are kept this long (to look at), then deleted; unapplied ones stay owed. */
const SENT_RETENTION_MS = 24 * 3600_000;
/** Rows each housekeeping delete removes per tick at most. */
const PRUNE_LIMIT = 10_000;

export interface OutboxSweep {
  /** Stranded rows published and marked sent. */
  relayed: number;
  /** Rows sent long ago whose ids were never applied (lost on the queue's side), sent again. */
  redelivered: number;
  /** Sends that failed (their rows wait for the next tick). */
  failed: number;
  prunedSent: number;
  prunedApplied: number;
  /** Idempotency-Key records past their retention. */
  prunedKeys: number;
  /** Staged users of imports abandoned for as long. */
  prunedStaged: number;
}

/**
 * The outbox part of the cron sweep. Rows a crash (or a failed send) left
 * unsent for longer than STRANDED_AFTER_MS belong to writes that committed,
 * so their messages are owed: they go to their queue now. A row its writer
 * is still sending may go twice; the consumer applies each id once. Then
 * housekeeping: sent rows, and applied ids older than any redelivery.
 */
export async function sweepOutbox(deps: Deps): Promise<OutboxSweep> {
  const now = deps.clock.now();
  const out: OutboxSweep = {
    relayed: 0,
    redelivered: 0,
    failed: 0,
    prunedSent: 0,
    prunedApplied: 0,
    prunedKeys: 0,
    prunedStaged: 0,
  };
  try {
    const relay = { outbox: deps.store, mutations: deps.mutations, clock: deps.clock };
    const { sent, failed } = await relayStranded(relay);
    out.relayed = sent;
    out.failed = failed.length;
    for (const error of failed) console.error("outbox relay: a send failed; the next cron tick retries it", error);
    const again = await redeliverUnapplied(relay, { olderThanMs: deps.redeliverAfterMs });
    out.redelivered = again.sent;
    out.failed += again.failed.length;
    for (const error of again.failed)
      console.error("outbox redelivery: a send failed; the next cron tick retries it", error);
  } catch (error) {
    console.error("outbox relay failed; the next cron tick retries", error);
  }
  out.prunedSent = await deps.store.pruneSentOutbox(now - SENT_RETENTION_MS, PRUNE_LIMIT);
  out.prunedApplied = await deps.counts.pruneAppliedMutations(now - APPLIED_RETENTION_MS, PRUNE_LIMIT);
  out.prunedKeys = await deps.store.pruneIdempotencyKeys(now - IDEMPOTENCY_RETENTION_MS, PRUNE_LIMIT);
  // Stagings of imports no one came back for within the keys' retention.
  out.prunedStaged = await deps.store.pruneStagedUsers(now - IDEMPOTENCY_RETENTION_MS, PRUNE_LIMIT);
  return out;
}

/**
 * The cron sweep (its name predates the outbox): first the outbox, then the
 * staleness sweep, teams not healed for a while or marked as needing a heal.
 * Returns the number of teams queued for a heal.
 */
export async function sweepStaleTeams(env: Env): Promise<number> {
  const deps = depsFor(env);
  try {
    const outbox = await sweepOutbox(deps);
    if (outbox.relayed + outbox.failed + outbox.prunedSent + outbox.prunedApplied > 0) {
      console.log(JSON.stringify({ cron: "outbox", ...outbox }));
    }
  } catch (error) {
    console.error("outbox sweep failed", error);
  }
  try {
    // Shared channels whose status the directory does not reflect yet (a
    // crash between an accept or an end and its share or unshare).
    const shared = await finishPending(sharedChannelPortsOf(deps));
    if (shared.finished + shared.failed > 0) console.log(JSON.stringify({ cron: "shared_channels", ...shared }));
  } catch (error) {
    console.error("shared-channel sweep failed", error);
  }
  try {
    // Admin-search refreshes still queued a while after their write (a
    // crash, or a failed ping): the teams' indexes take them now.
    const stale = await pingQueuedIndexes(env, 0, deps.clock.now() - INDEX_STRAGGLER_MS);
    if (stale > 0) console.log(JSON.stringify({ cron: "connect_index", teams: stale }));
  } catch (error) {
    console.error("connect index sweep failed", error);
  }
  try {
    // The Slack bot's answered and dead-lettered events, long past any retry of Slack's.
    const purged = await purgeSlackEvents(env, deps.clock.now() - EVENT_RETENTION_MS, PRUNE_LIMIT);
    if (purged > 0) console.log(JSON.stringify({ cron: "slack_events", purged }));
  } catch (error) {
    console.error("slack events purge failed", error);
  }
  try {
    // Yesterday's rec logs and the teams' ledgers for retraining, once per day
    // (a no-op on every later tick: src/recommend/export.ts).
    const exported = await scheduledExport(exportPortsFor(env));
    if (exported.status === "exported") {
      const teams = exported.manifest.teams.map((t) => t.team);
      console.log(JSON.stringify({ cron: "rec_export", window: exported.window, teams }));
    }
  } catch (error) {
    console.error("rec export failed; the next cron tick retries", error);
  }
  const now = deps.clock.now();
  const due = await deps.store.teamsNeedingHeal(now - deps.staleAfterMs, SWEEP_LIMIT);
  for (const teamId of due) await deps.heals.requestHeal({ v: 1, teamId, reason: "stale", requestedAt: now });
  return due.length;
}
