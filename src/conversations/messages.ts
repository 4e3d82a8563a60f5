import { DomainError, forbidden, notFound, rateLimited } from "../errors";
import type { Profile } from "../realtime/ports";
import { channelTopic } from "../realtime/topics";
import {
  checkPolicy,
  checkReactionName,
  DEFAULT_PAGE,
  type HistoryPolicy,
  MAX_PAGE,
  type MessageView,
  uniqueMentions,
} from "./history";
import { decodeCursor, encodeCursor, parseMessageId } from "./ids";
import type { Changed, ConversationPorts, ConversationStore, HistorySettings, StoreResult } from "./ports";

// The use cases behind /v1/conversations/:id/messages and /history. Every
// one first asks whether the caller sees the conversation now (the team
// cache, as the channel message route does: a conversation the caller does
// not see answers exactly as one that does not exist), then hands the change
// to the conversation's store, which commits the message and its event
// together and delivers the event to the conversation's topic.

export interface Caller {
  team: string;
  user: string;
}

/** What a write answers: the message as it now is (null once deleted), its topic and the event's seq there. */
export interface WriteAnswer {
  message: MessageView | null;
  topic: string;
  seq: number | null;
}

export interface HistoryAnswer {
  messages: MessageView[];
  next_cursor: string | null;
  /** Profiles of the page's authors and mentioned users that the caller may see (the rest are left out). */
  users: Profile[];
}

const ID_SYNTAX = /^[A-Za-z0-9_-]{1,40}$/;

/** The caller's view of the conversation: its store, or not_found / forbidden as the team cache says. */
async function open(ports: ConversationPorts, caller: Caller, conversation: string): Promise<ConversationStore> {
  if (!ID_SYNTAX.test(conversation)) throw notFound(`conversation ${conversation} not found`);
  const access = await ports.access.channel(caller.team, caller.user, conversation);
  if (!access.ok) throw access.code === "forbidden" ? forbidden(access.message) : notFound(access.message);
  return ports.store(access.host, conversation);
}

/** A store's refusal as the DomainError it stands for (a rate limit keeps its Retry-After). */
function unwrap<T>(result: StoreResult<T>): T {
  if (result.ok) return result.value;
  if (result.code === "rate_limited") {
    const ms = (result.details as { retry_after_ms?: number } | undefined)?.retry_after_ms ?? 1000;
    throw rateLimited(result.message, Math.max(1, Math.ceil(ms / 1000)), result.details);
  }
  throw new DomainError(result.kind, result.code, result.message, result.details);
}

function answer(conversation: string, changed: Changed): WriteAnswer {
  return { message: changed.message, topic: channelTopic(conversation), seq: changed.seq };
}

/** A message id that cannot be one names nothing: 404, as an unknown one. */
function messageId(id: string): string {
  if (parseMessageId(id) === null) throw notFound(`message ${id} not found`);
  return id;
}

export async function postConversationMessage(
  ports: ConversationPorts,
  caller: Caller,
  conversation: string,
  input: { text: string; mentions: string[] },
): Promise<WriteAnswer> {
  const store = await open(ports, caller, conversation);
  return answer(conversation, unwrap(await store.post(caller, input.text, uniqueMentions(input.mentions))));
}

export async function editConversationMessage(
  ports: ConversationPorts,
  caller: Caller,
  conversation: string,
  id: string,
  input: { text: string; mentions?: string[] },
): Promise<WriteAnswer> {
  const store = await open(ports, caller, conversation);
  const mentions = input.mentions === undefined ? null : uniqueMentions(input.mentions);
  return answer(conversation, unwrap(await store.edit(caller, messageId(id), input.text, mentions)));
}

export async function deleteConversationMessage(
  ports: ConversationPorts,
  caller: Caller,
  conversation: string,
  id: string,
): Promise<WriteAnswer> {
  const store = await open(ports, caller, conversation);
  const checked = messageId(id);
  // The role as live state has it now (an admin demoted a second ago no
  // longer moderates); the store decides with it, under its own author.
  const role = await ports.roleOf(caller.team, caller.user);
  return answer(conversation, unwrap(await store.remove(caller, role, checked)));
}

export async function reactToConversationMessage(
  ports: ConversationPorts,
  caller: Caller,
  conversation: string,
  id: string,
  name: string,
  add: boolean,
): Promise<WriteAnswer> {
  const store = await open(ports, caller, conversation);
  const checked = messageId(id);
  return answer(conversation, unwrap(await store.react(caller, checked, checkReactionName(name), add)));
}

export async function conversationHistory(
  ports: ConversationPorts,
  caller: Caller,
  conversation: string,
  query: { cursor?: string; limit?: number },
): Promise<HistoryAnswer> {
  const store = await open(ports, caller, conversation);
  const before = query.cursor === undefined || query.cursor === "" ? null : decodeCursor(query.cursor);
  const limit = Math.min(MAX_PAGE, Math.max(1, query.limit ?? DEFAULT_PAGE));
  const page = unwrap(await store.page(before, limit));
  const named = new Set<string>();
  for (const m of page.messages) {
    // User ids are per team, and a message's mentions are its author's
    // team's ids: only those of the caller's own team are looked up in its
    // cache (in a shared channel another team's ids could name someone else).
    if (m.team !== caller.team) continue;
    named.add(m.user);
    for (const u of m.mentions) named.add(u);
  }
  const users = named.size === 0 ? [] : await ports.visibleProfiles(caller.team, caller.user, [...named]);
  return { messages: page.messages, next_cursor: page.next === null ? null : encodeCursor(page.next), users };
}

/** A team's history policy, as its admins set it (or the default). */
export function historyPolicy(settings: HistorySettings, team: string) {
  return settings.get(team);
}

export function setHistoryPolicy(settings: HistorySettings, team: string, policy: HistoryPolicy) {
  return settings.set(team, checkPolicy(policy));
}
