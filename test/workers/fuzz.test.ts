import { SELF } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { api, platformToken } from "./client";
import { type Answer, type Body, CATALOGUE, fillPath, queryString, type RouteEntry, routeKey } from "./route-catalogue";
import { newShared, seedTeam, stateOf, type Team } from "./tenant-world";

// Property-based bad input for every route of route-catalogue.ts, sent with
// a token that gets past authorization (the team's owner; an operator for
// operator routes) so the parsing behind it is what answers. Bodies,
// queries, path parameters and content types are broken on purpose:
// malformed, oversized, deeply nested, wrongly typed, duplicate and
// prototype-polluting keys, numbers JSON cannot hold, unicode. Whatever comes
// in: never a 5xx; every 4xx is the one JSON error shape; a write that was
// sent garbage answers 4xx; and the team's (and the platform's) state is
// what it was.
//
// Every generator below is malformed by construction for the routes that
// write (the catalogue's valid request with one thing broken), so a 2xx from
// a write is a finding, not noise. Runs are seeded: a failure prints its
// seed and path, and `fc.assert(..., { seed, path })` replays it.

/** The seed of the first route; route i uses SEED + i. */
const SEED = 0x13_2026;
/** Runs per route: about 40 routes × 50 runs stays well under two minutes on two cores. */
const RUNS = 50;

/** A request of the fuzz suite, printed short in fast-check's reports (bodies can be megabytes). */
class Case {
  constructor(
    readonly label: string,
    readonly method: string,
    readonly path: string,
    readonly body?: { text: string } | { bytes: Uint8Array },
    readonly contentType?: string | null,
    /** The junk is in something the route does not read (it takes no input): any answer but a 5xx will do. */
    readonly ignored = false,
  ) {}

  [fc.toStringMethod](): string {
    const body =
      this.body === undefined
        ? ""
        : "text" in this.body
          ? ` body(${this.body.text.length} chars)=${JSON.stringify(this.body.text.slice(0, 200))}`
          : ` body(${this.body.bytes.length} bytes)`;
    const type = this.contentType === undefined ? "" : ` content-type=${JSON.stringify(this.contentType)}`;
    return `[${this.label}] ${this.method} ${this.path.slice(0, 300)}${type}${body}`;
  }
}

async function sendCase(c: Case, tokenText: string | undefined): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (tokenText) headers.authorization = `Bearer ${tokenText}`;
  let body: BodyInit | undefined;
  if (c.body && "text" in c.body) body = c.body.text;
  // Bytes carry no content type of their own: how a request without the header is sent.
  else if (c.body) body = c.body.bytes;
  if (typeof c.contentType === "string") headers["content-type"] = c.contentType;
  const res = await SELF.fetch(`https://edge.test${c.path}`, { method: c.method, headers, body, redirect: "manual" });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", text, json };
}

