import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { Conversation } from "../../durable-objects/conversation/conversation";
import { addUsers, api, connectTeams, newTeam, ok, token } from "./client";
import { Client, type Frame } from "./realtime-fixture";

// Messages kept per conversation (workers/routes/conversation-messages.ts,
// durable-objects/conversation/), end to end inside workerd: every change is
// an event on the conversation's topic, history pages newest first with
// stable cursors, a deletion takes the text out of history and out of the
// topic's resume log, the team's bounds trim, and a conversation the caller
// does not see is a 404 that tells nothing.

interface Team {
  team: string;
  admin: string;
  ids: Record<string, string>;
  channels: Record<string, string>;
}

interface Written {
  message: Message | null;
  topic: string;
  seq: number | null;
}
interface Message {
  id: string;
  channel: string;
  user: string;
  team: string;
  text: string;
  mentions: string[];
  ts: number;
  edited_ts: number | null;
  reactions: Array<{ name: string; users: string[]; count: number }>;
}
interface Page {
  messages: Message[];
  next_cursor: string | null;
  users: Array<{ id: string }>;
}

/** A channel per behaviour, so each test starts from an empty history and a topic at seq 0. */
const CHANNELS = [
  "events",
  "paging",
  "deleted",
  "trim",
  "aged",
  "input",
  "rights",
  "outbox",
  "profiles",
  "edits",
] as const;

async function buildTeam(extraChannels: readonly string[] = CHANNELS): Promise<Team> {
  const { id: team, admin } = await newTeam();
  const base = `/v1/admin/teams/${team}`;
  const ids: Record<string, string> = { admin: "UADMIN" };
  for (const handle of ["ada", "bob", "cat", "gus"]) {
    const id = `U${handle.toUpperCase()}${team.slice(1, 7)}`;
    ids[handle] = id;
    const role = handle === "gus" ? "guest" : "member";
    await ok(api("POST", `${base}/users`, { token: admin, json: { id, email: `${handle}@history.test`, role } }), 201);
  }
  const channels: Record<string, string> = {};
  const memberships: Array<{ channel_id: string; user_id: string }> = [];
  const make = async (key: string, isPrivate: boolean, members: string[]) => {
    const body = await ok<{ channel: { id: string } }>(
      api("POST", `${base}/channels`, { token: admin, json: { name: `${key}-talk`, private: isPrivate } }),
      201,
    );
    channels[key] = body.channel.id;
    for (const m of members) memberships.push({ channel_id: body.channel.id, user_id: ids[m] ?? m });
  };
  for (const key of extraChannels) await make(key, false, ["ada", "bob", "cat"]);
  await make("secret", true, ["ada", "bob"]);
  await make("guests", false, ["gus", "bob"]);
  await ok(api("POST", `${base}/memberships/import`, { token: admin, json: { memberships } }), 201);
  return { team, admin, ids, channels };
}

