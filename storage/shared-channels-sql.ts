import type { SharedChannelInvite, SharedChannelStatus } from "../src/connect/shared-channels";
import type { InsertOutcome, SharedChannelsStore } from "../src/connect/shared-channels-store";
import { pairRefresh } from "./connect-index-queue-sql";
import { keyset, pageOf } from "./keyset-pages";
import { num, numOrNull } from "./portable-sql";
import { type Row, type SqlDriver, UniqueViolation } from "./sql-driver";

// SharedChannelsStore on either engine, the same SQL on both. The database
// settles the races (src/connect/shared-channels-store.ts): the insert reads
// its connection in the same statement (INSERT … SELECT … WHERE live = 1),
// the unique key over (host_team, channel_id, guest_team, live) admits one
// open invitation per channel and partner, and every status change is a
// compare-and-set on the status read (an accept also on the connection
// still being live, so it cannot slip past a disconnect).

const COLUMNS = `id, connection_id, host_team, guest_team, channel_id, channel_name, status, live, created_user,
  created_at, answered_user, answered_at, auto_approved, ended_team, ended_user, ended_at, applied, updated_at`;

const STATUSES: readonly SharedChannelStatus[] = ["pending", "accepted", "declined", "cancelled", "ended"];

function statusOf(v: unknown): SharedChannelStatus {
  const status = STATUSES.find((s) => s === v);
  if (!status) throw new Error(`corrupt shared-channel invitation status in storage: ${String(v)}`);
  return status;
}

/** Open (counted by the unique key) while pending or accepted. */
const liveOf = (status: SharedChannelStatus) => (status === "pending" || status === "accepted" ? 1 : null);

function inviteOf(r: Row): SharedChannelInvite {
  const answeredAt = numOrNull(r.answered_at);
  const endedAt = numOrNull(r.ended_at);
  const userOrNull = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    id: String(r.id),
    connectionId: String(r.connection_id),
    hostTeam: String(r.host_team),
    guestTeam: String(r.guest_team),
    channel: { id: String(r.channel_id), name: String(r.channel_name) },
    status: statusOf(r.status),
    createdBy: { user: String(r.created_user), at: num(r.created_at) },
    answeredBy:
      answeredAt === null
        ? null
        : { user: userOrNull(r.answered_user), at: answeredAt, auto: num(r.auto_approved) === 1 },
    endedBy: endedAt === null ? null : { team: String(r.ended_team), user: userOrNull(r.ended_user), at: endedAt },
    applied: num(r.applied) === 1,
    updatedAt: num(r.updated_at),
  };
}

