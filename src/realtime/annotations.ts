// Just-in-time annotation: a client with a partial directory cache must be
// able to render every message it receives, so before a message that names
// a user (its author, its mentions) the gateway sends that user's profile to
// every socket it has not sent it to yet. What a socket was sent is kept in
// the gateway's memory only: after a wake-up from hibernation a profile may
// be sent again (harmless: clients upsert), never skipped.

/** Profiles remembered per socket; beyond this the memory starts over (resending is safe). */
export const MAX_REMEMBERED_PROFILES = 5_000;

/**
 * Events whose users a client renders: a message and its edit (author and
 * mentions: an edit may mention someone new), and a reaction (who reacted).
 */
const NAMING = new Set(["message", "message_changed", "reaction_added", "reaction_removed"]);

/** The users a topic event names, for events that need them rendered; [] for the rest. */
export function usersNamedBy(event: unknown): string[] {
  if (typeof event !== "object" || event === null) return [];
  const e = event as { type?: unknown; user?: unknown; mentions?: unknown };
  if (typeof e.type !== "string" || !NAMING.has(e.type)) return [];
  const out: string[] = [];
  if (typeof e.user === "string") out.push(e.user);
  if (Array.isArray(e.mentions)) for (const m of e.mentions) if (typeof m === "string") out.push(m);
  return [...new Set(out)];
}

/** Cheap test before parsing: only those events are annotated. */
export function mayNameUsers(json: string): boolean {
  return json.includes('"type":"message') || json.includes('"type":"reaction_');
}

/** Records that a socket was sent a profile, bounding the memory. */
export function remember(sent: Set<string>, user: string): void {
  if (sent.size >= MAX_REMEMBERED_PROFILES) sent.clear();
  sent.add(user);
}
