import { dayOf, isoOf } from "../datasets/collab";
import { badRequest, conflict, notFound } from "../errors";
import type { LiveRows } from "./live-rows";
import type { RecLogReader } from "./readout";
import { SOURCE_NAMES } from "./sources";

// The scheduled export for retraining: once per UTC day (the window), what
// the training pipeline reads, per team, written under
//   exports/<window>/manifest.json                    written last: the export is whole once it exists
//   exports/<window>/<team>/rec-logs.ndjson            the window's served and feedback lines of the team
//                                                       (train.py --logs reads them as they are)
//   exports/<window>/<team>/{channels,activity,interactions,hours}.csv.gz
//                                                       the team's ledger (imported history ∪ live events) up
//                                                       to the window's day, in training/data.py's format
//                                                       (train.py --data, --eval-sets)
// Ids and counts only: the ledger holds no text, channel names are left
// empty (data.py never reads them), and the rec-log lines are ids, numbers and
// model names. A team's files hold only rows of its own RecStore (named by
// the team) and lines whose `team` is that team.
//
// The teams of a window are those its rec logs name and those whose ledger
// took rows that day (the feature-events consumer and the history upload
// mark them: `export-teams/<day>/<team>`), so a team whose people joined and
// posted but were served nothing is exported too.
//
// The cron runs every 15 minutes and exports the day before today, once:
// nothing happens while that window's manifest says it is complete. An
// operator may export a day so far (`complete: false`); the cron redoes such
// a window once the day is over.

export const EXPORT_FORMAT = "rec-export/1";
export const EXPORT_FILES = [
  "rec-logs.ndjson",
  "channels.csv.gz",
  "activity.csv.gz",
  "interactions.csv.gz",
  "hours.csv.gz",
] as const;
export type ExportFile = (typeof EXPORT_FILES)[number];
/** Windows the listing reads at most (newest first). */
export const EXPORT_LIST_MAX = 60;

const TEAM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

export interface ExportedTeam {
  team: string;
  rec_logs: { served: number; feedback: number };
  dataset: {
    activity: number;
    interactions: number;
    hours: number;
    users: number;
    channels: number;
    /** First and last day of the rows (null: the ledger holds none up to the window). */
    first_day: string | null;
    last_day: string | null;
    /** How ids were written: "numeric" (platform ids U<n>/C<n> as n, as the dataset names them) or "as-is". */
    ids: "numeric" | "as-is";
  };
  files: ExportFile[];
}

export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  window: string;
  /** False for a day exported before it was over (an operator's export); the cron redoes it. */
  complete: boolean;
  exported_at: string;
  teams: ExportedTeam[];
  /** Rec-log lines left out: unparsable, or naming no usable team. */
  dropped_lines: number;
}

/** A gzipped file being written a piece at a time; nothing is readable until `close`. */
export interface ExportSink {
  write(text: string): Promise<void>;
  close(): Promise<void>;
  /** Gives up the file (a failed read of the ledger): nothing of it is stored. */
  abort(): Promise<void>;
}

export interface ExportStore {
  /** The window's manifest and its version (for a conditional write); null when absent. */
  manifest(window: string): Promise<{ manifest: ExportManifest; version: string } | null>;
  /** Writes one small file whole, as it is (the rec-log lines). */
  putFile(window: string, team: string, file: ExportFile, body: string): Promise<void>;
  /** Opens a .gz file to be written as it is produced (a team's ledger tables: never held whole). */
  openGzip(window: string, team: string, file: ExportFile): Promise<ExportSink>;
  /** Writes the manifest if the stored one is still `expected` (null: absent); false when another writer won. */
  putManifest(window: string, manifest: ExportManifest, expected: string | null): Promise<boolean>;
  /** The windows with anything stored, newest first, at most `limit`. */
  windows(limit: number): Promise<string[]>;
  /** A file's bytes as stored (gzip for .gz), or null. */
  file(window: string, team: string, file: ExportFile): Promise<ReadableStream<Uint8Array> | null>;
}