/** The one error shape: `{ error: { code, message } }` (plus `details` where a route names what was wrong). */
function expectErrorShape(answer: Answer, label: string): void {
  const where = `${label} → ${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.contentType, where).toMatch(/^application\/json/);
  const body = answer.json as { error?: { code?: unknown; message?: unknown } } | undefined;
  expect(body !== null && typeof body === "object" && !Array.isArray(body), where).toBe(true);
  expect(Object.keys(body ?? {}), where).toEqual(["error"]);
  const error = body?.error ?? {};
  expect(typeof error.code === "string" && /^[a-z_]+$/.test(error.code), where).toBe(true);
  expect(typeof error.message, where).toBe("string");
  expect(
    Object.keys(error).filter((k) => !["code", "message", "details"].includes(k)),
    where,
  ).toEqual([]);
  // No stack traces or source paths, and no megabyte of the input reflected back.
  expect(answer.text, where).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
  expect(answer.text.length, where).toBeLessThan(64 * 1024);
}

// --- generators ------------------------------------------------------------------

const SPECIAL_STRINGS = [
  "",
  " ",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e309",
  "-1e309",
  "1e-400",
  "-0",
  "0x1F",
  "9007199254740993",
  "null",
  "undefined",
  "true",
  "[]",
  "{}",
  "__proto__",
  "constructor",
  "prototype",
  "hasOwnProperty",
  "..",
  "../..",
  "\u0000",
  "\ud800",
  "\udfff\ud800",
  "\u202eevil",
  "\ufeff",
  "😀👩‍👩‍👧‍👦",
  "İıſK",
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  "<script>alert(1)</script>",
  // A log4j-style lookup (escaped: it is a plain string, not a template).
  "\u0024{jndi:ldap://x}",
  "%s%n%x",
  "a\nb\r\nc",
];

/** A string nobody sends on purpose: unicode, lone surrogates, control characters, sizes, special words. */
const hostile = (maxHuge: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: "grapheme", maxLength: 60 }) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    { weight: 4, arbitrary: fc.constantFrom(...SPECIAL_STRINGS) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...[300, 5_000, maxHuge].filter((n) => n <= maxHuge)).map((n) => "é".repeat(n)),
    },
  );

/** Raw JSON text that is not valid JSON, or JSON that no schema here takes for a string. */
const BAD_NUMBERS = ["1e309", "-1e309", "NaN", "Infinity", "-Infinity", "0x1F", "01", "+1", ".5", "1_000", "1e"];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonPath = ReadonlyArray<string | number>;
type Kind = "null" | "boolean" | "number" | "string" | "array" | "object";

const kindOf = (v: Json): Kind =>
  v === null ? "null" : Array.isArray(v) ? "array" : (typeof v as "boolean" | "number" | "string" | "object");

/** Every node of a JSON value, root first, with its path. */
function nodesOf(value: Json, at: JsonPath = []): Array<{ path: JsonPath; value: Json }> {
  const out: Array<{ path: JsonPath; value: Json }> = [{ path: at, value }];
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) out.push(...nodesOf(v, [...at, i]));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) out.push(...nodesOf(v, [...at, k]));
  }
  return out;
}

/** Raw text of each kind, for "put something of another kind here". Deep nests are built on demand. */
const RAW_OF_KIND: Record<Kind, readonly string[]> = {
  null: ["null"],
  boolean: ["true", "false"],
  number: ["0", "-1", "1.5", "1e300"],
  string: ['""', '"x"', '"1"', '"true"'],
  array: ['[1,"a"]', "[null]", '[{"~k":1}]'],
  object: ["{}", '{"~k":1}', '{"0":"a"}'],
};

function otherKinds(original: Kind): string[] {
  // An array of numbers could be a feature vector: numbers are only replaced by non-arrays.
  const kinds = (Object.keys(RAW_OF_KIND) as Kind[]).filter(
    (k) => k !== original && !(original === "number" && k === "array"),
  );
  return kinds.flatMap((k) => RAW_OF_KIND[k]);
}

type Mutation =
  | { kind: "replace"; path: JsonPath; raw: string }
  /** A member added first to the object at path (its key is no field of the schema). */
  | { kind: "addKey"; path: JsonPath; key: string; raw: string }
  /** An existing member repeated last with a value of the wrong kind: the last one wins in JSON.parse. */
  | { kind: "duplicate"; path: JsonPath; key: string; raw: string };

const samePath = (a: JsonPath, b: JsonPath) => a.length === b.length && a.every((x, i) => x === b[i]);

/** JSON text of `value` with `m` applied: text JSON.stringify cannot write (duplicates, __proto__, 1e309). */
function render(value: Json, m: Mutation, at: JsonPath = []): string {
  if (m.kind === "replace" && samePath(m.path, at)) return m.raw;
  if (Array.isArray(value)) return `[${value.map((v, i) => render(v, m, [...at, i])).join(",")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const members = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${render(v, m, [...at, k])}`);
  if (samePath(m.path, at) && m.kind === "addKey") members.unshift(`${JSON.stringify(m.key)}:${m.raw}`);
  if (samePath(m.path, at) && m.kind === "duplicate") members.push(`${JSON.stringify(m.key)}:${m.raw}`);
  return `{${members.join(",")}}`;
}

const deepNest = fc.constantFrom(33, 1_000, 50_000).map((d) => `${"[".repeat(d)}1${"]".repeat(d)}`);
const POLLUTING_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "~unknown"];
const POLLUTING_VALUES = ['{"isAdmin":true,"role":"owner"}', "null", "1", '"x"', '{"polluted":{"deep":true}}'];

/**
 * Broken versions of one JSON document, each malformed for its schema:
 * - another kind of value at any node (the root included), or a number JSON cannot hold;
 * - a string field grown past every limit (not where a schema takes any length: lenient);
 * - a node replaced by arrays nested 33 to 50,000 deep;
 * - a polluting key (`__proto__`, `constructor`, ...) added to an object of a strict schema;
 * - a key repeated with a wrong value after the good one;
 * - the whole document wrapped in an array.
 * `strictAt(path)` says which objects reject unknown keys (all but nested free-form data);
 * `nullValidAt(path)` where a null is a valid value (a prefs patch's members: null clears), so none is put there.
 */
function brokenDocument(
  base: Json,
  opts: { lenient: boolean; strictAt: (path: JsonPath) => boolean; nullValidAt?: (path: JsonPath) => boolean },
) {
  const wrongAt = (path: JsonPath, kind: Kind) =>
    otherKinds(kind).filter((raw) => raw !== "null" || !opts.nullValidAt?.(path));
  const nodes = nodesOf(base);
  const objects = nodes.filter((n) => kindOf(n.value) === "object" && opts.strictAt(n.path));
  const withKeys = nodes.filter((n) => kindOf(n.value) === "object" && Object.keys(n.value as object).length > 0);
  const strings = nodes.filter((n) => kindOf(n.value) === "string");
  const pick = <T>(xs: readonly T[]) => fc.nat({ max: Math.max(0, xs.length - 1) }).map((i) => xs[i] as T);
  const mutations: Array<fc.Arbitrary<{ label: string; m: Mutation } | { label: string; text: string }>> = [
    pick(nodes).chain((n) =>
      fc.constantFrom(...wrongAt(n.path, kindOf(n.value)), ...BAD_NUMBERS).map((raw) => ({
        label: `wrong kind at ${n.path.join(".") || "root"}`,
        m: { kind: "replace", path: n.path, raw },
      })),
    ),
    pick(nodes).chain((n) =>
      deepNest.map((raw) => ({
        label: `deep at ${n.path.join(".") || "root"}`,
        m: { kind: "replace", path: n.path, raw },
      })),
    ),
    fc.constant({ label: "array for object", text: `[${JSON.stringify(base)}]` }),
  ];
  const arrays = nodes.filter((n) => kindOf(n.value) === "array" && (n.value as Json[]).length > 0);
  if (arrays.length > 0 && !opts.lenient) {
    // More elements than any list here takes (the largest is an import's 50,000).
    mutations.push(
      pick(arrays).map((n) => {
        const first = JSON.stringify((n.value as Json[])[0]);
        return {
          label: `oversized list ${n.path.join(".")}`,
          m: { kind: "replace", path: n.path, raw: `[${Array.from({ length: 50_001 }, () => first).join(",")}]` },
        };
      }),
    );
  }
  if (strings.length > 0 && !opts.lenient) {
    mutations.push(
      pick(strings).chain((n) =>
        fc.constantFrom(100_000, 1_100_000).map((size) => ({
          label: `oversized ${n.path.join(".")}`,
          m: { kind: "replace", path: n.path, raw: JSON.stringify("é".repeat(size)) },
        })),
      ),
    );
  }
  if (objects.length > 0 && !opts.lenient) {
    mutations.push(
      fc
        .tuple(pick(objects), fc.constantFrom(...POLLUTING_KEYS), fc.constantFrom(...POLLUTING_VALUES))
        .map(([n, key, raw]) => ({
          label: `key ${key} at ${n.path.join(".") || "root"}`,
          m: { kind: "addKey", path: n.path, key, raw },
        })),
    );
  }
  if (withKeys.length > 0) {
    mutations.push(
      pick(withKeys).chain((n) => {
        const obj = n.value as Record<string, Json>;
        return fc.constantFrom(...Object.keys(obj)).chain((key) =>
          fc.constantFrom(...wrongAt([...n.path, key], kindOf(obj[key] as Json))).map((raw) => ({
            label: `duplicate ${key} at ${n.path.join(".") || "root"}`,
            m: { kind: "duplicate", path: n.path, key, raw },
          })),
        );
      }),
    );
  }
  return fc
    .oneof(...mutations)
    .map((x) => ("text" in x ? { label: x.label, text: x.text } : { label: x.label, text: render(base, x.m) }));
}

/** Not JSON at all, or JSON of the wrong kind for a whole body. `#` first: never a valid document. */
const garbageText = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    "{",
    "}",
    "{}}",
    "[",
    "NaN",
    "Infinity",
    "1e309",
    "null",
    "true",
    '""',
    "[]",
    "\u0000",
    "{'a':1}",
  ),
  fc.string({ unit: "grapheme", maxLength: 200 }).map((s) => `#${s}`),
  fc.string({ unit: "binary", maxLength: 200 }).map((s) => `#${s}`),
);

function baseText(body: Body): string {
  if (body.kind === "json") return JSON.stringify(body.value);
  if (body.kind === "ndjson") return body.text;
  throw new Error("bytes have no text");
}

/** Content types the route must refuse with 415 (a form or a text post must never be taken as JSON). */
function wrongTypes(body: Body): Array<string | null> {
  if (body.kind === "ndjson")
    return ["application/json", "text/plain", "text/csv", "application/x-json-lines", "", null];
  if (body.kind === "bytes") return ["application/json", "text/plain", "multipart/form-data; boundary=x", "", null];
  return [
    "text/plain",
    "text/plain;charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/json",
    "text/html",
    "application/jsonx",
    "application/json-seq",
    "",
    null,
  ];
}

/** Broken bodies for one route (its catalogue body with one thing wrong). */
function bodyCases(route: RouteEntry, body: Body, path: string): fc.Arbitrary<Case> {
  const make = (label: string, text: string, contentType?: string | null) =>
    new Case(label, route.method, path, { text }, contentType);
  const cases: Array<fc.Arbitrary<Case>> = [];
  const defaultType = body.kind === "json" ? "application/json" : body.kind === "ndjson" ? "application/x-ndjson" : "";
  if (body.kind === "json") {
    // Only the objects of a schema's own shape are strict; nothing nested in free-form values.
    const doc = brokenDocument(body.value as Json, {
      lenient: !!route.lenientKeys,
      strictAt: () => true,
      nullValidAt: (p) => !!route.nullClears && p.length === 1,
    });
    cases.push(doc.map((d) => make(d.label, d.text, defaultType)));
    cases.push(garbageText.map((t) => make("not a JSON document", t, defaultType)));
    // A complete document cut short.
    const whole = baseText(body);
    cases.push(fc.nat({ max: whole.length - 2 }).map((n) => make("truncated", whole.slice(0, n + 1), defaultType)));
  }
  if (body.kind === "ndjson") {
    const lines = body.text.split("\n").filter(Boolean);
    // Row 0 is the snapshot's meta row, which takes short strings and nulls: rows after it are broken.
    const rows = lines.slice(1).map((l) => JSON.parse(l) as Json);
    const broken = fc.nat({ max: rows.length - 1 }).chain((i) =>
      brokenDocument(rows[i] as Json, {
        lenient: false,
        // A row's own keys are strict; `data` takes any [A-Za-z0-9_] field name (even "__proto__").
        strictAt: (p) => p.length === 0,
      }).map((d) => {
        const out = [...lines];
        out[i + 1] = d.text.replaceAll("\n", " ");
        return make(`row ${i + 2}: ${d.label}`, `${out.join("\n")}\n`, defaultType);
      }),
    );
    cases.push(broken);
    cases.push(garbageText.map((t) => make("not NDJSON", `${t}\n`, defaultType)));
    // A row cut inside its JSON (a cut at a line's end would leave valid rows).
    const cut = fc.nat({ max: lines.length - 1 }).chain((i) => {
      const line = lines[i] as string;
      return fc.nat({ max: line.length - 2 }).map((n) => {
        const text = [...lines.slice(0, i), line.slice(0, n + 1)].join("\n");
        return make(`row ${i + 1} truncated`, text, defaultType);
      });
    });
    cases.push(cut);
    // A line over the 16 KiB line limit.
    cases.push(fc.constant(make("row over the line limit", `${"x".repeat(20_000)}\n`, defaultType)));
  }
  if (body.kind === "bytes") {
    cases.push(
      fc
        .uint8Array({ maxLength: 4096 })
        .map((bytes) => new Case("random bytes", route.method, path, { bytes }, body.contentType)),
    );
  }
  // The valid body under a content type the route must refuse.
  cases.push(
    fc
      .constantFrom(...wrongTypes(body))
      .map((type) =>
        body.kind === "bytes"
          ? new Case("wrong content type", route.method, path, { bytes: body.bytes }, type)
          : type === null
            ? new Case("no content type", route.method, path, { bytes: new TextEncoder().encode(baseText(body)) }, null)
            : make("wrong content type", baseText(body), type),
      ),
  );
  return fc.oneof(...cases);
}

/** Lone surrogates as U+FFFD: a URL cannot carry them (encodeURIComponent throws), a query turns them so anyway. */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

const RAW_PATH_PARTS = ["%", "%zz", "%E0%A4%A", "%00", "%2F", "..%2F..", "%252F", "%C0%AF", "a/b", "..", ".", "a%20b"];

/** Path parameters replaced one at a time: hostile strings URI-encoded, or raw malformed escapes. */
function pathCases(route: RouteEntry, params: Record<string, string>, query: string, body?: Body): fc.Arbitrary<Case> {
  const names = Object.keys(params);
  const bodyOf = (): Case["body"] =>
    body === undefined
      ? undefined
      : body.kind === "bytes"
        ? { bytes: body.bytes }
        : { text: body.kind === "json" ? JSON.stringify(body.value) : body.text };
  const typeOf =
    body === undefined
      ? undefined
      : body.kind === "json"
        ? "application/json"
        : body.kind === "ndjson"
          ? "application/x-ndjson"
          : body.contentType;
  return fc
    .tuple(
      fc.constantFrom(...names),
      fc.oneof(
        { weight: 4, arbitrary: hostile(20_000).map((v) => ({ raw: false, v })) },
        { weight: 1, arbitrary: fc.constantFrom(...RAW_PATH_PARTS).map((v) => ({ raw: true, v })) },
      ),
    )
    .map(([name, { raw, v }]) => {
      const filled = route.path.replace(/:([A-Za-z]+)/g, (_, n: string) =>
        n === name ? (raw ? v : encodeURIComponent(wellFormed(v))) : encodeURIComponent(params[n] ?? ""),
      );
      return new Case(`path :${name}${raw ? " raw" : ""}`, route.method, `${filled}${query}`, bodyOf(), typeOf);
    });
}

const QUERY_KEYS = [
  "limit",
  "cursor",
  "q",
  "since",
  "role",
  "deactivated",
  "bots",
  "channel",
  "token",
  "as_of",
  "dataset",
];

/**
 * Query strings: on reads, any keys (known ones, hostile ones, repeated);
 * on the one write that takes a query (the features import), every key it
 * reads replaced, so the import can never go through.
 */
function queryCases(route: RouteEntry, path: string, known: Record<string, string>, body?: Body): fc.Arbitrary<Case> {
  const bodyOf = (): Case["body"] =>
    body === undefined ? undefined : body.kind === "bytes" ? { bytes: body.bytes } : { text: baseText(body) };
  const typeOf = body === undefined ? undefined : body.kind === "ndjson" ? "application/x-ndjson" : "application/json";
  const key = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...Object.keys(known), ...QUERY_KEYS) },
    { weight: 1, arbitrary: fc.constantFrom(...POLLUTING_KEYS) },
    { weight: 1, arbitrary: hostile(300) },
  );
  const value = fc.oneof(hostile(20_000), fc.constantFrom("-1", "0", "101", "1.5", "1e309", "NaN", "owner,nobody"));
  if (route.method === "GET") {
    // With the route's own query first or not at all: a repeated key is read as its first value.
    return fc
      .tuple(fc.boolean(), fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 6 }))
      .map(
        ([keep, pairs]) =>
          new Case("query", route.method, `${path}${queryString([...(keep ? Object.entries(known) : []), ...pairs])}`),
      );
  }
  return fc
    .tuple(
      fc.array(
        value.filter((v) => !/^\d{4}-\d{2}-\d{2}$/.test(v)),
        { minLength: Object.keys(known).length, maxLength: Object.keys(known).length },
      ),
      fc.array(fc.tuple(key, value), { maxLength: 3 }),
    )
    .map(([values, extra]) => {
      const pairs: Array<[string, string]> = Object.keys(known).map((k, i) => [k, values[i] ?? ""]);
      return new Case("query", route.method, `${path}${queryString([...pairs, ...extra])}`, bodyOf(), typeOf);
    });
}

