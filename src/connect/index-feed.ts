import type { ConnectionStatus } from "./connections";
import type { PrefGroups } from "./prefs/registry";
import { orgIndexGroups, type PrefsPorts, partnerIndexGroups } from "./prefs-service";
import type { IndexedConnection } from "./search";

// Feeding a team's admin search (durable-objects/connect-index/) from the
// source of truth. Every write that changes what a connection's document
// holds (the connection itself, its shared-channel invitations, a prefs
// level, and so the effective prefs) queues a (team, partner) refresh in
// its own atomic unit (storage/connect-index-queue-sql.ts). The team's index
// takes the queue, computes those documents again from the database, and
// upserts them: a document is always what the database says now, whatever
// order the changes arrived in, and a change that lands during a refresh
// stays queued for the next one. The queue is drained right after each
// connect write, and by the cron sweep for whatever a crash left.
//
// A document holds only what its partner level sets; the org level (with
// the defaults beneath it) is one set of values per index, so an org-level
// change is one small write however many connections the team has, and is
// visible as soon as any partner-level change would be.

export interface QueuedRefresh {
  /** The partner whose connections' documents to compute again; "*" for the org level. */
  partner: string;
  /** The row's change count when read: the row is removed only if it is still this. */
  seq: number;
}

/** "*": the team's org level of prefs changed (the index's org values, not any document). */
export const ORG_PREFS = "*";

export interface IndexQueue {
  queued(team: string, limit: number): Promise<QueuedRefresh[]>;
  /** Removes these rows, each only if no change re-queued it since it was read. */
  taken(team: string, refreshes: readonly QueuedRefresh[]): Promise<void>;
  /** Teams with rows queued within [from, to] (the writes just made; the sweep's stragglers). */
  teamsQueued(from: number, to: number, limit: number): Promise<string[]>;
}

/** A connection of the team with what its document needs from the database. */
export interface ConnectionFacts {
  connectionId: string;
  partnerId: string;
  partnerName: string;
  partnerDomains: string[];
  status: ConnectionStatus;
  connectedAt: number;
  /** Its shared-channel invitations accepted (channels shared), and pending (either way). */
  channelCount: number;
  pendingInvitations: number;
}

export interface ConnectionFactsSource {
  /**
   * The team's connections with these partners (every partner when null),
   * in connection id order after `afterId`, at most `limit`.
   */
  facts(
    team: string,
    partners: readonly string[] | null,
    afterId: string | null,
    limit: number,
  ): Promise<ConnectionFacts[]>;
}

export interface IndexFeedPorts {
  queue: IndexQueue;
  source: ConnectionFactsSource;
  prefs: Pick<PrefsPorts, "store">;
  /** Writes documents into the team's index (the index object's own tables). */
  upsert(docs: IndexedConnection[]): void;
  /** Replaces the index's org-level values. */
  setOrg(groups: PrefGroups): void;
  /** Whether the index holds the org level's values yet (a new index does not). */
  orgKnown(): boolean;
}

/** Queue rows taken per round, and connections read per page. */
export const QUEUE_BATCH = 100;
export const FACTS_PAGE = 1_000;

/** The documents of these facts (with what each partner's own level of prefs sets). */
export async function docsOf(
  ports: Pick<IndexFeedPorts, "prefs">,
  team: string,
  facts: readonly ConnectionFacts[],
): Promise<IndexedConnection[]> {
  const own = await partnerIndexGroups(ports.prefs, team, [...new Set(facts.map((f) => f.partnerId))]);
  return facts.map((f) => ({
    connectionId: f.connectionId,
    partnerId: f.partnerId,
    partnerName: f.partnerName,
    partnerDomains: f.partnerDomains,
    status: f.status,
    channelCount: f.channelCount,
    pendingInvitations: f.pendingInvitations,
    connectedAt: f.connectedAt,
    own: own.get(f.partnerId) ?? {},
  }));
}

/** Every document of the team's connections with these partners (all when null), page by page. */
export async function* docPages(
  ports: Pick<IndexFeedPorts, "source" | "prefs">,
  team: string,
  partners: readonly string[] | null,
): AsyncGenerator<IndexedConnection[]> {
  let after: string | null = null;
  for (;;) {
    const facts = await ports.source.facts(team, partners, after, FACTS_PAGE);
    if (facts.length === 0) return;
    yield await docsOf(ports, team, facts);
    if (facts.length < FACTS_PAGE) return;
    after = facts[facts.length - 1]?.connectionId ?? null;
  }
}

/** The team's org-level values as the index keeps them. */
export function orgGroups(ports: Pick<IndexFeedPorts, "prefs">, team: string): Promise<PrefGroups> {
  return orgIndexGroups(ports.prefs, team);
}

/**
 * Drains the team's queue: computes again the org level's values (when
 * queued, or when the index has none yet) and the documents the queued
 * partners name, writes them, then removes the rows it served (each only
 * if not re-queued meanwhile), until nothing is queued. Answers how many
 * documents were written.
 */
export async function refreshQueued(ports: IndexFeedPorts, team: string): Promise<number> {
  let written = 0;
  for (;;) {
    const queued = await ports.queue.queued(team, QUEUE_BATCH);
    if (queued.some((q) => q.partner === ORG_PREFS) || !ports.orgKnown()) ports.setOrg(await orgGroups(ports, team));
    if (queued.length === 0) return written;
    const partners = queued.filter((q) => q.partner !== ORG_PREFS).map((q) => q.partner);
    if (partners.length > 0) {
      for await (const docs of docPages(ports, team, partners)) {
        ports.upsert(docs);
        written += docs.length;
      }
    }
    await ports.queue.taken(team, queued);
  }
}