/** The ledger's three tables, in the order the export writes them. */
export const LEDGER_TABLES = ["activity", "interactions", "hours"] as const;
export type LedgerTable = (typeof LEDGER_TABLES)[number];

/** Ledger rows per call at most when the export reads a team's ledger (about 1 MB of JSON over RPC). */
export const LEDGER_PAGE_MAX = 10_000;

/** Where a page of a team's ledger stopped: the table, and the key of its last row (null: from its start). */
export interface LedgerCursor {
  table: string;
  after: Array<string | number> | null;
}

export interface ExportPorts {
  store: ExportStore;
  logs: RecLogReader;
  /** The team's ledger rows of one table (history, then live) of days up to `lastDay` (days since the epoch), a page at a time. */
  ledger(team: string, lastDay: number, table: LedgerTable): AsyncIterable<LiveRows>;
  /**
   * Teams whose ledger took rows on the window's day (live events of that
   * UTC day, a history upload that day): exported even when nothing was
   * served to them, since their features moved.
   */
  activeTeams(window: string): Promise<string[]>;
  now(): number;
}

export type ExportOutcome =
  | { window: string; status: "exported"; manifest: ExportManifest }
  | { window: string; status: "skipped"; reason: string };

const today = (now: number) => Math.floor(now / 86_400_000);

/** The cron's part: the day before today, unless its complete export exists. */
export async function scheduledExport(ports: ExportPorts): Promise<ExportOutcome> {
  const window = isoOf(today(ports.now()) - 1);
  const existing = await ports.store.manifest(window);
  if (existing?.manifest.complete) return { window, status: "skipped", reason: "already exported" };
  const manifest = await writeExport(ports, window, true);
  const won = await ports.store.putManifest(window, manifest, existing?.version ?? null);
  if (!won) return { window, status: "skipped", reason: "another export of the window won" };
  return { window, status: "exported", manifest };
}

/**
 * An operator's export of one day now (a day so far is written as
 * incomplete). 409 when the window's complete export exists already: exports
 * are written once.
 */
export async function exportNow(ports: ExportPorts, window: string): Promise<ExportManifest> {
  const day = parseWindow(window);
  const now = today(ports.now());
  if (day > now) throw badRequest(`window ${window} has not begun (today is ${isoOf(now)})`);
  const existing = await ports.store.manifest(window);
  if (existing?.manifest.complete) {
    throw conflict(`window ${window} is exported already (at ${existing.manifest.exported_at})`);
  }
  const manifest = await writeExport(ports, window, day < now);
  if (!(await ports.store.putManifest(window, manifest, existing?.version ?? null))) {
    throw conflict(`another export of window ${window} finished first; read it`);
  }
  return manifest;
}

/** The stored windows with their manifests (newest first). */
export async function listExports(ports: Pick<ExportPorts, "store">) {
  const windows = await ports.store.windows(EXPORT_LIST_MAX);
  const exports = [];
  for (const window of windows) {
    const m = await ports.store.manifest(window);
    if (!m) continue; // files of an export still being written, or one that failed before its manifest
    const { complete, exported_at, teams } = m.manifest;
    exports.push({ window, complete, exported_at, teams: teams.map((t) => t.team) });
  }
  return { exports };
}

export async function readManifest(ports: Pick<ExportPorts, "store">, window: string): Promise<ExportManifest> {
  parseWindow(window);
  const m = await ports.store.manifest(window);
  if (!m) throw notFound(`no export of window ${window}`);
  return m.manifest;
}

