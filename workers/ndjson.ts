/** One parsed line of an NDJSON stream (1-based line numbers, blank lines skipped). */
export interface NdjsonLine {
  line: number;
  value?: unknown;
  error?: string;
}

/** Longest line accepted; a longer one is an error rather than unbounded buffering. */
const MAX_LINE = 16 * 1024;

export async function* readNdjson(body: ReadableStream<Uint8Array>): AsyncGenerator<NdjsonLine> {
  const decoder = new TextDecoder();
  let buffer = "";
  let line = 0;
  const parse = (text: string): NdjsonLine => {
    line++;
    if (text.length > MAX_LINE) return { line, error: `line longer than ${MAX_LINE} characters` };
    try {
      return { line, value: JSON.parse(text) };
    } catch {
      return { line, error: "not valid JSON" };
    }
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl = buffer.indexOf("\n");
    while (nl >= 0) {
      const text = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (text) yield parse(text);
      else line++;
      nl = buffer.indexOf("\n");
    }
    if (buffer.length > MAX_LINE) {
      yield parse(buffer);
      return;
    }
  }
  buffer += decoder.decode();
  if (buffer.trim()) yield parse(buffer.trim());
}
