import type { ChangeEvent } from "../../src/directory/model";
import type { ChangePublisher } from "../../src/directory/source";
import type { DomainMutationMessage, MutationPublisher } from "../../src/domains/messages";
import type { Row, SqlDriver, Statement, StatementResult } from "../../storage/sql-driver";

// Fault injection for the contract suites: a process that dies at a chosen
// step. Every call it makes to the database (one statement, or one atomic
// unit) and every send (a queue publish, a push to a cache) is a step; at
// step `at` it dies, either before the call leaves ("before": nothing of it
// happened), after it returned ("after": it happened, but the process never
// saw the answer), or, for an atomic unit, part-way through it ("within":
// after `statements` of its statements ran, before it committed). From then
// on every call fails, as nothing runs in a dead process. The database, the
// queue and the caches are separate processes and survive: the tests then
// look at them with the real driver.

export class SimulatedCrash extends Error {
  constructor(step: number, what: string) {
    super(`simulated crash at step ${step} (${what})`);
    this.name = "SimulatedCrash";
  }
}

export type CrashWhen = "before" | "within" | "after";

/**
 * Fails on both engines: a unit that reaches it aborts and rolls back what it
 * ran, as the database does with a dead client's open transaction (MySQL) or
 * an unfinished batch (D1).
 */
const POISON: Statement = { sql: "SELECT * FROM simulated_crash_no_such_table", params: [] };

export class DyingProcess {
  /** Steps taken so far (a dry run with `at` = Infinity counts a whole operation's steps). */
  steps = 0;
  dead = false;
  readonly log: string[] = [];
  /** Statements of each step that was an atomic unit (0 for other steps), in step order. */
  readonly unitSizes: number[] = [];

  constructor(
    readonly at: number,
    readonly when: CrashWhen,
    /** For "within": how many of the unit's statements run before it is cut. */
    readonly statements = 0,
  ) {}

  /** Where a unit of `size` statements is cut if this step is the crash point, else null. */
  cutAt(size: number): number | null {
    this.unitSizes[this.steps] = size;
    return this.steps + 1 === this.at && this.when === "within" ? this.statements : null;
  }

  async step<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.dead) throw new SimulatedCrash(this.steps, `${what}, after death`);
    const n = ++this.steps;
    this.unitSizes[n - 1] ??= 0;
    this.log.push(what);
    if (n === this.at && this.when === "before") {
      this.dead = true;
      throw new SimulatedCrash(n, `before ${what}`);
    }
    const result = await run();
    if (n === this.at && this.when !== "before") {
      this.dead = true;
      throw new SimulatedCrash(n, `${this.when} ${what}`);
    }
    return result;
  }
}

const head = (sql: string) => sql.replace(/\s+/g, " ").slice(0, 40);

/** The driver as the dying process sees it: each all / run / atomic call is one step. */
export function dyingDriver(inner: SqlDriver, process: DyingProcess): SqlDriver {
  return {
    dialect: inner.dialect,
    all<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      return process.step(`all ${head(sql)}`, () => inner.all<T>(sql, params));
    },
    run(sql: string, params?: readonly unknown[]) {
      return process.step(`run ${head(sql)}`, () => inner.run(sql, params));
    },
    atomic(statements: readonly Statement[]): Promise<StatementResult[]> {
      const cut = process.dead ? null : process.cutAt(statements.length);
      return process.step(`atomic ×${statements.length} ${head(statements[0]?.sql ?? "")}`, async () => {
        if (cut === null) return inner.atomic(statements);
        // Died part-way: the statements before the cut ran, the unit never committed.
        const aborted = await inner.atomic([...statements.slice(0, cut), POISON]).then(
          () => false,
          () => true,
        );
        if (!aborted) throw new Error("the poisoned unit committed");
        return [];
      });
    },
  };
}

/** A queue send by the dying process. */
export function dyingPublisher(inner: MutationPublisher, process: DyingProcess): MutationPublisher {
  return {
    publish(messages: DomainMutationMessage[]) {
      return process.step(`publish ×${messages.length}`, () => inner.publish(messages));
    },
  };
}

/** A push to a team cache by the dying process. */
export function dyingChangePublisher(inner: ChangePublisher, process: DyingProcess): ChangePublisher {
  return {
    publish(teamId: string, events: ChangeEvent[]) {
      return process.step(`push ×${events.length}`, () => inner.publish(teamId, events));
    },
  };
}
