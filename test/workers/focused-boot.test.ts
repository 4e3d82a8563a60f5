import { beforeAll, describe, expect, it } from "vitest";
import { api, newTeam, ok, token } from "./client";

// GET /v1/directory/boot?focus=<conversation> (workers/routes/directory.ts,
// src/conversations/focused-boot.ts), end to end inside workerd: one answer
// carries the boot's header, the conversation's card, its newest messages
// (history's own first page), the profiles they name that the viewer may
// see, a history cursor that continues exactly where the messages stop, and
// where the rest of the boot is. A conversation the viewer does not see, or
// another team's, is the history route's 404 for an id that does not exist.

interface Message {
  id: string;
  channel: string;
  user: string;
  text: string;
  mentions: string[];
}
interface Card {
  id: string;
  name: string;
  kind: string;
  is_member: boolean;
  members?: string[];
}
interface Focused {
  version: number;
  self: { id: string };
  team: { id: string; users: number; channels: number };
  focus: { conversation: Card; messages: Message[]; users: Array<{ id: string }>; history_cursor: string | null };
  rest: { path: string; version: number };
}
interface History {
  messages: Message[];
  next_cursor: string | null;
  users: Array<{ id: string }>;
}
interface ErrorBody {
  error: { code: string; message: string };
}

interface World {
  team: string;
  admin: string;
  ids: Record<string, string>;
  channels: Record<string, string>;
}

const w = {} as World;
const as = (who: string) => (who === "admin" ? Promise.resolve(w.admin) : token(w.team, w.ids[who] ?? who));

