import { parseArgs } from "node:util";
import { signToken } from "../src/auth/jwt";
import { ensureJwtSecret } from "./dev-vars";

// npm run token -- --team T --user U [--admin] [--platform] [--ttl SECONDS]
// Signs with JWT_SECRET from the environment, else from .dev.vars.

const { values } = parseArgs({
  options: {
    team: { type: "string" },
    user: { type: "string" },
    admin: { type: "boolean", default: false },
    platform: { type: "boolean", default: false },
    ttl: { type: "string", default: String(30 * 24 * 3600) },
  },
});
if (!values.team || !values.user) {
  console.error("usage: npm run token -- --team T --user U [--admin] [--platform] [--ttl SECONDS]");
  process.exit(2);
}
const scope = [...(values.admin ? ["admin"] : []), ...(values.platform ? ["platform"] : [])];
const secret = process.env.JWT_SECRET || ensureJwtSecret();
console.log(await signToken({ team: values.team, user: values.user, scope, ttlSeconds: Number(values.ttl) }, secret));
