import type { LedgerCursor } from "../../src/recommend/export";
import { SAME_DAY_WINDOW } from "../../src/recommend/features/snapshot";
import { type DirtySet, dirtyOf } from "../../src/recommend/live-incremental";
import {
  activityOrder,
  emptyRows,
  eventRows,
  type FeatureEvent,
  hoursOrder,
  type LedgerSource,
  type LiveRows,
} from "../../src/recommend/live-rows";

// A team's activity ledger: the platform's own events as the dataset's raw
// rows (src/recommend/live-rows.ts eventRows), summed per (day, user,
// channel), (day, user, other, kind) and (day, user, hour) in the team's
// RecStore SQLite. Queues deliver at least once, so every event id is
// remembered and an id seen before adds nothing. Ids are kept SEEN_TTL_MS,
// far longer than a message can wait in the queue (max_retries x back-off).
//
// An imported history (src/recommend/live-history.ts) is the same three
// tables, kept apart (hist_*) so that an upload replaces the previous one
// whole without touching live events; a rebuild reads both.

export const SEEN_TTL_MS = 14 * 24 * 3600 * 1000;

type Sql = SqlStorage;

export function migrateLedger(sql: Sql): void {
  sql.exec(`
    CREATE TABLE IF NOT EXISTS live_seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS live_seen_at ON live_seen (at);
    CREATE TABLE IF NOT EXISTS live_activity (
      day INTEGER NOT NULL, user TEXT NOT NULL, channel TEXT NOT NULL, commits INTEGER NOT NULL,
      PRIMARY KEY (day, user, channel)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS live_interactions (
      day INTEGER NOT NULL, user TEXT NOT NULL, other TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL,
      PRIMARY KEY (day, user, other, kind)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS live_hours (
      day INTEGER NOT NULL, user TEXT NOT NULL, hour INTEGER NOT NULL, commits INTEGER NOT NULL,
      PRIMARY KEY (day, user, hour)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS hist_activity (
      day INTEGER NOT NULL, user TEXT NOT NULL, channel TEXT NOT NULL, commits INTEGER NOT NULL,
      PRIMARY KEY (day, user, channel)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS hist_interactions (
      day INTEGER NOT NULL, user TEXT NOT NULL, other TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL,
      PRIMARY KEY (day, user, other, kind)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS hist_hours (
      day INTEGER NOT NULL, user TEXT NOT NULL, hour INTEGER NOT NULL, commits INTEGER NOT NULL,
      PRIMARY KEY (day, user, hour)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS hist_uploads (upload TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS hist_stage (
      upload TEXT NOT NULL, tbl TEXT NOT NULL, day INTEGER NOT NULL, user TEXT NOT NULL,
      other TEXT NOT NULL, kind TEXT NOT NULL, n INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS hist_stage_upload ON hist_stage (upload);
    CREATE TABLE IF NOT EXISTS live_dirty (kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;
    -- scratch of an incremental build's read (no TEMP tables in a Durable Object): empty between builds
    CREATE TABLE IF NOT EXISTS live_groups (user TEXT NOT NULL, day INTEGER NOT NULL, PRIMARY KEY (user, day)) WITHOUT ROWID;
  `);
  // An incremental build reads the rows of a few users and channels (and
  // their same-day groups) out of years of ledger: these keep that a handful
  // of index probes rather than a scan of every table.
  for (const t of ["live", "hist"]) {
    sql.exec(`
      CREATE INDEX IF NOT EXISTS ${t}_activity_user ON ${t}_activity (user, day);
      CREATE INDEX IF NOT EXISTS ${t}_activity_channel ON ${t}_activity (channel, day);
      CREATE INDEX IF NOT EXISTS ${t}_interactions_user ON ${t}_interactions (user);
      CREATE INDEX IF NOT EXISTS ${t}_interactions_other ON ${t}_interactions (other);
      CREATE INDEX IF NOT EXISTS ${t}_hours_user ON ${t}_hours (user);
    `);
  }
}

/** An upload abandoned this long ago (a crashed import) is swept. */
const UPLOAD_TTL_MS = 24 * 3600 * 1000;

export function beginHistory(sql: Sql, upload: string, now: number): void {
  sql.exec("INSERT INTO hist_uploads (upload, at) VALUES (?, ?)", upload, now);
}

