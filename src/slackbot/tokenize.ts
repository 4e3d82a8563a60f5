// The classifier's tokenization, the same rule as training/slackbot/text.py
// (the manifest's `tokenizer` names it; models/slackbot/parity.json checks
// both on the same texts): ASCII letters lowered, tokens are the maximal runs
// of [a-z0-9], tokens shorter than two characters dropped.

export interface TokenizerSpec {
  lowercase: "ascii";
  pattern: "[a-z0-9]+";
  min_length: number;
}

export function tokenize(text: string, minLength = 2): string[] {
  const lowered = text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
  return (lowered.match(/[a-z0-9]+/g) ?? []).filter((t) => t.length >= minLength);
}

/** Term counts over a vocabulary (token → column): the model's input row. */
export function termCounts(tokens: readonly string[], index: ReadonlyMap<string, number>): Float32Array {
  const row = new Float32Array(index.size);
  for (const t of tokens) {
    const j = index.get(t);
    if (j !== undefined) row[j] = (row[j] ?? 0) + 1;
  }
  return row;
}