describe("conversation history", () => {
  let t: Team;
  const as = (who: string) => (who === "admin" ? Promise.resolve(t.admin) : token(t.team, t.ids[who] ?? who));
  const conv = (key: string) => t.channels[key] ?? key;
  const post = async (who: string, key: string, text: string, mentions?: string[]) =>
    ok<Written>(
      api("POST", `/v1/conversations/${conv(key)}/messages`, {
        token: await as(who),
        json: mentions ? { text, mentions } : { text },
      }),
      201,
    );
  const history = async (who: string, key: string, query = "") =>
    ok<Page>(api("GET", `/v1/conversations/${conv(key)}/history${query}`, { token: await as(who) }));
  const conversationStub = (key: string) =>
    env.CONVERSATION.get(env.CONVERSATION.idFromName(`${t.team}:${conv(key)}`)) as DurableObjectStub<Conversation>;
  const topicStub = (key: string) => env.TOPIC.get(env.TOPIC.idFromName(`ch:${t.team}:${conv(key)}`));
  const subscribed = async (who: string, key: string, since?: number) => {
    const c = await Client.connect(await as(who));
    expect((await c.one()).type).toBe("hello");
    const topic = `channel:${conv(key)}`;
    const sub = await c.subscribe([since === undefined ? { topic } : { topic, since }]);
    expect(sub.type, JSON.stringify(sub)).toBe("subscribed");
    return c;
  };
  const eventsOf = (frames: Frame[]) => frames.map((f) => f.event as Record<string, unknown>);

  beforeAll(async () => {
    t = await buildTeam();
  }, 60_000);

  it("posts, edits, reacts and deletes, each change one event on the conversation's topic, in order", async () => {
    const c = await subscribed("bob", "events");
    const posted = await post("ada", "events", "hello there", [t.ids.bob ?? ""]);
    expect(posted).toEqual({
      topic: `channel:${conv("events")}`,
      seq: 1,
      message: {
        id: expect.stringMatching(/^\d{16}$/),
        channel: conv("events"),
        user: t.ids.ada,
        team: t.team,
        text: "hello there",
        mentions: [t.ids.bob],
        ts: expect.any(Number),
        edited_ts: null,
        reactions: [],
      },
    });
    const id = posted.message?.id ?? "";
    const path = `/v1/conversations/${conv("events")}/messages/${id}`;
    const edited = await ok<Written>(api("PATCH", path, { token: await as("ada"), json: { text: "hello, edited" } }));
    expect(edited.message).toMatchObject({
      text: "hello, edited",
      mentions: [t.ids.bob],
      edited_ts: expect.any(Number),
    });
    expect(edited.seq).toBe(2);
    const reacted = await ok<Written>(api("POST", `${path}/reactions/thumbsup`, { token: await as("bob") }));
    expect(reacted.message?.reactions).toEqual([{ name: "thumbsup", users: [t.ids.bob], count: 1 }]);
    // One per user per name: again is no change and no event.
    const again = await ok<Written>(api("POST", `${path}/reactions/thumbsup`, { token: await as("bob") }));
    expect(again.seq).toBeNull();
    await ok(api("POST", `${path}/reactions/thumbsup`, { token: await as("cat") }));
    const unreacted = await ok<Written>(api("DELETE", `${path}/reactions/thumbsup`, { token: await as("bob") }));
    expect(unreacted.message?.reactions).toEqual([{ name: "thumbsup", users: [t.ids.cat], count: 1 }]);
    const deleted = await ok<Written>(api("DELETE", path, { token: await as("ada") }));
    expect(deleted).toEqual({ topic: `channel:${conv("events")}`, seq: 6, message: null });

    const frames = await c.take(6);
    expect(frames.map((f) => [f.type, f.seq])).toEqual([
      ["event", 1],
      ["event", 2],
      ["event", 3],
      ["event", 4],
      ["event", 5],
      ["event", 6],
    ]);
    const channel = conv("events");
    expect(eventsOf(frames)).toEqual([
      {
        type: "message",
        channel,
        id,
        user: t.ids.ada,
        text: "hello there",
        mentions: [t.ids.bob],
        ts: expect.any(Number),
      },
      {
        type: "message_changed",
        channel,
        id,
        user: t.ids.ada,
        text: "hello, edited",
        mentions: [t.ids.bob],
        ts: posted.message?.ts,
        edited_ts: expect.any(Number),
      },
      { type: "reaction_added", channel, message: id, user: t.ids.bob, name: "thumbsup", ts: expect.any(Number) },
      { type: "reaction_added", channel, message: id, user: t.ids.cat, name: "thumbsup", ts: expect.any(Number) },
      { type: "reaction_removed", channel, message: id, user: t.ids.bob, name: "thumbsup", ts: expect.any(Number) },
      { type: "message_deleted", channel, id, ts: expect.any(Number) },
    ]);
    // The author's profile came just in time, before the first message naming them.
    expect(c.profiles.map((p) => p.user.id)).toContain(t.ids.ada);
    expect(await c.rest()).toEqual([]);
    c.close();
  });

  it("sends the profile of who reacted, and of someone an edit newly mentions, before the event", async () => {
    const c = await subscribed("bob", "edits");
    const posted = await post("ada", "edits", "plain");
    const path = `/v1/conversations/${conv("edits")}/messages/${posted.message?.id}`;
    await ok(api("POST", `${path}/reactions/eyes`, { token: await as("cat") }));
    await ok(api("PATCH", path, { token: await as("ada"), json: { text: "now with bob", mentions: [t.ids.bob] } }));
    const frames = await c.take(3);
    expect(eventsOf(frames).map((e) => e.type)).toEqual(["message", "reaction_added", "message_changed"]);
    // Before this, only the author's came: a reaction's user and an edit's mentions went unannotated.
    expect(c.profiles.map((p) => p.user.id).sort()).toEqual([t.ids.ada, t.ids.bob, t.ids.cat].sort());
    c.close();
  });

  it("pages newest first; a cursor stays where it was while new messages arrive", async () => {
    const ids: string[] = [];
    for (let i = 1; i <= 7; i++) ids.push((await post("ada", "paging", `m${i}`)).message?.id ?? "");
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(7);
    const first = await history("bob", "paging", "?limit=3");
    expect(first.messages.map((m) => m.text)).toEqual(["m7", "m6", "m5"]);
    expect(first.next_cursor).toEqual(expect.any(String));
    // New messages arrive between pages: the next page continues where the first ended.
    await post("cat", "paging", "m8");
    await post("cat", "paging", "m9");
    const second = await history("bob", "paging", `?limit=3&cursor=${encodeURIComponent(first.next_cursor ?? "")}`);
    expect(second.messages.map((m) => m.text)).toEqual(["m4", "m3", "m2"]);
    const third = await history("bob", "paging", `?limit=3&cursor=${encodeURIComponent(second.next_cursor ?? "")}`);
    expect(third.messages.map((m) => m.text)).toEqual(["m1"]);
    expect(third.next_cursor).toBeNull();
    // The same cursor gives the same page again, and the newest page now starts with the new ones.
    const replay = await history("bob", "paging", `?limit=3&cursor=${encodeURIComponent(first.next_cursor ?? "")}`);
    expect(replay.messages.map((m) => m.id)).toEqual(second.messages.map((m) => m.id));
    expect((await history("bob", "paging", "?limit=2")).messages.map((m) => m.text)).toEqual(["m9", "m8"]);
  });

  it("carries the profiles of the users a page names that the caller may see, and leaves the others out", async () => {
    // bob (in "guests" with the guest gus) mentions cat, whom gus shares no channel with.
    await post("bob", "guests", "ask cat", [t.ids.cat ?? ""]);
    const asMember = await history("ada", "guests");
    expect(asMember.messages[0]?.mentions).toEqual([t.ids.cat]);
    expect(asMember.users.map((u) => u.id).sort()).toEqual([t.ids.bob, t.ids.cat].sort());
    const asGuest = await history("gus", "guests");
    expect(asGuest.messages[0]?.mentions).toEqual([t.ids.cat]);
    expect(asGuest.users.map((u) => u.id)).toEqual([t.ids.bob]);
    // A mention of nobody is no profile at all.
    await post("ada", "profiles", "hi ghost", ["UNOBODY"]);
    expect((await history("bob", "profiles")).users.map((u) => u.id)).toEqual([t.ids.ada]);
  });

  it("deletes the text everywhere: history, the conversation's storage, and the topic's resume log", async () => {
    const secret = "the launch code is 4242";
    const before = await post("ada", "deleted", "first");
    const gone = await post("ada", "deleted", secret, [t.ids.bob ?? ""]);
    await ok(
      api("PATCH", `/v1/conversations/${conv("deleted")}/messages/${gone.message?.id}`, {
        token: await as("ada"),
        json: { text: `${secret}, edited` },
      }),
    );
    await post("bob", "deleted", "last");
    // An admin (live role) deletes another's message.
    await ok(api("DELETE", `/v1/conversations/${conv("deleted")}/messages/${gone.message?.id}`, { token: t.admin }));

    const page = await history("bob", "deleted");
    expect(page.messages.map((m) => m.text)).toEqual(["last", "first"]);
    expect(JSON.stringify(page)).not.toContain("4242");
    // Its id names nothing any more.
    const path = `/v1/conversations/${conv("deleted")}/messages/${gone.message?.id}`;
    expect((await api("PATCH", path, { token: await as("ada"), json: { text: "back" } })).status).toBe(404);
    expect((await api("POST", `${path}/reactions/eyes`, { token: await as("ada") })).status).toBe(404);

    // Nothing of the text in the object's SQLite (the tombstone keeps who and when).
    const rows = await runInDurableObject(conversationStub("deleted"), (_, state) =>
      state.storage.sql.exec("SELECT * FROM messages").toArray(),
    );
    expect(rows).toHaveLength(3);
    expect(JSON.stringify(rows)).not.toContain("4242");

    // A client resuming from before the message gets its events, never its words.
    const c = await subscribed("cat", "deleted", (before.seq ?? 1) - 1);
    const replay = await c.take(5);
    expect(eventsOf(replay).map((e) => e.type)).toEqual([
      "message",
      "message",
      "message_changed",
      "message",
      "message_deleted",
    ]);
    expect(JSON.stringify(replay)).not.toContain("4242");
    expect(eventsOf(replay)[1]).toMatchObject({ id: gone.message?.id, text: "", mentions: [] });
    expect(eventsOf(replay)[0]).toMatchObject({ text: "first" });
    // The topic's log holds nothing more of it to blank.
    const key = `ch:${t.team}:${conv("deleted")}`;
    expect(await topicStub("deleted").redact(key, gone.message?.id ?? "")).toEqual({ redacted: 0 });
    c.close();
  });

  it("trims to the team's bounds on write, and by age on the alarm", async () => {
    const policyPath = `/v1/admin/teams/${t.team}/history`;
    expect(await ok(api("GET", policyPath, { token: t.admin }))).toEqual({
      max_messages: 1000,
      max_age_days: 90,
      custom: false,
    });
    // A member may not set it; values out of bounds are a 400 and change nothing.
    expect(
      (await api("PUT", policyPath, { token: await as("ada"), json: { max_messages: 3, max_age_days: 1 } })).status,
    ).toBe(403);
    for (const body of [
      { max_messages: 0, max_age_days: 1 },
      { max_messages: 3, max_age_days: 0 },
      { max_messages: 100_001, max_age_days: 1 },
      { max_messages: 3 },
      { max_messages: 3, max_age_days: 1, extra: true },
      { max_messages: 2.5, max_age_days: 1 },
    ]) {
      expect((await api("PUT", policyPath, { token: t.admin, json: body })).status, JSON.stringify(body)).toBe(400);
    }
    expect(((await ok(api("GET", policyPath, { token: t.admin }))) as { custom: boolean }).custom).toBe(false);
    expect(await ok(api("PUT", policyPath, { token: t.admin, json: { max_messages: 3, max_age_days: 1 } }))).toEqual({
      max_messages: 3,
      max_age_days: 1,
      custom: true,
    });

    // The "trim" and "aged" conversations have not been written yet: they read the new bounds.
    for (let i = 1; i <= 5; i++) await post("ada", "trim", `t${i}`);
    expect((await history("bob", "trim")).messages.map((m) => m.text)).toEqual(["t5", "t4", "t3"]);
    expect(await conversationStub("trim").stats()).toMatchObject({ messages: 3, outbox: 0 });
    // Tombstones do not count: with t5 deleted, t6 fits; t7 then pushes out the oldest.
    const page = await history("bob", "trim");
    await ok(api("DELETE", `/v1/conversations/${conv("trim")}/messages/${page.messages[0]?.id}`, { token: t.admin }));
    await post("ada", "trim", "t6");
    expect((await history("bob", "trim")).messages.map((m) => m.text)).toEqual(["t6", "t4", "t3"]);
    await post("ada", "trim", "t7");
    expect((await history("bob", "trim")).messages.map((m) => m.text)).toEqual(["t7", "t6", "t4"]);
    expect(await conversationStub("trim").stats()).toMatchObject({ messages: 3, tombstones: 1 });

    const old = await post("ada", "aged", "old news");
    await post("ada", "aged", "fresh");
    // The first message is made two days old, as if time had passed.
    await runInDurableObject(conversationStub("aged"), (_, state) => {
      state.storage.sql.exec("UPDATE messages SET ts = ts - 2 * 86400000 WHERE id = ?", Number(old.message?.id));
    });
    // History never shows what is past the age, even before the alarm trims it.
    expect((await history("bob", "aged")).messages.map((m) => m.text)).toEqual(["fresh"]);
    expect(await runDurableObjectAlarm(conversationStub("aged"))).toBe(true);
    expect(await conversationStub("aged").stats()).toMatchObject({ messages: 1 });
    const rows = await runInDurableObject(conversationStub("aged"), (_, state) =>
      state.storage.sql.exec<{ text: string }>("SELECT text FROM messages").toArray(),
    );
    expect(rows.map((r) => r.text)).toEqual(["fresh"]);
  });

  it("refuses bad input with a 400 and changes nothing", async () => {
    const c = await subscribed("bob", "input");
    const kept = await post("ada", "input", "keep me");
    await c.take(1);
    const base = `/v1/conversations/${conv("input")}`;
    const msg = `${base}/messages/${kept.message?.id}`;
    const ada = await as("ada");
    const bad: Array<[string, string, unknown]> = [
      ["POST", `${base}/messages`, { text: "" }],
      ["POST", `${base}/messages`, { text: "x".repeat(4001) }],
      ["POST", `${base}/messages`, { text: "hi", extra: 1 }],
      ["POST", `${base}/messages`, { text: "hi", mentions: ["has space"] }],
      ["POST", `${base}/messages`, { text: 42 }],
      ["POST", `${base}/messages`, { mentions: [] }],
      ["PATCH", msg, { text: "" }],
      ["PATCH", msg, { text: "ok", mentions: "UADA" }],
      ["POST", `${msg}/reactions/not.an.emoji`, undefined],
      ["POST", `${msg}/reactions/UPPER`, undefined],
      ["POST", `${msg}/reactions/${"a".repeat(70)}`, undefined],
      ["GET", `${base}/history?cursor=nope`, undefined],
      ["GET", `${base}/history?limit=0`, undefined],
      ["GET", `${base}/history?limit=201`, undefined],
    ];
    for (const [method, path, json] of bad) {
      const res = await api(method, path, json === undefined ? { token: ada } : { token: ada, json });
      expect(res.status, `${method} ${path} ${JSON.stringify(json)?.slice(0, 60)}: ${JSON.stringify(res.body)}`).toBe(
        400,
      );
      expect(Object.keys(res.body)).toEqual(["error"]);
    }
    // Not JSON at all.
    const notJson = await api("POST", `${base}/messages`, { token: ada, body: "{", contentType: "application/json" });
    expect(notJson.status).toBe(400);
    const page = await history("ada", "input");
    expect(page.messages.map((m) => [m.text, m.edited_ts, m.reactions])).toEqual([["keep me", null, []]]);
    expect(await c.rest()).toEqual([]);
    c.close();
  });

  it("lets only the author edit (403), and the author or an owner or admin delete", async () => {
    const m = await post("ada", "rights", "mine");
    const path = `/v1/conversations/${conv("rights")}/messages/${m.message?.id}`;
    const byBob = await api<{ error: { code: string } }>("PATCH", path, {
      token: await as("bob"),
      json: { text: "his" },
    });
    expect(byBob.status).toBe(403);
    expect(byBob.body.error.code).toBe("forbidden");
    // Not even an admin edits another's words.
    expect((await api("PATCH", path, { token: t.admin, json: { text: "admin's" } })).status).toBe(403);
    expect((await api("DELETE", path, { token: await as("bob") })).status).toBe(403);
    expect((await history("ada", "rights")).messages.map((x) => x.text)).toEqual(["mine"]);
    await ok(api("PATCH", path, { token: await as("ada"), json: { text: "still mine" } }));
    expect((await history("ada", "rights")).messages.map((x) => x.text)).toEqual(["still mine"]);
    await ok(api("DELETE", path, { token: await as("ada") }));
    expect((await history("ada", "rights")).messages).toEqual([]);
    // Deleting again: the message is gone.
    expect((await api("DELETE", path, { token: await as("ada") })).status).toBe(404);
  });

  it("answers 404 to a conversation the caller does not see, exactly as to one that does not exist", async () => {
    const inSecret = await post("ada", "secret", "members only");
    const other = await newTeam();
    const cat = await as("cat");
    const callers: Array<[string, string]> = [
      ["a member who is not in the private channel", cat],
      ["a guest", await as("gus")],
      ["another team's admin", other.admin],
    ];
    const requests = (channel: string, message: string): Array<[string, string, unknown]> => [
      ["POST", `/v1/conversations/${channel}/messages`, { text: "let me in" }],
      ["PATCH", `/v1/conversations/${channel}/messages/${message}`, { text: "changed" }],
      ["DELETE", `/v1/conversations/${channel}/messages/${message}`, undefined],
      ["POST", `/v1/conversations/${channel}/messages/${message}/reactions/eyes`, undefined],
      ["DELETE", `/v1/conversations/${channel}/messages/${message}/reactions/eyes`, undefined],
      ["GET", `/v1/conversations/${channel}/history`, undefined],
      ["GET", `/v1/conversations/${channel}/history?cursor=nope`, undefined],
    ];
    const secret = conv("secret");
    const id = inSecret.message?.id ?? "";
    const ghost = "CNOSUCHTHING1";
    for (const [who, tokenText] of callers) {
      const real = requests(secret, id);
      const none = requests(ghost, "1000000000000000");
      for (const [i, [method, path, json]] of real.entries()) {
        const [, ghostPath] = none[i] ?? [];
        const options = json === undefined ? { token: tokenText } : { token: tokenText, json };
        const a = await api(method, path, options);
        const b = await api(method, ghostPath ?? "", options);
        expect(a.status, `${who}: ${method} ${path}`).toBe(404);
        const text = JSON.stringify(a.body).replaceAll(secret, "<c>").replaceAll(id, "<m>");
        expect(text, `${who}: ${method} ${path}`).toBe(
          JSON.stringify(b.body).replaceAll(ghost, "<c>").replaceAll("1000000000000000", "<m>"),
        );
        expect(text).not.toContain("members only");
      }
    }
    // Another team's admin cannot read or set this team's bounds either.
    const policyPath = `/v1/admin/teams/${t.team}/history`;
    expect((await api("GET", policyPath, { token: other.admin })).status).toBe(404);
    expect(
      (await api("PUT", policyPath, { token: other.admin, json: { max_messages: 1, max_age_days: 1 } })).status,
    ).toBe(404);
    // Nothing changed.
    const page = await history("ada", "secret");
    expect(page.messages.map((m) => [m.text, m.reactions])).toEqual([["members only", []]]);
  });

  it("keeps a DM's messages like a channel's: its members only, every change an event on its topic", async () => {
    const opened = await ok<{ conversation: { id: string } }>(
      api("POST", "/v1/conversations", { token: await as("ada"), json: { users: [t.ids.bob] } }),
      201,
    );
    const dm = opened.conversation.id;
    const c = await subscribed("bob", dm);
    const m = await post("ada", dm, "just us", [t.ids.bob ?? ""]);
    expect(m).toMatchObject({
      topic: `channel:${dm}`,
      seq: expect.any(Number),
      message: { text: "just us", channel: dm },
    });
    const frames = await c.take(1);
    expect(frames[0]?.seq).toBe(m.seq);
    expect(eventsOf(frames)).toEqual([
      {
        type: "message",
        channel: dm,
        id: m.message?.id,
        user: t.ids.ada,
        text: "just us",
        mentions: [t.ids.bob],
        ts: m.message?.ts,
      },
    ]);
    expect((await history("bob", dm)).messages.map((x) => x.text)).toEqual(["just us"]);
    // Not a member: exactly as a conversation that does not exist.
    for (const who of ["cat", "admin"]) {
      const res = await api("GET", `/v1/conversations/${dm}/history`, { token: await as(who) });
      const ghost = await api("GET", "/v1/conversations/DNOSUCHTHING/history", { token: await as(who) });
      expect(res.status).toBe(404);
      expect(JSON.stringify(res.body).replaceAll(dm, "<c>")).toBe(
        JSON.stringify(ghost.body).replaceAll("DNOSUCHTHING", "<c>"),
      );
      expect(
        (await api("POST", `/v1/conversations/${dm}/messages`, { token: await as(who), json: { text: "hi" } })).status,
      ).toBe(404);
    }
    c.close();
  });

  it("delivers an event committed but never published (a crash between the two) by the alarm, once", async () => {
    const c = await subscribed("bob", "outbox");
    await post("ada", "outbox", "one");
    expect((await c.one()).seq).toBe(1);
    // As if the object had crashed after the commit: a message row and its
    // outbox row are there, nothing reached the topic.
    const id = "1765000000000123";
    const event = { type: "message", channel: conv("outbox"), id, user: t.ids.ada, text: "two", mentions: [], ts: 1 };
    await runInDurableObject(conversationStub("outbox"), (_, state) => {
      state.storage.sql.exec(
        "INSERT INTO messages (id, ts, team, user, text, mentions) VALUES (?, ?, ?, ?, 'two', '[]')",
        Number(id),
        Date.now(),
        t.team,
        t.ids.ada ?? "",
      );
      const n =
        Number(state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'outbox_n'").one().value) +
        1;
      state.storage.sql.exec("UPDATE meta SET value = ? WHERE key = 'outbox_n'", String(n));
      state.storage.sql.exec("INSERT INTO outbox (n, json) VALUES (?, ?)", n, JSON.stringify(event));
    });
    expect(await conversationStub("outbox").stats()).toMatchObject({ outbox: 1 });
    await runDurableObjectAlarm(conversationStub("outbox"));
    const frame = await c.one();
    expect(frame).toMatchObject({ type: "event", seq: 2, event: { type: "message", id, text: "two" } });
    expect(await conversationStub("outbox").stats()).toMatchObject({ outbox: 0 });
    // The topic takes each outbox entry once: a delivery retried after a lost answer publishes nothing.
    const key = `ch:${t.team}:${conv("outbox")}`;
    const source = `conversation:${t.team}:${conv("outbox")}`;
    const again = await topicStub("outbox").publishFrom(key, source, [{ n: 1, json: "{}" }]);
    expect(again.seqs).toEqual([]);
    expect((await topicStub("outbox").stats()).seq).toBe(2);
    expect(await c.rest()).toEqual([]);
    c.close();
  });
});

describe("a shared channel's history", () => {
  it("is one history, its host's, written by both teams; each team's admins moderate their own people", async () => {
    const a = await newTeam();
    const b = await newTeam();
    await addUsers(a.id, [["UMEMBER", "member"]]);
    await addUsers(b.id, [["UMEMBER", "member"]]);
    const aMember = await token(a.id, "UMEMBER");
    const bMember = await token(b.id, "UMEMBER");
    const connection = await connectTeams(a.admin, b.admin);
    const { channel } = await ok<{ channel: { id: string } }>(
      api("POST", `/v1/admin/teams/${a.id}/channels`, { token: a.admin, json: { name: `shared-${a.id.slice(-6)}` } }),
      201,
    );
    const invite = await ok<{ shared_channel: { id: string } }>(
      api("POST", "/v1/connect/shared-channels", { token: a.admin, json: { connection, channel: channel.id } }),
      201,
    );
    await ok(
      api("POST", `/v1/connect/shared-channels/${invite.shared_channel.id}/answer`, {
        token: b.admin,
        json: { decision: "accept" },
      }),
    );
    await ok(
      api("POST", `/v1/connect/shared-channels/${invite.shared_channel.id}/members`, {
        token: b.admin,
        json: { user_ids: ["UMEMBER"] },
      }),
    );
    const path = `/v1/conversations/${channel.id}`;
    const say = async (as: string, text: string, mentions: string[] = []) =>
      (await ok<Written>(api("POST", `${path}/messages`, { token: as, json: { text, mentions } }), 201)).message?.id ??
      "";
    const fromA = await say(aMember, "hello from the host", ["UADMIN"]);
    const fromB = await say(bMember, "hello from the partner", ["UADMIN"]);
    const read = async (as: string) => ok<Page>(api("GET", `${path}/history`, { token: as }));
    for (const [as, own] of [
      [aMember, a.id],
      [bMember, b.id],
    ] as const) {
      const page = await read(as);
      expect(page.messages.map((m) => [m.text, m.user, m.team])).toEqual([
        ["hello from the partner", "UMEMBER", b.id],
        ["hello from the host", "UMEMBER", a.id],
      ]);
      // Profiles only of the caller's own team's people: the same ids in the
      // other team name someone else.
      expect(page.users.map((u) => u.id).sort()).toEqual(["UADMIN", "UMEMBER"]);
      expect(JSON.stringify(page.users)).not.toContain(own === a.id ? b.id : a.id);
    }
    // It is the host's conversation object that holds both.
    const stub = env.CONVERSATION.get(
      env.CONVERSATION.idFromName(`${a.id}:${channel.id}`),
    ) as DurableObjectStub<Conversation>;
    expect(await stub.stats()).toMatchObject({ messages: 2, name: `${a.id}:${channel.id}` });
    // The same user id of the other team is not the author.
    expect((await api("PATCH", `${path}/messages/${fromA}`, { token: bMember, json: { text: "x" } })).status).toBe(403);
    // B's admin moderates B's people only; A's admin (the host's) moderates everyone.
    expect((await api("DELETE", `${path}/messages/${fromA}`, { token: b.admin })).status).toBe(403);
    await ok(api("DELETE", `${path}/messages/${fromB}`, { token: b.admin }));
    await ok(api("DELETE", `${path}/messages/${fromA}`, { token: a.admin }));
    expect((await read(aMember)).messages).toEqual([]);
  }, 60_000);
});
