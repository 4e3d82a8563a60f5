// The optional secrets, and vars left unset by default. JWT_SECRET, the one the Worker cannot run without,
// is in wrangler.toml's [secrets] required list, so `wrangler types`
// declares it (worker-configuration.d.ts) and `wrangler deploy` refuses to
// deploy until it is set.
interface Env {
  /** PlanetScale connection URL when STORAGE = "planetscale". */
  DATABASE_URL?: string;
  /** The Slack app's signing secret (POST /slack/events); comma-separated while one is rotated out. */
  SLACK_SIGNING_SECRET?: string;
  /** The Slack app's OAuth client (GET /slack/install, /slack/oauth/callback). */
  SLACK_CLIENT_ID?: string;
  SLACK_CLIENT_SECRET?: string;
  /** When set, bot tokens are stored sealed (AES-GCM) under a key derived from it. */
  SLACK_TOKEN_KEY?: string;
  /** Lowers the most ledger rows a full live feature build reads (src/recommend/live-rows.ts LIVE_BUILD_MAX_ROWS). */
  REC_LIVE_MAX_ROWS?: string;
}
