import type { Connection, ConnectionStatus, Invitation, InvitationStatus } from "../src/connect/connections";
import type { AcceptOutcome, ConnectionsStore } from "../src/connect/connections-store";
import { conflict } from "../src/errors";
import type { IdempotencyRecord } from "../src/teams/team-store";
import type { Guard } from "./change-log";
import { pairRefresh } from "./connect-index-queue-sql";
import { idempotencyInsert, idempotencyKeys } from "./idempotency-sql";
import { keyset, pageOf } from "./keyset-pages";
import { num, numOrNull } from "./portable-sql";
import { type Row, type SqlDriver, type Statement, UniqueViolation } from "./sql-driver";

// ConnectionsStore on either engine, the same SQL on both. What two requests
// at once could break is left to the database, never to a read before a
// write: a status changes only from the status it was read with, an accept
// inserts its connection from the invitation row its own guarded update
// produced (tagged with the new connection's id), so an accept that lost the
// invitation inserts nothing, and the unique key over (team_low, team_high,
// live) refuses a second live connection for a pair (UniqueViolation, which
// rolls the whole unit back, invitation included).
//
// An Idempotency-Key record (storage/idempotency-sql.ts) joins the unit of
// the write it answers. For an answer, it goes first, guarded by the answer's
// own compare-and-set condition read before the swap (the invitation is
// still in the status the use case read): true exactly when the swap will
// happen, as the team store does for a user's change. D1 runs a batch with no
// other writer in between; on MySQL the unit first locks the invitation row.

const INVITATION_COLUMNS =
  "from_team, id, from_user, code_hash, status, created_at, expires_at, answered_team, answered_user, answered_at";

const CONNECTION_COLUMNS = `id, inviter, invitee, status, invitation_id, requested_user, requested_at,
  accepted_user, accepted_at, disconnected_team, disconnected_user, disconnected_at`;

const INVITATION_STATUSES: readonly InvitationStatus[] = ["pending", "accepted", "declined", "cancelled"];
const CONNECTION_STATUSES: readonly ConnectionStatus[] = ["accepted", "disconnected"];

function invitationStatusOf(v: unknown): InvitationStatus {
  const status = INVITATION_STATUSES.find((s) => s === v);
  if (!status) throw new Error(`corrupt invitation status in storage: ${String(v)}`);
  return status;
}

function connectionStatusOf(v: unknown): ConnectionStatus {
  const status = CONNECTION_STATUSES.find((s) => s === v);
  if (!status) throw new Error(`corrupt connection status in storage: ${String(v)}`);
  return status;
}

function invitationOf(r: Row): Invitation {
  const answeredAt = numOrNull(r.answered_at);
  return {
    id: String(r.id),
    fromTeam: String(r.from_team),
    fromUser: String(r.from_user),
    codeHash: String(r.code_hash),
    status: invitationStatusOf(r.status),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    answeredBy:
      answeredAt === null ? null : { team: String(r.answered_team), user: String(r.answered_user), at: answeredAt },
  };
}

function connectionOf(r: Row): Connection {
  const inviter = String(r.inviter);
  const invitee = String(r.invitee);
  const disconnectedAt = numOrNull(r.disconnected_at);
  return {
    id: String(r.id),
    inviter,
    invitee,
    status: connectionStatusOf(r.status),
    invitationId: String(r.invitation_id),
    requestedBy: { team: inviter, user: String(r.requested_user), at: num(r.requested_at) },
    acceptedBy: { team: invitee, user: String(r.accepted_user), at: num(r.accepted_at) },
    disconnectedBy:
      disconnectedAt === null
        ? null
        : { team: String(r.disconnected_team), user: String(r.disconnected_user), at: disconnectedAt },
  };
}

/** The pair in a fixed order, whichever side invited: what the unique key is over. */
function pairOf(a: string, b: string): [string, string] {
  return a < b ? [a, b] : [b, a];
}

/** The key of a team that already used it (a concurrent request with the same key won): the caller replays the winner. */
const keyRaced = () => conflict("another request with this Idempotency-Key was answered first");

