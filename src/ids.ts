// Slack-style ids: a type letter and 10 Crockford base32 characters (50 bits).
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export function newId(prefix: "T" | "U"): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  let out = prefix;
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}
