import { badRequest, invalidBody, unauthorized, unavailable } from "../errors";
import { answerMetadata, answerText, type Verdict, verdictOf } from "./answer";
import { type Envelope, parseEnvelope, type SlackEventMessage, topicOf, triage } from "./events";
import type { TeamClassifier } from "./model";
import { verifySlackSignature } from "./signature";
import type { InstallationView, SlackEventLog, SlackInstallation, SlackInstallations } from "./store";
import { type CallFailure, postMessage, type SlackApiPorts } from "./web-api";

// The bot's use cases. acknowledge: what POST /slack/events does within
// Slack's three seconds (verify, parse, queue; never a model or a Web API
// call). answerEvent: what the slack-events consumer does with one queued
// event (triage, claim, classify, reply in the thread, end the claim).

export interface AckPorts {
  /** The app's signing secret; several while one is rotated out. */
  signingSecrets: readonly string[];
  now(): number;
  enqueue(message: SlackEventMessage): Promise<void>;
}

export interface AckRequest {
  timestamp: string | undefined;
  signature: string | undefined;
  body: Uint8Array;
  contentType: string;
  retryNum: string | undefined;
  retryReason: string | undefined;
}

export type Ack = { kind: "challenge"; challenge: string } | { kind: "ok"; queued: boolean };

