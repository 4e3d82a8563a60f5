import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { signToken } from "../../src/auth/jwt";

export const SECRET = "test-secret";

export function token(team: string, user: string, scope: string[] = [], ttlSeconds?: number): Promise<string> {
  return signToken({ team, user, scope, ttlSeconds }, SECRET);
}

export const platformToken = () => token("TPLATFORM", "UOPERATOR", ["platform"]);

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
