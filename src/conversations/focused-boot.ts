import type { UserCard } from "../directory/cards";
import { DomainError } from "../errors";
import type { MessageView } from "./history";
import { type Caller, conversationHistory } from "./messages";
import type { ConversationPorts, StoreResult } from "./ports";

// A boot focused on one conversation (GET /v1/directory/boot?focus=): what a
// client opened on a channel, DM or group DM link needs to draw it, in one
// round trip: itself, the team, the conversation's card, its newest messages
// with the profiles they name, a cursor into its history, and where the rest
// of the boot is. docs/directory.md, "Focused boot".

/** Where a client fetches the rest of the boot: the full boot (its channels, DMs and group DMs). */
export const REST_OF_BOOT = "/v1/directory/boot";
/** Messages a focused boot carries unless asked otherwise (at most history's MAX_PAGE). */
export const DEFAULT_FOCUS_LIMIT = 20;

/** What the team cache answers for the focus (TeamCache.focusedBoot), the conversation's card left to it. */
export interface FocusHeader<Card> {
  version: number;
  self?: UserCard;
  team: { id: string; users: number; channels: number };
  conversation: Card;
}

export interface FocusedBootPorts<Card> {
  /** The conversation as GET /v1/conversations/:id/history reads it (access, messages, profiles). */
  conversations: ConversationPorts;
  /** The boot's header and the conversation's card as the viewer sees it; not_found when it does not see it. */
  header(team: string, viewer: string, conversation: string): Promise<StoreResult<FocusHeader<Card>>>;
}

export interface FocusedBoot<Card> {
  version: number;
  self?: UserCard;
  team: { id: string; users: number; channels: number };
  focus: {
    conversation: Card;
    /** The newest messages, newest first: history's first page of this size. */
    messages: MessageView[];
    /** Profiles of the messages' authors and mentioned users that the viewer may see. */
    users: Array<{ id: string } & Record<string, unknown>>;
    /** GET /v1/conversations/:id/history?cursor= continues right after the last message; null: none older. */
    history_cursor: string | null;
  };
  /** The rest of the boot: GET `path` (the full boot), which answers at `version` or later. */
  rest: { path: string; version: number };
}

/**
 * The focused boot. The header and the history page are asked for at once
 * (they are independent reads of two objects), and either refusal refuses
 * the whole answer, so a viewer who does not see the conversation gets
 * exactly the history route's answer for an id that does not exist. The
 * page is conversationHistory's own, so it pages, blanks deleted messages
 * and picks visible profiles exactly as GET /v1/conversations/:id/history.
 */
export async function focusedBoot<Card>(
  ports: FocusedBootPorts<Card>,
  caller: Caller,
  conversation: string,
  limit: number = DEFAULT_FOCUS_LIMIT,
): Promise<FocusedBoot<Card>> {
  const [header, page] = await Promise.all([
    ports.header(caller.team, caller.user, conversation).then(unwrap),
    conversationHistory(ports.conversations, caller, conversation, { limit }),
  ]);
  return {
    version: header.version,
    ...(header.self ? { self: header.self } : {}),
    team: header.team,
    focus: {
      conversation: header.conversation,
      messages: page.messages,
      users: page.users,
      history_cursor: page.next_cursor,
    },
    rest: { path: REST_OF_BOOT, version: header.version },
  };
}

function unwrap<T>(result: StoreResult<T>): T {
  if (result.ok) return result.value;
  throw new DomainError(result.kind, result.code, result.message, result.details);
}
