import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { ClientFrame } from "../../src/realtime/protocol";
import { api, ok, platformToken, token } from "./client";
import { type Answer, CATALOGUE, type RouteEntry, requestOf, routeKey, send, servedRoutes } from "./route-catalogue";
import {
  ghostTarget,
  leaks,
  markersOf,
  newShared,
  type Role,
  type Shared,
  SLOTS,
  type Slot,
  seedTeam,
  stateOf,
  type Target,
  type Team,
} from "./tenant-world";

// Tenant isolation for every HTTP route (route-catalogue.ts) and every
// client frame of the real-time socket. Teams A and B are seeded with the
// same shapes; B's member, admin and owner aim each route at A's data. B must
// not read it (none of A's ids, names or addresses in the answer), not change
// it (A's state, read back by A's own admin, is what it was), and not learn
// whether it exists (the answer is the one for ids that exist nowhere, once
// the ids named are replaced by placeholders). Ids both teams chose (a
// channel, a private channel, a user) must only ever reach B's own.

/** B's tokens aimed at A. Guests too: the weakest role must not get further than the others. */
const CALLERS: readonly Role[] = ["member", "admin", "owner", "guest"];

/** Slots that refer to existing things inside a team (swapped while the path keeps the caller's own team). */
const REFERENCES: readonly Slot[] = [
  "channel",
  "privateChannel",
  "user",
  "userTeam",
  "requestId",
  "invitation",
  "connection",
  "code",
  "partner",
  "sharedChannel",
  "file",
];

/**
 * Fields that differ from one call to the next whoever calls: times,
 * generated ids, timings, a topic's sequence number (each post takes the
 * next), a socket ticket (and the URL carrying it), whether this call queued
 * the caller's own team a heal, a new connect invitation (its generated id,
 * its code and its expiry).
 */
const VOLATILE = new Set([
  "invitation",
  "created_at",
  "updated_at",
  "request_id",
  "snapshot_id",
  "ms",
  "seq",
  "heal_queued",
  "ticket",
  "url",
]);

function withoutVolatile(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutVolatile);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([k]) => !VOLATILE.has(k))
      .map(([k, v]) => [k, withoutVolatile(v)]),
  );
}

/** The answer's text with every named thing of `target` replaced by its slot's name. */
function placeheld(text: string, target: Target, slots: readonly Slot[]): string {
  const pairs = slots.map((s) => [target[s], `<${s}>`] as const).sort((x, y) => y[0].length - x[0].length);
  let out = text;
  for (const [value, placeholder] of pairs) out = out.split(value).join(placeholder);
  return out;
}

/** What a caller can tell apart: status, type and body once the named things are placeholders. */
function normalized(answer: Answer, target: Target, slots: readonly Slot[]) {
  const text = placeheld(answer.text, target, slots);
  let body: unknown = text;
  try {
    body = withoutVolatile(JSON.parse(text));
  } catch {
    // not JSON (metrics text): compared as text
  }
  return { status: answer.status, contentType: answer.contentType, body };
}

interface World {
  shared: Shared;
  a: Team;
  b: Team;
  /** A's state as its own admin reads it, taken after seeding (and after A's own changes in the socket tests). */
  before: Record<string, unknown>;
}

const world = {} as World;

beforeAll(async () => {
  world.shared = newShared();
  world.a = await seedTeam("alpha", world.shared);
  world.b = await seedTeam("bravo", world.shared);
  world.before = await stateOf(world.a);
}, 120_000);

/**
 * Sends `route` as `tokenText` naming `real`'s things, then naming `ghost`'s
 * (which exist nowhere), and expects answers that cannot be told apart, with
 * nothing of A in them. Answers the real one.
 */
