// Case- and accent-insensitive matching: "Zoë" and "zoe" index the same way.

export function fold(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase();
}

/** The words a name can be found by: each word, plus the whole folded name. */
export function searchWords(...texts: string[]): string[] {
  const out = new Set<string>();
  for (const t of texts) {
    const folded = fold(t).trim();
    if (!folded) continue;
    for (const w of folded.split(/[^\p{L}\p{N}]+/u)) if (w) out.add(w);
    out.add(folded.replace(/\s+/g, " "));
  }
  return [...out];
}

/** Query tokens, longest first: the longest is the most selective for the index scan. */
export function queryTokens(q: string): string[] {
  return [
    ...new Set(
      fold(q)
        .split(/[^\p{L}\p{N}]+/u)
        .filter(Boolean),
    ),
  ].sort((a, b) => b.length - a.length);
}

/** Upper bound for a prefix range scan: every string starting with `prefix` sorts below it. */
export function prefixEnd(prefix: string): string {
  return `${prefix}\uffff`;
}

/** Text that later tokens are checked against: " word word ..." so " tok" finds word starts. */
export function searchText(words: string[]): string {
  return ` ${words.join(" ")}`;
}

/**
 * Prefixes up to this many characters are indexed in rank order
 * (user_prefixes, channel_prefixes): a query token that short is answered by
 * one index range read in output order, and a longer one walks its first
 * PREFIX_LEN characters' range, which is already mostly its matches.
 */
export const PREFIX_LEN = 3;

/** The indexed prefix of a token: its first PREFIX_LEN characters (code points, as SQLite's substr counts them). */
export function prefixOf(token: string): string {
  return [...token].slice(0, PREFIX_LEN).join("");
}

/**
 * The prefixes a query token can look up among these words: each word's first
 * 1..PREFIX_LEN characters, letters and digits only. SCHEMA's triggers also
 * store the prefixes of whole handles ("li." of "li.wang.2k"), which no token
 * (letters and digits) can ever equal; a MySQL copy must leave them out, as
 * its PAD SPACE collations take "li " for "li".
 */
export function wordPrefixes(words: string[]): string[] {
  const out = new Set<string>();
  for (const w of words) {
    const chars = [...w];
    for (let n = 1; n <= Math.min(PREFIX_LEN, chars.length); n++) {
      const prefix = chars.slice(0, n).join("");
      if (/^[\p{L}\p{N}]+$/u.test(prefix)) out.add(prefix);
    }
  }
  return [...out];
}
