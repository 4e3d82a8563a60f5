import { UniqueViolation } from "../src/unique-violation";

// The narrow waist between the store and an engine. Two implementations:
// D1 (d1-driver.ts) and MySQL over @planetscale/database (planetscale-driver.ts).

export type Dialect = "sqlite" | "mysql";

export interface Statement {
  sql: string;
  params: readonly unknown[];
}

export type Row = Record<string, unknown>;

export interface SqlDriver {
  readonly dialect: Dialect;
  all<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
  /** All statements or none. D1: one batch (one round trip). MySQL: a transaction. */
  atomic(statements: readonly Statement[]): Promise<void>;
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