/** Posts as `who`, waiting out a rate limit (the per-poster rate is the topic's). */
async function post(who: string, conversation: string, text: string, mentions: string[] = []): Promise<Message> {
  for (;;) {
    const res = await api<{ message: Message }>("POST", `/v1/conversations/${conversation}/messages`, {
      token: await as(who),
      json: { text, mentions },
    });
    if (res.status === 429) {
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.message;
  }
}

const focused = async (who: string, conversation: string, query = "") =>
  ok<Focused>(
    api("GET", `/v1/directory/boot?focus=${encodeURIComponent(conversation)}${query}`, { token: await as(who) }),
  );
const history = async (who: string, conversation: string, query = "") =>
  ok<History>(api("GET", `/v1/conversations/${conversation}/history${query}`, { token: await as(who) }));

async function open(who: string, users: string[]): Promise<string> {
  const res = await api<{ conversation: { id: string } }>("POST", "/v1/conversations", {
    token: await as(who),
    json: { users: users.map((u) => w.ids[u] ?? u) },
  });
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  return res.body.conversation.id;
}

beforeAll(async () => {
  const { id, admin } = await newTeam();
  w.team = id;
  w.admin = admin;
  w.ids = { admin: "UADMIN" };
  w.channels = {};
  const base = `/v1/admin/teams/${id}`;
  for (const handle of ["ada", "bob", "cat", "gus"]) {
    const user = `U${handle.toUpperCase()}${id.slice(1, 7)}`;
    w.ids[handle] = user;
    const role = handle === "gus" ? "guest" : "member";
    await ok(
      api("POST", `${base}/users`, { token: admin, json: { id: user, email: `${handle}@focus.test`, role } }),
      201,
    );
  }
  const memberships: Array<{ channel_id: string; user_id: string }> = [];
  const make = async (key: string, isPrivate: boolean, members: string[]) => {
    const body = await ok<{ channel: { id: string } }>(
      api("POST", `${base}/channels`, { token: admin, json: { name: `${key}-focus`, private: isPrivate } }),
      201,
    );
    w.channels[key] = body.channel.id;
    for (const m of members) memberships.push({ channel_id: body.channel.id, user_id: w.ids[m] ?? m });
  };
  await make("talk", false, ["ada", "bob", "cat"]);
  await make("quiet", false, ["ada", "bob"]);
  await make("secret", true, ["ada", "bob"]);
  await make("guests", false, ["gus", "bob"]);
  await ok(api("POST", `${base}/memberships/import`, { token: admin, json: { memberships } }), 201);
}, 60_000);

describe("a focused boot", () => {
  it("answers a channel's card, its newest messages and the boot's header in one answer", async () => {
    const talk = w.channels.talk as string;
    const authors = ["ada", "bob", "cat"];
    const posted: Message[] = [];
    for (let i = 1; i <= 25; i++) posted.push(await post(authors[i % 3] as string, talk, `m${i}`));

    const f = await focused("ada", talk);
    // The header is the full boot's own.
    const full = await ok<{ version: number; self: unknown; team: unknown; full: boolean }>(
      api("GET", "/v1/directory/boot", { token: await as("ada") }),
    );
    expect(full.full).toBe(true);
    expect(f.version).toBe(full.version);
    expect(f.self).toEqual(full.self);
    expect(f.team).toEqual(full.team);
    expect(f.rest).toEqual({ path: "/v1/directory/boot", version: f.version });
    // The card is the header route's card.
    const card = await ok<{ channel: Card }>(api("GET", `/v1/directory/channels/${talk}`, { token: await as("ada") }));
    expect(f.focus.conversation).toEqual(card.channel);
    expect(f.focus.conversation).toMatchObject({ id: talk, kind: "channel", is_member: true });
    // The newest 20, newest first: history's first page of 20, byte for byte.
    expect(f.focus.messages.map((m) => m.text)).toEqual(
      posted
        .slice(5)
        .reverse()
        .map((m) => m.text),
    );
    const page = await history("ada", talk, "?limit=20");
    expect(f.focus.messages).toEqual(page.messages);
    expect(f.focus.users.map((u) => u.id).sort()).toEqual(authors.map((a) => w.ids[a]).sort());
    // The cursor continues exactly where the focus stops: no gap, no overlap.
    expect(f.focus.history_cursor).toEqual(expect.any(String));
    const rest = await history("ada", talk, `?limit=50&cursor=${encodeURIComponent(f.focus.history_cursor ?? "")}`);
    expect(rest.next_cursor).toBeNull();
    const all = [...f.focus.messages, ...rest.messages].map((m) => m.id);
    expect(all).toEqual(posted.map((m) => m.id).reverse());
    // The rest of the boot is where it says.
    const after = await ok<{ full: boolean; channels: Array<{ id: string }> }>(
      api("GET", f.rest.path, { token: await as("ada") }),
    );
    expect(after.full).toBe(true);
    expect(after.channels.map((c) => c.id)).toContain(talk);
  });

  it("takes focus_limit, and its cursor still continues exactly after the last message", async () => {
    const quiet = w.channels.quiet as string;
    const posted: Message[] = [];
    for (let i = 1; i <= 5; i++) posted.push(await post(i % 2 ? "ada" : "bob", quiet, `q${i}`));
    const f = await focused("bob", quiet, "&focus_limit=2");
    expect(f.focus.messages.map((m) => m.text)).toEqual(["q5", "q4"]);
    const next = await history("bob", quiet, `?limit=2&cursor=${encodeURIComponent(f.focus.history_cursor ?? "")}`);
    expect(next.messages.map((m) => m.text)).toEqual(["q3", "q2"]);
    // All of it in the focus: no cursor.
    const whole = await focused("bob", quiet, "&focus_limit=5");
    expect(whole.focus.messages.map((m) => m.id)).toEqual(posted.map((m) => m.id).reverse());
    expect(whole.focus.history_cursor).toBeNull();
    // An empty conversation: no messages, no cursor, no profiles.
    const secret = await focused("ada", w.channels.secret as string);
    expect(secret.focus).toMatchObject({ messages: [], users: [], history_cursor: null });
    expect(secret.focus.conversation).toMatchObject({ id: w.channels.secret, is_private: true, is_member: true });
  });

  it("focuses a DM and a group DM: their cards with members, their messages", async () => {
    const dm = await open("ada", ["bob"]);
    await post("ada", dm, "just us", [w.ids.bob as string]);
    const f = await focused("bob", dm);
    expect(f.focus.conversation).toMatchObject({
      id: dm,
      kind: "im",
      members: [w.ids.ada, w.ids.bob].sort(),
      is_member: true,
    });
    const card = await ok<{ channel: Card }>(api("GET", `/v1/directory/channels/${dm}`, { token: await as("bob") }));
    expect(f.focus.conversation).toEqual(card.channel);
    expect(f.focus.messages.map((m) => [m.text, m.user])).toEqual([["just us", w.ids.ada]]);
    expect(f.focus.users.map((u) => u.id).sort()).toEqual([w.ids.ada, w.ids.bob].sort());

    const group = await open("ada", ["bob", "cat"]);
    await post("cat", group, "all three");
    const g = await focused("ada", group);
    expect(g.focus.conversation).toMatchObject({
      id: group,
      kind: "mpim",
      members: [w.ids.ada, w.ids.bob, w.ids.cat].sort(),
    });
    expect(g.focus.messages.map((m) => m.text)).toEqual(["all three"]);
    expect(g.focus.users.map((u) => u.id)).toEqual([w.ids.cat]);
  });

  it("carries only the profiles the viewer may see (a guest sees no one it shares no channel with)", async () => {
    const guests = w.channels.guests as string;
    // bob (in "guests" with the guest gus) mentions cat, whom gus shares no channel with.
    await post("bob", guests, "ask cat", [w.ids.cat as string]);
    const asGuest = await focused("gus", guests);
    expect(asGuest.focus.messages[0]?.mentions).toEqual([w.ids.cat]);
    expect(asGuest.focus.users.map((u) => u.id)).toEqual([w.ids.bob]);
    expect(JSON.stringify(asGuest.focus.users)).not.toContain(`cat@`);
    const asMember = await focused("ada", guests);
    expect(asMember.focus.users.map((u) => u.id).sort()).toEqual([w.ids.bob, w.ids.cat].sort());
    // The same page and profiles the history route gives the guest.
    const page = await history("gus", guests, "?limit=20");
    expect(asGuest.focus.messages).toEqual(page.messages);
    expect(asGuest.focus.users).toEqual(page.users);
  });

  it("leaves a deleted message out, its text nowhere in the answer", async () => {
    // Other members than the group DM above (the same members are the same conversation).
    const group = await open("bob", ["ada", "cat", "admin"]);
    const secret = "the vault code is 9911";
    await post("bob", group, "before");
    const gone = await post("bob", group, secret, [w.ids.ada as string]);
    await post("cat", group, "after");
    await ok(api("DELETE", `/v1/conversations/${group}/messages/${gone.id}`, { token: await as("bob") }));
    const f = await focused("ada", group);
    expect(f.focus.messages.map((m) => m.text)).toEqual(["after", "before"]);
    expect(JSON.stringify(f)).not.toContain("9911");
  });
});

describe("a focused boot refused", () => {
  const ghost = "CNOSUCHFOCUS1";
  const asText = (body: unknown, id: string) => JSON.stringify(body).replaceAll(id, "<c>");

  it("answers what history answers for an id that does not exist: to non-members, guests, and another team", async () => {
    const secret = w.channels.secret as string;
    const dm = await open("ada", ["bob"]);
    await post("ada", secret, "members only");
    await post("bob", dm, "between us");
    const other = await newTeam();
    const cases: Array<[string, string, string]> = [
      ["a member not in the private channel", await as("cat"), secret],
      ["a guest outside a public channel", await as("gus"), w.channels.talk as string],
      ["a member not in the DM", await as("cat"), dm],
      ["an admin not in the DM", w.admin, dm],
      ["another team's admin", other.admin, secret],
      ["another team's admin, a DM", other.admin, dm],
    ];
    for (const [who, tokenText, id] of cases) {
      const real = await api<ErrorBody>("GET", `/v1/directory/boot?focus=${id}`, { token: tokenText });
      const none = await api<ErrorBody>("GET", `/v1/directory/boot?focus=${ghost}`, { token: tokenText });
      const hist = await api<ErrorBody>("GET", `/v1/conversations/${ghost}/history`, { token: tokenText });
      expect(real.status, `${who}: ${JSON.stringify(real.body)}`).toBe(404);
      expect(real.body.error.code).toBe("not_found");
      expect(asText(real.body, id), who).toBe(asText(none.body, ghost));
      // Exactly the history route's answer for an unknown id.
      expect(hist.status).toBe(404);
      expect(asText(none.body, ghost), who).toBe(asText(hist.body, ghost));
      expect(JSON.stringify(real.body)).not.toMatch(/members only|between us/);
    }
  });

  it("refuses bad input with a 400 JSON error naming it", async () => {
    const ada = await as("ada");
    const talk = w.channels.talk as string;
    const bad = [
      `focus=${encodeURIComponent("no spaces!")}`,
      `focus=${"C".repeat(41)}`,
      "focus=",
      `focus=${talk}&since=0`,
      `focus=${talk}&focus_limit=0`,
      `focus=${talk}&focus_limit=201`,
      `focus=${talk}&focus_limit=many`,
      "focus_limit=5",
    ];
    for (const q of bad) {
      const res = await api<ErrorBody>("GET", `/v1/directory/boot?${q}`, { token: ada });
      expect(res.status, `${q}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error.code, q).toMatch(/^(bad_request|invalid_query)$/);
    }
    // The plain boot and the incremental boot are as they were.
    expect((await ok<{ full: boolean }>(api("GET", "/v1/directory/boot", { token: ada }))).full).toBe(true);
    const since = await ok<{ full: boolean }>(api("GET", "/v1/directory/boot?since=0", { token: ada }));
    expect(typeof since.full).toBe("boolean");
    // No token: 401 before anything is looked up.
    expect((await api("GET", `/v1/directory/boot?focus=${talk}`)).status).toBe(401);
  });
});