export async function acknowledge(ports: AckPorts, request: AckRequest): Promise<Ack> {
  if (ports.signingSecrets.length === 0) throw unavailable("the Slack signing secret is not configured");
  const now = ports.now();
  let reason = "";
  for (const secret of ports.signingSecrets) {
    const check = await verifySlackSignature(secret, request, now);
    if (check.ok) {
      reason = "";
      break;
    }
    reason ||= check.reason;
  }
  if (reason) throw unauthorized(`Slack signature refused: ${reason}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(request.body);
  } catch {
    throw invalidBody("the body is not UTF-8");
  }
  const envelope: Envelope | null = parseEnvelope(text, request.contentType.toLowerCase(), {
    at: now,
    retryNum: request.retryNum,
    retryReason: request.retryReason,
  });
  if (!envelope) throw invalidBody("not a Slack Events API body");
  switch (envelope.kind) {
    case "url_verification":
      return { kind: "challenge", challenge: envelope.challenge };
    case "event":
      await ports.enqueue(envelope.message);
      return { kind: "ok", queued: true };
    default:
      return { kind: "ok", queued: false };
  }
}

/** The model, loaded on first use and kept warm by its adapter (platform/slackbot-model.ts). */
export interface LoadedClassifier extends TeamClassifier {
  version: string;
}

export interface AnswerPorts {
  installations: SlackInstallations;
  events: SlackEventLog;
  classifier: () => Promise<LoadedClassifier>;
  slack: SlackApiPorts;
  /** The stored token as the Web API takes it (token-seal.ts). */
  openToken(stored: string): Promise<string>;
  now(): number;
  /** Below this probability the answer says it is not sure (SLACKBOT_MIN_CONFIDENCE). */
  minConfidence: number;
  /** A claim older than this is a crashed delivery's: taken again (SLACKBOT_CLAIM_SECONDS). */
  claimMs: number;
}

export type AnswerOutcome =
  | { status: "ignored"; reason: string }
  | { status: "duplicate" }
  | { status: "busy" }
  | { status: "replied"; verdict: Verdict["kind"]; team: string; ts: string }
  | ({ status: "failed"; attempts: number } & CallFailure);

/**
 * Answers one queued event at most once. Events that are not questions
 * return before any storage or model (they cost nothing). A question is
 * claimed by its event id first; the claim ends `replied` only after
 * chat.postMessage succeeded, so a crash in between is answered by the
 * retry, and a duplicate after the reply is not. A failed call ends the claim
 * `failed` with its reason, for the consumer to retry or dead-letter.
 */
export async function answerEvent(ports: AnswerPorts, message: SlackEventMessage): Promise<AnswerOutcome> {
  // Cheap triage first, with the envelope's own idea of the bot.
  const first = triage(message, message.botUserId, message.appId);
  if (!first.answer) return { status: "ignored", reason: first.reason };
  const installation = await ports.installations.get(message.teamId);
  if (!installation) {
    return { status: "failed", attempts: 0, kind: "permanent", reason: "the workspace has no installation" };
  }
  const decided = triage(message, installation.botUserId || message.botUserId, installation.appId || message.appId);
  if (!decided.answer) return { status: "ignored", reason: decided.reason };

  const now = ports.now();
  const claim = await ports.events.claim(message.eventId, message.teamId, now, now - ports.claimMs);
  if (claim.outcome === "done") return { status: "duplicate" };
  if (claim.outcome === "busy") return { status: "busy" };

  let posted: Awaited<ReturnType<typeof postMessage>>;
  let verdict: Verdict;
  try {
    const topic = topicOf(decided.text);
    const classifier = await ports.classifier();
    const ranked = topic ? await classifier.classify(topic) : [];
    verdict = verdictOf(ranked, ports.minConfidence, topic);
    const token = await ports.openToken(installation.botToken);
    posted = await postMessage(ports.slack, token, {
      channel: decided.channel,
      thread_ts: decided.threadTs,
      text: answerText(verdict),
      metadata: answerMetadata(verdict, classifier.version),
    });
  } catch (error) {
    // Nothing was posted: the claim ends failed so the retry takes it at once.
    const reason = `error: ${error instanceof Error ? error.name : "unknown"}`;
    await ports.events.finish(message.eventId, "failed", reason, ports.now()).catch(() => undefined);
    throw error;
  }
  if (!posted.ok) {
    const { ok: _ok, ...failure } = posted;
    await ports.events.finish(message.eventId, "failed", failure.reason, ports.now());
    return { status: "failed", attempts: claim.attempts, ...failure };
  }
  await ports.events.finish(message.eventId, "replied", null, ports.now());
  const team =
    verdict.kind === "confident" ? verdict.team.id : verdict.kind === "unsure" ? (verdict.candidates[0]?.id ?? "") : "";
  return { status: "replied", verdict: verdict.kind, team, ts: posted.value.ts };
}

// --- installations ---------------------------------------------------------------

const SLACK_ID = /^[A-Z0-9]{2,32}$/;

export interface InstallRequest {
  team_id: string;
  bot_token: string;
  bot_user_id: string;
  app_id: string;
}

export interface InstallPorts {
  installations: SlackInstallations;
  sealToken(token: string): Promise<string>;
  now(): number;
}

/** Stores (or replaces) a workspace's installation; returns it without the token. */
export async function install(ports: InstallPorts, request: InstallRequest): Promise<InstallationView> {
  for (const [field, value] of [
    ["team_id", request.team_id],
    ["bot_user_id", request.bot_user_id],
    ["app_id", request.app_id],
  ] as const) {
    if (!SLACK_ID.test(value)) throw badRequest(`${field} must be a Slack id (A-Z and 0-9)`);
  }
  if (!/^xox[a-z]-[A-Za-z0-9-]{8,250}$/.test(request.bot_token)) {
    throw badRequest("bot_token must be a Slack bot token (xoxb-…)");
  }
  const installation: SlackInstallation = {
    teamId: request.team_id,
    botToken: await ports.sealToken(request.bot_token),
    botUserId: request.bot_user_id,
    appId: request.app_id,
    installedAt: ports.now(),
  };
  await ports.installations.put(installation);
  const { botToken: _hidden, ...view } = installation;
  return view;
}

// --- OAuth v2 state -----------------------------------------------------------------

/** How long an install link's state is good for. */
export const STATE_TTL_MS = 10 * 60_000;

const enc = new TextEncoder();
const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

async function stateMac(secret: string, payload: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(`slack-oauth-state:${secret}`),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return b64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(payload))));
}

/** `<expiry ms>.<nonce>.<mac>`: the state an install link carries, checked on the callback. */
export async function oauthState(secret: string, now: number): Promise<string> {
  const payload = `${now + STATE_TTL_MS}.${b64url(crypto.getRandomValues(new Uint8Array(12)))}`;
  return `${payload}.${await stateMac(secret, payload)}`;
}

export async function checkOauthState(secret: string, state: string, now: number): Promise<void> {
  const parts = state.split(".");
  const [expiry, nonce, mac] = parts;
  if (parts.length !== 3 || !expiry || !nonce || !mac || !/^\d{1,15}$/.test(expiry)) {
    throw unauthorized("the OAuth state is malformed");
  }
  const expected = await stateMac(secret, `${expiry}.${nonce}`);
  // Both are MACs of fixed length; compare every character.
  let diff = expected.length ^ mac.length;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ (mac.charCodeAt(i) || 0);
  if (diff !== 0) throw unauthorized("the OAuth state is not ours");
  if (Number(expiry) < now) throw unauthorized("the OAuth state has expired; start the install again");
}
