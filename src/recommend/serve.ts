import type { Clock } from "../clock";
import { badRequest, DomainError, forbidden, notFound, unavailable } from "../errors";
import { type RecLogMessage, servedItems } from "./logs";
import { RecommendError, type RecRequest, type RecResult, runRecommender } from "./pipeline";
import type { ChannelDisplay, DisplayLookup, MemberLookup, RecDeps, RecLogSink, ServedLog, UserDisplay } from "./ports";
import { type Reason, reasonsFor } from "./reasons";
import { recommenders } from "./recommenders";
import { type ScorerSelectionPorts, selectScorer } from "./scorer-selection";
import { isSource, SOURCE_NAMES, SOURCES, type Source, SUBJECT_SOURCES, takesSubject } from "./sources";

// POST /v1/recommend as a use case: the subject must be an active member,
// the source's experiment picks the scorer, the recommender runs, and what
// was served is remembered (for checking feedback) and logged (with the
// features each item was scored on) for training. An answer names its
// request id, the model and version that scored it, the experiment arm, and
// any optional step that was skipped.

export interface ServePorts extends ScorerSelectionPorts {
  members: MemberLookup;
  /** Display fields for `include: profile`. */
  displays: DisplayLookup;
  /** The recommenders' own ports: candidates and the directory as the subject sees it. */
  recommenders: RecDeps;
  served: ServedLog;
  logs: RecLogSink;
  /** Work that may finish after the answer (the invocation's waitUntil). */
  background(work: Promise<unknown>): void;
  clock: Clock;
}

export interface ServeRequest {
  team: string;
  /** Who asked (the token's user). */
  caller: string;
  /** Whom the answer is for: the caller, or a teammate (subjectOf). */
  subject: string;
  source: Source;
  limit: number;
  /** Source-specific context, validated by the route. */
  context: Readonly<Record<string, unknown>> & { channels?: readonly string[] };
  /** `?include=profile`: each user or channel item carries its display fields, as the caller may see them. */
  includeProfile?: boolean;
}

/** One recommended item: why it was chosen (reasons.ts) and, when asked, how to show it. */
export interface RecommendedItem {
  id: string;
  score: number;
  rank: number;
  /** The feature that lifted it above the other candidates of this answer; null when none did. */
  reason: Reason | null;
  /** With `?include=profile`, for user and channel items the caller may see. */
  profile?: UserDisplay | ChannelDisplay;
}

/** The answer, as the API returns it. */
export interface Recommendations {
  request_id: string;
  source: Source;
  user: string;
  items: RecommendedItem[];
  model: {
    name: string;
    version: string;
    kind: string;
    engine: string;
    fallback: null | { code: string; message: string };
  };
  experiment: { name: string; arm: string };
  degraded: RecResult["degraded"];
  steps: Array<{ step: string; kind: string; ms: number; out: number }>;
}

/** The source a request names, or invalid unknown_source with the list. */
export function sourceNamed(value: string): Source {
  if (isSource(value)) return value;
  throw new DomainError(
    "invalid",
    "unknown_source",
    `unknown source "${value.slice(0, 40)}"; one of ${SOURCE_NAMES.join(", ")}`,
  );
}

/** Whom the answer is for: the caller, or (invite, send_time) a teammate (the policy decides who may name one). */
export function subjectOf(caller: string, source: Source, named: string | undefined): string {
  if (named === undefined || named === caller) return caller;
  if (!takesSubject(source)) {
    throw badRequest(`context.user is only for ${SUBJECT_SOURCES.join(" and ")}, not ${source} (${SOURCES[source]}s)`);
  }
  return named;
}

