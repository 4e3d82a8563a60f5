// Secrets are not in wrangler.toml, so `wrangler types` cannot see them.
interface Env {
  /** HS256 key for client tokens (`wrangler secret put JWT_SECRET`). */
  JWT_SECRET: string;
  /** PlanetScale connection URL when STORAGE = "planetscale". */
  DATABASE_URL?: string;
}
