// The platform's HTTP API on the same origin as the console (so no CORS, and
// the page's CSP allows `connect-src 'self'` only). The access token goes in
// the Authorization header, never in a URL.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Api {
  constructor(readonly token: string) {}

  get<T>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("POST", path, body);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: reported below with the status
    }
    if (!res.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(res.status, error?.code ?? `http_${res.status}`, error?.message ?? text.slice(0, 200));
    }
    return parsed as T;
  }
}

/** The wire shapes the console reads (docs/directory.md, docs/recommendations.md, docs/connect.md). */
export interface UserCard {
  id: string;
  name: string;
  real_name: string;
  display_name: string;
  title: string;
  role: string;
  deleted: boolean;
  is_bot: boolean;
}

export interface ChannelCard {
  id: string;
  name: string;
  topic: string;
  purpose: string;
  is_private: boolean;
  is_archived: boolean;
  is_shared: boolean;
  member_count?: number;
  is_member?: boolean;
}

export interface Boot {
  version: number;
  self: UserCard;
  team: { id: string; users: number; channels: number };
  channels: Array<Pick<ChannelCard, "id" | "name" | "is_private" | "is_archived" | "is_shared">>;
}

export type SwitcherItem =
  | ({ type: "channel"; reason: string } & ChannelCard)
  | ({ type: "user"; reason: string } & UserCard);

export interface Recommendations {
  request_id: string;
  source: string;
  user: string;
  items: Array<{
    id: string;
    score: number;
    rank: number;
    /** The feature that lifted the item above the other candidates of this answer (servers that send it). */
    reason?: { feature: string; value: number; direction: "high" | "low" } | null;
  }>;
  model: {
    name: string;
    version: string;
    kind: string;
    engine: string;
    fallback: null | { code: string; message: string };
  };
  experiment: { name: string; arm: string };
  degraded: Array<{ step: string; error: string }>;
  steps: Array<{ step: string; kind: string; ms: number; out: number }>;
}

export interface Pref {
  value: unknown;
  source: string;
}

export interface AdminConnection {
  connection: string;
  partner: { id: string; name: string; domains: string[] };
  status: string;
  channels: number;
  pending_invitations: number;
  /** Epoch ms. */
  connected_at: number | null;
  prefs: Record<string, unknown>;
}

/** A user's label as people read it. */
export function personName(u: Pick<UserCard, "id" | "name" | "real_name" | "display_name">): string {
  return u.real_name || u.display_name || u.name || u.id;
}

/** An epoch-ms time as people read it (UTC, to the minute). */
export function when(ms: number | null | undefined): string {
  return typeof ms === "number" ? new Date(ms).toISOString().slice(0, 16).replace("T", " ") : "";
}
