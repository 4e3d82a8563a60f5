import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { slackAnswerPortsFor, slackDeadLetters } from "../../platform/deps";
import { consumeSlackEvents } from "../../src/slackbot/consumer";
import type { SlackEventMessage } from "../../src/slackbot/events";
import { slackSignature } from "../../src/slackbot/signature";
import { d1Driver } from "../../storage/d1-driver";
import worker from "../../workers/index";
import { api, ok, platformToken } from "./client";

// The Slack bot inside workerd, end to end: POST /slack/events signed as
// Slack signs (src/slackbot/signature.ts), the slack-events queue consumed by
// the Worker's own consumer, and the replies reaching the recording Web API
// (tools/harness/slack-recorder.ts, started by slack-global-setup.ts and set
// as SLACK_API_BASE in vitest.config.ts) over real HTTP.

const workerEnv = env as unknown as Env;
const SECRET = workerEnv.SLACK_SIGNING_SECRET ?? "";
const RECORDER = workerEnv.SLACK_API_BASE.replace(/\/api$/, "");
const nowSeconds = () => Math.floor(Date.now() / 1000);

interface Call {
  token: string;
  body: { channel: string; thread_ts: string; text: string; metadata?: { event_payload?: { team?: string } } };
}

let counter = 0;
const unique = (prefix: string) =>
  `${prefix}${Date.now().toString(36).toUpperCase()}${(++counter).toString(36).toUpperCase()}`;

async function signedPost(
  body: string,
  options: { timestamp?: string; signature?: string; headers?: Record<string, string>; sendBody?: string } = {},
) {
  const timestamp = options.timestamp ?? String(nowSeconds());
  const signature = options.signature ?? (await slackSignature(SECRET, timestamp, body));
  const res = await SELF.fetch("https://edge.test/slack/events", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-slack-request-timestamp": timestamp,
      "x-slack-signature": signature,
      ...options.headers,
    },
    body: options.sendBody ?? body,
  });
  return { status: res.status, text: await res.text() };
}

async function install(team: string, botUser: string, app: string, token: string) {
  return ok(
    api("PUT", "/v1/admin/slack/installations", {
      token: await platformToken(),
      json: { team_id: team, bot_token: token, bot_user_id: botUser, app_id: app },
    }),
  );
}

async function workspace() {
  const team = unique("TW");
  const botUser = unique("UBOT");
  const app = unique("A");
  const token = `xoxb-${team.toLowerCase()}-test-token`;
  await install(team, botUser, app, token);
  return { team, botUser, app, token };
}

function envelope(
  w: { team: string; botUser: string; app: string },
  event: Record<string, unknown>,
  eventId = unique("Ev"),
): string {
  return JSON.stringify({
    token: "verification-token-unused",
    team_id: w.team,
    api_app_id: w.app,
    type: "event_callback",
    event_id: eventId,
    event_time: nowSeconds(),
    event,
    authorizations: [{ team_id: w.team, user_id: w.botUser, is_bot: true }],
  });
}

async function callsIn(channel: string): Promise<Call[]> {
  const res = await fetch(`${RECORDER}/_calls?channel=${encodeURIComponent(channel)}`);
  return ((await res.json()) as { calls: Call[] }).calls;
}

/** Waits until the channel has `n` recorded calls (the queue delivers within a second or so), then a little longer. */
async function waitForCalls(channel: string, n: number, settleMs = 1500, timeoutMs = 20_000): Promise<Call[]> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await callsIn(channel)).length >= n) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, settleMs));
  return callsIn(channel);
}

async function script(channel: string, answers: Array<{ status: number; retryAfter?: number; error?: string }>) {
  await fetch(`${RECORDER}/_script`, { method: "POST", body: JSON.stringify({ channel, answers }) });
}

const expectRefused = (answer: { status: number; text: string }) => {
  expect(answer.status, answer.text).toBe(401);
  const body = JSON.parse(answer.text) as { error: { code: string; message: string } };
  expect(body.error.code).toBe("unauthorized");
  return body.error.message;
};

