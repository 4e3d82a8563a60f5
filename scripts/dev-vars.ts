import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { MIN_SECRET_BYTES } from "../src/auth/tokens";

// Local secrets live in .dev.vars (git-ignored), which wrangler dev reads.
// A fresh checkout gets a random JWT secret on first start.

const FILE = ".dev.vars";

export function readDevVars(): Record<string, string> {
  if (!existsSync(FILE)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(FILE, "utf8").split("\n")) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*"?([^"]*)"?\s*$/.exec(line);
    if (m?.[1]) vars[m[1]] = m[2] ?? "";
  }
  return vars;
}

/**
 * The local JWT secret: .dev.vars' when it is long enough (the Worker refuses
 * secrets under MIN_SECRET_BYTES), else a new random one written there.
 */
export function ensureJwtSecret(): string {
  const vars = readDevVars();
  if (vars.JWT_SECRET && Buffer.byteLength(vars.JWT_SECRET) >= MIN_SECRET_BYTES) return vars.JWT_SECRET;
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
  const kept = (existsSync(FILE) ? readFileSync(FILE, "utf8") : "")
    .split("\n")
    .filter((line) => line.trim() !== "" && !/^\s*JWT_SECRET\s*=/.test(line));
  writeFileSync(FILE, [...kept, `JWT_SECRET="${secret}"`, ""].join("\n"));
  return secret;
}
