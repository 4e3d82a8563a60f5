import type {
  ClaimOutcome,
  InstallationView,
  SlackEventLog,
  SlackInstallation,
  SlackInstallations,
} from "../src/slackbot/store";
import { num } from "./portable-sql";
import type { SqlDriver } from "./sql-driver";

// The Slack bot's tables (storage/schema: slack_installations, slack_events)
// on either engine. Every claim step is one statement, so two deliveries of
// one event racing each other cannot both take it.

const DETAIL_MAX = 400;

export function slackInstallationsStore(db: SqlDriver): SlackInstallations {
  return {
    async put(i: SlackInstallation) {
      const upsert =
        db.dialect === "sqlite"
          ? `ON CONFLICT (team_id) DO UPDATE SET bot_token = excluded.bot_token, bot_user_id = excluded.bot_user_id,
             app_id = excluded.app_id, installed_at = excluded.installed_at`
          : `ON DUPLICATE KEY UPDATE bot_token = VALUES(bot_token), bot_user_id = VALUES(bot_user_id),
             app_id = VALUES(app_id), installed_at = VALUES(installed_at)`;
      await db.run(
        `INSERT INTO slack_installations (team_id, bot_token, bot_user_id, app_id, installed_at) VALUES (?, ?, ?, ?, ?) ${upsert}`,
        [i.teamId, i.botToken, i.botUserId, i.appId, i.installedAt],
      );
    },

    async get(teamId) {
      const [r] = await db.all(
        "SELECT team_id, bot_token, bot_user_id, app_id, installed_at FROM slack_installations WHERE team_id = ?",
        [teamId],
      );
      if (!r) return null;
      return {
        teamId: String(r.team_id),
        botToken: String(r.bot_token),
        botUserId: String(r.bot_user_id),
        appId: String(r.app_id),
        installedAt: num(r.installed_at),
      };
    },

    async list(limit) {
      const rows = await db.all(
        "SELECT team_id, bot_user_id, app_id, installed_at FROM slack_installations ORDER BY team_id LIMIT ?",
        [limit],
      );
      return rows.map(
        (r): InstallationView => ({
          teamId: String(r.team_id),
          botUserId: String(r.bot_user_id),
          appId: String(r.app_id),
          installedAt: num(r.installed_at),
        }),
      );
    },
  };
}

export function slackEventLog(db: SqlDriver): SlackEventLog {
  return {
    async claim(eventId, teamId, now, staleBefore): Promise<ClaimOutcome> {
      const ignore =
        db.dialect === "sqlite" ? "ON CONFLICT (event_id) DO NOTHING" : "ON DUPLICATE KEY UPDATE event_id = event_id";
      const inserted = await db.run(
        `INSERT INTO slack_events (event_id, team_id, state, attempts, claimed_at) VALUES (?, ?, 'claimed', 1, ?) ${ignore}`,
        [eventId, teamId, now],
      );
      if (inserted.changes === 1) return { outcome: "claimed", attempts: 1 };
      // A failed try, or a claim whose holder crashed, is taken again (one statement: one winner).
      const retaken = await db.run(
        `UPDATE slack_events SET state = 'claimed', claimed_at = ?, attempts = attempts + 1, finished_at = NULL
         WHERE event_id = ? AND (state = 'failed' OR (state = 'claimed' AND claimed_at < ?))`,
        [now, eventId, staleBefore],
      );
      const [row] = await db.all("SELECT state, attempts FROM slack_events WHERE event_id = ?", [eventId]);
      if (retaken.changes === 1) return { outcome: "claimed", attempts: num(row?.attempts ?? 1) };
      return row && (row.state === "replied" || row.state === "dead") ? { outcome: "done" } : { outcome: "busy" };
    },

    async finish(eventId, state, detail, now) {
      await db.run("UPDATE slack_events SET state = ?, detail = ?, finished_at = ? WHERE event_id = ?", [
        state,
        detail === null ? null : detail.slice(0, DETAIL_MAX),
        now,
        eventId,
      ]);
    },

    async purge(before, limit) {
      // SQLite (as D1 builds it) has no DELETE ... LIMIT: it picks rowids.
      const sql =
        db.dialect === "sqlite"
          ? `DELETE FROM slack_events WHERE rowid IN (SELECT rowid FROM slack_events
             WHERE claimed_at < ? AND state IN ('replied', 'dead') ORDER BY claimed_at LIMIT ?)`
          : "DELETE FROM slack_events WHERE claimed_at < ? AND state IN ('replied', 'dead') ORDER BY claimed_at LIMIT ?";
      const { changes } = await db.run(sql, [before, limit]);
      return changes;
    },
  };
}
