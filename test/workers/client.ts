import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { signToken } from "../../src/auth/tokens";
import { uniqueTeamId } from "../contract/fixtures";

/** The Worker's JWT_SECRET in tests (vitest.config.ts): 32 bytes or more, as the Worker demands. */
export const SECRET = "test-secret-0123456789abcdef-0123456789";

/** An access token: identity only. What the user may do comes from live state (the team's users). */
export function token(team: string, user: string, ttlSeconds?: number): Promise<string> {
  return signToken({ team, user, ttlSeconds }, SECRET);
}

/** The operator identity listed in PLATFORM_OPERATORS (wrangler.toml). */
export const platformToken = () => token("TPLATFORM", "UOPERATOR");

/**
 * A new team made by the operator, with user `admin` (default UADMIN) in
 * role `role` (default admin), and that user's token: admin rights come from
 * the user's live role, not from the token.
 */
export async function newTeam(
  options: { id?: string; admin?: string; role?: "owner" | "admin"; plan?: string; claimed?: string[] } = {},
): Promise<{ id: string; admin: string; adminId: string }> {
  const id = options.id ?? uniqueTeamId("T");
  const adminId = options.admin ?? "UADMIN";
  const operator = await platformToken();
  await ok(
    api("POST", "/v1/admin/teams", {
      token: operator,
      json: { id, name: `Team ${id}`, plan: options.plan ?? "pro", claimed_domains: options.claimed ?? [] },
    }),
    201,
  );
  await ok(
    api("POST", `/v1/admin/teams/${id}/users`, {
      token: operator,
      json: {
        id: adminId,
        email: `${adminId.toLowerCase()}@${id.toLowerCase()}.admin.test`,
        role: options.role ?? "admin",
      },
    }),
    201,
  );
  return { id, admin: await token(id, adminId), adminId };
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  options: { token?: string; json?: unknown; body?: BodyInit; contentType?: string } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["content-type"] = "application/json";
  }
  if (options.contentType) headers["content-type"] = options.contentType;
  const res = await SELF.fetch(`https://edge.test${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON ${res.status} response for ${method} ${path}: ${text.slice(0, 200)}`);
  }
  return { status: res.status, body: parsed as T };
}

/** Polls until `check` passes: the queue consumer runs asynchronously. */
export async function eventually<T>(read: () => Promise<T>, check: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last = await read();
  while (!check(last)) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await read();
  }
  return last;
}

/** Awaits a response and asserts its status (showing the body when it differs). */
export async function ok<T = Record<string, unknown>>(pending: Promise<ApiResponse<T>>, status = 200): Promise<T> {
  const res = await pending;
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res.body;
}

/** Users the operator adds to a team (addresses on the team's own test domain). */
export async function addUsers(
  teamId: string,
  users: ReadonlyArray<readonly [id: string, role: "owner" | "admin" | "member" | "guest"]>,
): Promise<void> {
  const operator = await platformToken();
  for (const [id, role] of users) {
    await ok(
      api("POST", `/v1/admin/teams/${teamId}/users`, {
        token: operator,
        json: { id, email: `${id.toLowerCase()}@${teamId.toLowerCase()}.test`, role },
      }),
      201,
    );
  }
}

/** A live Slack Connect connection: the first admin's team invites, the second's accepts the code. Its id. */
export async function connectTeams(inviterAdmin: string, inviteeAdmin: string): Promise<string> {
  const { invitation } = await ok<{ invitation: { code: string } }>(
    api("POST", "/v1/connect/invitations", { token: inviterAdmin, json: {} }),
    201,
  );
  const { connection } = await ok<{ connection: { id: string } }>(
    api("POST", "/v1/connect/invitations/answer", {
      token: inviteeAdmin,
      json: { code: invitation.code, decision: "accept" },
    }),
    201,
  );
  return connection.id;
}
