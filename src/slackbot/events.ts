import { z } from "zod";

// What Slack's Events API posts (https://api.slack.com/apis/events-api), the
// message the acknowledgement queues, and which events the bot answers.
// Parsing happens after the signature check (signature.ts), never before.

const eventSchema = z.looseObject({
  type: z.string(),
  subtype: z.string().optional(),
  channel: z.string().optional(),
  user: z.string().optional(),
  bot_id: z.string().optional(),
  app_id: z.string().optional(),
  bot_profile: z.looseObject({ app_id: z.string().optional() }).optional(),
  text: z.string().optional(),
  ts: z.string().optional(),
  thread_ts: z.string().optional(),
  channel_type: z.string().optional(),
});

const envelopeSchema = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("url_verification"), challenge: z.string() }),
  z.looseObject({
    type: z.literal("event_callback"),
    team_id: z.string().min(1),
    api_app_id: z.string().optional(),
    event_id: z.string().min(1),
    event_time: z.number().optional(),
    event: eventSchema,
    authorizations: z
      .array(z.looseObject({ user_id: z.string().optional(), is_bot: z.boolean().optional() }))
      .optional(),
  }),
  z.looseObject({ type: z.literal("app_rate_limited") }),
]);

export type SlackEvent = z.infer<typeof eventSchema>;

/** A signed request's body, read: what the acknowledgement does with it. */
export type Envelope =
  | { kind: "url_verification"; challenge: string }
  | { kind: "ssl_check" }
  | { kind: "event"; message: SlackEventMessage }
  | { kind: "other"; type: string };

/** One event as queued on `slack-events`: the envelope's parts the consumer needs. */
export interface SlackEventMessage {
  v: 1;
  eventId: string;
  /** The workspace (Slack's team_id). */
  teamId: string;
  appId?: string;
  /** The bot's user id as the envelope's authorizations name it (the installation's is preferred). */
  botUserId?: string;
  /** X-Slack-Retry-Num when Slack re-sent it. */
  retryNum?: number;
  retryReason?: string;
  /** When the acknowledgement queued it (ms). */
  receivedAt: number;
  event: SlackEvent;
}

/** Parses a verified body; null when it is not an envelope the bot knows (answered 200, ignored). */
export function parseEnvelope(
  body: string,
  contentType: string,
  received: { at: number; retryNum?: string; retryReason?: string },
): Envelope | null {
  // Slash-command style checks come form-encoded: ssl_check=1&token=...
  if (contentType.startsWith("application/x-www-form-urlencoded")) {
    const form = new URLSearchParams(body);
    return form.get("ssl_check") === "1" ? { kind: "ssl_check" } : null;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return null;
  }
  if (raw && typeof raw === "object" && (raw as { ssl_check?: unknown }).ssl_check !== undefined) {
    return { kind: "ssl_check" };
  }
  const parsed = envelopeSchema.safeParse(raw);
  if (!parsed.success) {
    const type = raw && typeof raw === "object" ? (raw as { type?: unknown }).type : undefined;
    return typeof type === "string" ? { kind: "other", type } : null;
  }
  const e = parsed.data;
  if (e.type === "url_verification") return { kind: "url_verification", challenge: e.challenge };
  if (e.type === "app_rate_limited") return { kind: "other", type: e.type };
  const retry = Number(received.retryNum);
  const message: SlackEventMessage = {
    v: 1,
    eventId: e.event_id,
    teamId: e.team_id,
    receivedAt: received.at,
    event: e.event,
  };
  if (e.api_app_id) message.appId = e.api_app_id;
  const bot = e.authorizations?.find((a) => a.is_bot && a.user_id)?.user_id;
  if (bot) message.botUserId = bot;
  if (received.retryNum !== undefined && Number.isInteger(retry) && retry >= 0) message.retryNum = retry;
  if (received.retryReason) message.retryReason = received.retryReason.slice(0, 64);
  return { kind: "event", message };
}

export function isSlackEventMessage(b: unknown): b is SlackEventMessage {
  if (!b || typeof b !== "object") return false;
  const m = b as Partial<SlackEventMessage>;
  return (
    m.v === 1 &&
    typeof m.eventId === "string" &&
    typeof m.teamId === "string" &&
    typeof m.receivedAt === "number" &&
    eventSchema.safeParse(m.event).success
  );
}

/** Why an event gets no answer (it costs nothing: no database, no model). */
export type IgnoreReason =
  | "not_a_message"
  | "subtype"
  | "from_a_bot"
  | "from_this_app"
  | "incomplete"
  | "mention_answered_as_app_mention"
  | "not_a_question";

export type Triage =
  | { answer: true; channel: string; threadTs: string; text: string }
  | { answer: false; reason: IgnoreReason };

/**
 * Whether the bot answers an event: a human's plain message (no subtype: no
 * edits, joins, bot posts) that mentions the bot (app_mention) or asks
 * "who ...?". Anything from a bot or from this app is ignored, so the bot
 * never answers itself. A channel message mentioning the bot also arrives
 * as an app_mention (its own event id); only that one is answered.
 */
export function triage(message: SlackEventMessage, botUserId: string | undefined, appId: string | undefined): Triage {
  const e = message.event;
  if (e.type !== "message" && e.type !== "app_mention") return { answer: false, reason: "not_a_message" };
  if (e.subtype !== undefined) return { answer: false, reason: "subtype" };
  if ((appId && (e.app_id === appId || e.bot_profile?.app_id === appId)) || (botUserId && e.user === botUserId)) {
    return { answer: false, reason: "from_this_app" };
  }
  if (e.bot_id !== undefined || e.bot_profile !== undefined) return { answer: false, reason: "from_a_bot" };
  if (!e.channel || !e.user || !e.ts || e.text === undefined) return { answer: false, reason: "incomplete" };
  const mentionsBot = botUserId !== undefined && e.text.includes(`<@${botUserId}`);
  if (e.type === "message" && mentionsBot) return { answer: false, reason: "mention_answered_as_app_mention" };
  if (e.type === "message" && !asksWho(e.text)) return { answer: false, reason: "not_a_question" };
  return { answer: true, channel: e.channel, threadTs: e.thread_ts ?? e.ts, text: e.text };
}

/** "who ...?": the word "who" followed, later in the text, by a question mark. */
export function asksWho(text: string): boolean {
  return /(^|[^a-z0-9_])who\b[^?]*\?/i.test(plainText(text));
}

/** Slack's markup made plain: mentions and channel links dropped, links to their labels. */
export function plainText(text: string): string {
  return text
    .replace(/<[@#!][^>]*>/g, " ")
    .replace(/<([^>|]*)\|([^>]*)>/g, "$2")
    .replace(/<([^>]*)>/g, "$1")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** What the question is about: the text without markup and without the asking words ("who knows about ..."). */
export function topicOf(text: string): string {
  return plainText(text)
    .replace(
      /\b(hey|hi|hello|please|anyone|anybody|someone|who|whom|knows?|knowing|about|can|could|help|helps|me|us|with|on|is|are|good|familiar|expert|experts|owns?|works?|maintains?|the|a|an|team|here|in|at|for|of|do|does|we|i)\b/gi,
      " ",
    )
    .replace(/\s+/g, " ")
    .trim();
}
