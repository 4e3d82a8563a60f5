// The bot's storage ports (storage/slackbot-sql.ts implements them on D1 and
// MySQL): the workspaces it is installed in, with their bot tokens, and the
// events it has taken, so a retried or duplicated delivery is answered once.

export interface SlackInstallation {
  /** Slack's team_id: the workspace. */
  teamId: string;
  /** xoxb-…; stored sealed when SLACK_TOKEN_KEY is set (token-seal.ts). Never logged, never returned by a route. */
  botToken: string;
  botUserId: string;
  appId: string;
  installedAt: number;
}

/** An installation as routes show it: everything but the token. */
export type InstallationView = Omit<SlackInstallation, "botToken">;

export interface SlackInstallations {
  /** Inserts or replaces the workspace's installation (a reinstall brings a new token). */
  put(installation: SlackInstallation): Promise<void>;
  get(teamId: string): Promise<SlackInstallation | null>;
  list(limit: number): Promise<InstallationView[]>;
}

/**
 * What a claim found: `claimed` (this delivery answers it: the first, or one
 * after a crash whose claim went stale, or after a failed try), `done` (it was
 * answered, or dead-lettered, already) or `busy` (another delivery holds a
 * fresh claim: try again after it).
 */
export type ClaimOutcome = { outcome: "claimed"; attempts: number } | { outcome: "done" } | { outcome: "busy" };

export type EventEnd = "replied" | "failed" | "dead";

export interface SlackEventLog {
  /** Atomically takes an event id; a claim older than `staleBefore` (ms) or a failed one is taken again. */
  claim(eventId: string, teamId: string, now: number, staleBefore: number): Promise<ClaimOutcome>;
  /** Ends a claim: replied (a duplicate is now `done`), failed (a retry takes it again) or dead (never again). */
  finish(eventId: string, state: EventEnd, detail: string | null, now: number): Promise<void>;
  /** Deletes up to `limit` replied or dead events claimed before `before` (ms); returns how many. */
  purge(before: number, limit: number): Promise<number>;
}

/** Events are kept this long, far past Slack's retries (about an hour), then purged by the cron sweep. */
export const EVENT_RETENTION_MS = 7 * 24 * 3600_000;
