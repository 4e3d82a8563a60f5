import { DurableObject } from "cloudflare:workers";
import { type ConnectionDoc, encodeCursor, type SearchQuery } from "../../src/connect/search";
import { ConnectionIndexDb } from "./index-db";

// One team's connection index (named by the team: platform/stubs.ts
// connectIndexOf): the admin search over its Slack Connect connections,
// fed by change events and rebuildable from the source of truth
// (index-db.ts holds the tables and the queries).

export class ConnectIndex extends DurableObject<Env> {
  private readonly db: ConnectionIndexDb;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = new ConnectionIndexDb(ctx.storage.sql, (fn) => ctx.storage.transactionSync(fn));
  }

  /** A connection changed (created, disconnected, a pref, a channel count): its document, whole. */
  async upsert(doc: ConnectionDoc): Promise<void> {
    this.db.upsert(doc);
  }

  async remove(connectionId: string): Promise<void> {
    this.db.remove(connectionId);
  }

  /** Replaces the index with these documents (the admin rebuild job). */
  async rebuild(docs: ConnectionDoc[]): Promise<{ count: number }> {
    this.db.rebuild(docs);
    return { count: this.db.count() };
  }

  async search(q: SearchQuery): Promise<{ items: ConnectionDoc[]; next_cursor: string | null }> {
    const page = this.db.search(q);
    return { items: page.docs, next_cursor: page.last ? encodeCursor(q, page.last) : null };
  }

  async all(): Promise<ConnectionDoc[]> {
    return this.db.all();
  }
}