/** One exported file; 404 for a window, team or file that names nothing. */
export async function readFile(
  ports: Pick<ExportPorts, "store">,
  window: string,
  team: string,
  file: string,
): Promise<{ body: ReadableStream<Uint8Array>; contentType: string }> {
  const manifest = await readManifest(ports, window);
  const entry = manifest.teams.find((t) => t.team === team);
  const name = EXPORT_FILES.find((f) => f === file);
  if (!entry || !name || !entry.files.includes(name)) {
    throw notFound(`no file ${file} of team ${team} in the export of ${window}`);
  }
  const body = await ports.store.file(window, team, name);
  if (!body) throw notFound(`no file ${file} of team ${team} in the export of ${window}`);
  return { body, contentType: name.endsWith(".gz") ? "application/gzip" : "application/x-ndjson" };
}

function parseWindow(window: string): number {
  if (!DAY.test(window)) throw badRequest("window must be a day, YYYY-MM-DD");
  try {
    return dayOf(window);
  } catch {
    throw badRequest("window must be a day, YYYY-MM-DD");
  }
}

/** Writes every team's files of the window; answers the manifest (not yet stored). */
async function writeExport(ports: ExportPorts, window: string, complete: boolean): Promise<ExportManifest> {
  const { byTeam, dropped } = await logLinesByTeam(ports.logs, window);
  const active = (await ports.activeTeams(window)).filter((t) => TEAM_ID.test(t));
  const teams: ExportedTeam[] = [];
  for (const team of [...new Set([...byTeam.keys(), ...active])].sort()) {
    const lines = byTeam.get(team) ?? { text: [], served: 0, feedback: 0 };
    // Twice through the ledger, a page at a time: first what the files need
    // to know of all of it (ids, channels' first days), then the rows.
    const stats = new LedgerStats();
    for (const table of LEDGER_TABLES) {
      for await (const page of ports.ledger(team, dayOf(window), table)) stats.add(page);
    }
    await ports.store.putFile(window, team, "rec-logs.ndjson", lines.text.length ? `${lines.text.join("\n")}\n` : "");
    await writeGzip(ports.store, window, team, "channels.csv.gz", async (sink) => sink.write(stats.channelsCsv()));
    for (const table of LEDGER_TABLES) {
      await writeGzip(ports.store, window, team, `${table}.csv.gz`, async (sink) => {
        await sink.write(`${CSV_HEADS[table]}\n`);
        for await (const page of ports.ledger(team, dayOf(window), table)) await sink.write(stats.csvLines(page));
      });
    }
    teams.push({
      team,
      rec_logs: { served: lines.served, feedback: lines.feedback },
      dataset: stats.summary(),
      files: [...EXPORT_FILES],
    });
  }
  return {
    format: EXPORT_FORMAT,
    window,
    complete,
    exported_at: new Date(ports.now()).toISOString(),
    teams,
    dropped_lines: dropped,
  };
}

/** One gzip file written by `fill`, given up (nothing stored) when it fails. */
async function writeGzip(
  store: ExportStore,
  window: string,
  team: string,
  file: ExportFile,
  fill: (sink: ExportSink) => Promise<void>,
): Promise<void> {
  const sink = await store.openGzip(window, team, file);
  try {
    await fill(sink);
    await sink.close();
  } catch (error) {
    await sink.abort();
    throw error;
  }
}

interface TeamLines {
  text: string[];
  served: number;
  feedback: number;
}

/** The window's rec-log lines of every source, grouped by the team each names. */
async function logLinesByTeam(logs: RecLogReader, window: string) {
  const byTeam = new Map<string, TeamLines>();
  let dropped = 0;
  for (const source of SOURCE_NAMES) {
    for (const object of await logs.list(source, window)) {
      const text = await logs.read(object.key);
      if (text === null) continue;
      for (const line of text.split("\n")) {
        if (!line.trim()) continue;
        const team = teamOf(line);
        if (team === null) {
          dropped++;
          continue;
        }
        let entry = byTeam.get(team.team);
        if (!entry) {
          entry = { text: [], served: 0, feedback: 0 };
          byTeam.set(team.team, entry);
        }
        entry.text.push(line);
        if (team.kind === "served") entry.served++;
        else entry.feedback++;
      }
    }
  }
  return { byTeam, dropped };
}