export function connectionsStore(db: SqlDriver): ConnectionsStore {
  /**
   * The statements that put `record` (the answering team's) in an answer's
   * unit, before the swap: the row lock on MySQL, then the record, written
   * only while the invitation still has status `previous`.
   */
  const guardedRecord = (inv: Invitation, previous: InvitationStatus, record: IdempotencyRecord): Statement[] => {
    const team = inv.answeredBy?.team;
    if (!team) throw new Error("an answer's record takes an answered invitation");
    const guard: Guard = {
      sql: "EXISTS (SELECT 1 FROM connect_invitations g WHERE g.from_team = ? AND g.id = ? AND g.status = ?)",
      params: [inv.fromTeam, inv.id, previous],
    };
    const lock: Statement[] =
      db.dialect === "mysql"
        ? [
            {
              sql: "SELECT id FROM connect_invitations WHERE from_team = ? AND id = ? FOR UPDATE",
              params: [inv.fromTeam, inv.id],
            },
          ]
        : [];
    return [...lock, ...idempotencyInsert(team, record, guard)];
  };

  const oneInvitation = async (sql: string, params: unknown[]) => {
    const [row] = await db.all(sql, params);
    return row ? invitationOf(row) : null;
  };
  const oneConnection = async (sql: string, params: unknown[]) => {
    const [row] = await db.all(sql, params);
    return row ? connectionOf(row) : null;
  };

  return {
    idempotencyRecord: idempotencyKeys(db).idempotencyRecord,

    async insertInvitation(inv, record) {
      const insert: Statement = {
        sql: `INSERT INTO connect_invitations (${INVITATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        params: [
          inv.fromTeam,
          inv.id,
          inv.fromUser,
          inv.codeHash,
          inv.status,
          inv.createdAt,
          inv.expiresAt,
          inv.answeredBy?.team ?? null,
          inv.answeredBy?.user ?? null,
          inv.answeredBy?.at ?? null,
        ],
      };
      if (!record) {
        await db.run(insert.sql, insert.params);
        return;
      }
      try {
        // The inviting team's key, in the insert's unit: a second request
        // with the same key fails whole on it and adds no invitation.
        await db.atomic([...idempotencyInsert(inv.fromTeam, record), insert]);
      } catch (error) {
        if (error instanceof UniqueViolation) throw keyRaced();
        throw error;
      }
    },

    invitationByCode(codeHash) {
      return oneInvitation(`SELECT ${INVITATION_COLUMNS} FROM connect_invitations WHERE code_hash = ?`, [codeHash]);
    },

    invitationOf(fromTeam, id) {
      return oneInvitation(`SELECT ${INVITATION_COLUMNS} FROM connect_invitations WHERE from_team = ? AND id = ?`, [
        fromTeam,
        id,
      ]);
    },

    async invitations(fromTeam, limit, after) {
      const page = keyset("created_at", after);
      const rows = await db.all(
        `SELECT ${INVITATION_COLUMNS} FROM connect_invitations WHERE from_team = ?${page.clause}
         ORDER BY created_at DESC, id DESC LIMIT ?`,
        [fromTeam, ...page.params, limit + 1],
      );
      return pageOf(rows.map(invitationOf), limit, (i) => ({ at: i.createdAt, id: i.id }));
    },

    async updateInvitation(inv, previous, record) {
      const swap: Statement = {
        sql: `UPDATE connect_invitations SET status = ?, answered_team = ?, answered_user = ?, answered_at = ?
         WHERE from_team = ? AND id = ? AND status = ?`,
        params: [
          inv.status,
          inv.answeredBy?.team ?? null,
          inv.answeredBy?.user ?? null,
          inv.answeredBy?.at ?? null,
          inv.fromTeam,
          inv.id,
          previous,
        ],
      };
      if (!record) {
        const { changes } = await db.run(swap.sql, swap.params);
        return changes === 1;
      }
      const statements = [...guardedRecord(inv, previous, record), swap];
      try {
        const results = await db.atomic(statements);
        return results[statements.indexOf(swap)]?.changes === 1;
      } catch (error) {
        if (error instanceof UniqueViolation) throw keyRaced();
        throw error;
      }
    },

    async accept(inv, conn, record): Promise<AcceptOutcome> {
      const answered = inv.answeredBy;
      if (inv.status !== "accepted" || !answered) throw new Error("accept() takes an accepted invitation");
      const [low, high] = pairOf(conn.inviter, conn.invitee);
      // The accepting team's record, if any, goes first (guarded like the claim
      // below); its key already taken fails the unit as a second live pair does.
      const keyed = record ? guardedRecord(inv, "pending", record) : [];
      try {
        const results = await db.atomic([
          ...keyed,
          {
            sql: `UPDATE connect_invitations
                  SET status = 'accepted', answered_team = ?, answered_user = ?, answered_at = ?, connection_id = ?
                  WHERE from_team = ? AND id = ? AND status = 'pending'`,
            params: [answered.team, answered.user, answered.at, conn.id, inv.fromTeam, inv.id],
          },
          // From the row the update above just wrote, and from no other: an
          // accept that lost the invitation finds no row tagged with its id.
          {
            sql: `INSERT INTO connections (id, inviter, invitee, team_low, team_high, live, status, invitation_id,
                    requested_user, requested_at, accepted_user, accepted_at)
                  SELECT ?, ?, ?, ?, ?, 1, 'accepted', id, from_user, created_at, answered_user, answered_at
                  FROM connect_invitations WHERE from_team = ? AND id = ? AND connection_id = ?`,
            params: [conn.id, conn.inviter, conn.invitee, low, high, inv.fromTeam, inv.id, conn.id],
          },
          // Both teams' admin-search documents: queued with the connection.
          ...pairRefresh(db.dialect, conn.inviter, conn.invitee, answered.at),
        ]);
        const claimed = results[keyed.length];
        return (claimed?.changes ?? 0) === 1 ? "accepted" : "gone";
      } catch (error) {
        if (error instanceof UniqueViolation) return "pair_taken";
        throw error;
      }
    },

    liveConnection(teamA, teamB) {
      const [low, high] = pairOf(teamA, teamB);
      return oneConnection(
        `SELECT ${CONNECTION_COLUMNS} FROM connections WHERE team_low = ? AND team_high = ? AND live = 1`,
        [low, high],
      );
    },

    async everConnected(teamA, teamB) {
      const [low, high] = pairOf(teamA, teamB);
      // Along the unique key's (team_low, team_high) prefix: one index probe, whatever `live` holds.
      const rows = await db.all("SELECT 1 AS one FROM connections WHERE team_low = ? AND team_high = ? LIMIT 1", [
        low,
        high,
      ]);
      return rows.length > 0;
    },

    connectionFor(team, id) {
      return oneConnection(
        `SELECT ${CONNECTION_COLUMNS} FROM connections WHERE id = ? AND (inviter = ? OR invitee = ?)`,
        [id, team, team],
      );
    },

    async connections(team, limit, after) {
      // One ordered, limited read per side, each along its own index, merged:
      // an OR over the two columns would read every connection of the team.
      const page = keyset("accepted_at", after);
      const side = (column: "inviter" | "invitee") =>
        `SELECT * FROM (SELECT ${CONNECTION_COLUMNS} FROM connections WHERE ${column} = ?${page.clause}
           ORDER BY accepted_at DESC, id DESC LIMIT ?) AS ${column}_side`;
      const rows = await db.all(
        `${side("inviter")} UNION ALL ${side("invitee")} ORDER BY accepted_at DESC, id DESC LIMIT ?`,
        [team, ...page.params, limit + 1, team, ...page.params, limit + 1, limit + 1],
      );
      return pageOf(rows.map(connectionOf), limit, (c) => ({ at: c.acceptedBy.at, id: c.id }));
    },

    async disconnect(conn) {
      const ended = conn.disconnectedBy;
      if (conn.status !== "disconnected" || !ended) throw new Error("disconnect() takes a disconnected connection");
      const [disconnected] = await db.atomic([
        {
          sql: `UPDATE connections SET status = 'disconnected', live = NULL,
             disconnected_team = ?, disconnected_user = ?, disconnected_at = ?
           WHERE id = ? AND status = 'accepted'`,
          params: [ended.team, ended.user, ended.at, conn.id],
        },
        // Its open shared-channel invitations close in the same unit: an
        // accepted one is ended (and not yet applied: the channel leaves both
        // teams next, src/connect/shared-channels-service.ts), a pending one
        // cancelled. `applied` and the end are set before `status`, which
        // they read: MySQL assigns left to right and later terms see the new
        // values (SQLite reads the old row throughout).
        {
          sql: `UPDATE shared_channel_invites SET
             applied = CASE WHEN status = 'accepted' THEN 0 ELSE 1 END,
             ended_team = CASE WHEN status = 'accepted' THEN ? ELSE NULL END,
             ended_at = CASE WHEN status = 'accepted' THEN ? ELSE NULL END,
             status = CASE WHEN status = 'accepted' THEN 'ended' ELSE 'cancelled' END,
             live = NULL, updated_at = ?
           WHERE connection_id = ? AND live = 1`,
          params: [ended.team, ended.at, ended.at, conn.id],
        },
        ...pairRefresh(db.dialect, conn.inviter, conn.invitee, ended.at),
      ]);
      return disconnected?.changes === 1;
    },
  };
}
