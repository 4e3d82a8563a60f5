import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

// A local stand-in for Slack's Web API that records every call: what the
// workerd tests (test/workers/slack-*.test.ts, through their global setup)
// and the bench (bench/slackbot.ts) point SLACK_API_BASE at. Real HTTP:
// statuses, Retry-After headers, JSON bodies.
//
//   POST /api/chat.postMessage   recorded; answers the next scripted answer for its channel,
//                                else 200 {ok: true, ts}
//   POST /api/oauth.v2.access    code "good-code" → a grant for workspace TOAUTH0001; else invalid_code
//   GET  /_calls?channel=C       the recorded calls (all, or one channel's)
//   POST /_script                {channel, answers: [{status, retryAfter?, error?}]}: the next answers
//   DELETE /_calls               forget every call and script

export interface RecordedCall {
  method: string;
  /** The bearer token the call carried (a test token; checked against the workspace's). */
  token: string;
  body: Record<string, unknown>;
  at: number;
}

export interface ScriptedAnswer {
  status: number;
  retryAfter?: number;
  /** For a 200: `{ok: false, error}` instead of success. */
  error?: string;
}

export interface SlackRecorder {
  url: string;
  port: number;
  calls: RecordedCall[];
  /** Called on each recorded postMessage (the bench times replies with it). */
  onCall?: (call: RecordedCall) => void;
  close(): Promise<void>;
}

export const OAUTH_GRANT = {
  team: { id: "TOAUTH0001", name: "OAuth Workspace" },
  access_token: "xoxb-oauth-0001-secret",
  bot_user_id: "UOAUTHBOT1",
  app_id: "AOAUTH0001",
};

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

export function startSlackRecorder(port = 0): Promise<SlackRecorder> {
  const scripts = new Map<string, ScriptedAnswer[]>();
  let seq = 0;
  const recorder: SlackRecorder = { url: "", port: 0, calls: [], close: async () => undefined };
  const server: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://recorder");
      const text = await readBody(req);
      if (url.pathname === "/_calls" && req.method === "GET") {
        const channel = url.searchParams.get("channel");
        return send(res, 200, { calls: recorder.calls.filter((c) => !channel || c.body.channel === channel) });
      }
      if (url.pathname === "/_calls" && req.method === "DELETE") {
        recorder.calls.length = 0;
        scripts.clear();
        return send(res, 200, { ok: true });
      }
      if (url.pathname === "/_script" && req.method === "POST") {
        const { channel, answers } = JSON.parse(text) as { channel: string; answers: ScriptedAnswer[] };
        scripts.set(channel, [...(scripts.get(channel) ?? []), ...answers]);
        return send(res, 200, { ok: true });
      }
      if (url.pathname === "/api/oauth.v2.access" && req.method === "POST") {
        const form = new URLSearchParams(text);
        if (form.get("code") !== "good-code") return send(res, 200, { ok: false, error: "invalid_code" });
        return send(res, 200, { ok: true, ...OAUTH_GRANT });
      }
      if (url.pathname === "/api/chat.postMessage" && req.method === "POST") {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          return send(res, 200, { ok: false, error: "invalid_json" });
        }
        const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
        const call: RecordedCall = { method: "chat.postMessage", token, body, at: Date.now() };
        recorder.calls.push(call);
        const channel = String(body.channel ?? "");
        const next = scripts.get(channel)?.shift();
        if (next && next.status !== 200) {
          const headers: Record<string, string> =
            next.retryAfter !== undefined ? { "retry-after": String(next.retryAfter) } : {};
          return send(
            res,
            next.status,
            { ok: false, error: next.status === 429 ? "ratelimited" : "server_error" },
            headers,
          );
        }
        if (next?.error) return send(res, 200, { ok: false, error: next.error });
        recorder.onCall?.(call);
        seq++;
        return send(res, 200, { ok: true, channel, ts: `${1_700_000_000 + seq}.000100` });
      }
      return send(res, 404, { ok: false, error: "unknown_method" });
    } catch (error) {
      return send(res, 500, { ok: false, error: String(error) });
    }
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      recorder.port = typeof address === "object" && address ? address.port : port;
      recorder.url = `http://127.0.0.1:${recorder.port}`;
      recorder.close = () =>
        new Promise<void>((done) => {
          server.closeAllConnections();
          server.close(() => done());
        });
      resolve(recorder);
    });
  });
}