export function sharedChannelsStore(db: SqlDriver): SharedChannelsStore {
  const some = async (sql: string, params: unknown[]) => (await db.all(sql, params)).map(inviteOf);
  const one = async (sql: string, params: unknown[]) => (await some(sql, params))[0] ?? null;

  return {
    async channelOf(team, channelId) {
      const [r] = await db.all("SELECT id, name, is_private, is_archived FROM channels WHERE team_id = ? AND id = ?", [
        team,
        channelId,
      ]);
      return r
        ? {
            id: String(r.id),
            name: String(r.name),
            isPrivate: num(r.is_private) === 1,
            isArchived: num(r.is_archived) === 1,
          }
        : null;
    },

    async memberTeamOf(team, channelId, user) {
      const [r] = await db.all(
        "SELECT user_team_id FROM memberships WHERE team_id = ? AND channel_id = ? AND user_id = ?",
        [team, channelId, user],
      );
      return r ? String(r.user_team_id) : null;
    },

    async insert(inv): Promise<InsertOutcome> {
      try {
        // From the connection's row, and only while it is live: a disconnect
        // that committed first leaves nothing to select, so nothing is inserted.
        const [inserted] = await db.atomic([
          {
            sql: `INSERT INTO shared_channel_invites (${COLUMNS})
             SELECT ?, id, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0, NULL, NULL, NULL, ?, ?
             FROM connections WHERE id = ? AND live = 1`,
            params: [
              inv.id,
              inv.hostTeam,
              inv.guestTeam,
              inv.channel.id,
              inv.channel.name,
              inv.status,
              liveOf(inv.status),
              inv.createdBy.user,
              inv.createdBy.at,
              inv.applied ? 1 : 0,
              inv.updatedAt,
              inv.connectionId,
            ],
          },
          // The pending count in both teams' admin-search documents.
          ...pairRefresh(db.dialect, inv.hostTeam, inv.guestTeam, inv.updatedAt),
        ]);
        return inserted?.changes === 1 ? "inserted" : "connection_ended";
      } catch (error) {
        if (error instanceof UniqueViolation) return "already_open";
        throw error;
      }
    },

    inviteFor(team, id) {
      return one(`SELECT ${COLUMNS} FROM shared_channel_invites WHERE id = ? AND (host_team = ? OR guest_team = ?)`, [
        id,
        team,
        team,
      ]);
    },

    openInvite(hostTeam, channelId, guestTeam) {
      return one(
        `SELECT ${COLUMNS} FROM shared_channel_invites
         WHERE host_team = ? AND channel_id = ? AND guest_team = ? AND live = 1`,
        [hostTeam, channelId, guestTeam],
      );
    },

    async sharedWith(hostTeam, channelId) {
      const rows = await db.all(
        `SELECT guest_team FROM shared_channel_invites
         WHERE host_team = ? AND channel_id = ? AND live = 1 AND status = 'accepted'`,
        [hostTeam, channelId],
      );
      return rows.map((r) => String(r.guest_team));
    },

    async invites(team, limit, after) {
      // One ordered, limited read per side along its own index, merged (as
      // storage/connections-sql.ts lists connections).
      const page = keyset("created_at", after);
      const side = (column: "host_team" | "guest_team") =>
        `SELECT * FROM (SELECT ${COLUMNS} FROM shared_channel_invites WHERE ${column} = ?${page.clause}
           ORDER BY created_at DESC, id DESC LIMIT ?) AS ${column}_side`;
      const rows = await some(
        `${side("host_team")} UNION ALL ${side("guest_team")} ORDER BY created_at DESC, id DESC LIMIT ?`,
        [team, ...page.params, limit + 1, team, ...page.params, limit + 1, limit + 1],
      );
      return pageOf(rows, limit, (i) => ({ at: i.createdBy.at, id: i.id }));
    },

    async update(inv, previous) {
      // Accepting also needs the connection still live: an accept racing a
      // disconnect either lands first (and the disconnect ends it) or finds
      // the invitation cancelled by it.
      const live =
        inv.status === "accepted" && previous === "pending"
          ? " AND EXISTS (SELECT 1 FROM connections k WHERE k.id = ? AND k.live = 1)"
          : "";
      const [updated] = await db.atomic([
        {
          sql: `UPDATE shared_channel_invites SET status = ?, live = ?, answered_user = ?, answered_at = ?, auto_approved = ?,
             ended_team = ?, ended_user = ?, ended_at = ?, applied = ?, updated_at = ?
           WHERE id = ? AND status = ?${live}`,
          params: [
            inv.status,
            liveOf(inv.status),
            inv.answeredBy?.user ?? null,
            inv.answeredBy?.at ?? null,
            inv.answeredBy?.auto ? 1 : 0,
            inv.endedBy?.team ?? null,
            inv.endedBy?.user ?? null,
            inv.endedBy?.at ?? null,
            inv.applied ? 1 : 0,
            inv.updatedAt,
            inv.id,
            previous,
            ...(live ? [inv.connectionId] : []),
          ],
        },
        // The channel and pending counts in both teams' admin-search documents.
        ...pairRefresh(db.dialect, inv.hostTeam, inv.guestTeam, inv.updatedAt),
      ]);
      return updated?.changes === 1;
    },

    pendingFor(guestTeam, hostTeam, limit) {
      const host = hostTeam === null ? "" : " AND host_team = ?";
      return some(
        `SELECT ${COLUMNS} FROM shared_channel_invites WHERE guest_team = ? AND status = 'pending'${host}
         ORDER BY created_at, id LIMIT ?`,
        [guestTeam, ...(hostTeam === null ? [] : [hostTeam]), limit],
      );
    },

    async markApplied(id, status) {
      await db.run("UPDATE shared_channel_invites SET applied = 1 WHERE id = ? AND status = ?", [id, status]);
    },

    unapplied(before, limit) {
      return some(
        `SELECT ${COLUMNS} FROM shared_channel_invites WHERE applied = 0 AND updated_at <= ?
         ORDER BY updated_at, id LIMIT ?`,
        [before, limit],
      );
    },

    unappliedOf(connectionId) {
      return some(
        `SELECT ${COLUMNS} FROM shared_channel_invites WHERE connection_id = ? AND applied = 0 ORDER BY updated_at, id`,
        [connectionId],
      );
    },
  };
}