/** Every broken request of one route. */
function casesFor(route: RouteEntry, team: Team): fc.Arbitrary<Case> {
  const t = team.target;
  const params = route.params?.(t) ?? {};
  const known = route.query?.(t) ?? {};
  const body = route.body?.(t);
  const path = fillPath(route.path, params);
  const all: Array<fc.Arbitrary<Case>> = [];
  if (Object.keys(params).length > 0) all.push(pathCases(route, params, queryString(known), body));
  if (route.method === "GET" || Object.keys(known).length > 0) {
    const query = queryCases(route, path, known, body);
    // A file's bytes and name are the user's (any printable name is a name): such a case may be a valid upload.
    all.push(
      route.anyFile ? query.map((c) => new Case(c.label, c.method, c.path, c.body, c.contentType, true)) : query,
    );
  }
  if (body && !route.anyFile) all.push(bodyCases(route, body, `${path}${queryString(known)}`));
  if (all.length === 0) {
    // A route that reads no input (POST /v1/rtm.connect): junk it must ignore, and still never a 5xx.
    const junk = fc.tuple(fc.array(fc.tuple(hostile(300), hostile(300)), { maxLength: 4 }), garbageText);
    all.push(
      junk.map(
        ([pairs, text]) =>
          new Case(
            "input it ignores",
            route.method,
            `${path}${queryString(pairs)}`,
            { text },
            "application/json",
            true,
          ),
      ),
    );
  }
  return fc.oneof(...all);
}

