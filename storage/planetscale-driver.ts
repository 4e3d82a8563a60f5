import { type Config, connect } from "@planetscale/database";
import { type Row, rethrowUnique, type SqlDriver, type Statement } from "./sql-driver";

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
    async atomic(statements: readonly Statement[]) {
      if (statements.length === 0) return;
      try {
        if (statements.length === 1) {
          const [only] = statements;
          if (only) await conn.execute(only.sql, only.params as unknown[]);
          return;
        }
        await conn.transaction(async (tx) => {
          for (const s of statements) await tx.execute(s.sql, s.params as unknown[]);
        });
      } catch (error) {
        rethrowUnique(error);
      }
    },
  };
}
