import { DomainError } from "../src/errors";
import { type Row, type SqlDriver, type Statement, type StatementResult, UniqueViolation } from "./sql-driver";

// Fail fast under database trouble. Without this, a frozen database made
// requests queue for as long as the driver waited (up to 28 s measured, 499
// requests piled up), and the first ones still ended in a 500. Two parts:
//
// - a bound per call (timeoutMs, plus a little per statement of an atomic
//   unit): a call that has not answered by then fails as unavailable;
// - a circuit breaker per database and isolate: after `failuresToOpen`
//   consecutive failures (timeouts, lost connections) it opens, and every
//   call fails at once as unavailable, retry after `openMs`; then one trial
//   call goes through (half-open), and its outcome closes or reopens it.
//
// A timed-out write may still commit: the client was told unavailable, and
// retries it with the same Idempotency-Key (src/teams/idempotency.ts) to get
// the first answer. A database that answers with an error about the request (a
// unique violation, a bad statement) is not in trouble: those pass through
// and count as answers.
//
// A call that outlives its bound is not dropped halfway: it is handed to
// `background` (the request's waitUntil) to finish or fail on its own. The
// runtime cancels what a finished request left running, and a transaction
// cut off between statements stays open, holding its row locks, until the
// database's transaction killer ends it (PlanetScale: 20 s). The fault suite
// saw that become a livelock: a retried write queued behind such a
// transaction, timed out, and was itself cut off holding the same locks, one
// round after another for minutes. Left to finish, the late call commits (the
// retry then replays it by its key) or rolls back as soon as its lock comes.
//
// Contention is neither: MySQL picks a deadlock's victim and rolls its
// transaction back whole (errno 1213), and a lock wait can time out (1205;
// our transactions then roll back whole too). The unit did nothing, so it is
// run again, up to CONTENTION_ATTEMPTS times within the same bound; if it
// still loses, the answer is unavailable with a retry-after, never an
// internal error (the fault suite saw a resumed import deadlock with the
// mutation consumer's count upserts). The breaker does not count it: the database is answering.

/** Unavailable, retry after a while: the database did not answer in time, or the breaker is open. */
export class DatabaseUnavailable extends DomainError {
  constructor(
    message: string,
    override readonly retryAfterSeconds: number,
  ) {
    super("unavailable", "unavailable", message, undefined, { retryAfterSeconds });
    this.name = "DatabaseUnavailable";
  }
}

export interface BreakerOptions {
  /** Bound per call (ms); an atomic unit gets perStatementMs more per statement. */
  timeoutMs: number;
  perStatementMs: number;
  /** Consecutive failures that open the breaker. */
  failuresToOpen: number;
  /** How long it stays open before a trial call (ms). */
  openMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = {
  timeoutMs: 5_000,
  perStatementMs: 10,
  failuresToOpen: 3,
  openMs: 5_000,
};

/** Tries of a unit that lost to a concurrent one (deadlock victim, lock wait timeout). */
export const CONTENTION_ATTEMPTS = 3;

/** MySQL's deadlock and lock-wait errors (by number, as Vitess reports them), SQLite's busy database. */
const CONTENTION =
  /errno 1213|errno 1205|sqlstate 40001|deadlock found|lock wait timeout|SQLITE_BUSY|database is locked/i;

/** Errors that mean the database (or the way to it) is in trouble, not that the request was wrong. */
const TROUBLE =
  /network|connection (?:lost|refused|reset|closed)|connect(?:ion)? timeout|socket hang up|fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|timed? ?out|overloaded|unavailable|too many connections|too many requests|bad gateway|gateway timeout|service unavailable/i;

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | null = null;
  private trial = false;
  /** Calls refused while open (stats, tests). */
  refused = 0;

  constructor(
    readonly options: BreakerOptions = DEFAULT_BREAKER,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): "closed" | "open" | "half-open" {
    if (this.openedAt === null) return "closed";
    return this.now() - this.openedAt >= this.options.openMs ? "half-open" : "open";
  }

  /** Throws DatabaseUnavailable when calls are not let through now; returns whether this call is the trial. */
  admit(): boolean {
    if (this.openedAt === null) return false;
    const left = this.openedAt + this.options.openMs - this.now();
    if (left > 0 || this.trial) {
      this.refused++;
      throw new DatabaseUnavailable(
        "the database is not answering; try again shortly",
        Math.max(1, Math.ceil(Math.max(left, 1_000) / 1000)),
      );
    }
    this.trial = true;
    return true;
  }

  succeeded(): void {
    this.failures = 0;
    this.openedAt = null;
    this.trial = false;
  }

  failed(): void {
    this.trial = false;
    this.failures++;
    if (this.failures >= this.options.failuresToOpen || this.openedAt !== null) this.openedAt = this.now();
  }
}

/** Keeps work alive after the answer was sent (ExecutionContext.waitUntil). */
export type Background = (work: Promise<unknown>) => void;

/** `driver` with a bound per call and `breaker` in front of it; calls past their bound go to `background`. */
export function guardedDriver(driver: SqlDriver, breaker: CircuitBreaker, background?: Background): SqlDriver {
  const { timeoutMs, perStatementMs } = breaker.options;
  const guard = async <T>(statements: number, call: () => Promise<T>): Promise<T> => {
    breaker.admit();
    const limit = timeoutMs + perStatementMs * statements;
    const work = retryContention(call);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        background?.(work.catch(() => undefined));
        reject(new DatabaseUnavailable(`the database did not answer within ${limit} ms`, 1));
      }, limit);
    });
    try {
      const result = await Promise.race([work, timeout]);
      breaker.succeeded();
      return result;
    } catch (error) {
      if (isContention(error)) {
        breaker.succeeded();
        throw new DatabaseUnavailable(
          `the write lost to concurrent ones ${CONTENTION_ATTEMPTS} times (${errorClass(error)}); nothing was written`,
          1,
        );
      }
      if (error instanceof DatabaseUnavailable || isTrouble(error)) {
        breaker.failed();
        if (error instanceof DatabaseUnavailable) throw error;
        throw new DatabaseUnavailable(`the database is unavailable (${errorClass(error)})`, 1);
      }
      breaker.succeeded();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    dialect: driver.dialect,
    all<T extends Row = Row>(sql: string, params?: readonly unknown[]) {
      return guard(1, () => driver.all<T>(sql, params));
    },
    run(sql: string, params?: readonly unknown[]) {
      return guard(1, () => driver.run(sql, params));
    },
    atomic(statements: readonly Statement[]): Promise<StatementResult[]> {
      return guard(statements.length, () => driver.atomic(statements));
    },
  };
}

/** Runs `call` again (after a short random pause) while it fails on contention, up to CONTENTION_ATTEMPTS tries. */
async function retryContention<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= CONTENTION_ATTEMPTS || !isContention(error)) throw error;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50 * attempt));
    }
  }
}

function isContention(error: unknown): boolean {
  if (error instanceof DatabaseUnavailable || error instanceof UniqueViolation) return false;
  const text = error instanceof Error ? `${error.name} ${error.message}` : String(error);
  return CONTENTION.test(text);
}

function isTrouble(error: unknown): boolean {
  if (error instanceof UniqueViolation) return false;
  const text = error instanceof Error ? `${error.name} ${error.message}` : String(error);
  return TROUBLE.test(text);
}

/** The error's class, never its message (which may carry SQL text and ids). */
export function errorClass(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
