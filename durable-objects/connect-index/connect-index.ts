import { DurableObject } from "cloudflare:workers";
import { indexFeedFor } from "../../platform/deps";
import { docPages, type IndexFeedPorts, orgGroups, refreshQueued } from "../../src/connect/index-feed";
import type { PrefGroups } from "../../src/connect/prefs/registry";
import { type ConnectionDoc, encodeCursor, type IndexedConnection, type SearchQuery } from "../../src/connect/search";
import { ConnectionIndexDb } from "./index-db";

// One team's connection index (named by the team: platform/stubs.ts
// connectIndexOf): the admin search over its Slack Connect connections
// (index-db.ts holds the tables and the queries), fed from the source of
// truth: `refresh` takes the team's queued refreshes (written with each
// change, src/connect/index-feed.ts) and computes those documents again;
// `rebuildFromSource` replaces the whole index, and equals what the
// refreshes built.

export class ConnectIndex extends DurableObject<Env> {
  private readonly db: ConnectionIndexDb;
  /** The refresh running, and the one asked for meanwhile (it starts once the first ends). */
  private running: Promise<number> | null = null;
  private next: Promise<number> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = new ConnectionIndexDb(ctx.storage.sql, (fn) => ctx.storage.transactionSync(fn));
  }

  /**
   * Takes the team's queued refreshes. One at a time; a call during a run
   * waits for the next run, which starts after the call arrived, so it sees
   * every change committed before the call (the write-to-visible promise).
   * Answers the documents written.
   */
  async refresh(team: string): Promise<number> {
    this.bind(team);
    if (!this.running) {
      this.running = refreshQueued(this.feed(), team).finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.next ??= this.running
      .catch(() => 0)
      .then(() => {
        this.next = null;
        return this.refresh(team);
      });
    return this.next;
  }

  /**
   * Replaces the index with the documents the source of truth gives now (the
   * admin rebuild job), page by page: each page upserted as it is read, then
   * whatever the database no longer has removed. Only the ids seen are held
   * in memory, so a team of 100,000 connections fits an object's memory;
   * searches meanwhile see each document either as it was or as it is now.
   */
  async rebuildFromSource(team: string): Promise<{ count: number; ms: number }> {
    this.bind(team);
    const started = Date.now();
    const feed = this.feed();
    this.db.setOrg(await orgGroups(feed, team));
    const seen = new Set<string>();
    for await (const page of docPages(feed, team, null)) {
      this.db.upsertAll(page);
      for (const doc of page) seen.add(doc.connectionId);
    }
    this.db.removeExcept(seen);
    this.db.fresh();
    return { count: this.db.count(), ms: Date.now() - started };
  }

  /** A connection changed: its document, whole (tests and tools; the feed goes through refresh). */
  async upsert(doc: IndexedConnection): Promise<void> {
    this.db.upsert(doc);
  }

  /** The org level's values (tests and tools; the feed goes through refresh). */
  async setOrg(groups: PrefGroups): Promise<void> {
    this.db.setOrg(groups);
  }

  async remove(connectionId: string): Promise<void> {
    this.db.remove(connectionId);
  }

  /** Replaces the index with these documents. */
  async rebuild(docs: IndexedConnection[]): Promise<{ count: number }> {
    this.db.rebuild(docs);
    return { count: this.db.count() };
  }

  async search(q: SearchQuery): Promise<{ items: ConnectionDoc[]; next_cursor: string | null }> {
    await this.ensureCurrent();
    const page = this.db.search(q);
    return { items: page.docs, next_cursor: page.last ? encodeCursor(q, page.last) : null };
  }

  async all(): Promise<ConnectionDoc[]> {
    return this.db.all();
  }

  private feed(): IndexFeedPorts {
    return indexFeedFor(this.env, {
      upsert: (docs) => this.db.upsertAll(docs),
      setOrg: (groups) => this.db.setOrg(groups),
      orgKnown: () => this.db.orgKnown,
    });
  }

  /** An index emptied by a layout change is rebuilt before it answers (once; searches meanwhile wait for it). */
  private rebuilding: Promise<unknown> | null = null;
  private async ensureCurrent(): Promise<void> {
    if (!this.db.stale) return;
    const team = this.boundTeam();
    if (team === undefined) return;
    this.rebuilding ??= this.rebuildFromSource(team).finally(() => {
      this.rebuilding = null;
    });
    await this.rebuilding;
  }

  private boundTeam(): string | undefined {
    return this.ctx.storage.sql.exec<{ v: string }>("SELECT v FROM index_meta WHERE k = 'team'").toArray()[0]?.v;
  }

  /**
   * Defence in depth: the object serves the one team it was first asked
   * for, whatever a caller passes later (its name is that team's id).
   */
  private bind(team: string): void {
    const bound = this.boundTeam();
    if (bound !== undefined && bound !== team) throw new Error(`connect index of ${bound} asked for ${team}`);
    if (bound === undefined) this.ctx.storage.sql.exec("INSERT INTO index_meta (k, v) VALUES ('team', ?)", team);
  }
}