describe("POST /slack/events: the signature", () => {
  const body = JSON.stringify({ type: "url_verification", challenge: "abc123", token: "x" });

  it("a correctly signed request is answered", async () => {
    const answer = await signedPost(body);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ challenge: "abc123" });
  });

  it("a wrong signature is refused", async () => {
    const wrong = await slackSignature("another-secret", String(nowSeconds()), body);
    expect(expectRefused(await signedPost(body, { signature: wrong }))).toMatch(/bad_signature/);
    expect(expectRefused(await signedPost(body, { signature: "v0=zz" }))).toMatch(/malformed_signature/);
    expect(expectRefused(await signedPost(body, { signature: `v1=${"0".repeat(64)}` }))).toMatch(/malformed_signature/);
  });

  it("a timestamp more than five minutes old, or ahead, is refused even when signed", async () => {
    const stale = String(nowSeconds() - 5 * 60 - 30);
    expect(expectRefused(await signedPost(body, { timestamp: stale }))).toMatch(/stale_timestamp/);
    const future = String(nowSeconds() + 5 * 60 + 30);
    expect(expectRefused(await signedPost(body, { timestamp: future }))).toMatch(/future_timestamp/);
    // Within the window either way: taken.
    expect((await signedPost(body, { timestamp: String(nowSeconds() - 200) })).status).toBe(200);
    expect((await signedPost(body, { timestamp: String(nowSeconds() + 200) })).status).toBe(200);
    expect(expectRefused(await signedPost(body, { timestamp: "12ab" }))).toMatch(/malformed_timestamp/);
  });

  it("missing headers are refused", async () => {
    for (const drop of ["x-slack-request-timestamp", "x-slack-signature"]) {
      const timestamp = String(nowSeconds());
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": await slackSignature(SECRET, timestamp, body),
      };
      delete headers[drop];
      const res = await SELF.fetch("https://edge.test/slack/events", { method: "POST", headers, body });
      expect(expectRefused({ status: res.status, text: await res.text() })).toMatch(/missing_headers/);
    }
  });

  it("a tampered body is refused", async () => {
    const tampered = body.replace("abc123", "abc124");
    expect(expectRefused(await signedPost(body, { sendBody: tampered }))).toMatch(/bad_signature/);
  });

  it("the same JSON re-encoded by a proxy (spacing, key order, escapes) is refused: the raw bytes are what is signed", async () => {
    const value = JSON.parse(body) as Record<string, unknown>;
    const reencodings = [
      JSON.stringify(value, null, 2),
      JSON.stringify({ challenge: value.challenge, token: value.token, type: value.type }),
      body.replace("abc123", "\\u0061bc123"),
      `${body}\n`,
    ];
    for (const sendBody of reencodings) {
      expect(JSON.parse(sendBody)).toEqual(value);
      expect(expectRefused(await signedPost(body, { sendBody }))).toMatch(/bad_signature/);
    }
    // Form-encoding the body again changes its bytes too.
    const form = "ssl_check=1&token=abc";
    const reformed = "token=abc&ssl_check=1";
    const res = await signedPost(form, {
      sendBody: reformed,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expectRefused(res);
  });

  it("answers url_verification with the challenge and ssl_check with 200", async () => {
    const challenge = await signedPost(
      JSON.stringify({
        type: "url_verification",
        challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        token: "t",
      }),
    );
    expect(JSON.parse(challenge.text)).toEqual({ challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" });
    const ssl = await signedPost("ssl_check=1&token=abc", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(ssl.status).toBe(200);
  });
});

describe("answering in the thread", () => {
  it("a mention is answered in its thread, in its channel, with the workspace's token", async () => {
    const w = await workspace();
    const channel = unique("C");
    const ts = "1733000000.000100";
    const started = Date.now();
    const ack = await signedPost(
      envelope(w, {
        type: "app_mention",
        user: "UASKER1",
        text: `<@${w.botUser}> who knows about postgresql replication and sql queries?`,
        ts,
        channel,
        event_ts: ts,
      }),
    );
    expect(ack.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
    const [call, ...more] = await waitForCalls(channel, 1);
    expect(more).toEqual([]);
    expect(call?.body.channel).toBe(channel);
    expect(call?.body.thread_ts).toBe(ts);
    expect(call?.token).toBe(w.token);
    expect(call?.body.text).toMatch(/Database/);
    expect(call?.body.metadata?.event_payload?.team).toBe("database");
  });

  it("a \u201cwho \u2026?\u201d message in a thread is answered in that thread; a low-confidence answer says it is not sure", async () => {
    const w = await workspace();
    const channel = unique("C");
    await signedPost(
      envelope(w, {
        type: "message",
        channel_type: "channel",
        user: "UASKER2",
        text: "who can help with the zxqv blorpification?",
        ts: "1733000001.000200",
        thread_ts: "1733000000.000001",
        channel,
      }),
    );
    const [call] = await waitForCalls(channel, 1);
    expect(call?.body.thread_ts).toBe("1733000000.000001");
    expect(call?.body.text).toMatch(/^I.m not sure who knows about this\. My best guesses: \*[^*]+\* \(\d+%\), /);
  });

  it("retries and duplicate deliveries of one event are answered once", async () => {
    const w = await workspace();
    const channel = unique("C");
    const eventId = unique("EvDup");
    const body = envelope(
      w,
      {
        type: "app_mention",
        user: "UASKER3",
        text: `<@${w.botUser}> who knows about python packaging?`,
        ts: "1733000002.000300",
        channel,
      },
      eventId,
    );
    const first = await signedPost(body);
    const again = await signedPost(body);
    const retry1 = await signedPost(body, {
      headers: { "x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout" },
    });
    const retry2 = await signedPost(body, {
      headers: { "x-slack-retry-num": "2", "x-slack-retry-reason": "http_error" },
    });
    for (const a of [first, again, retry1, retry2]) expect(a.status).toBe(200);
    const calls = await waitForCalls(channel, 1, 3000);
    expect(calls).toHaveLength(1);
    // A delivery after the reply finds the event done.
    await signedPost(body, { headers: { "x-slack-retry-num": "3", "x-slack-retry-reason": "http_timeout" } });
    expect(await waitForCalls(channel, 2, 0, 2500)).toHaveLength(1);
    const [row] = await d1Driver(env.DB).all("SELECT state FROM slack_events WHERE event_id = ?", [eventId]);
    expect(row?.state).toBe("replied");
  });

  it("never answers a bot, itself, an edit or another subtype, or a message that asks nothing", async () => {
    const w = await workspace();
    const channel = unique("C");
    const base = { channel, ts: "1733000003.000400" };
    const ignored: Array<Record<string, unknown>> = [
      { type: "message", ...base, user: w.botUser, text: "who knows about python?" },
      { type: "message", ...base, bot_id: "B123", text: "who knows about python?" },
      { type: "message", ...base, user: "UOTHER", bot_profile: { app_id: w.app }, text: "who knows about python?" },
      { type: "message", ...base, subtype: "bot_message", bot_id: "B9", text: "who knows about python?" },
      {
        type: "message",
        ...base,
        subtype: "message_changed",
        message: { user: "UASKER4", text: "who knows about python?" },
      },
      { type: "message", ...base, subtype: "channel_join", user: "UASKER4", text: "<@UASKER4> has joined" },
      { type: "message", ...base, user: "UASKER4", text: "python is great" },
      // Mentions the bot: the app_mention event of the same message answers it.
      { type: "message", ...base, user: "UASKER4", text: `<@${w.botUser}> who knows python?` },
      { type: "reaction_added", user: "UASKER4", reaction: "thumbsup", item: { channel } },
    ];
    for (const event of ignored) expect((await signedPost(envelope(w, event))).status).toBe(200);
    // The bot's own reply coming back as a message event: ignored too.
    await signedPost(
      envelope(w, {
        type: "message",
        ...base,
        user: w.botUser,
        bot_id: "BSELF",
        app_id: w.app,
        text: "The *Python* team …",
      }),
    );
    expect(await waitForCalls(channel, 1, 2500, 2500)).toEqual([]);
  });
});

describe("the Web API's rate limit and errors", () => {
  it("a 429 is retried after Retry-After through the queue, and the reply then lands once", async () => {
    const w = await workspace();
    const channel = unique("C");
    await script(channel, [{ status: 429, retryAfter: 1 }]);
    await signedPost(
      envelope(w, {
        type: "app_mention",
        user: "UASKER5",
        text: `<@${w.botUser}> who knows about nginx and apache?`,
        ts: "1733000004.000500",
        channel,
      }),
    );
    const calls = await waitForCalls(channel, 2, 2000, 30_000);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.body.thread_ts).toBe("1733000004.000500");
  });

  const message = (w: { team: string; botUser: string; app: string }, channel: string): SlackEventMessage => ({
    v: 1,
    eventId: unique("EvQ"),
    teamId: w.team,
    appId: w.app,
    botUserId: w.botUser,
    receivedAt: Date.now(),
    event: {
      type: "app_mention",
      user: "UASKER6",
      text: `<@${w.botUser}> who knows about games?`,
      ts: "1733000005.000600",
      channel,
    },
  });

  it("the consumer retries a 429 with the Retry-After as the delay, a 5xx with back-off, and dead-letters a permanent error with its reason", async () => {
    const w = await workspace();
    const limited = unique("C");
    const broken = unique("C");
    const gone = unique("C");
    await script(limited, [{ status: 429, retryAfter: 7 }]);
    await script(broken, [{ status: 503 }]);
    await script(gone, [{ status: 200, error: "channel_not_found" }]);
    const bodies = [message(w, limited), message(w, broken), message(w, gone)];
    // The consumer's policy over the Worker's own ports (database, recorder, DLQ); deliveries that record what was done.
    const done: Array<{ id: string; did: string; delaySeconds?: number }> = [];
    const deliveries = bodies.map((body, i) => ({
      id: `m${i}`,
      body,
      attempts: 1,
      ack: () => done.push({ id: `m${i}`, did: "ack" }),
      retry: (o?: { delaySeconds: number }) => done.push({ id: `m${i}`, did: "retry", delaySeconds: o?.delaySeconds }),
    }));
    await consumeSlackEvents(deliveries, slackAnswerPortsFor(workerEnv), slackDeadLetters(workerEnv), 6);
    expect(done.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: "m0", did: "retry", delaySeconds: 7 },
      { id: "m1", did: "retry", delaySeconds: 2 },
      { id: "m2", did: "ack" },
    ]);
    const db = d1Driver(env.DB);
    const rows = await Promise.all(
      bodies.map((b) => db.all("SELECT state, detail FROM slack_events WHERE event_id = ?", [b.eventId])),
    );
    expect(rows.map((r) => r[0]?.state)).toEqual(["failed", "failed", "dead"]);
    expect(String(rows[0]?.[0]?.detail)).toMatch(/429/);
    expect(String(rows[2]?.[0]?.detail)).toMatch(/channel_not_found/);
  });

  it("the last allowed try dead-letters a transient failure instead of dropping it", async () => {
    const w = await workspace();
    const channel = unique("C");
    await script(channel, [{ status: 500 }]);
    const body = message(w, channel);
    const max = Number(workerEnv.SLACK_EVENTS_MAX_RETRIES);
    const batch = createMessageBatch("slack-events", [{ id: "last", timestamp: new Date(), attempts: max + 1, body }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, workerEnv, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["last"]);
    const [row] = await d1Driver(env.DB).all("SELECT state, detail FROM slack_events WHERE event_id = ?", [
      body.eventId,
    ]);
    expect(row?.state).toBe("dead");
    expect(String(row?.detail)).toMatch(/gave up after 7 tries: chat.postMessage: HTTP 500/);
  });

  it("a delivery after a crash between the claim and the reply answers; one while a fresh claim is held waits", async () => {
    const w = await workspace();
    const channel = unique("C");
    const body = message(w, channel);
    const ports = slackAnswerPortsFor(workerEnv);
    // A claim taken long ago and never finished: the worker that took it died.
    await ports.events.claim(body.eventId, w.team, Date.now() - 10 * 60_000, 0);
    const batch = createMessageBatch("slack-events", [{ id: "after-crash", timestamp: new Date(), attempts: 2, body }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, workerEnv, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["after-crash"]);
    expect(await callsIn(channel)).toHaveLength(1);

    const held = message(w, unique("C"));
    await ports.events.claim(held.eventId, w.team, Date.now(), 0);
    const waits: Array<number | undefined> = [];
    const busy = {
      id: "busy",
      body: held,
      attempts: 1,
      ack: () => waits.push(-1),
      retry: (o?: { delaySeconds: number }) => waits.push(o?.delaySeconds),
    };
    await consumeSlackEvents([busy], slackAnswerPortsFor(workerEnv), slackDeadLetters(workerEnv), 6);
    expect(waits).toEqual([60]);
  });
});

describe("installations", () => {
  it("tokens are stored sealed and never returned; only operators install", async () => {
    const w = await workspace();
    const listed = await ok<{ items: Array<Record<string, unknown>> }>(
      api("GET", "/v1/admin/slack/installations?limit=1000", { token: await platformToken() }),
    );
    const mine = listed.items.find((i) => i.team_id === w.team);
    expect(mine).toMatchObject({ team_id: w.team, bot_user_id: w.botUser, app_id: w.app });
    expect(JSON.stringify(listed)).not.toContain("xoxb-");
    const [row] = await d1Driver(env.DB).all("SELECT bot_token FROM slack_installations WHERE team_id = ?", [w.team]);
    expect(String(row?.bot_token)).toMatch(/^sealed:v1:/);
    expect(String(row?.bot_token)).not.toContain(w.token);
    const bad = await api("PUT", "/v1/admin/slack/installations", {
      token: await platformToken(),
      json: { team_id: "T1", bot_token: "not-a-token", bot_user_id: "U1", app_id: "A1" },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).not.toContain("not-a-token");
  });

  it("the OAuth v2 flow: a signed state, the code exchanged at SLACK_API_BASE, the workspace installed", async () => {
    const start = await SELF.fetch("https://edge.test/slack/install", { redirect: "manual" });
    expect(start.status).toBe(302);
    const to = new URL(start.headers.get("location") ?? "");
    expect(to.pathname).toBe("/oauth/v2/authorize");
    expect(to.searchParams.get("scope")).toBe("app_mentions:read,channels:history,chat:write");
    expect(to.searchParams.get("redirect_uri")).toBe("https://edge.test/slack/oauth/callback");
    const state = to.searchParams.get("state") ?? "";
    const forged = await SELF.fetch(
      `https://edge.test/slack/oauth/callback?code=good-code&state=${state.slice(0, -2)}xx`,
    );
    expect(forged.status).toBe(401);
    const refused = await SELF.fetch(`https://edge.test/slack/oauth/callback?code=bad-code&state=${state}`);
    expect(refused.status).toBe(503);
    const done = await SELF.fetch(`https://edge.test/slack/oauth/callback?code=good-code&state=${state}`);
    expect(done.status).toBe(201);
    const text = await done.text();
    expect(JSON.parse(text)).toEqual({
      installed: { team_id: "TOAUTH0001", bot_user_id: "UOAUTHBOT1", app_id: "AOAUTH0001" },
    });
    expect(text).not.toContain("xoxb-");
  });
});
