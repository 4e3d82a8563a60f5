// A client for the few Slack Web API methods the bot calls, over a fetch and
// a base URL taken as ports (SLACK_API_BASE: https://slack.com/api, or a local
// server that records calls). Tokens travel in the Authorization header only
// and never appear in a result, an error or a log line.

export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

export interface SlackApiPorts {
  fetch: Fetch;
  /** e.g. https://slack.com/api (no trailing slash needed). */
  baseUrl: string;
}

/** Why a call did not succeed, and whether it may on a later try. */
export type CallFailure =
  | { kind: "rate_limited"; retryAfterSeconds: number; reason: string }
  | { kind: "transient"; reason: string }
  | { kind: "permanent"; reason: string };

export type CallResult<T> = { ok: true; value: T } | ({ ok: false } & CallFailure);

/** Slack errors (HTTP 200, `ok: false`) that a later try may not hit. */
const TRANSIENT_ERRORS = new Set([
  "internal_error",
  "fatal_error",
  "service_unavailable",
  "request_timeout",
  "ratelimited",
]);

/** Retry-After in seconds (Slack sends whole seconds); a missing or odd header counts as 1. */
export function retryAfterOf(header: string | null): number {
  const n = Number(header);
  return Number.isFinite(n) && n > 0 ? Math.min(Math.ceil(n), 3600) : 1;
}

async function call(
  ports: SlackApiPorts,
  method: string,
  init: { token?: string; json?: unknown; form?: Record<string, string>; basic?: string },
): Promise<CallResult<Record<string, unknown>>> {
  const headers: Record<string, string> = {};
  let body: string;
  if (init.json !== undefined) {
    headers["content-type"] = "application/json; charset=utf-8";
    body = JSON.stringify(init.json);
  } else {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(init.form ?? {}).toString();
  }
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.basic) headers.authorization = `Basic ${init.basic}`;
  let res: Response;
  try {
    res = await ports.fetch(`${ports.baseUrl.replace(/\/+$/, "")}/${method}`, { method: "POST", headers, body });
  } catch (e) {
    return {
      ok: false,
      kind: "transient",
      reason: `${method}: network error: ${e instanceof Error ? e.name : "error"}`,
    };
  }
  if (res.status === 429) {
    await res.body?.cancel();
    const retryAfterSeconds = retryAfterOf(res.headers.get("retry-after"));
    return {
      ok: false,
      kind: "rate_limited",
      retryAfterSeconds,
      reason: `${method}: HTTP 429, retry after ${retryAfterSeconds} s`,
    };
  }
  if (res.status >= 500 || res.status === 408) {
    await res.body?.cancel();
    return { ok: false, kind: "transient", reason: `${method}: HTTP ${res.status}` };
  }
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    return { ok: false, kind: res.ok ? "transient" : "permanent", reason: `${method}: HTTP ${res.status}, not JSON` };
  }
  const answer = json && typeof json === "object" ? (json as Record<string, unknown>) : {};
  if (!res.ok || answer.ok !== true) {
    const error = typeof answer.error === "string" ? answer.error.slice(0, 80) : `HTTP ${res.status}`;
    return { ok: false, kind: TRANSIENT_ERRORS.has(error) ? "transient" : "permanent", reason: `${method}: ${error}` };
  }
  return { ok: true, value: answer };
}

export interface PostMessage {
  channel: string;
  thread_ts: string;
  text: string;
  metadata?: unknown;
}

/** chat.postMessage in a thread; the new message's ts. */
export async function postMessage(
  ports: SlackApiPorts,
  token: string,
  message: PostMessage,
): Promise<CallResult<{ ts: string }>> {
  const r = await call(ports, "chat.postMessage", { token, json: { ...message, unfurl_links: false } });
  if (!r.ok) return r;
  return { ok: true, value: { ts: typeof r.value.ts === "string" ? r.value.ts : "" } };
}

export interface OAuthGrant {
  teamId: string;
  teamName: string;
  botToken: string;
  botUserId: string;
  appId: string;
}

/** oauth.v2.access: exchanges an authorization code for the workspace's bot token. */
export async function exchangeCode(
  ports: SlackApiPorts,
  client: { id: string; secret: string },
  code: string,
  redirectUri: string,
): Promise<CallResult<OAuthGrant>> {
  const basic = btoa(`${client.id}:${client.secret}`);
  const r = await call(ports, "oauth.v2.access", { basic, form: { code, redirect_uri: redirectUri } });
  if (!r.ok) return r;
  const team = (r.value.team ?? {}) as { id?: unknown; name?: unknown };
  const grant = {
    teamId: typeof team.id === "string" ? team.id : "",
    teamName: typeof team.name === "string" ? team.name : "",
    botToken: typeof r.value.access_token === "string" ? r.value.access_token : "",
    botUserId: typeof r.value.bot_user_id === "string" ? r.value.bot_user_id : "",
    appId: typeof r.value.app_id === "string" ? r.value.app_id : "",
  };
  if (!grant.teamId || !grant.botToken || !grant.botUserId) {
    return { ok: false, kind: "permanent", reason: "oauth.v2.access: the answer has no team, bot token or bot user" };
  }
  return { ok: true, value: grant };
}