function teamOf(line: string): { team: string; kind: "served" | "feedback" } | null {
  try {
    const v = JSON.parse(line) as { team?: unknown; kind?: unknown };
    if (typeof v.team !== "string" || !TEAM_ID.test(v.team)) return null;
    if (v.kind !== "served" && v.kind !== "feedback") return null;
    return { team: v.team, kind: v.kind };
  } catch {
    return null;
  }
}

const CSV_HEADS: Record<LedgerTable, string> = {
  activity: "day,user_id,channel_id,commits,files",
  interactions: "day,user_id,other_user_id,kind,count",
  hours: "day,user_id,local_hour,commits",
};

/**
 * What the export learns of a team's whole ledger before it writes the rows
 * (training/data.py's four tables): the ids, each channel's first day, the
 * counts. Platform ids U<n>/C<n> are written as n when every id of the kind
 * has that form: that is how an import names dataset id n, and numeric ids
 * sort as the live build sorts them (live-rows.ts); otherwise ids are
 * written as they are. Holds ids, never rows.
 */
export class LedgerStats {
  private readonly users = new Set<string>();
  private readonly channels = new Map<string, number>();
  private readonly counts = { activity: 0, interactions: 0, hours: 0 };
  private first = Number.POSITIVE_INFINITY;
  private last = Number.NEGATIVE_INFINITY;
  private numericIds: boolean | null = null;

  add(rows: LiveRows): void {
    if (this.numericIds !== null) throw new Error("ledger stats read after the ids were settled");
    const day = (d: number) => {
      if (d < this.first) this.first = d;
      if (d > this.last) this.last = d;
    };
    for (const a of rows.activity) {
      this.users.add(a.user);
      this.channels.set(a.channel, Math.min(this.channels.get(a.channel) ?? Number.POSITIVE_INFINITY, a.day));
      day(a.day);
    }
    for (const i of rows.interactions) {
      this.users.add(i.user);
      this.users.add(i.other);
      day(i.day);
    }
    for (const h of rows.hours) {
      this.users.add(h.user);
      day(h.day);
    }
    this.counts.activity += rows.activity.length;
    this.counts.interactions += rows.interactions.length;
    this.counts.hours += rows.hours.length;
  }

  /** Whether ids are written as numbers (settled on first use: every page was added). */
  private numeric(): boolean {
    this.numericIds ??=
      [...this.users].every((u) => /^U\d+$/.test(u)) && [...this.channels.keys()].every((c) => /^C\d+$/.test(c));
    return this.numericIds;
  }

  private id(id: string): string {
    return this.numeric() ? id.slice(1) : csv(id);
  }

  channelsCsv(): string {
    const lines = [...this.channels]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, d]) => `${this.id(id)},,${isoOf(d)}\n`);
    return `channel_id,name,first_day\n${lines.join("")}`;
  }

  /** A page's rows as CSV lines of their table's file. */
  csvLines(rows: LiveRows): string {
    const u = (id: string) => this.id(id);
    return [
      ...rows.activity.map((a) => `${isoOf(a.day)},${u(a.user)},${u(a.channel)},${a.commits},0\n`),
      ...rows.interactions.map((i) => `${isoOf(i.day)},${u(i.user)},${u(i.other)},${csv(i.kind)},${i.count}\n`),
      ...rows.hours.map((h) => `${isoOf(h.day)},${u(h.user)},${h.hour},${h.commits}\n`),
    ].join("");
  }

  summary(): ExportedTeam["dataset"] {
    const any = this.counts.activity + this.counts.interactions + this.counts.hours > 0;
    return {
      ...this.counts,
      users: this.users.size,
      channels: this.channels.size,
      first_day: any ? isoOf(this.first) : null,
      last_day: any ? isoOf(this.last) : null,
      ids: this.numeric() ? "numeric" : "as-is",
    };
  }
}

/** A CSV field (ids are plain; quoted anyway should one hold a comma or a quote). */
function csv(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}
