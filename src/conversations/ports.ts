import type { ErrorCode, ErrorKind } from "../errors";
import type { Profile, TopicAccess } from "../realtime/ports";
import type { Role } from "../teams/model";
import type { Actor, HistoryPolicy, MessageView } from "./history";

// What the conversation use cases need from the platform. platform/deps.ts
// builds them from the bindings: access from the team cache (the same check
// the channel message route makes), live roles, profiles as the caller may
// see them, and a conversation's store (its Durable Object).

/**
 * A store's answer. Errors cross the RPC boundary as data (a thrown
 * DomainError would arrive as a plain Error), and the use case turns them
 * back into DomainErrors.
 */
export type StoreResult<T> =
  | { ok: true; value: T }
  | { ok: false; kind: ErrorKind; code: ErrorCode; message: string; details?: unknown };

/** A change committed, and where its event went (`seq` null while the outbox has not delivered it yet). */
export interface Changed {
  message: MessageView | null;
  seq: number | null;
}

export interface HistoryPage {
  messages: MessageView[];
  /** The id the next (older) page starts before; null on the last page. */
  next: number | null;
}

/** One conversation's stored messages (the Conversation object of `host` and `conversation`). */
export interface ConversationStore {
  post(actor: Actor, text: string, mentions: string[]): Promise<StoreResult<Changed>>;
  edit(actor: Actor, id: string, text: string, mentions: string[] | null): Promise<StoreResult<Changed>>;
  remove(actor: Actor, actorRole: Role | null, id: string): Promise<StoreResult<Changed>>;
  react(actor: Actor, id: string, name: string, add: boolean): Promise<StoreResult<Changed>>;
  page(before: number | null, limit: number): Promise<StoreResult<HistoryPage>>;
}

export interface ConversationPorts {
  /** Whether the viewer sees the conversation, and the team hosting it (the channel route's own check). */
  access: Pick<TopicAccess, "channel">;
  /** A user's live role (null: the team has no such active user). */
  roleOf(team: string, user: string): Promise<Role | null>;
  /** Profiles of these users that the viewer may see; the rest are left out. */
  visibleProfiles(team: string, viewer: string, users: string[]): Promise<Profile[]>;
  store(host: string, conversation: string): ConversationStore;
}

/** A team's history policy (kept by the team's conversations). */
export interface HistorySettings {
  get(team: string): Promise<HistoryPolicy & { custom: boolean }>;
  set(team: string, policy: HistoryPolicy): Promise<HistoryPolicy & { custom: boolean }>;
}
