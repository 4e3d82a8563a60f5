import { type Row, rethrowUnique, type SqlDriver, type Statement, type StatementResult } from "./sql-driver";

export function d1Driver(db: D1Database): SqlDriver {
  const prepare = (sql: string, params: readonly unknown[] = []) => db.prepare(sql).bind(...params);
  return {
    dialect: "sqlite",
    async all<T extends Row>(sql: string, params?: readonly unknown[]) {
      try {
        const { results } = await prepare(sql, params).all<T>();
        return results;
      } catch (error) {
        rethrowUnique(error);
      }
    },
    async run(sql, params) {
      try {
        const { meta } = await prepare(sql, params).run();
        return { changes: meta.changes ?? 0 };
      } catch (error) {
        rethrowUnique(error);
      }
    },
    async atomic(statements: readonly Statement[]): Promise<StatementResult[]> {
      if (statements.length === 0) return [];
      try {
        const results = await db.batch<Row>(statements.map((s) => prepare(s.sql, s.params)));
        return results.map((r) => ({ rows: r.results ?? [], changes: r.meta.changes ?? 0 }));
      } catch (error) {
        rethrowUnique(error);
      }
    },
  };
}
