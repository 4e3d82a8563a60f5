// Pinned MySQL connections for open transactions.
//
// A statement that leaves its connection inside a transaction (BEGIN, START
// TRANSACTION, SET autocommit=0, ...; read from the OK packet's status flags)
// pins that connection under a random session id, which goes back to the
// driver in `session.id`. The driver echoes the session on its next statement;
// statements carrying a live id run on the pinned connection, one at a time.
// When a statement leaves the connection outside a transaction (COMMIT,
// ROLLBACK, implicit commit by DDL) the connection goes back to its pool and
// the driver is handed an unpinned session. Sessions idle for `idleMs` are
// rolled back and released; their ids are remembered for a while so a late
// statement gets a clear "expired" error instead of running outside the
// transaction.
//
// Like PlanetScale (per-transaction timeout 20 s), a transaction open longer
// than `maxTxMs` is killed whatever it is doing: its connection is KILLed
// (MySQL rolls it back) even mid-statement. Without this, a client that died
// inside a transaction, or gave up on a statement stuck behind a lock, left
// locks held for as long as the idle timer kept being put off: the fault
// suite saw one user row stay locked for minutes after a platform crash.
import { randomUUID } from "node:crypto";
import type { PoolConnection } from "mysql2/promise";

export interface PinnedSession {
  readonly id: string;
  readonly conn: PoolConnection;
  /** Statements queued or running on this session. */
  pending: number;
  /** Completion of the last queued statement (serialises use of `conn`). */
  tail: Promise<void>;
  timer: NodeJS.Timeout | undefined;
  /** Fires at the transaction's age limit. */
  deadline: NodeJS.Timeout | undefined;
}

/** How many ended session ids are remembered, for error messages. */
const ENDED_MEMORY = 1024;

const noop = (): void => {};

/** How long a killed session's statements get to report the KILL before the connection is dropped. */
const KILL_GRACE_MS = 5_000;

/** Resolves when `p` settles or after `ms`, whichever comes first. */
function settled(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    p.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

export class SessionStore {
  private readonly live = new Map<string, PinnedSession>();
  private readonly ended = new Map<string, string>();

  /**
   * @param kill ends a connection from outside (`KILL <thread id>` on another
   *   connection): the only way to stop a statement that is running.
   */
  constructor(
    private readonly idleMs: number,
    private readonly maxTxMs = 20_000,
    private readonly kill: (conn: PoolConnection) => Promise<void> = async () => {},
  ) {}

  /** Number of currently pinned connections. */
  get size(): number {
    return this.live.size;
  }

  /** Pins `conn` (currently inside a transaction) under a new session id. */
  pin(conn: PoolConnection): PinnedSession {
    const session: PinnedSession = {
      id: randomUUID(),
      conn,
      pending: 0,
      tail: Promise.resolve(),
      timer: undefined,
      deadline: undefined,
    };
    this.live.set(session.id, session);
    this.arm(session);
    session.deadline = setTimeout(() => this.killOverdue(session), this.maxTxMs);
    session.deadline.unref();
    return session;
  }

  lookup(id: string): PinnedSession | undefined {
    return this.live.get(id);
  }

  /** Why a session id is no longer live, if it was seen recently. */
  endReason(id: string): string | undefined {
    return this.ended.get(id);
  }

  /** Runs `fn` with exclusive use of the session's connection; no idle expiry meanwhile. */
  run<T>(session: PinnedSession, fn: () => Promise<T>): Promise<T> {
    session.pending++;
    this.disarm(session);
    const result = session.tail.then(fn);
    session.tail = result.then(noop, noop).then(() => {
      session.pending--;
      if (session.pending === 0 && this.live.get(session.id) === session) this.arm(session);
    });
    return result;
  }

  /** The transaction ended normally: return the connection to its pool. */
  unpin(session: PinnedSession, reason: string): void {
    if (!this.forget(session, reason)) return;
    session.conn.release();
  }

  /** The connection is unusable (lost, protocol error): drop it. */
  discard(session: PinnedSession, reason: string): void {
    if (!this.forget(session, reason)) return;
    session.conn.destroy();
  }

  /** Ends every session without waiting (MySQL rolls back on disconnect). */
  closeAll(): void {
    for (const session of [...this.live.values()]) this.discard(session, "the server was closed");
  }

  private expire(session: PinnedSession): void {
    if (session.pending > 0 || !this.forget(session, `rolled back after ${this.idleMs} ms idle`)) return;
    const { conn } = session;
    conn.query("ROLLBACK").then(
      () => conn.release(),
      () => conn.destroy(),
    );
  }

  private killOverdue(session: PinnedSession): void {
    if (!this.forget(session, `killed: the transaction ran past ${this.maxTxMs} ms`)) return;
    const { conn } = session;
    // After the KILL, the server ends the running statement (its caller gets
    // the error) and closes the connection. Destroying our end before that
    // error has arrived would leave the statement's promise, and the HTTP
    // request waiting on it, unsettled for good (seen as a flaky 60 s hang):
    // so wait for the session's statements to settle, a few seconds at most.
    this.kill(conn).then(
      () => settled(session.tail, KILL_GRACE_MS).then(() => conn.destroy()),
      () => conn.destroy(),
    );
  }

  private forget(session: PinnedSession, reason: string): boolean {
    if (this.live.get(session.id) !== session) return false;
    this.live.delete(session.id);
    this.disarm(session);
    clearTimeout(session.deadline);
    this.ended.set(session.id, reason);
    if (this.ended.size > ENDED_MEMORY) {
      const oldest = this.ended.keys().next();
      if (!oldest.done) this.ended.delete(oldest.value);
    }
    return true;
  }

  private arm(session: PinnedSession): void {
    this.disarm(session);
    session.timer = setTimeout(() => this.expire(session), this.idleMs);
    session.timer.unref();
  }

  private disarm(session: PinnedSession): void {
    if (session.timer !== undefined) {
      clearTimeout(session.timer);
      session.timer = undefined;
    }
  }
}
