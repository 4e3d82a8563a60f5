import { isAdminRole } from "../auth/policy";
import { badRequest } from "../errors";
import type { Role } from "../teams/model";

// What a conversation keeps and who may change it: the bounded history's
// policy, the shapes of messages and of their real-time events, and the
// rules for edits, deletions and reactions. The Conversation object
// (durable-objects/conversation/) stores; these decide.

/** How much history a conversation keeps: its newest messages, none older than the age. */
export interface HistoryPolicy {
  maxMessages: number;
  maxAgeDays: number;
}

/** A team that never set its own: the newest 1,000 messages, 90 days. */
export const DEFAULT_HISTORY: HistoryPolicy = { maxMessages: 1_000, maxAgeDays: 90 };

/** What a team may set: at least one message and one day; at most 100,000 messages and ten years. */
export const HISTORY_BOUNDS = {
  maxMessages: { min: 1, max: 100_000 },
  maxAgeDays: { min: 1, max: 3_650 },
} as const;

const DAY_MS = 86_400_000;

/** A policy within the bounds, or a 400 naming the field out of them. */
export function checkPolicy(p: HistoryPolicy): HistoryPolicy {
  for (const key of ["maxMessages", "maxAgeDays"] as const) {
    const { min, max } = HISTORY_BOUNDS[key];
    const v = p[key];
    if (!Number.isInteger(v) || v < min || v > max) {
      throw badRequest(
        `${key === "maxMessages" ? "max_messages" : "max_age_days"} must be a whole number from ${min} to ${max}`,
      );
    }
  }
  return { maxMessages: p.maxMessages, maxAgeDays: p.maxAgeDays };
}

/** Messages accepted before this time (ms) are past the policy's age. */
export function ageCutoff(policy: HistoryPolicy, now: number): number {
  return now - policy.maxAgeDays * DAY_MS;
}

export const MAX_TEXT_LENGTH = 4000;
export const MAX_MENTIONS = 100;
/** Distinct reaction names one message may carry (Slack's own limit). */
export const MAX_REACTION_NAMES = 50;
/** Messages per history page at most, and by default. */
export const MAX_PAGE = 200;
export const DEFAULT_PAGE = 50;

/**
 * A reaction's name: an emoji short name (lower case letters, digits, `_`,
 * `+`, `-`, `'`), optionally with a skin tone as Slack writes it
 * (`thumbsup::skin-tone-2`).
 */
export const REACTION_NAME = /^[a-z0-9+-][a-z0-9_+'-]{0,63}(::skin-tone-[2-6])?$/;

export function checkReactionName(name: string): string {
  if (!REACTION_NAME.test(name)) {
    throw badRequest("a reaction name is an emoji short name: a-z 0-9 _ + - ' (optionally ::skin-tone-2..6)");
  }
  return name;
}

/** Who acts: a user of a team (in a shared channel, users of several teams write to one history). */
export interface Actor {
  team: string;
  user: string;
}

export interface ReactionView {
  name: string;
  users: string[];
  count: number;
}

/** A message as history shows it. */
export interface MessageView {
  id: string;
  channel: string;
  user: string;
  /** The author's team (a shared channel's messages come from several). */
  team: string;
  text: string;
  mentions: string[];
  /** When the conversation accepted it (ms). */
  ts: number;
  /** When it was last edited (ms), or null. */
  edited_ts: number | null;
  reactions: ReactionView[];
}

// --- real-time events ------------------------------------------------------------
// Every change is one event on the conversation's topic (`channel:<id>`), in
// the order the conversation committed them. A post's event has the shape of
// the channel route's message event, plus the message id.

export type ConversationEvent =
  | { type: "message"; channel: string; id: string; user: string; text: string; mentions: string[]; ts: number }
  | {
      type: "message_changed";
      channel: string;
      id: string;
      user: string;
      text: string;
      mentions: string[];
      ts: number;
      edited_ts: number;
    }
  | { type: "message_deleted"; channel: string; id: string; ts: number }
  | {
      type: "reaction_added" | "reaction_removed";
      channel: string;
      message: string;
      user: string;
      name: string;
      ts: number;
    };

export const EVENT_TYPES = [
  "message",
  "message_changed",
  "message_deleted",
  "reaction_added",
  "reaction_removed",
] as const;

// --- rules ------------------------------------------------------------------------

const same = (a: Actor, b: Actor) => a.team === b.team && a.user === b.user;

/** Only the author edits a message. */
export function mayEdit(author: Actor, actor: Actor): boolean {
  return same(author, actor);
}

/**
 * The author deletes their message; so does an owner or admin (the live
 * role) of the team hosting the conversation, or of the author's own team
 * (in a shared channel each team moderates its own people).
 */
export function mayDelete(author: Actor, actor: Actor, actorRole: Role | null, host: string): boolean {
  if (same(author, actor)) return true;
  if (actorRole === null || !isAdminRole(actorRole)) return false;
  return actor.team === host || actor.team === author.team;
}

/** Mentions as stored: each id once, in the order given. */
export function uniqueMentions(mentions: readonly string[]): string[] {
  return [...new Set(mentions)];
}
