import type { DomainCountStore } from "../src/domains/count-store";
import type { TeamStore } from "../src/teams/team-store";
import { idempotencyKeys } from "./idempotency-sql";
import type { SqlDriver } from "./sql-driver";
import { domainCountRows } from "./team-store/domain-counts";
import { healLeases } from "./team-store/heal-lease";
import { outboxRows } from "./team-store/outbox";
import { stagedUsers } from "./team-store/staged-users";
import { teamRows } from "./team-store/teams";
import { userRows } from "./team-store/users";

// One implementation of the storage ports for both engines, one module per
// aggregate under team-store/ (teams, heal lease, users, staged imports,
// outbox, domain counts) and idempotency-sql.ts. The SQL is the common subset
// of SQLite and MySQL/MariaDB; where they differ (bulk row input, upsert
// syntax, RETURNING) the dialect picks the cheaper form (portable-sql.ts):
// - SQLite/D1 binds at most 100 parameters, so bulk rows travel as one JSON
//   parameter expanded by json_each: one statement however many rows.
// - MySQL gets multi-row VALUES (the PlanetScale driver formats parameters
//   client-side, so there is no parameter limit, only statement size).
//
// A user write and what it derives are one atomic unit (D1 batch / MySQL
// transaction): the users rows, the directory version bump and change-log
// rows (change-log.ts, as the directory store writes them for channels), the
// outbox rows of its queue messages, and a final read of the version the
// bump made, which names the write's log rows without another round trip.

export function sqlStore(driver: SqlDriver): TeamStore & DomainCountStore {
  return {
    ...teamRows(driver),
    ...healLeases(driver),
    ...userRows(driver),
    ...stagedUsers(driver),
    ...outboxRows(driver),
    ...idempotencyKeys(driver),
    ...domainCountRows(driver),
  };
}
