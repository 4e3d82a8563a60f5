import type { ConnectionFacts, ConnectionFactsSource } from "../src/connect/index-feed";
import { inListSize, num } from "./portable-sql";
import type { Row, SqlDriver } from "./sql-driver";

// What a team's admin-search documents are computed from (src/connect/index-feed.ts),
// read from the source of truth on either engine: the team's connections, each
// partner's name and claimed domains, and each connection's shared-channel
// invitations counted (accepted: channels shared; pending: waiting for an answer).
// A page of the team's connections in id order is two ordered, limited reads,
// one per side along (inviter, id) and (invitee, id), merged; named partners are
// found along the unique pair key.

function factsSelect(where: string): string {
  return `SELECT k.id, k.status, k.accepted_at, p.id AS partner_id, p.name AS partner_name,
      p.claimed_domains AS partner_domains,
      (SELECT COUNT(*) FROM shared_channel_invites s WHERE s.connection_id = k.id AND s.status = 'accepted') AS channels,
      (SELECT COUNT(*) FROM shared_channel_invites s WHERE s.connection_id = k.id AND s.status = 'pending') AS pending
    FROM connections k JOIN teams p ON p.id = CASE WHEN k.inviter = ? THEN k.invitee ELSE k.inviter END
    WHERE ${where}`;
}

function factsOf(r: Row): ConnectionFacts {
  let domains: string[] = [];
  try {
    const parsed: unknown = JSON.parse(String(r.partner_domains));
    if (Array.isArray(parsed)) domains = parsed.map(String);
  } catch {
    // A team row whose domains do not parse has none to search by.
  }
  return {
    connectionId: String(r.id),
    partnerId: String(r.partner_id),
    partnerName: String(r.partner_name),
    partnerDomains: domains,
    status: r.status === "accepted" ? "accepted" : "disconnected",
    connectedAt: num(r.accepted_at),
    channelCount: num(r.channels),
    pendingInvitations: num(r.pending),
  };
}

export function connectionFacts(db: SqlDriver): ConnectionFactsSource {
  return {
    async facts(team, partners, afterId, limit) {
      if (partners === null) {
        const after = afterId === null ? "" : " AND k.id > ?";
        const side = (column: "inviter" | "invitee") =>
          `SELECT * FROM (${factsSelect(`k.${column} = ?${after}`)} ORDER BY k.id LIMIT ?) AS ${column}_side`;
        const params = [team, team, ...(afterId === null ? [] : [afterId]), limit];
        const rows = await db.all(`${side("inviter")} UNION ALL ${side("invitee")} ORDER BY id LIMIT ?`, [
          ...params,
          ...params,
          limit,
        ]);
        return rows.map(factsOf);
      }
      const out: ConnectionFacts[] = [];
      const wanted = [...new Set(partners)].filter((p) => p !== team);
      // Two parameters a partner, three for the rest: within D1's cap per statement.
      const perRead = Math.min(100, inListSize(db.dialect, 3, 2));
      for (let i = 0; i < wanted.length; i += perRead) {
        const chunk = wanted.slice(i, i + perRead);
        const pairs = chunk.map((p) => (team < p ? [team, p] : [p, team]));
        const where = `(${pairs.map(() => "(k.team_low = ? AND k.team_high = ?)").join(" OR ")})${afterId === null ? "" : " AND k.id > ?"}`;
        const rows = await db.all(`${factsSelect(where)} ORDER BY k.id LIMIT ?`, [
          team,
          ...pairs.flat(),
          ...(afterId === null ? [] : [afterId]),
          limit,
        ]);
        out.push(...rows.map(factsOf));
      }
      return out
        .sort((a, b) => (a.connectionId < b.connectionId ? -1 : a.connectionId > b.connectionId ? 1 : 0))
        .slice(0, limit);
    },
  };
}
