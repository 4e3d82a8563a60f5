import { describe, expect, it } from "vitest";
import { answerText, verdictOf } from "../../src/slackbot/answer";
import { consumeSlackEvents } from "../../src/slackbot/consumer";
import { asksWho, parseEnvelope, type SlackEventMessage, topicOf, triage } from "../../src/slackbot/events";
import type { TeamScore } from "../../src/slackbot/model";
import { type AnswerPorts, answerEvent, checkOauthState, oauthState } from "../../src/slackbot/service";
import { MAX_SKEW_SECONDS, slackSignature, verifySlackSignature } from "../../src/slackbot/signature";
import { openToken, sealToken } from "../../src/slackbot/token-seal";
import { tokenize } from "../../src/slackbot/tokenize";
import { retryAfterOf } from "../../src/slackbot/web-api";

// The Slack bot's pure parts (src/slackbot/): the signature, triage, wording,
// and that a message which asks nothing touches neither storage nor the model.

const enc = new TextEncoder();

describe("signature", () => {
  const secret = "8f742231b10e8888abcd99yyyzzz85a5";
  it("verifies Slack's documented example", async () => {
    // https://api.slack.com/authentication/verifying-requests-from-slack
    const body =
      "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const request = {
      timestamp: "1531420618",
      signature: "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
      body: enc.encode(body),
    };
    expect(await verifySlackSignature(secret, request, 1531420618_000)).toEqual({ ok: true });
    expect(await slackSignature(secret, "1531420618", body)).toBe(request.signature);
    expect(await verifySlackSignature(secret, request, (1531420618 + MAX_SKEW_SECONDS + 1) * 1000)).toEqual({
      ok: false,
      reason: "stale_timestamp",
    });
    expect(await verifySlackSignature("", request, 1531420618_000)).toEqual({ ok: false, reason: "no_secret" });
  });
});

describe("events", () => {
  const message = (event: Record<string, unknown>): SlackEventMessage => ({
    v: 1,
    eventId: "Ev1",
    teamId: "T1",
    receivedAt: 0,
    event: { type: "message", channel: "C1", user: "U1", ts: "1.1", ...event },
  });

  it("asks who only with 'who' and a question mark after it", () => {
    expect(asksWho("who knows about nginx?")).toBe(true);
    expect(asksWho("Hey, WHO owns the build? thanks")).toBe(true);
    expect(asksWho("who knows about nginx")).toBe(false);
    expect(asksWho("somewhoever is here?")).toBe(false);
    expect(asksWho("is it <@U1|who>?")).toBe(false);
  });

  it("triages: bots, subtypes and itself ignored; questions answered in their thread", () => {
    expect(triage(message({ text: "who knows python?" }), "UBOT", "A1")).toEqual({
      answer: true,
      channel: "C1",
      threadTs: "1.1",
      text: "who knows python?",
    });
    expect(triage(message({ text: "who?", thread_ts: "0.5" }), "UBOT", "A1")).toMatchObject({ threadTs: "0.5" });
    expect(triage(message({ text: "who?", user: "UBOT" }), "UBOT", "A1")).toMatchObject({ reason: "from_this_app" });
    expect(triage(message({ text: "who?", bot_id: "B1" }), "UBOT", "A1")).toMatchObject({ reason: "from_a_bot" });
    expect(triage(message({ text: "who?", subtype: "message_changed" }), "UBOT", "A1")).toMatchObject({
      reason: "subtype",
    });
    expect(triage(message({ text: "nice" }), "UBOT", "A1")).toMatchObject({ reason: "not_a_question" });
    expect(triage(message({ type: "app_mention", text: "<@UBOT> hi" }), "UBOT", "A1")).toMatchObject({ answer: true });
  });

  it("finds the topic and parses envelopes", () => {
    expect(topicOf("<@UBOT> who knows about <https://x.test|postgres> replication?")).toBe("postgres replication?");
    expect(parseEnvelope("ssl_check=1&token=x", "application/x-www-form-urlencoded", { at: 0 })).toEqual({
      kind: "ssl_check",
    });
    expect(parseEnvelope("{", "application/json", { at: 0 })).toBeNull();
    const e = parseEnvelope(
      JSON.stringify({ type: "event_callback", team_id: "T1", event_id: "Ev9", event: { type: "message" } }),
      "application/json",
      { at: 5, retryNum: "2", retryReason: "http_timeout" },
    );
    expect(e).toMatchObject({ kind: "event", message: { eventId: "Ev9", retryNum: 2, retryReason: "http_timeout" } });
  });

  it("tokenizes ASCII only, as training/slackbot/text.py", () => {
    expect(tokenize("Ünïcode PostgreSQL-14 a b c++ x86_64")).toEqual(["code", "postgresql", "14", "x86", "64"]);
  });
});