// --- the suite -------------------------------------------------------------------

interface World {
  team: Team;
  before: Record<string, unknown>;
  platform: Record<string, unknown>;
}
const world = {} as World;

/** What operator routes could change: the experiment and models of the catalogue's source. */
async function platformState(): Promise<Record<string, unknown>> {
  const operator = await platformToken();
  const [experiment, models] = await Promise.all([
    api("GET", "/v1/admin/recommend/experiments/channel_browser", { token: operator }),
    api("GET", "/v1/admin/models/channel_browser", { token: operator }),
  ]);
  return { experiment, models };
}

beforeAll(async () => {
  world.team = await seedTeam("fuzz", newShared());
  world.before = await stateOf(world.team);
  world.platform = await platformState();
}, 120_000);

async function tokenFor(route: RouteEntry): Promise<string | undefined> {
  if (route.access === "public" || route.access === "signed") return undefined;
  if (route.access === "operator") return platformToken();
  return world.team.tokens.owner;
}

describe("malformed input", () => {
  const routes = CATALOGUE;
  it.each(routes.map((route, i) => ({ key: routeKey(route), route, seed: SEED + i })))(
    "$key: never a 5xx, always the error shape, no change",
    async ({ route, seed }) => {
      const tokenText = await tokenFor(route);
      const writes = route.method !== "GET";
      await fc.assert(
        fc.asyncProperty(casesFor(route, world.team), async (c) => {
          const answer = await sendCase(c, tokenText);
          const label = c[fc.toStringMethod]();
          expect(answer.status, `${label} → ${answer.text.slice(0, 300)}`).toBeLessThan(500);
          if (writes && !c.ignored) {
            expect(answer.status, `${label} → ${answer.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
          }
          if (answer.status >= 400) expectErrorShape(answer, label);
        }),
        { numRuns: RUNS, seed, endOnFailure: true },
      );
      expect(await stateOf(world.team), "the team's state after the malformed requests").toEqual(world.before);
      if (route.access === "operator") expect(await platformState()).toEqual(world.platform);
    },
    60_000,
  );

  it("a method no route has for a path is a 404 in the error shape", async () => {
    // A concrete path another pattern takes with that method is that route's
    // (PATCH .../users/import is PATCH .../users/:user with user "import"): left out.
    const t = world.team.target;
    const pattern = (template: string) => new RegExp(`^${template.replace(/:[A-Za-z]+/g, "[^/]+")}$`);
    const taken = (method: string, path: string) =>
      routes.some((r) => r.method === method && pattern(r.path).test(path));
    const methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    const pairs = routes.flatMap((route) =>
      methods
        .filter((m) => !taken(m, fillPath(route.path, route.params?.(t) ?? {})))
        .map((method) => ({ route, method })),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...pairs), garbageText, async ({ route, method }, text) => {
        const path = `${fillPath(route.path, route.params?.(t) ?? {})}${queryString(route.query?.(t) ?? {})}`;
        const body = method === "GET" ? undefined : text;
        const c = new Case(
          "wrong method",
          method,
          path,
          body === undefined ? undefined : { text: body },
          "application/json",
        );
        const answer = await sendCase(c, await tokenFor(route));
        const label = c[fc.toStringMethod]();
        expect(answer.status, `${label} → ${answer.text.slice(0, 200)}`).toBe(404);
        expectErrorShape(answer, label);
      }),
      { numRuns: 60, seed: SEED - 2, endOnFailure: true },
    );
    expect(await stateOf(world.team)).toEqual(world.before);
  }, 60_000);

  it("a malformed Authorization header is a 401 in the error shape on every /v1 route", async () => {
    const header = fc.oneof(
      fc.constantFrom(
        "",
        "Bearer",
        "Bearer ",
        "bearer  x",
        "Basic dXNlcjpwYXNz",
        "Bearer a.b.c",
        "Bearer ..",
        "Bearer e30.e30.",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
      ),
      // Printable ASCII only: anything else is not a valid header value at all (fetch refuses it).
      fc.string({ unit: "grapheme-ascii", maxLength: 200 }).map((s) => `Bearer ${s.replace(/[^\x20-\x7e]/g, "")}`),
      fc.constantFrom(5_000, 100_000).map((n) => `Bearer ${"a".repeat(n)}`),
    );
    const v1 = routes.filter((r) => r.path.startsWith("/v1/") || r.path === "/metrics");
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...v1), header, async (route, value) => {
        const t = world.team.target;
        const res = await SELF.fetch(
          `https://edge.test${fillPath(route.path, route.params?.(t) ?? {})}${queryString(route.query?.(t) ?? {})}`,
          {
            method: route.method,
            headers:
              route.access === "socket" ? { authorization: value, upgrade: "websocket" } : { authorization: value },
          },
        );
        const text = await res.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const answer = { status: res.status, contentType: res.headers.get("content-type") ?? "", text, json };
        const label = `${route.method} ${route.path} authorization=${JSON.stringify(value.slice(0, 80))}`;
        expect(answer.status, `${label} → ${text.slice(0, 200)}`).toBe(401);
        expectErrorShape(answer, label);
      }),
      { numRuns: 60, seed: SEED - 1, endOnFailure: true },
    );
    expect(await stateOf(world.team)).toEqual(world.before);
  }, 60_000);
});
