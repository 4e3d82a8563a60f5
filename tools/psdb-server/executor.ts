// Runs one Execute request: picks the connection (pooled, or the session's
// pinned one), runs the SQL over the text protocol and shapes the answer the
// way PlanetScale does: `{ session, result | error, timing }`.
import type { FieldPacket, Pool, PoolConnection, ResultSetHeader } from "mysql2/promise";
import { type ErrorContext, sqlError, type VtCode, vitessError, type WireError } from "./errors";
import { encodeRow, type RawCell, toWireField, type WireField, type WireRow } from "./field-types";
import type { PinnedSession, SessionStore } from "./sessions";

/** What the server hands the driver as `session`; the driver echoes it back. */
export type WireSession = { inTransaction: false } | { inTransaction: true; id: string };

/** Vitess `query.QueryResult` as JSON. */
export interface WireResult {
  fields?: WireField[];
  rows?: WireRow[];
  rowsAffected?: string;
  insertId?: string;
}

export interface ExecuteResponse {
  session?: WireSession;
  result?: WireResult;
  error?: WireError;
  /** Seconds, as PlanetScale reports it (the driver multiplies by 1000). */
  timing: number;
}

export const UNPINNED: WireSession = Object.freeze({ inTransaction: false }) as WireSession;

// Leading whitespace and comments (not /*! executable */ ones) before the verb.
const LEAD = String.raw`^(?:\s+|/\*(?!!)[\s\S]*?\*/|#[^\n]*(?:\n|$)|--(?:\s[^\n]*)?(?:\n|$))*`;
const BEGIN_RE = new RegExp(`${LEAD}(?:begin(?!\\s+not\\s+atomic)\\b|start\\s+transaction\\b)`, "i");
const PLAIN_ROLLBACK_RE = new RegExp(`${LEAD}rollback(?:\\s+work)?\\s*;?\\s*$`, "i");

// OK packet status flags.
const SERVER_STATUS_IN_TRANS = 1;
const SERVER_STATUS_AUTOCOMMIT = 2;

function inTransaction(status: number): boolean {
  return (status & SERVER_STATUS_IN_TRANS) !== 0 || (status & SERVER_STATUS_AUTOCOMMIT) === 0;
}

interface Outcome {
  result: WireResult;
  /** Server status after the statement; unknown after a result set. */
  status: number | undefined;
}

type QueryReturn = [unknown, FieldPacket[] | Array<FieldPacket[] | undefined> | undefined];

function okResult(header: ResultSetHeader): WireResult {
  return { rowsAffected: String(header.affectedRows), insertId: String(header.insertId) };
}

function rowsResult(rows: RawCell[][], fields: FieldPacket[]): WireResult {
  const out: WireResult = { fields: fields.map(toWireField) };
  if (rows.length > 0) out.rows = rows.map(encodeRow);
  return out;
}

/** Normalises mysql2's `[rows, fields]` (one result, or several for CALL). */
function toOutcome([rows, fields]: QueryReturn): Outcome {
  if (fields === undefined) {
    const header = rows as ResultSetHeader;
    return { result: okResult(header), status: header.serverStatus };
  }
  const first = fields[0];
  if (first !== undefined && !Array.isArray(first)) {
    return { result: rowsResult(rows as RawCell[][], fields as FieldPacket[]), status: undefined };
  }
  // Several results (CALL): the first result set, and the final OK packet's status.
  const results = rows as Array<RawCell[][] | ResultSetHeader>;
  const sets = fields as Array<FieldPacket[] | undefined>;
  let result: WireResult | undefined;
  let status: number | undefined;
  for (let i = 0; i < results.length; i++) {
    const f = sets[i];
    const r = results[i];
    if (f !== undefined && result === undefined) result = rowsResult(r as RawCell[][], f);
    else if (f === undefined && r !== undefined) {
      const header = r as ResultSetHeader;
      status = header.serverStatus;
      result ??= okResult(header);
    }
  }
  return { result: result ?? {}, status };
}

function isFatal(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { fatal?: unknown }).fatal === true;
}

export interface ExecutorOptions {
  /** Autocommit statements. */
  pool: Pool;
  /** Connections for explicit transactions (BEGIN / START TRANSACTION). */
  txPool: Pool;
  sessions: SessionStore;
  database: string;
  callerId: string;
}

export class Executor {
  constructor(private readonly o: ExecutorOptions) {}

  private ctx(sql: string): ErrorContext {
    return { database: this.o.database, callerId: this.o.callerId, sql };
  }

  async execute(sql: string, sessionId: string | null): Promise<ExecuteResponse> {
    const started = performance.now();
    const response = sessionId === null ? await this.executeUnpinned(sql) : await this.executeInSession(sql, sessionId);
    response.timing = (performance.now() - started) / 1000;
    return response;
  }

  private async executeUnpinned(sql: string): Promise<ExecuteResponse> {
    const pool = BEGIN_RE.test(sql) ? this.o.txPool : this.o.pool;
    let conn: PoolConnection;
    try {
      conn = await pool.getConnection();
    } catch (error) {
      return { session: UNPINNED, error: sqlError(error, this.ctx(sql)), timing: 0 };
    }
    let outcome: Outcome;
    try {
      outcome = toOutcome((await conn.query(sql)) as QueryReturn);
    } catch (error) {
      if (isFatal(error)) conn.destroy();
      else conn.release();
      return { session: UNPINNED, error: sqlError(error, this.ctx(sql)), timing: 0 };
    }
    if (outcome.status !== undefined && inTransaction(outcome.status)) {
      const session = this.o.sessions.pin(conn);
      return { session: { inTransaction: true, id: session.id }, result: outcome.result, timing: 0 };
    }
    conn.release();
    return { session: UNPINNED, result: outcome.result, timing: 0 };
  }

  private async executeInSession(sql: string, id: string): Promise<ExecuteResponse> {
    const { sessions } = this.o;
    const session = sessions.lookup(id);
    if (session === undefined) {
      // The transaction is gone (idle timeout, lost connection, restart). A
      // plain ROLLBACK is what the driver sends after an error: let it succeed
      // and reset the session. Anything else must fail, or it would run
      // outside the transaction the caller thinks it is in. No `session` in
      // the answer, so the driver keeps the dead id and keeps failing.
      if (PLAIN_ROLLBACK_RE.test(sql)) {
        return { session: UNPINNED, result: { rowsAffected: "0", insertId: "0" }, timing: 0 };
      }
      const reason = sessions.endReason(id) ?? "unknown session (never opened here, or the server restarted)";
      const code: VtCode = "ABORTED";
      const desc = `transaction ${id}: ended (${reason}); this statement was not executed. ROLLBACK to start over`;
      return { error: vitessError(code, desc, this.ctx(sql)), timing: 0 };
    }
    return sessions.run(session, () => this.runPinned(session, sql));
  }

  private async runPinned(session: PinnedSession, sql: string): Promise<ExecuteResponse> {
    const pinned: WireSession = { inTransaction: true, id: session.id };
    let outcome: Outcome;
    try {
      outcome = toOutcome((await session.conn.query(sql)) as QueryReturn);
    } catch (error) {
      if (isFatal(error)) this.o.sessions.discard(session, "the MySQL connection failed");
      return { session: pinned, error: sqlError(error, this.ctx(sql)), timing: 0 };
    }
    if (outcome.status !== undefined && !inTransaction(outcome.status)) {
      this.o.sessions.unpin(session, "committed or rolled back");
      return { session: UNPINNED, result: outcome.result, timing: 0 };
    }
    return { session: pinned, result: outcome.result, timing: 0 };
  }
}
