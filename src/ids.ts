// Slack-style ids: a type letter and 10 Crockford base32 characters (50 bits).
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export function newId(prefix: "T" | "U"): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  let out = prefix;
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}

/**
 * The same id for the same seed, every time (SHA-256 of it, in the same
 * alphabet): an import retried with its key gives the users it names
 * without ids the ids the first attempt staged them under.
 */
export async function idFromSeed(prefix: "T" | "U", seed: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(seed)));
  let out = prefix;
  for (const b of digest.subarray(0, 10)) out += ALPHABET[b & 31];
  return out;
}