/** Stages rows of an upload (not read by anything until published). */
export function appendHistory(sql: Sql, upload: string, rows: LiveRows): void {
  if (sql.exec("SELECT 1 FROM hist_uploads WHERE upload = ?", upload).toArray().length === 0) {
    throw new Error(`no history upload ${upload}`);
  }
  const staged: Array<[string, number, string, string, string, number]> = [
    ...rows.activity.map((r): [string, number, string, string, string, number] => [
      "a",
      r.day,
      r.user,
      r.channel,
      "",
      r.commits,
    ]),
    ...rows.interactions.map((r): [string, number, string, string, string, number] => [
      "i",
      r.day,
      r.user,
      r.other,
      r.kind,
      r.count,
    ]),
    ...rows.hours.map((r): [string, number, string, string, string, number] => [
      "h",
      r.day,
      r.user,
      String(r.hour),
      "",
      r.commits,
    ]),
  ];
  for (let i = 0; i < staged.length; i += 5_000) {
    sql.exec(
      `INSERT INTO hist_stage (upload, tbl, day, user, other, kind, n)
       SELECT ?, j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5 FROM json_each(?) AS j`,
      upload,
      JSON.stringify(staged.slice(i, i + 5_000)),
    );
  }
}

/** Replaces the history with a staged upload, summed per key. Call inside one transaction. */
export function publishHistory(sql: Sql, upload: string): number {
  if (sql.exec("SELECT 1 FROM hist_uploads WHERE upload = ?", upload).toArray().length === 0) {
    throw new Error(`no history upload ${upload}`);
  }
  sql.exec("DELETE FROM hist_activity");
  sql.exec("DELETE FROM hist_interactions");
  sql.exec("DELETE FROM hist_hours");
  sql.exec(
    `INSERT INTO hist_activity (day, user, channel, commits)
     SELECT day, user, other, SUM(n) FROM hist_stage WHERE upload = ? AND tbl = 'a' GROUP BY day, user, other`,
    upload,
  );
  sql.exec(
    `INSERT INTO hist_interactions (day, user, other, kind, count)
     SELECT day, user, other, kind, SUM(n) FROM hist_stage WHERE upload = ? AND tbl = 'i' GROUP BY day, user, other, kind`,
    upload,
  );
  sql.exec(
    `INSERT INTO hist_hours (day, user, hour, commits)
     SELECT day, user, CAST(other AS INTEGER), SUM(n) FROM hist_stage WHERE upload = ? AND tbl = 'h' GROUP BY day, user, other`,
    upload,
  );
  // Counted, not rowsWritten: that counts the index entries too.
  const count = (t: string) => Number(sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t}`).one().n);
  const rows = count("hist_activity") + count("hist_interactions") + count("hist_hours");
  discardHistory(sql, upload);
  return rows;
}

/**
 * The ledger's rows, and about how many feature rows a build of it makes:
 * its people, channels, memberships, pairs (either direction) and
 * (person, hour)s, by DISTINCT over both tables of a kind (the same-day
 * pairs are left out: at most channels², few in practice).
 */
export function ledgerSize(sql: Sql): { rows: number; live: number; features: number } {
  const c = ledgerCounts(sql);
  const live = c.activity + c.interactions + c.hours;
  const distinctOf = (table: string, columns: string) =>
    Number(
      sql
        .exec<{ n: number }>(
          `SELECT COUNT(*) AS n FROM (SELECT ${columns} FROM hist_${table} UNION SELECT ${columns} FROM live_${table})`,
        )
        .one().n,
    );
  const features =
    distinctOf("activity", "user") +
    distinctOf("activity", "channel") +
    distinctOf("activity", "user, channel") +
    distinctOf("interactions", "user, other") +
    distinctOf("hours", "user, hour");
  return { rows: live + c.history, live, features };
}

export function discardHistory(sql: Sql, upload: string): void {
  sql.exec("DELETE FROM hist_stage WHERE upload = ?", upload);
  sql.exec("DELETE FROM hist_uploads WHERE upload = ?", upload);
}

/** Drops uploads abandoned for a day (a crash between begin and publish). */
export function sweepUploads(sql: Sql, now: number): void {
  for (const { upload } of sql
    .exec<{ upload: string }>("SELECT upload FROM hist_uploads WHERE at < ?", now - UPLOAD_TTL_MS)
    .toArray()) {
    discardHistory(sql, upload);
  }
}

export interface IngestOutcome {
  /** Events counted now. */
  added: number;
  /** Events already counted (a redelivery). */
  duplicates: number;
}

/** Adds events to the ledger, each id once. Call inside one transaction: the rows and the ids commit together. */
export function ingest(sql: Sql, events: readonly FeatureEvent[], now: number): IngestOutcome {
  let added = 0;
  let duplicates = 0;
  for (const e of events) {
    const fresh = sql.exec("INSERT OR IGNORE INTO live_seen (id, at) VALUES (?, ?)", e.id, now).rowsWritten > 0;
    if (!fresh) {
      duplicates++;
      continue;
    }
    added++;
    const rows = eventRows(e);
    markDirty(sql, rows);
    for (const r of rows.activity) {
      sql.exec(
        `INSERT INTO live_activity (day, user, channel, commits) VALUES (?, ?, ?, ?)
         ON CONFLICT (day, user, channel) DO UPDATE SET commits = commits + excluded.commits`,
        r.day,
        r.user,
        r.channel,
        r.commits,
      );
    }
    for (const r of rows.interactions) {
      sql.exec(
        `INSERT INTO live_interactions (day, user, other, kind, count) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (day, user, other, kind) DO UPDATE SET count = count + excluded.count`,
        r.day,
        r.user,
        r.other,
        r.kind,
        r.count,
      );
    }
    for (const r of rows.hours) {
      sql.exec(
        `INSERT INTO live_hours (day, user, hour, commits) VALUES (?, ?, ?, ?)
         ON CONFLICT (day, user, hour) DO UPDATE SET commits = commits + excluded.commits`,
        r.day,
        r.user,
        r.hour,
        r.commits,
      );
    }
  }
  return { added, duplicates };
}

// --- what changed since the last build (src/recommend/live-incremental.ts) ---------

/** Marks the users and channels that `rows` name: the next build recomputes their feature rows. */
function markDirty(sql: Sql, rows: LiveRows): void {
  const { users, channels } = dirtyOf(rows);
  const mark = (kind: "u" | "c", id: string) =>
    sql.exec("INSERT OR IGNORE INTO live_dirty (kind, id) VALUES (?, ?)", kind, id);
  for (const u of users) mark("u", u);
  for (const c of channels) mark("c", c);
}

export function dirtySet(sql: Sql): DirtySet {
  const users = new Set<string>();
  const channels = new Set<string>();
  for (const r of sql.exec<{ kind: string; id: string }>("SELECT kind, id FROM live_dirty").toArray()) {
    (r.kind === "u" ? users : channels).add(r.id);
  }
  return { users, channels };
}

/** A build took everything marked: call in the transaction that writes its rows. */
export function clearDirty(sql: Sql): void {
  sql.exec("DELETE FROM live_dirty");
}

/** The latest day in the ledger (history or live), or null when it is empty. */
export function ledgerLastDay(sql: Sql): number | null {
  // One MAX per table (each a probe of its primary key, which starts with the day).
  let last: number | null = null;
  for (const t of ["activity", "interactions", "hours"]) {
    for (const p of ["live", "hist"]) {
      const d = sql.exec<{ d: number | null }>(`SELECT MAX(day) AS d FROM ${p}_${t}`).one().d;
      if (d !== null && (last === null || Number(d) > last)) last = Number(d);
    }
  }
  return last;
}

/**
 * The ledger rows an incremental build at `cut` reads for the marked users
 * and channels (live-incremental.ts says which and why), history and live
 * events alike: a (user, day) group may span both tables.
 */
export function ledgerRowsAround(sql: Sql, cut: number): LiveRows {
  const from = cut - SAME_DAY_WINDOW;
  const dirtyUsers = "SELECT id FROM live_dirty WHERE kind = 'u'";
  const dirtyChannels = "SELECT id FROM live_dirty WHERE kind = 'c'";
  // A (user, day) group may span both tables: collect the groups first, then
  // read each table's rows of the dirty users, the dirty channels and the
  // groups (separate statements: workerd's SQLite caps compound SELECTs).
  // A dirty channel's rows inside the window are all in its groups; before
  // it, its row needs only which days it was active, so one real row per
  // (channel, day) stands for them (MIN makes the other columns that row's).
  sql.exec("DELETE FROM live_groups");
  for (const t of ["hist", "live"] as const) {
    sql.exec(
      `INSERT OR IGNORE INTO live_groups (user, day)
       SELECT user, day FROM ${t}_activity WHERE channel IN (${dirtyChannels}) AND day >= ?`,
      from,
    );
  }
  const out = emptyRows();
  const add = (rows: LiveRows) => {
    out.activity.push(...rows.activity);
    out.interactions.push(...rows.interactions);
    out.hours.push(...rows.hours);
  };
  for (const t of ["hist", "live"] as const) {
    const raw = sql
      .exec<RawRow>(
        `SELECT day, user, channel, commits FROM ${t}_activity WHERE user IN (${dirtyUsers})
         UNION SELECT day, MIN(user) AS user, channel, commits FROM ${t}_activity
           WHERE channel IN (${dirtyChannels}) AND day < ? GROUP BY channel, day
         UNION SELECT a.day, a.user, a.channel, a.commits FROM live_groups g
           JOIN ${t}_activity a ON a.user = g.user AND a.day = g.day`,
        from,
      )
      .toArray();
    add(rowsOf(`${t}_activity`, raw));
  }
  sql.exec("DELETE FROM live_groups");
  for (const t of ["hist", "live"] as const) {
    const interactions = sql
      .exec<RawRow>(
        `SELECT day, user, other, kind, count FROM ${t}_interactions WHERE user IN (${dirtyUsers})
         UNION SELECT day, user, other, kind, count FROM ${t}_interactions WHERE other IN (${dirtyUsers})`,
      )
      .toArray();
    add(rowsOf(`${t}_interactions`, interactions));
    const hours = sql
      .exec<RawRow>(`SELECT day, user, hour, commits FROM ${t}_hours WHERE user IN (${dirtyUsers})`)
      .toArray();
    add(rowsOf(`${t}_hours`, hours));
  }
  return out;
}

// --- reading the ledger's tables by key ----------------------------------------------

/** The ledger's tables in the order the export reads them, with their key columns. */
const LEDGER_TABLES = {
  hist_activity: ["day", "user", "channel"],
  live_activity: ["day", "user", "channel"],
  hist_interactions: ["day", "user", "other", "kind"],
  live_interactions: ["day", "user", "other", "kind"],
  hist_hours: ["day", "user", "hour"],
  live_hours: ["day", "user", "hour"],
} as const;
type LedgerTable = keyof typeof LEDGER_TABLES;
const TABLE_ORDER = Object.keys(LEDGER_TABLES) as LedgerTable[];
const isTable = (t: string): t is LedgerTable => Object.hasOwn(LEDGER_TABLES, t);
type RawRow = Record<string, SqlStorageValue>;

/** Up to `limit` rows of `table` of days up to `lastDay` after the key `after`, in key order: one indexed range read. */
function keysetPage(
  sql: Sql,
  table: LedgerTable,
  lastDay: number,
  after: readonly SqlStorageValue[] | null,
  limit: number,
): RawRow[] {
  const keys = LEDGER_TABLES[table];
  const columns = [...keys, table.endsWith("interactions") ? "count" : "commits"];
  const list = (a: readonly string[]) => a.join(", ");
  const where = after === null ? "day <= ?" : `day <= ? AND (${list(keys)}) > (${keys.map(() => "?").join(", ")})`;
  return sql
    .exec<RawRow>(
      `SELECT ${list(columns)} FROM ${table} WHERE ${where} ORDER BY ${list(keys)} LIMIT ?`,
      lastDay,
      ...(after ?? []),
      limit,
    )
    .toArray();
}

/** Raw rows of one of the ledger's tables as rows of its kind. */
function rowsOf(table: LedgerTable, raw: readonly RawRow[]): LiveRows {
  const rows = emptyRows();
  const num = (v: SqlStorageValue | undefined) => Number(v);
  for (const r of raw) {
    if (table.endsWith("activity")) {
      rows.activity.push({
        day: num(r.day),
        user: String(r.user),
        channel: String(r.channel),
        commits: num(r.commits),
      });
    } else if (table.endsWith("interactions")) {
      rows.interactions.push({
        day: num(r.day),
        user: String(r.user),
        other: String(r.other),
        kind: String(r.kind),
        count: num(r.count),
      });
    } else {
      rows.hours.push({ day: num(r.day), user: String(r.user), hour: num(r.hour), commits: num(r.commits) });
    }
  }
  return rows;
}

/** The key a page stopped at. */
const keyOf = (table: LedgerTable, row: RawRow) => LEDGER_TABLES[table].map((k) => row[k] as SqlStorageValue);

// --- the full build's read: row by row, never the whole ledger at once -------------

const READ_PAGE = 5_000;

/** A table's rows in key order, a page at a time. */
function* tableRows<K extends keyof LiveRows>(sql: Sql, table: LedgerTable, kind: K): Generator<LiveRows[K][number]> {
  let after: SqlStorageValue[] | null = null;
  for (;;) {
    const page = keysetPage(sql, table, Number.MAX_SAFE_INTEGER, after, READ_PAGE);
    yield* rowsOf(table, page)[kind] as Array<LiveRows[K][number]>;
    const last = page.at(-1);
    if (page.length < READ_PAGE || !last) return;
    after = keyOf(table, last);
  }
}

/** Two ascending sequences as one (the history's and the live events' tables of one kind). */
function* merged<T>(a: Iterable<T>, b: Iterable<T>, order: (x: T, y: T) => number): Generator<T> {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  let x = ia.next();
  let y = ib.next();
  while (!x.done || !y.done) {
    if (y.done || (!x.done && order(x.value, y.value) <= 0)) {
      yield x.value as T;
      x = ia.next();
    } else {
      yield y.value;
      y = ib.next();
    }
  }
}

/** Distinct values of a column over the history's and the live events' table. */
function distinct(sql: Sql, table: string, column: string): Set<string> {
  const out = new Set<string>();
  for (const p of ["hist", "live"]) {
    for (const r of sql.exec<{ v: string }>(`SELECT DISTINCT ${column} AS v FROM ${p}_${table}`)) out.add(String(r.v));
  }
  return out;
}

/**
 * The ledger (history and live events) as a full build reads it
 * (live-rows.ts LedgerSource): ids by DISTINCT, rows a page at a time in
 * key order, the two tables of a kind merged, so memory holds a page, not
 * the ledger.
 */
export function ledgerSource(sql: Sql): LedgerSource {
  return {
    users: () =>
      new Set([
        ...distinct(sql, "activity", "user"),
        ...distinct(sql, "interactions", "user"),
        ...distinct(sql, "interactions", "other"),
        ...distinct(sql, "hours", "user"),
      ]),
    channels: () => distinct(sql, "activity", "channel"),
    activity: () =>
      merged(tableRows(sql, "hist_activity", "activity"), tableRows(sql, "live_activity", "activity"), activityOrder),
    interactions: () =>
      merged(
        tableRows(sql, "hist_interactions", "interactions"),
        tableRows(sql, "live_interactions", "interactions"),
        () => 0,
      ),
    hours: () => merged(tableRows(sql, "hist_hours", "hours"), tableRows(sql, "live_hours", "hours"), hoursOrder),
  };
}

// --- the retraining export's read, a page at a time -------------------------------

/**
 * Up to `limit` rows of days up to `lastDay`, from `cursor` on, in key order
 * (keyset paging on each table's primary key, so a page costs its own rows
 * whatever the ledger's size); `next` is null after the last table.
 */
export function ledgerPage(
  sql: Sql,
  lastDay: number,
  cursor: LedgerCursor | null,
  limit: number,
): { rows: LiveRows; next: LedgerCursor | null } {
  const table = cursor?.table ?? (TABLE_ORDER[0] as LedgerTable);
  // The cursor comes over RPC and names a table in SQL: only a known one, and a key of its width.
  if (!isTable(table)) throw new Error(`unknown ledger table ${String(table).slice(0, 40)}`);
  const after = cursor?.after ?? null;
  if (after !== null && after.length !== LEDGER_TABLES[table].length) {
    throw new Error("ledger cursor does not fit its table");
  }
  const raw = keysetPage(sql, table, lastDay, after, limit);
  const rows = rowsOf(table, raw);
  const last = raw.at(-1);
  if (raw.length === limit && last)
    return { rows, next: { table, after: keyOf(table, last) as Array<string | number> } };
  const following = TABLE_ORDER[TABLE_ORDER.indexOf(table) + 1];
  return { rows, next: following ? { table: following, after: null } : null };
}

export interface LedgerCounts {
  events: number;
  activity: number;
  interactions: number;
  hours: number;
  /** Rows of the imported history. */
  history: number;
}

export function ledgerCounts(sql: Sql): LedgerCounts {
  const count = (table: string) => Number(sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n);
  return {
    events: count("live_seen"),
    activity: count("live_activity"),
    interactions: count("live_interactions"),
    hours: count("live_hours"),
    history: count("hist_activity") + count("hist_interactions") + count("hist_hours"),
  };
}

/** Whether a raw history was uploaded (one indexed probe per table: read on every request). */
export function hasHistory(sql: Sql): boolean {
  return (
    sql
      .exec(
        "SELECT 1 FROM hist_activity UNION ALL SELECT 1 FROM hist_interactions UNION ALL SELECT 1 FROM hist_hours LIMIT 1",
      )
      .toArray().length > 0
  );
}

/** Forgets event ids older than SEEN_TTL_MS (their rows stay). */
export function sweepSeen(sql: Sql, now: number): number {
  return sql.exec("DELETE FROM live_seen WHERE at < ?", now - SEEN_TTL_MS).rowsWritten;
}
