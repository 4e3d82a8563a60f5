import { badRequest } from "../errors";
import type { ConnectionStatus } from "./connections";
import { flattenGroups, mergeGroups, type PrefGroups } from "./prefs/registry";

// The admin search over one team's connections: what a document of the
// index holds, and what a query may ask (text, status, any pref's effective
// value, a sort, a stable cursor). The index itself is a Durable Object's
// SQLite (durable-objects/connect-index/); this is the part that needs none.

/** One connection as the index holds it, from the team's side. */
export interface ConnectionDoc {
  connectionId: string;
  partnerId: string;
  partnerName: string;
  partnerDomains: string[];
  status: ConnectionStatus;
  channelCount: number;
  /** Shared-channel invitations waiting for an answer, either way. */
  pendingInvitations: number;
  connectedAt: number;
  /** Every pref's effective value, flattened (PrefContainer.index): a new pref is indexed without code here. */
  prefs: Record<string, string | number | boolean>;
}

/**
 * A connection as the index stores it: instead of every effective value,
 * the indexed fields of the prefs its own partner level sets. The org
 * level's fields are kept once per index, so an org-level change rewrites
 * one small table, not every connection's document.
 */
export interface IndexedConnection extends Omit<ConnectionDoc, "prefs"> {
  own: PrefGroups;
}

/** The document the search answers: the connection's own groups over the org level's. */
export function effectiveDoc(c: IndexedConnection, org: PrefGroups): ConnectionDoc {
  const { own, ...rest } = c;
  return { ...rest, prefs: flattenGroups(mergeGroups(org, own)) };
}

export type SortKey = "name" | "date" | "channels";

export interface SearchQuery {
  /** Words that must each start a word of the partner's name or domains. */
  words: string[];
  status?: ConnectionStatus;
  /** Effective pref values the connection must have (`pref.<field>=<value>`). */
  prefs: Record<string, string>;
  sort: SortKey;
  order: "asc" | "desc";
  limit: number;
  /** Where the previous page ended: its last (sort value, connection id). */
  after?: { value: string | number; id: string };
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;
const MAX_WORDS = 8;
const MAX_PREF_FILTERS = 10;
const FIELD = /^[a-z][a-z0-9_]{0,63}$/;

/** Every word of a text as the search folds it: letters and digits, lower-cased, accents dropped. */
export function foldedWords(text: string): string[] {
  return (
    text
      .toLowerCase()
      .normalize("NFKD")
      .replace(/\p{M}/gu, "")
      .match(/[\p{L}\p{N}]+/gu) ?? []
  );
}

/** The words of a search text (at most MAX_WORDS of them). */
export function wordsOf(text: string): string[] {
  return foldedWords(text).slice(0, MAX_WORDS);
}

/** A query from URL parameters; bad input is `invalid`, naming the parameter. */
export function parseSearchQuery(params: Record<string, string | undefined>): SearchQuery {
  const q: SearchQuery = {
    words: wordsOf(params.q ?? ""),
    prefs: {},
    sort: "name",
    order: "asc",
    limit: DEFAULT_LIMIT,
  };
  if (params.status !== undefined) {
    if (params.status !== "accepted" && params.status !== "disconnected") {
      throw badRequest('status must be "accepted" or "disconnected"');
    }
    q.status = params.status;
  }
  if (params.sort !== undefined) {
    if (params.sort !== "name" && params.sort !== "date" && params.sort !== "channels") {
      throw badRequest('sort must be "name", "date" or "channels"');
    }
    q.sort = params.sort;
    q.order = params.sort === "name" ? "asc" : "desc";
  }
  if (params.order !== undefined) {
    if (params.order !== "asc" && params.order !== "desc") throw badRequest('order must be "asc" or "desc"');
    q.order = params.order;
  }
  if (params.limit !== undefined) {
    const n = Number(params.limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw badRequest(`limit must be 1 to ${MAX_LIMIT}`);
    q.limit = n;
  }
  for (const [name, value] of Object.entries(params)) {
    if (!name.startsWith("pref.") || value === undefined) continue;
    const field = name.slice(5);
    if (!FIELD.test(field)) throw badRequest(`${name} is not a pref field`);
    q.prefs[field] = value;
  }
  if (Object.keys(q.prefs).length > MAX_PREF_FILTERS) throw badRequest(`at most ${MAX_PREF_FILTERS} pref filters`);
  if (params.cursor !== undefined) q.after = decodeCursor(params.cursor, q);
  return q;
}

/** A page's cursor: the sort it belongs to and where it ended, opaque to clients. */
export function encodeCursor(q: SearchQuery, last: { value: string | number; id: string }): string {
  const json = JSON.stringify({ s: q.sort, o: q.order, v: last.value, i: last.id });
  // UTF-8 first: a name key may hold any letter ("łodz"), and btoa takes Latin-1 only.
  const bytes = new TextEncoder().encode(json);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A cursor's JSON text (UTF-8 under the base64url); null when it is not base64 of UTF-8. */
function cursorText(cursor: string): string | null {
  try {
    const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return null;
  }
}

function decodeCursor(cursor: string, q: SearchQuery): { value: string | number; id: string } {
  let parsed: unknown;
  try {
    const text = cursorText(cursor);
    if (text === null) throw new Error("not a cursor");
    parsed = JSON.parse(text);
  } catch {
    throw badRequest("cursor is not one this API gave");
  }
  const c = parsed as { s?: unknown; o?: unknown; v?: unknown; i?: unknown };
  if (c.s !== q.sort || c.o !== q.order) throw badRequest("cursor belongs to another sort; start again without it");
  if ((typeof c.v !== "string" && typeof c.v !== "number") || typeof c.i !== "string") {
    throw badRequest("cursor is not one this API gave");
  }
  return { value: c.v, id: c.i };
}

/** A pref value as the index stores and compares it. */
export function prefText(value: string | number | boolean): string {
  return String(value);
}

/** The name as sorted: case and accents folded. */
export function nameKey(name: string): string {
  return name.toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
}

/** The index a search asks (a team's ConnectIndex object). */
export interface ConnectionIndex {
  search(q: SearchQuery): Promise<{ items: ConnectionDoc[]; next_cursor: string | null }>;
}

/** A connection as the admin search answers it. */
export function connectionDocView(doc: ConnectionDoc) {
  return {
    connection: doc.connectionId,
    partner: { id: doc.partnerId, name: doc.partnerName, domains: doc.partnerDomains },
    status: doc.status,
    channels: doc.channelCount,
    pending_invitations: doc.pendingInvitations,
    connected_at: doc.connectedAt,
    prefs: doc.prefs,
  };
}

/** The team's admin search: a page of its connections as the query asks, from its own index. */
export async function searchConnections(index: ConnectionIndex, q: SearchQuery) {
  const { items, next_cursor } = await index.search(q);
  return { connections: items.map(connectionDocView), next_cursor };
}