async function indistinguishable(
  label: string,
  route: RouteEntry,
  tokenText: string | undefined,
  real: Target,
  ghost: Target,
  slots: readonly Slot[],
): Promise<Answer> {
  const answer = await send(requestOf(route, real), tokenText);
  const control = await send(requestOf(route, ghost), tokenText);
  expect(answer.status, `${label}: ${answer.text.slice(0, 300)}`).toBeLessThan(500);
  expect(normalized(answer, real, slots), `${label}: the other team's ids vs ids that exist nowhere`).toEqual(
    normalized(control, ghost, slots),
  );
  // The ids the request named may come back (as a ghost's would); nothing else of A's may.
  const echoed = placeheld(answer.text, real, slots);
  expect(leaks(echoed, markersOf(world.a)), `${label}: A's data in the answer ${answer.text.slice(0, 300)}`).toEqual(
    [],
  );
  return answer;
}

/**
 * B's own request (its team, its channels and users) with one reference
 * swapped for A's (a channel, a user, a user's team, a served request): the
 * answer is the one for an id that exists nowhere.
 */
async function ownWithForeign(label: string, route: RouteEntry, as: string, ghost: Target): Promise<void> {
  const { a, b } = world;
  for (const slot of route.names.filter((s) => REFERENCES.includes(s))) {
    await indistinguishable(
      `${label}, B's request with A's ${slot}`,
      route,
      as,
      { ...b.target, [slot]: a.target[slot] },
      { ...b.target, [slot]: ghost[slot] },
      [slot],
    );
  }
}

describe("the route catalogue", () => {
  it("lists every route the app serves, and none it does not", () => {
    const served = servedRoutes();
    const listed = CATALOGUE.map(routeKey);
    expect(listed.length, "a route listed twice").toBe(new Set(listed).size);
    expect(
      [...served].filter((k) => !listed.includes(k)),
      "served but missing from test/workers/route-catalogue.ts",
    ).toEqual([]);
    expect(CATALOGUE.filter((r) => !served.has(routeKey(r))).map(routeKey), "listed but no longer served").toEqual([]);
  });

  it("names exactly the slots each request carries", () => {
    const t = world.a.target;
    for (const route of CATALOGUE) {
      const req = requestOf(route, t);
      const text = `${req.path} ${JSON.stringify(req.body ?? null)}`;
      // Every named slot is in the request, and every slot value in it is named
      // (by that slot or one with the same value: a team's own `userTeam` is its `team`).
      expect(
        route.names.filter((s) => !text.includes(t[s])),
        `${routeKey(route)}: named, not carried`,
      ).toEqual([]);
      expect(
        SLOTS.filter((s) => text.includes(t[s]) && !route.names.some((n) => t[n] === t[s])),
        `${routeKey(route)}: carried, not named`,
      ).toEqual([]);
    }
  });
});

describe.each(CATALOGUE.map((route) => ({ key: routeKey(route), route })))("$key", ({ route }) => {
  it("another team cannot read, change or detect the first team's data", async () => {
    const { a, b } = world;
    const ghost = ghostTarget();
    for (const role of CALLERS) {
      const as = b.tokens[role];
      const label = `B's ${role}`;
      switch (route.access) {
        case "public": {
          for (const t of [undefined, as]) {
            const answer = await send(requestOf(route, a.target), t);
            expect(answer.status, label).toBeLessThan(400);
            expect(leaks(answer.text, markersOf(a)), label).toEqual([]);
          }
          break;
        }
        case "operator": {
          const answer = await indistinguishable(label, route, as, a.target, ghost, route.names);
          expect(answer.status, label).toBe(403);
          expect((answer.json as { error: { code: string } }).error.code).toBe("forbidden");
          // A's own tokens get no further: operator routes are nobody's in a team.
          const own = await send(requestOf(route, a.target), a.tokens[role]);
          expect(own.status, `A's ${role}`).toBe(403);
          break;
        }
        case "team": {
          // A's team in the path: answered as a team that does not exist.
          const answer = await indistinguishable(`${label}, A's team`, route, as, a.target, ghost, route.names);
          expect(answer.status, label).toBe(404);
          await ownWithForeign(label, route, as, ghost);
          break;
        }
        case "caller":
          await indistinguishable(label, route, as, a.target, ghost, route.names);
          await ownWithForeign(label, route, as, ghost);
          break;
        case "socket":
          await indistinguishable(label, route, as, a.target, ghost, route.names);
          break;
        case "signed": {
          // No Slack signature (or OAuth state) of ours: refused alike with any token or none.
          for (const t of [undefined, as]) {
            const answer = await send(requestOf(route, a.target), t);
            expect(answer.status, label).toBe(401);
            expect((answer.json as { error: { code: string } }).error.code).toBe("unauthorized");
            expect(leaks(answer.text, markersOf(a)), label).toEqual([]);
          }
          break;
        }
      }
    }
    expect(await stateOf(a), "A's state after B's requests").toEqual(world.before);
  });
});

