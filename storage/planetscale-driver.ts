import { type Config, connect } from "@planetscale/database";
import { type Row, rethrowUnique, type SqlDriver, type Statement, type StatementResult } from "./sql-driver";

/**
 * MySQL dialect over the PlanetScale HTTP driver. `url` is a PlanetScale
 * connection URL, or the project's local psdb server (tools/psdb-server) in
 * front of MySQL/MariaDB.
 */
export function planetscaleDriver(config: Config): SqlDriver {
  const conn = connect(config);
  return {
    dialect: "mysql",
    async all<T extends Row>(sql: string, params: readonly unknown[] = []) {
      try {
        const result = await conn.execute<T>(sql, params as unknown[]);
        return result.rows;
      } catch (error) {
        rethrowUnique(error);
      }
    },
    async run(sql, params = []) {
      try {
        const result = await conn.execute(sql, params as unknown[]);
        return { changes: result.rowsAffected };
      } catch (error) {
        rethrowUnique(error);
      }
    },
    async atomic(statements: readonly Statement[]): Promise<StatementResult[]> {
      if (statements.length === 0) return [];
      try {
        if (statements.length === 1 && statements[0]) {
          const result = await conn.execute<Row>(statements[0].sql, statements[0].params as unknown[]);
          return [{ rows: result.rows, changes: result.rowsAffected }];
        }
        return await conn.transaction(async (tx) => {
          const results: StatementResult[] = [];
          for (const s of statements) {
            const result = await tx.execute<Row>(s.sql, s.params as unknown[]);
            results.push({ rows: result.rows, changes: result.rowsAffected });
          }
          return results;
        });
      } catch (error) {
        rethrowUnique(error);
      }
    },
  };
}
