import { existsSync, readFileSync, writeFileSync } from "node:fs";

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

export function ensureJwtSecret(): string {
  const vars = readDevVars();
  if (vars.JWT_SECRET) return vars.JWT_SECRET;
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
  const existing = existsSync(FILE) ? readFileSync(FILE, "utf8") : "";
  writeFileSync(FILE, `${existing}${existing && !existing.endsWith("\n") ? "\n" : ""}JWT_SECRET="${secret}"\n`);
  return secret;
}