describe("another team's users named in a body", () => {
  it("a host admin adds no partner team's users to its shared channel, by any route, and learns nothing of them", async () => {
    const { b } = world;
    const operator = await platformToken();
    // A user of the partner team that is not in the shared channel yet.
    const outsider = `UOUT${b.partnerUser.slice(4)}`;
    await ok(
      api("POST", `/v1/admin/teams/${b.partner}/users`, {
        token: operator,
        json: { id: outsider, email: `outsider@partner-${b.tag}.test` },
      }),
      201,
    );
    const ghost = ghostTarget();
    const shared = { ...b.target, channel: b.channels.same, userTeam: b.partner };
    const routes = CATALOGUE.filter((r) => r.names.includes("userTeam"));
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) {
      for (const role of ["admin", "owner"] as const) {
        const label = `${routeKey(route)} as B's ${role}`;
        // An existing partner user vs one the partner team does not have.
        const answer = await indistinguishable(
          label,
          route,
          b.tokens[role],
          { ...shared, user: outsider },
          { ...shared, user: ghost.user },
          ["user"],
        );
        expect(answer.status, label).toBe(403);
        // A team that exists vs one that does not.
        const team = await indistinguishable(
          `${label}, team`,
          route,
          b.tokens[role],
          { ...shared, user: outsider },
          { ...shared, user: outsider, userTeam: ghost.team },
          ["userTeam"],
        );
        expect(team.status, label).toBe(403);
      }
    }
    const members = await ok<{ items: Array<{ id: string }> }>(
      api("GET", `/v1/directory/channels/${b.channels.same}/members?limit=100`, { token: b.tokens.admin }),
    );
    expect(members.items.map((m) => m.id)).not.toContain(outsider);
  });
});

// --- the real-time socket ------------------------------------------------------

type Frame = Record<string, unknown> & { type: string };

/**
 * A client WebSocket that collects frames (batches unwrapped), opened either
 * way the protocol allows: with a single-use ticket from POST /v1/rtm.connect
 * (browsers), or with the access token in the Authorization header.
 */
