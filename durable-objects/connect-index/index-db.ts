import type { PrefGroups } from "../../src/connect/prefs/registry";
import {
  type ConnectionDoc,
  effectiveDoc,
  type IndexedConnection,
  nameKey,
  prefText,
  type SearchQuery,
  type SortKey,
} from "../../src/connect/search";

// One team's connections, denormalized for the admin search: a row per
// connection with the columns it sorts and filters on, an FTS5 table over
// the partner's name and domains (prefix-indexed, so "acm" finds "Acme"),
// and pref values as (key, value) rows, so a filter on any pref, including
// one added later, is an index lookup with no code here.
// Prefs are kept as the levels hold them: the org level's values (defaults
// beneath) once, in org_pref; a connection's own rows (conn_pref) and the
// prefs it sets (conn_set) only for what its partner level sets. A filter
// matches a connection's own value, or the org value when the connection
// does not set that pref; an answer merges the two. So an org-level change
// rewrites org_pref alone, whatever the number of connections.
// Sorting pages by keyset (the sort value, then the connection id): a page
// is stable while the index changes under it.

const SORT_COLUMN: Record<SortKey, string> = { name: "name_key", date: "connected_at", channels: "channels" };

interface Row extends Record<string, SqlStorageValue> {
  id: string;
  partner_id: string;
  name: string;
  name_key: string;
  domains: string;
  status: string;
  channels: number;
  pending: number;
  connected_at: number;
  /** The connection's own pref groups (IndexedConnection.own), as JSON. */
  prefs: string;
}

/** The table layout this code reads; an index written by an older one is emptied and rebuilt. */
const LAYOUT = "2";

export interface SearchPage {
  docs: ConnectionDoc[];
  /** The last doc's sort value, when there may be more. */
  last: { value: string | number; id: string } | null;
}

