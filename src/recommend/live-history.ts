import { dayOf } from "../datasets/collab";
import { DomainError, invalidBody, tooLarge } from "../errors";
import type { SnapshotLine } from "./feature-import";
import { emptyRows, isId, type LedgerTooLarge, LIVE_BUILD_MAX_ROWS, type LiveRows, tooLargeReason } from "./live-rows";

// Importing a team's history as raw rows (the dataset's own three tables,
// with platform ids) into its ledger, so that an imported history and live
// traffic are one set of rows built into one snapshot (live-rows.ts). The
// count-table import (feature-import.ts) cannot be merged with live events:
// its windows are fixed to its cut. An upload replaces the team's previous
// history whole (a retry or a re-import never counts rows twice); live
// events are kept apart and are never touched by it.
//
// Lines (NDJSON), ids and counts only:
//   {"table":"activity","day":"2024-01-02","user_id":"U1","channel_id":"C1","commits":3}
//   {"table":"interactions","day":"2024-01-02","user_id":"U1","other_user_id":"U2","kind":"merged_pr","count":1}
//   {"table":"hours","day":"2024-01-02","user_id":"U1","local_hour":14,"commits":2}

/** A history is built with the team's live events in one object: no more rows than a build holds. */
export const MAX_HISTORY_ROWS = LIVE_BUILD_MAX_ROWS;
const APPEND_BATCH = 5_000;

export interface HistoryPorts {
  /** Starts an unpublished upload; answers its id. */
  begin(team: string): Promise<string>;
  append(team: string, upload: string, rows: LiveRows): Promise<void>;
  /**
   * Replaces the team's history with the upload, then rebuilds its live
   * snapshot; or, when the upload and the team's live events would be more
   * rows than a build holds, discards the upload and says so.
   */
  publish(team: string, upload: string): Promise<{ rows: number } | { refused: LedgerTooLarge }>;
  discard(team: string, upload: string): Promise<void>;
}

type Parsed = { ok: true; rows: LiveRows } | { ok: false; message: string };

const KIND = /^[a-z_]{1,20}$/;
const count = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 1e9;

function parseDay(v: unknown): number | null {
  if (typeof v !== "string") return null;
  try {
    return dayOf(v);
  } catch {
    return null;
  }
}

export function parseHistoryLine(value: unknown): Parsed {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { ok: false, message: "not an object" };
  const v = value as Record<string, unknown>;
  const fields = (names: string[]) => {
    const extra = Object.keys(v).filter((k) => !names.includes(k));
    return extra.length > 0 ? `unknown field(s) ${extra.slice(0, 5).join(", ")}` : null;
  };
  const day = parseDay(v.day);
  if (day === null) return { ok: false, message: "day must be YYYY-MM-DD" };
  if (!isId(v.user_id)) return { ok: false, message: "user_id must be an id" };
  const rows = emptyRows();
  switch (v.table) {
    case "activity": {
      const extra = fields(["table", "day", "user_id", "channel_id", "commits"]);
      if (extra) return { ok: false, message: extra };
      if (!isId(v.channel_id)) return { ok: false, message: "channel_id must be an id" };
      if (!count(v.commits)) return { ok: false, message: "commits must be a whole number >= 0" };
      rows.activity.push({ day, user: v.user_id, channel: v.channel_id, commits: v.commits });
      return { ok: true, rows };
    }
    case "interactions": {
      const extra = fields(["table", "day", "user_id", "other_user_id", "kind", "count"]);
      if (extra) return { ok: false, message: extra };
      if (!isId(v.other_user_id)) return { ok: false, message: "other_user_id must be an id" };
      if (typeof v.kind !== "string" || !KIND.test(v.kind)) return { ok: false, message: "kind must be 1-20 of a-z _" };
      if (!count(v.count)) return { ok: false, message: "count must be a whole number >= 0" };
      rows.interactions.push({ day, user: v.user_id, other: v.other_user_id, kind: v.kind, count: v.count });
      return { ok: true, rows };
    }
    case "hours": {
      const extra = fields(["table", "day", "user_id", "local_hour", "commits"]);
      if (extra) return { ok: false, message: extra };
      const h = v.local_hour;
      if (typeof h !== "number" || !Number.isInteger(h) || h < 0 || h > 23) {
        return { ok: false, message: "local_hour must be 0-23" };
      }
      if (!count(v.commits)) return { ok: false, message: "commits must be a whole number >= 0" };
      rows.hours.push({ day, user: v.user_id, hour: h, commits: v.commits });
      return { ok: true, rows };
    }
    default:
      return { ok: false, message: 'table must be "activity", "interactions" or "hours"' };
  }
}

/** Streams an upload into the team's ledger; a bad line anywhere: nothing changes. */
export async function importHistory(ports: HistoryPorts, team: string, lines: AsyncIterable<SnapshotLine>) {
  const upload = await ports.begin(team);
  const fail = async (error: DomainError): Promise<never> => {
    await ports.discard(team, upload).catch((e) => console.error("discarding a failed history upload", e));
    throw error;
  };
  let batch = emptyRows();
  let n = 0;
  const flush = async () => {
    await ports.append(team, upload, batch);
    batch = emptyRows();
  };
  try {
    for await (const { line, value, error } of lines) {
      const parsed: Parsed = error ? { ok: false, message: error } : parseHistoryLine(value);
      if (!parsed.ok) await fail(invalidBody(`line ${line}: ${parsed.message}; nothing was imported`, { line }));
      else {
        batch.activity.push(...parsed.rows.activity);
        batch.interactions.push(...parsed.rows.interactions);
        batch.hours.push(...parsed.rows.hours);
      }
      if (++n > MAX_HISTORY_ROWS) await fail(tooLarge(`at most ${MAX_HISTORY_ROWS} rows per history`));
      if (n % APPEND_BATCH === 0) await flush();
    }
    await flush();
  } catch (error) {
    if (error instanceof DomainError) throw error;
    await ports.discard(team, upload).catch(() => undefined);
    throw error;
  }
  if (n === 0) await fail(invalidBody("empty history; nothing was imported"));
  const published = await ports.publish(team, upload);
  if ("refused" in published) {
    throw tooLarge(`with this history, ${tooLargeReason(published.refused)}; nothing was imported`, published.refused);
  }
  return { upload, lines: n, rows: published.rows };
}
