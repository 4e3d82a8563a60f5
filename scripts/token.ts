import { parseArgs } from "node:util";
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, signToken } from "../src/auth/tokens";
import { ensureJwtSecret } from "./dev-vars";

// npm run token -- --team T --user U [--ttl SECONDS]
// Signs an access token with JWT_SECRET from the environment, else from
// .dev.vars. A token names a user and nothing else: what the user may do
// (member, admin, owner; active or not) is the team's live state. The
// platform operator is the identity PLATFORM_OPERATORS lists
// (TPLATFORM:UOPERATOR locally).

const { values } = parseArgs({
  options: {
    team: { type: "string" },
    user: { type: "string" },
    ttl: { type: "string", default: String(DEFAULT_TOKEN_TTL_SECONDS) },
  },
});
const ttl = Number(values.ttl);
if (!values.team || !values.user || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
  console.error(`usage: npm run token -- --team T --user U [--ttl SECONDS (1..${MAX_TOKEN_TTL_SECONDS})]`);
  process.exit(2);
}
const secret = process.env.JWT_SECRET || ensureJwtSecret();
console.log(await signToken({ team: values.team, user: values.user, ttlSeconds: ttl }, secret));
