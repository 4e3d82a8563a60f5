import type { Page, PageAfter } from "../src/connect/connections-store";

// Newest-first keyset paging over (time, id), shared by the Slack Connect
// stores: a page reads `limit + 1` rows, and the position after a page is
// its last row's (time, id), so rows inserted meanwhile never shift a page.

/** A page of `limit` rows from `limit + 1` read: the extra row only says there is more. */
export function pageOf<T>(rows: T[], limit: number, keyOf: (item: T) => PageAfter): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, next: rows.length > limit && last ? keyOf(last) : null };
}

/** Rows strictly after the keyset position in (time DESC, id DESC) order. */
export function keyset(column: string, after: PageAfter | null): { clause: string; params: unknown[] } {
  if (!after) return { clause: "", params: [] };
  return { clause: ` AND (${column} < ? OR (${column} = ? AND id < ?))`, params: [after.at, after.at, after.id] };
}
