// Secrets are not in wrangler.toml, so `wrangler types` cannot see them.
interface Env {
  /** HS256 key for client tokens (`wrangler secret put JWT_SECRET`). */
  JWT_SECRET: string;
  /** PlanetScale connection URL when STORAGE = "planetscale". */
  DATABASE_URL?: string;
  /** The Slack app's signing secret (POST /slack/events); comma-separated while one is rotated out. */
  SLACK_SIGNING_SECRET?: string;
  /** The Slack app's OAuth client (GET /slack/install, /slack/oauth/callback). */
  SLACK_CLIENT_ID?: string;
  SLACK_CLIENT_SECRET?: string;
  /** When set, bot tokens are stored sealed (AES-GCM) under a key derived from it. */
  SLACK_TOKEN_KEY?: string;
}