class Socket {
  readonly frames: Frame[] = [];
  private read = 0;
  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const m = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data)) as Frame;
      this.frames.push(...(m.type === "batch" ? (m.frames as Frame[]) : [m]));
    });
  }

  static async open(tokenText: string, via: "header" | "ticket" = "header"): Promise<Socket> {
    let res: Response;
    if (via === "ticket") {
      const { url } = await ok<{ url: string }>(api("POST", "/v1/rtm.connect", { token: tokenText }));
      res = await SELF.fetch(`https://edge.test${url}`, { headers: { upgrade: "websocket" } });
    } else {
      res = await SELF.fetch("https://edge.test/v1/rtm", {
        headers: { upgrade: "websocket", authorization: `Bearer ${tokenText}` },
      });
    }
    if (res.status !== 101 || !res.webSocket) throw new Error(`expected 101, got ${res.status}: ${await res.text()}`);
    res.webSocket.accept();
    const socket = new Socket(res.webSocket);
    const hello = await socket.next();
    if (hello.type !== "hello") throw new Error(`expected hello, got ${JSON.stringify(hello)}`);
    return socket;
  }

  send(frame: ClientFrame | Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The next frame that is not a profile (profiles precede the events naming a user). */
  async next(ms = 5_000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames[this.read];
      if (f) {
        this.read++;
        if (f.type !== "user") return f;
        continue;
      }
      if (Date.now() > deadline) throw new Error(`no frame in ${ms} ms`);
      await sleep(5);
    }
  }

  /** Whatever arrives within ms (for "nothing more comes"). */
  async rest(ms = 400): Promise<Frame[]> {
    await sleep(ms);
    const out = this.frames.slice(this.read);
    this.read = this.frames.length;
    return out;
  }

  /** Sends a frame, answers the frame that replies to it (by id). */
  async ask(frame: ClientFrame): Promise<Frame> {
    this.send(frame);
    const f = await this.next();
    expect(f.id, JSON.stringify(f)).toBe(frame.id);
    return f;
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A frame's text with the named ids replaced, as `normalized` does for HTTP answers. */
function frameText(frame: Frame, replace: ReadonlyArray<readonly [string, string]>): string {
  let text = JSON.stringify(frame);
  for (const [value, placeholder] of replace) text = text.split(value).join(placeholder);
  return text;
}

/**
 * One case per client frame type of src/realtime/protocol.ts (the Record
 * type makes a new frame type a compile error here until it has one): B's
 * socket naming A's channels and users must get what naming ids that exist
 * nowhere gets, and nothing of A must ever arrive on it.
 */
const FRAME_CASES: Record<ClientFrame["type"], (b: Socket, ghost: Target) => Promise<void>> = {
  async subscribe(b, ghost) {
    const { a } = world;
    for (const [slot, topic] of [
      ["channel", a.channels.general],
      ["privateChannel", a.channels.private],
    ] as const) {
      const real = await b.ask({ v: 1, type: "subscribe", id: "s", topics: [{ topic: `channel:${topic}` }] });
      const none = await b.ask({ v: 1, type: "subscribe", id: "s", topics: [{ topic: `channel:${ghost[slot]}` }] });
      expect(real.type, JSON.stringify(real)).toBe("error");
      expect(frameText(real, [[topic, "<id>"]])).toBe(frameText(none, [[ghost[slot], "<id>"]]));
      // With `since` (a resume) the answer is the same refusal, with no events replayed.
      const resumed = await b.ask({
        v: 1,
        type: "subscribe",
        id: "s",
        topics: [{ topic: `channel:${topic}`, since: 0 }],
      });
      expect(frameText(resumed, [[topic, "<id>"]])).toBe(frameText(none, [[ghost[slot], "<id>"]]));
    }
    // The shared ids and the team topic are B's own.
    const own = await b.ask({
      v: 1,
      type: "subscribe",
      id: "own",
      topics: [{ topic: `channel:${world.shared.channel}` }, { topic: "team" }],
    });
    expect(own.type, JSON.stringify(own)).toBe("subscribed");
  },
  async unsubscribe(b, ghost) {
    const { a } = world;
    const real = await b.ask({
      v: 1,
      type: "unsubscribe",
      id: "u",
      topics: [{ topic: `channel:${a.channels.general}` }],
    });
    const none = await b.ask({ v: 1, type: "unsubscribe", id: "u", topics: [{ topic: `channel:${ghost.channel}` }] });
    expect(frameText(real, [[a.channels.general, "<id>"]])).toBe(frameText(none, [[ghost.channel, "<id>"]]));
  },
  async presence_sub(b, ghost) {
    const { a } = world;
    const real = await b.ask({ v: 1, type: "presence_sub", id: "p", users: [a.users.member, a.users.owner] });
    const none = await b.ask({ v: 1, type: "presence_sub", id: "p", users: [ghost.user, `${ghost.user}X`] });
    expect(real.type, JSON.stringify(real)).toBe("presence");
    expect(real).toEqual(none);
    expect(real.users).toEqual([]);
  },
  async ping(b, ghost) {
    const { a } = world;
    const real = await b.ask({ v: 1, type: "ping", id: a.channels.general });
    const none = await b.ask({ v: 1, type: "ping", id: ghost.channel });
    expect(frameText(real, [[a.channels.general, "<id>"]])).toBe(frameText(none, [[ghost.channel, "<id>"]]));
  },
};

describe("the real-time socket", () => {
  it.each(Object.keys(FRAME_CASES) as Array<ClientFrame["type"]>)(
    "%s: B's socket naming A's channels or users answers as for ids that exist nowhere",
    async (type) => {
      const { a, b } = world;
      for (const [role, via] of [
        ["member", "ticket"],
        ["admin", "header"],
      ] as const) {
        const socket = await Socket.open(b.tokens[role], via);
        try {
          await FRAME_CASES[type](socket, ghostTarget());
          // Errors may echo the ids a frame named (as for a ghost's); anything else of A's is a leak.
          const named = new Set([a.channels.general, a.channels.private, a.users.member, a.users.owner]);
          const markers = markersOf(a).filter((m) => !named.has(m));
          expect(leaks(JSON.stringify(socket.frames), markers), `B's ${role}`).toEqual([]);
        } finally {
          socket.close();
        }
      }
    },
  );

  it("A's messages, directory changes and presence never reach B's socket, on ids both teams use", async () => {
    const { a, b, shared } = world;
    const watcher = await Socket.open(b.tokens.member);
    const aSide = await Socket.open(a.tokens.member);
    try {
      const topics = [{ topic: `channel:${shared.channel}` as const }, { topic: "team" as const }];
      expect((await watcher.ask({ v: 1, type: "subscribe", id: "w", topics })).type).toBe("subscribed");
      expect((await aSide.ask({ v: 1, type: "subscribe", id: "w", topics })).type).toBe("subscribed");
      const presence = await watcher.ask({ v: 1, type: "presence_sub", id: "p", users: [shared.user] });
      expect(presence.users).toEqual([{ user: shared.user, presence: "away" }]);

      // A's side: a message in A's same-id channel, a directory change, A's same-id user coming online.
      await ok(
        api("POST", `/v1/channels/${shared.channel}/messages`, {
          token: a.tokens.member,
          json: { text: `hello from ${a.tag}`, mentions: [shared.user] },
        }),
        201,
      );
      await ok(
        api("PATCH", `/v1/admin/teams/${a.id}/channels/${shared.channel}`, {
          token: a.tokens.admin,
          json: { purpose: `purpose ${a.tag}` },
        }),
      );
      const aSame = await Socket.open(await token(a.id, shared.user));
      const arrived = await watcher.rest(800);
      expect(arrived, "frames on B's socket after A's activity").toEqual([]);
      // A's own socket got A's message (the control: the events exist and flow).
      const aFrames = await aSide.rest(200);
      expect(aFrames.some((f) => f.type === "event" && f.topic === `channel:${shared.channel}`)).toBe(true);

      // B's side, the positive control: B's message and B's same-id user arrive on B's socket, not on A's.
      await ok(
        api("POST", `/v1/channels/${shared.channel}/messages`, {
          token: b.tokens.member,
          json: { text: `hello from ${b.tag}` },
        }),
        201,
      );
      const bSame = await Socket.open(await token(b.id, shared.user));
      const got = await watcher.rest(800);
      expect(got.some((f) => f.type === "event" && JSON.stringify(f).includes(b.tag))).toBe(true);
      expect(got.some((f) => f.type === "presence")).toBe(true);
      expect(leaks(JSON.stringify(watcher.frames), markersOf(a))).toEqual([]);
      expect(leaks(JSON.stringify(await aSide.rest(200)), markersOf(b))).toEqual([]);
      aSame.close();
      bSame.close();
    } finally {
      watcher.close();
      aSide.close();
    }
    // A changed its own channel above: that is A's new state for the tests after this one.
    world.before = await stateOf(a);
  });
});

describe("ids both teams use", () => {
  const sameIds = (): Target => ({
    ...world.b.target,
    channel: world.shared.channel,
    privateChannel: world.shared.privateChannel,
    user: world.shared.user,
  });

  it("answer with B's channel, private channel and user to B, never A's", async () => {
    const { a, b, shared } = world;
    const member = b.tokens.member;
    const admin = b.tokens.admin;
    const channel = await ok<{ channel: { name: string; member_count: number } }>(
      api("GET", `/v1/directory/channels/${shared.channel}`, { token: member }),
    );
    expect(channel.channel.name).toBe(`same-${b.tag}`);
    // B's four members and B's partner user; A's partner user is in A's channel only.
    expect(channel.channel.member_count).toBe(5);
    const members = await ok<{ items: Array<{ id: string }> }>(
      api("GET", `/v1/directory/channels/${shared.channel}/members?limit=100`, { token: member }),
    );
    expect(members.items.map((m) => m.id).sort()).toEqual(
      [b.users.owner, b.users.admin, b.users.member, b.users.same, b.partnerUser].sort(),
    );
    const mentions = await ok<{ items: Array<{ id: string; in_channel: boolean }> }>(
      api("GET", `/v1/directory/mentions?channel=${shared.channel}&limit=100`, { token: member }),
    );
    expect(mentions.items.filter((m) => m.in_channel).map((m) => m.id)).toContain(b.partnerUser);
    expect(mentions.items.map((m) => m.id)).not.toContain(a.partnerUser);
    const secret = await ok<{ channel: { name: string } }>(
      api("GET", `/v1/directory/channels/${shared.privateChannel}`, { token: admin }),
    );
    expect(secret.channel.name).toBe(`sameprivate-${b.tag}`);
    // B's member is not in B's same-id private channel (A's member is not in A's either): hidden the same way.
    expect((await api("GET", `/v1/directory/channels/${shared.privateChannel}`, { token: member })).status).toBe(404);
    const user = await ok<{ user: { email: string } }>(
      api("GET", `/v1/admin/teams/${b.id}/users/${shared.user}`, { token: admin }),
    );
    expect(user.user.email).toBe(`same@${b.domain}`);
    const lookup = await ok<{ users: Array<{ name: string }>; channels: Array<{ name: string }> }>(
      api("POST", "/v1/directory/lookup", {
        token: admin,
        json: { users: [shared.user], channels: [shared.channel, shared.privateChannel] },
      }),
    );
    expect(lookup.users.map((u) => u.name)).toEqual([`same-${b.tag}`]);
    expect(lookup.channels.map((c) => c.name).sort()).toEqual([`same-${b.tag}`, `sameprivate-${b.tag}`]);
    // The same-id user's own token sees its own team.
    const self = await ok<{ self: { name: string }; team: { id: string } }>(
      api("GET", "/v1/directory/boot", { token: await token(b.id, shared.user) }),
    );
    expect(self.self.name).toBe(`same-${b.tag}`);
    expect(self.team.id).toBe(b.id);
  });

  const sameIdRoutes = CATALOGUE.filter(
    (r) => (r.access === "team" || r.access === "caller") && r.names.some((s) => REFERENCES.includes(s)),
  );
  it.each(sameIdRoutes.map((route) => ({ key: routeKey(route), route })))(
    "$key, naming the shared ids, touches and shows B's only",
    async ({ route }) => {
      const { a, b, shared } = world;
      const callers: Array<[string, string]> = [
        ["B's admin", b.tokens.admin],
        ["B's member", b.tokens.member],
        ["B's same-id user", await token(b.id, shared.user)],
      ];
      for (const [label, t] of callers) {
        const answer = await send(requestOf(route, sameIds()), t);
        expect(answer.status, `${label}: ${answer.text.slice(0, 300)}`).toBeLessThan(500);
        expect(leaks(answer.text, markersOf(a)), `${label}: A's data in ${answer.text.slice(0, 300)}`).toEqual([]);
      }
      expect(await stateOf(a), "A's state after B's requests").toEqual(world.before);
    },
  );
});