export async function serveRecommendations(ports: ServePorts, request: ServeRequest): Promise<Recommendations> {
  const { team, caller, subject, source } = request;
  const context = await memberContext(ports, request);
  const rec = recommenders[source];
  const req: RecRequest = { team, user: subject, source, limit: request.limit, context, now: ports.clock.now() };
  const selection = await selectScorer(ports, { source, user: subject, handTuned: rec.handTuned });
  let result: RecResult;
  try {
    result = await runRecommender(rec, req, ports.recommenders, selection.scorer);
  } catch (error) {
    if (!(error instanceof RecommendError)) throw error;
    console.error(error);
    throw unavailable(`recommendations for ${source} are unavailable right now (${error.step})`);
  }
  const requestId = crypto.randomUUID();
  const { scorer, scoringError } = result;
  const fallback = selection.fallback ?? (scoringError ? { code: "scoring_failed", message: scoringError } : null);
  const { metrics } = ports;
  if (scoringError) {
    metrics.inc("rec_model_load_failures_total", { source, model: selection.model.name, code: "scoring_failed" });
  }
  for (const d of result.degraded) metrics.inc("rec_degraded_total", { source, step: d.step });
  metrics.inc("rec_served_items_total", { source, arm: selection.arm }, result.items.length);
  const reasons = reasonsFor(result.scored, result.items);
  const items: RecommendedItem[] = result.items.map((it, i) => ({
    id: it.id,
    score: round(it.score),
    rank: i + 1,
    reason: reasons.get(it.id) ?? null,
  }));
  if (request.includeProfile) await attachProfiles(ports.displays, team, caller, SOURCES[source], items);
  const { experiment, arm } = selection;
  await ports.served.record(team, {
    requestId,
    user: caller,
    source,
    experiment,
    arm,
    items: items.map((i) => i.id),
    ts: req.now,
  });
  const served: RecLogMessage = {
    kind: "served",
    request_id: requestId,
    team,
    user: subject,
    source,
    experiment,
    arm,
    model: scorer.name,
    version: scorer.version,
    fallback: fallback !== null,
    ts: req.now,
    ...servedItems(result.items),
  };
  ports.background(ports.logs.send(served).catch((e: unknown) => console.error("rec-logs send failed", e)));
  return {
    request_id: requestId,
    source,
    user: subject,
    items,
    model: {
      name: scorer.name,
      version: scorer.version,
      kind: scorer.kind,
      engine: scorer.engine ?? "typescript",
      fallback,
    },
    experiment: { name: experiment, arm },
    degraded: result.degraded,
    steps: result.steps.map((s) => ({ step: s.step, kind: s.kind, ms: round(s.ms), out: s.out })),
  };
}

/**
 * The request's context once the subject is known to be an active member
 * (forbidden for the caller themselves, not found for a teammate); for
 * invite, the member's channels default to theirs now.
 */
async function memberContext(ports: ServePorts, request: ServeRequest): Promise<Readonly<Record<string, unknown>>> {
  const { team, caller, subject, source, context } = request;
  const withChannels = source === "invite" && context.channels === undefined;
  const known = await ports.members.find(team, subject, { withChannels });
  if (!known.ok) {
    if (subject === caller) throw forbidden(known.message);
    throw notFound(`user ${subject} not found`);
  }
  const out = withChannels && known.channels ? { ...context, channels: known.channels } : context;
  return typeof context.conversation === "string"
    ? conversationContext(ports, request, out, context.conversation)
    : out;
}

/**
 * composer_dm in a DM or group DM (`context.conversation`): its members, read
 * live, join the members the client names, so none is suggested again. One
 * the subject does not see is not_found, exactly as one that does not exist.
 */
async function conversationContext(
  ports: ServePorts,
  request: ServeRequest,
  context: Readonly<Record<string, unknown>>,
  id: string,
): Promise<Readonly<Record<string, unknown>>> {
  if (request.source !== "composer_dm")
    throw badRequest(`context.conversation is only for composer_dm, not ${request.source}`);
  const found = await ports.members.conversationMembers(request.team, request.subject, id);
  if (found === null) throw notFound(`conversation ${id} not found`);
  if (found === "channel") throw badRequest(`${id} is a channel: composer_dm's conversation is a DM or group DM`);
  const named = Array.isArray(context.members) ? context.members.filter((m): m is string => typeof m === "string") : [];
  return { ...context, members: [...new Set([...named, ...found])] };
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** Display fields for the items the caller may see (one lookup for the answer); hours have none. */
async function attachProfiles(
  displays: DisplayLookup,
  team: string,
  caller: string,
  corpus: (typeof SOURCES)[Source],
  items: RecommendedItem[],
): Promise<void> {
  if (corpus === "hour" || items.length === 0) return;
  const ids = items.map((i) => i.id);
  const found: Map<string, UserDisplay | ChannelDisplay> =
    corpus === "user" ? await displays.users(team, caller, ids) : await displays.channels(team, caller, ids);
  for (const item of items) {
    const profile = found.get(item.id);
    if (profile) item.profile = profile;
  }
}
