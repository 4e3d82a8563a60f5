import { UniqueViolation } from "../src/unique-violation";

// The narrow waist between the store and an engine. Two implementations:
// D1 (d1-driver.ts) and MySQL over @planetscale/database (planetscale-driver.ts).

export type Dialect = "sqlite" | "mysql";

export interface Statement {
  sql: string;
  params: readonly unknown[];
}

export type Row = Record<string, unknown>;

/** What one statement of an atomic unit did: rows it returned (SELECT, RETURNING) and rows it changed. */
export interface StatementResult {
  rows: Row[];
  changes: number;
}

export interface SqlDriver {
  readonly dialect: Dialect;
  all<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
  /**
   * All statements or none. D1: one batch (one round trip). MySQL: a transaction.
   * Returns each statement's result, in order, as seen inside the unit: a
   * SELECT at the end reads what the unit itself wrote.
   */
  atomic(statements: readonly Statement[]): Promise<StatementResult[]>;
}

export { UniqueViolation };

const UNIQUE_PATTERNS = [/UNIQUE constraint failed/i, /Duplicate entry/i, /errno 1062/i];

function isUniqueViolationMessage(message: string): boolean {
  return UNIQUE_PATTERNS.some((p) => p.test(message));
}

export function rethrowUnique(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  if (isUniqueViolationMessage(message)) throw new UniqueViolation(error);
  throw error;
}
