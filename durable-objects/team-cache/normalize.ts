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
