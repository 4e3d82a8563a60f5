import type { Clock } from "../clock";
import { publishChanges } from "../directory/admin";
import type { ConversationKind, ConversationSpec, DirChannel } from "../directory/model";
import type { ChangePublisher } from "../directory/source";
import type { DirectoryWriter } from "../directory/writer";
import { badRequest, notFound } from "../errors";

// DMs and group DMs as directory conversations (issue 21): who is in one and
// what it is called. Message text lives elsewhere (the conversation's own
// storage); this is only identity and membership.
//
// A DM (`im`: the caller and one other, or the caller alone) or group DM
// (`mpim`: 3-8 members) is a private channel row of its kind (storage:
// storage/directory/conversations.ts), so the directory's atomic write path,
// change log, cache feed and private-channel visibility hold for it as they
// are: only its members see it, anywhere (switcher, lookup, header, members,
// boot, its real-time topic).
//
// Identity: the id is the kind's letter and a hash of the team and the
// sorted member ids, so the same members give the same conversation
// whatever their order or whoever opens it, and two racing opens write the
// same primary key (one wins, the other finds it).

/** Most members of a group DM (Slack's limit), the caller included. */
export const MAX_CONVERSATION_MEMBERS = 8;

/** Hash characters in an id (5 bits each: 100 bits, so no two member sets of a team meet by chance). */
const ID_HASH_CHARS = 20;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** A member to open a conversation with: a user of the caller's team, or (refused for now) of another team. */
export interface MemberRef {
  id: string;
  /** The user's team; the caller's team when absent. */
  team?: string;
}

/** What the conversation use cases need: the directory's writes, the team cache's view, the publisher, a clock. */
export interface ConversationDeps {
  directory: Pick<DirectoryWriter, "openConversation" | "leaveConversation">;
  people: ConversationPeople;
  changes: ChangePublisher;
  clock: Clock;
}

/** The caller's view of its team, from its team cache (live state; visibility as every query applies it). */
export interface ConversationPeople {
  /**
   * Of these users, those the viewer may see, with whether each is
   * deactivated (a user the viewer may not see is left out, exactly like
   * one that does not exist). Forbidden when the viewer is no active member.
   */
  visibleUsers(teamId: string, viewerId: string, userIds: string[]): Promise<Array<{ id: string; deleted: boolean }>>;
  /** The kind of a conversation the viewer may see (is in, for a DM), or null. */
  conversationKind(teamId: string, viewerId: string, id: string): Promise<ConversationKind | null>;
}

export interface OpenedConversation {
  id: string;
  kind: Exclude<ConversationKind, "channel">;
  /** Every member's id, sorted. */
  members: string[];
  /** When it was first opened (ms). */
  created: number;
}

/** The id of the conversation of exactly these members in this team. */
export async function conversationId(teamId: string, members: readonly string[]): Promise<string> {
  const sorted = [...new Set(members)].sort();
  const kind = kindFor(sorted.length);
  // Length-prefixed parts: no two (team, members) lists encode alike.
  const text = [teamId, ...sorted].map((p) => `${p.length}:${p}`).join("");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < ID_HASH_CHARS) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
    if (out.length >= ID_HASH_CHARS) break;
  }
  return `${kind === "im" ? "D" : "G"}${out}`;
}

function kindFor(size: number): "im" | "mpim" {
  return size <= 2 ? "im" : "mpim";
}

/**
 * The conversation of `users` and the caller, as the caller may have it:
 * every member an active user of the caller's team it may see (a guest:
 * people it shares a channel with), 1-8 members with the caller. Checked
 * before anything is written.
 */
export async function conversationSpec(
  deps: Pick<ConversationDeps, "people">,
  teamId: string,
  callerId: string,
  users: MemberRef[],
): Promise<ConversationSpec> {
  if (users.length === 0) throw badRequest("users: name at least one user (yourself, for a self-DM)");
  const external = users.filter((u) => u.team !== undefined && u.team !== teamId);
  if (external.length > 0) {
    throw badRequest(
      "DMs with external users need an accepted Slack Connect connection, which conversations do not support yet",
      { users: external.map((u) => `${u.id}@${u.team}`) },
    );
  }
  const members = [...new Set([callerId, ...users.map((u) => u.id)])].sort();
  if (members.length > MAX_CONVERSATION_MEMBERS) {
    throw badRequest(`a group DM has at most ${MAX_CONVERSATION_MEMBERS} members, you included`);
  }
  const others = members.filter((id) => id !== callerId);
  const seen = new Map(
    (await deps.people.visibleUsers(teamId, callerId, members)).map((u) => [u.id, u.deleted] as const),
  );
  // The caller's own answer comes from the same read (forbidden when inactive: visibleUsers).
  const missing = others.filter((id) => !seen.has(id));
  if (missing.length > 0) throw notFound("users not found", { users: missing });
  const deactivated = others.filter((id) => seen.get(id) === true);
  if (deactivated.length > 0) throw badRequest("deactivated users cannot be messaged", { users: deactivated });
  return { id: await conversationId(teamId, members), kind: kindFor(members.length), members };
}

/**
 * Opens the DM or group DM of the caller and `users` (idempotent: the same
 * members give the same conversation; a caller who had left a group DM is
 * back in it). `created` says whether this call made it.
 */
export async function openConversation(
  deps: ConversationDeps,
  teamId: string,
  callerId: string,
  users: MemberRef[],
): Promise<{ conversation: OpenedConversation; created: boolean }> {
  const spec = await conversationSpec(deps, teamId, callerId, users);
  const { conversation, members, created, events } = await deps.directory.openConversation(
    teamId,
    spec,
    callerId,
    deps.clock.now(),
  );
  await publishChanges(deps.changes, events);
  return { conversation: opened(conversation, spec.kind, members), created };
}

function opened(c: DirChannel, kind: OpenedConversation["kind"], members: string[]): OpenedConversation {
  return { id: c.id, kind, members, created: c.createdAt };
}

/**
 * The caller leaves a group DM it is in and stops seeing it. A conversation
 * the caller does not see is not_found (as one that does not exist); a DM
 * cannot be left.
 */
export async function leaveConversation(
  deps: ConversationDeps,
  teamId: string,
  callerId: string,
  conversationId: string,
): Promise<{ left: boolean }> {
  const kind = await deps.people.conversationKind(teamId, callerId, conversationId);
  // A public channel is visible to non-members: only one the caller is in counts.
  if (kind === null) throw notFound(`conversation ${conversationId} not found`);
  if (kind === "im") throw badRequest("a direct message cannot be left: only a group DM can");
  if (kind === "channel") throw badRequest(`${conversationId} is a channel, not a group DM`);
  const { left, events } = await deps.directory.leaveConversation(teamId, conversationId, callerId, deps.clock.now());
  await publishChanges(deps.changes, events);
  return { left };
}