export class ConnectionIndexDb {
  /** The org level's values (null: never given; answers then carry only what partner levels set). */
  private org: PrefGroups | null;
  /** Field -> (pref, value as compared) of the org level. */
  private orgFields = new Map<string, { pref: string; value: string }>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS conn (
        id TEXT PRIMARY KEY, partner_id TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL,
        domains TEXT NOT NULL, status TEXT NOT NULL, channels INTEGER NOT NULL, pending INTEGER NOT NULL,
        connected_at INTEGER NOT NULL, prefs TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS conn_by_name ON conn (name_key, id);
      CREATE INDEX IF NOT EXISTS conn_by_date ON conn (connected_at, id);
      CREATE INDEX IF NOT EXISTS conn_by_channels ON conn (channels, id);
      CREATE INDEX IF NOT EXISTS conn_by_status ON conn (status, name_key, id);
      CREATE TABLE IF NOT EXISTS conn_pref (
        conn_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (conn_id, key)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS conn_pref_by_value ON conn_pref (key, value, conn_id);
      CREATE TABLE IF NOT EXISTS conn_set (conn_id TEXT NOT NULL, pref TEXT NOT NULL, PRIMARY KEY (conn_id, pref))
        WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS index_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
      CREATE VIRTUAL TABLE IF NOT EXISTS conn_text USING fts5(
        name, domains, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3');
    `);
    if (this.meta("layout") !== LAYOUT) {
      // Written by an older layout (every effective value in each document):
      // its rows would answer wrongly here. Emptied and marked stale; the
      // object rebuilds from the source of truth before it answers.
      transaction(() => {
        if (this.count() > 0) this.setMeta("stale", "1");
        sql.exec("DELETE FROM conn; DELETE FROM conn_pref; DELETE FROM conn_set; DELETE FROM conn_text;");
        sql.exec("DELETE FROM index_meta WHERE k = 'org'");
        this.setMeta("layout", LAYOUT);
      });
    }
    const org = this.meta("org");
    this.org = null;
    if (org !== null) this.useOrg(JSON.parse(org) as PrefGroups);
  }

  /** An index emptied by a layout change, waiting for its rebuild. */
  get stale(): boolean {
    return this.meta("stale") === "1";
  }

  /** Whether the org level's values were ever given. */
  get orgKnown(): boolean {
    return this.org !== null;
  }

  /** Replaces the org level's values (every pref's, defaults included). */
  setOrg(groups: PrefGroups): void {
    this.transaction(() => this.setMeta("org", JSON.stringify(groups)));
    this.useOrg(groups);
  }

  /** Adds or replaces a connection's document (its text, columns and pref rows together). */
  upsert(doc: IndexedConnection): void {
    this.transaction(() => this.write(doc));
  }

  /** Adds or replaces these documents, in one transaction. */
  upsertAll(docs: readonly IndexedConnection[]): void {
    this.transaction(() => {
      for (const doc of docs) this.write(doc);
    });
  }

  /** Removes every document whose connection is not in `keep` (the end of a rebuild done page by page). */
  removeExcept(keep: ReadonlySet<string>): number {
    const gone = this.sql
      .exec<{ id: string }>("SELECT id FROM conn")
      .toArray()
      .map((r) => r.id)
      .filter((id) => !keep.has(id));
    this.transaction(() => {
      for (const id of gone) this.erase(id);
    });
    return gone.length;
  }

  remove(connectionId: string): void {
    this.transaction(() => this.erase(connectionId));
  }

  /** Replaces everything with these documents (the rebuild from the source of truth). */
  rebuild(docs: readonly IndexedConnection[]): void {
    this.transaction(() => {
      this.sql.exec("DELETE FROM conn; DELETE FROM conn_pref; DELETE FROM conn_set; DELETE FROM conn_text;");
      for (const doc of docs) this.write(doc);
    });
  }

  /** The rebuild after a layout change is done. */
  fresh(): void {
    this.sql.exec("DELETE FROM index_meta WHERE k = 'stale'");
  }

  count(): number {
    return Number(this.sql.exec("SELECT count(*) AS n FROM conn").one().n);
  }

  search(q: SearchQuery): SearchPage {
    const col = SORT_COLUMN[q.sort];
    const dir = q.order === "asc" ? "ASC" : "DESC";
    const where: string[] = [];
    const args: SqlStorageValue[] = [];
    let from = "conn c";
    if (q.words.length > 0) {
      from = "conn_text t JOIN conn c ON c.rowid = t.rowid";
      where.push("conn_text MATCH ?");
      args.push(q.words.map((w) => `"${w}"*`).join(" AND "));
    }
    if (q.status) {
      where.push("c.status = ?");
      args.push(q.status);
    }
    for (const [key, value] of Object.entries(q.prefs)) {
      const own = "EXISTS (SELECT 1 FROM conn_pref p WHERE p.conn_id = c.id AND p.key = ? AND p.value = ?)";
      const org = this.orgFields.get(key);
      if (org && org.value === value) {
        // The org value matches: so does every connection that does not set the pref itself.
        where.push(`(${own} OR NOT EXISTS (SELECT 1 FROM conn_set s WHERE s.conn_id = c.id AND s.pref = ?))`);
        args.push(key, value, org.pref);
      } else {
        where.push(own);
        args.push(key, value);
      }
    }
    if (q.after) {
      where.push(`(c.${col}, c.id) ${q.order === "asc" ? ">" : "<"} (?, ?)`);
      args.push(q.after.value, q.after.id);
    }
    const rows = this.sql
      .exec<Row>(
        `SELECT c.* FROM ${from} ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY c.${col} ${dir}, c.id ${dir} LIMIT ?`,
        ...args,
        q.limit + 1,
      )
      .toArray();
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const tail = page.at(-1);
    return {
      docs: page.map((r) => this.docOf(r)),
      last: more && tail ? { value: tail[col] as string | number, id: tail.id } : null,
    };
  }

  /** Every document, in id order (tests: a rebuild equals the incremental result). */
  all(): ConnectionDoc[] {
    return this.sql
      .exec<Row>("SELECT * FROM conn ORDER BY id")
      .toArray()
      .map((r) => this.docOf(r));
  }

  private write(doc: IndexedConnection): void {
    this.erase(doc.connectionId);
    const row = this.sql
      .exec<{ rowid: number }>(
        `INSERT INTO conn (id, partner_id, name, name_key, domains, status, channels, pending, connected_at, prefs)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING rowid`,
        doc.connectionId,
        doc.partnerId,
        doc.partnerName,
        nameKey(doc.partnerName),
        doc.partnerDomains.join(" "),
        doc.status,
        doc.channelCount,
        doc.pendingInvitations,
        doc.connectedAt,
        JSON.stringify(doc.own),
      )
      .one();
    this.sql.exec(
      "INSERT INTO conn_text (rowid, name, domains) VALUES (?, ?, ?)",
      row.rowid,
      doc.partnerName,
      // "acme.co.uk" is found by "acme" and by "co": its parts are words.
      doc.partnerDomains.map((d) => `${d} ${d.replaceAll(".", " ")}`).join(" "),
    );
    for (const [pref, fields] of Object.entries(doc.own)) {
      this.sql.exec("INSERT INTO conn_set (conn_id, pref) VALUES (?, ?)", doc.connectionId, pref);
      for (const [key, value] of Object.entries(fields)) {
        this.sql.exec(
          "INSERT INTO conn_pref (conn_id, key, value) VALUES (?, ?, ?)",
          doc.connectionId,
          key,
          prefText(value),
        );
      }
    }
  }

  private erase(connectionId: string): void {
    const found = this.sql.exec<{ rowid: number }>("SELECT rowid FROM conn WHERE id = ?", connectionId).toArray()[0];
    if (!found) return;
    this.sql.exec("DELETE FROM conn_text WHERE rowid = ?", found.rowid);
    this.sql.exec("DELETE FROM conn_pref WHERE conn_id = ?", connectionId);
    this.sql.exec("DELETE FROM conn_set WHERE conn_id = ?", connectionId);
    this.sql.exec("DELETE FROM conn WHERE id = ?", connectionId);
  }

  private useOrg(groups: PrefGroups): void {
    this.org = groups;
    this.orgFields = new Map(
      Object.entries(groups).flatMap(([pref, fields]) =>
        Object.entries(fields).map(([key, value]) => [key, { pref, value: prefText(value) }] as const),
      ),
    );
  }

  private meta(k: string): string | null {
    return this.sql.exec<{ v: string }>("SELECT v FROM index_meta WHERE k = ?", k).toArray()[0]?.v ?? null;
  }

  private setMeta(k: string, v: string): void {
    this.sql.exec("INSERT OR REPLACE INTO index_meta (k, v) VALUES (?, ?)", k, v);
  }

  private docOf(r: Row): ConnectionDoc {
    return effectiveDoc(
      {
        connectionId: r.id,
        partnerId: r.partner_id,
        partnerName: r.name,
        partnerDomains: r.domains === "" ? [] : r.domains.split(" "),
        status: r.status === "disconnected" ? "disconnected" : "accepted",
        channelCount: r.channels,
        pendingInvitations: r.pending,
        connectedAt: r.connected_at,
        own: JSON.parse(r.prefs) as PrefGroups,
      },
      this.org ?? {},
    );
  }
}
