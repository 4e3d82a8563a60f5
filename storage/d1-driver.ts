import { type Row, rethrowUnique, type SqlDriver, type Statement } from "./sql-driver";

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
    async atomic(statements: readonly Statement[]) {
      if (statements.length === 0) return;
      try {
        await db.batch(statements.map((s) => prepare(s.sql, s.params)));
      } catch (error) {
        rethrowUnique(error);
      }
    },
  };
}