describe("answers", () => {
  const ranked: TeamScore[] = [
    { id: "db", name: "Database", probability: 0.41 },
    { id: "net", name: "Networking", probability: 0.3 },
    { id: "web", name: "Web", probability: 0.2 },
    { id: "x", name: "X", probability: 0.09 },
  ];
  it("is confident above the threshold, honest below it", () => {
    expect(answerText(verdictOf(ranked, 0.4, "t"))).toBe(
      "The *Database* team is the most likely to help with this (41% confident).",
    );
    expect(answerText(verdictOf(ranked, 0.5, "t"))).toBe(
      "I'm not sure who knows about this. My best guesses: *Database* (41%), *Networking* (30%), *Web* (20%).",
    );
    expect(verdictOf(ranked, 0.5, " ").kind).toBe("no_topic");
  });
});

describe("costs", () => {
  it("a message that asks nothing reads no storage and loads no model", async () => {
    const touched: string[] = [];
    const trap = (name: string) => () => {
      touched.push(name);
      throw new Error(name);
    };
    const ports = {
      installations: { get: trap("installations"), put: trap("put"), list: trap("list") },
      events: { claim: trap("claim"), finish: trap("finish") },
      classifier: trap("model"),
      slack: { fetch: trap("fetch"), baseUrl: "http://x" },
      openToken: trap("token"),
      now: () => 0,
      minConfidence: 0.5,
      claimMs: 60_000,
    } as unknown as AnswerPorts;
    const acks: string[] = [];
    const chatter = ["good morning", "lunch?", "what time is it?"].map((text, i) => ({
      id: `m${i}`,
      attempts: 1,
      body: {
        v: 1,
        eventId: `Ev${i}`,
        teamId: "T1",
        receivedAt: 0,
        event: { type: "message", channel: "C1", user: "U1", ts: "1.1", text },
      },
      ack: () => acks.push(`m${i}`),
      retry: () => acks.push("retry"),
    }));
    await consumeSlackEvents(chatter, ports, { send: trap("dlq") as () => Promise<void> }, 6);
    expect(acks).toEqual(["m0", "m1", "m2"]);
    expect(touched).toEqual([]);
    expect(await answerEvent(ports, chatter[0]?.body as SlackEventMessage)).toEqual({
      status: "ignored",
      reason: "not_a_question",
    });
  });
});

describe("tokens and OAuth state", () => {
  it("seals tokens when a key is set, and reads plain ones", async () => {
    const sealed = await sealToken("k", "xoxb-1-abc");
    expect(sealed).toMatch(/^sealed:v1:/);
    expect(sealed).not.toContain("xoxb");
    expect(await openToken("k", sealed)).toBe("xoxb-1-abc");
    expect(await openToken("k", "xoxb-plain")).toBe("xoxb-plain");
    await expect(openToken("other", sealed)).rejects.toThrow();
    expect(await sealToken(undefined, "xoxb-1")).toBe("xoxb-1");
  });

  it("signs the install state and refuses a forged or expired one", async () => {
    const state = await oauthState("s", 1000);
    await expect(checkOauthState("s", state, 2000)).resolves.toBeUndefined();
    await expect(checkOauthState("t", state, 2000)).rejects.toThrow(/not ours/);
    await expect(checkOauthState("s", state, 1000 + 11 * 60_000)).rejects.toThrow(/expired/);
    await expect(checkOauthState("s", "a.b", 0)).rejects.toThrow(/malformed/);
  });

  it("reads Retry-After", () => {
    expect(retryAfterOf("30")).toBe(30);
    expect(retryAfterOf(null)).toBe(1);
    expect(retryAfterOf("x")).toBe(1);
  });
});
