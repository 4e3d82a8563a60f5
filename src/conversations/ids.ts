import { badRequest } from "../errors";

// Message ids and history cursors.
//
// A message id is the time its conversation accepted it, in milliseconds,
// times 1,000, plus a sequence: 16 digits that sort as the messages were
// accepted. The conversation keeps its last id and gives the next one
// max(now × 1000, last + 1), so ids stay unique and increasing within a
// conversation even for a thousand messages in one millisecond or a clock
// that steps back. A history cursor names the last id a page showed; the
// next page is what is older than it, so messages arriving meanwhile (always
// newer) never shift a page, and the cursor stays valid after that message
// is deleted or trimmed.

const DIGITS = 16;
const ID = /^\d{16}$/;

/** The id after `last` (0: none yet) for a message accepted at `now` (ms). */
export function nextMessageId(last: number, now: number): number {
  return Math.max(Math.floor(now) * 1000, last + 1);
}

export function formatMessageId(n: number): string {
  return String(n).padStart(DIGITS, "0");
}

/** The number of a well-formed message id; null for anything else (which names no message). */
export function parseMessageId(id: string): number | null {
  if (!ID.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}

const CURSOR_PREFIX = "h1.";

/** An opaque cursor: the page continues with messages older than `before`. */
export function encodeCursor(before: number): string {
  return `${CURSOR_PREFIX}${btoa(`before:${formatMessageId(before)}`).replaceAll("=", "")}`;
}

/** The id a cursor continues before; a cursor this code did not make is a 400. */
export function decodeCursor(cursor: string): number {
  if (cursor.startsWith(CURSOR_PREFIX)) {
    let text = "";
    try {
      text = atob(cursor.slice(CURSOR_PREFIX.length));
    } catch {
      text = "";
    }
    const match = /^before:(\d{16})$/.exec(text);
    const n = match?.[1] === undefined ? null : parseMessageId(match[1]);
    if (n !== null) return n;
  }
  throw badRequest("cursor is not one this API gave out");
}
