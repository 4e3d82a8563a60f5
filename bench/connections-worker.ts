import { create } from "@bufbuild/protobuf";
import { driverFor } from "../platform/deps";
import { liveActor } from "../platform/live-actors";
import { isAdminRole } from "../src/auth/policy";
import { verifyToken } from "../src/auth/tokens";
import { ConnectPrefsSchema } from "../src/connect/gen/connect/v1/prefs_pb";
import { PrefContainer, type PrefProblem, type Resolved } from "../src/connect/prefs/registry";
import { foldedWords, nameKey, parseSearchQuery, type SearchQuery } from "../src/connect/search";
import { connectPrefsStore } from "../storage/connect-prefs-sql";
import { planetscaleDriver } from "../storage/planetscale-driver";
import type { Statement } from "../storage/sql-driver";
import worker from "../workers/index";

// Benchmark-only Worker for `npm run bench:connections`
// (bench/wrangler.connections.toml, never deployed): the real app (the admin
// search answered by the ConnectIndex object, the connect writes, the
// feed), plus /bench routes that
// - seed a hub team with its partners, connections, shared-channel
//   invitations and prefs straight into the database (bulk INSERTs),
// - build the baseline's indexes next to the source tables (each derived
//   from one source table: folded names and words from `teams`, flattened
//   pref values per level from `connect_prefs`, shared-channel counts per
//   connection from `shared_channel_invites`), and
// - answer GET /v1/admin/connections' questions from the database with them
//   (`/bench/baseline/connections`, same parser, same auth, same page size,
//   order and tie-breaks, same effective-pref semantics).

export { ConnectIndex, Gateway, Metrics, RecStore, SharedChannel, TeamCache, Topic } from "../workers/index";

class HttpFail extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const body = async <T>(req: Request) => (await req.json()) as T;

// --- deterministic data ----------------------------------------------------

function rand(i: number, salt: number): number {
  let h = (Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h / 4294967296;
}
const pick = <T>(xs: readonly T[], r: number): T => xs[Math.floor(r * xs.length) % xs.length] as T;

const HEAD = [
  "Acme",
  "Globex",
  "Initech",
  "Umbrella",
  "Stark",
  "Wayne",
  "Wonka",
  "Hooli",
  "Vandelay",
  "Cyberdyne",
  "Nordic",
  "Blue",
  "Red",
  "Green",
  "Silver",
  "Golden",
  "Alpha",
  "Beta",
  "Delta",
  "Omega",
  "Northwind",
  "Contoso",
  "Fabrikam",
  "Tailspin",
  "Litware",
  "Adatum",
  "Proseware",
  "Woodgrove",
  "Lucerne",
  "Margie",
  "Café",
  "Müller",
  "Société",
  "Zürich",
  "Señor",
  "Crème",
  "Łódź",
  "Åkesson",
  "Brontë",
  "Jalapeño",
  "Pacific",
  "Atlantic",
  "Summit",
  "Pioneer",
  "Harbor",
  "Granite",
  "Cedar",
  "Maple",
  "Orbit",
  "Quantum",
  "Apex",
  "Vertex",
  "Nimbus",
  "Zephyr",
  "Aurora",
  "Beacon",
  "Cobalt",
  "Ember",
  "Falcon",
  "Glacier",
  "acme",
  "ZENITH",
  "McArthur",
  "O'Neil",
  "3M",
  "24/7",
  "Kowalski",
  "Nguyen",
  "Fischer",
  "Dupont",
];
const MID = [
  "Labs",
  "Systems",
  "Data",
  "Cloud",
  "Robotics",
  "Media",
  "Health",
  "Foods",
  "Energy",
  "Logistics",
  "Software",
  "Analytics",
  "Capital",
  "Bank",
  "Studio",
  "Design",
  "Games",
  "Networks",
  "Security",
  "Pharma",
  "Réseaux",
  "Bäckerei",
  "Électrique",
  "Consulting",
  "Ventures",
  "Motors",
  "Textiles",
  "Kitchen",
  "Travel",
  "Legal",
];
const TAIL = [
  "Inc",
  "GmbH",
  "SA",
  "Ltd",
  "LLC",
  "Group",
  "Holdings",
  "Partners",
  "& Co",
  "AG",
  "BV",
  "Corp",
  "Sàrl",
  "Oy",
  "KK",
];
const TLD = ["com", "io", "co.uk", "de", "fr", "net", "org", "com.au", "ch", "dev"];

const ascii = (s: string) =>
  s
    .toLowerCase()
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(/[^a-z0-9]/g, "");

const partnerId = (i: number) => `TP${String(i).padStart(7, "0")}`;

interface Shape {
  partners: number;
  invites: number;
}

/** A stride coprime with n: connection ids are a permutation of the partner order (ids neither follow names nor dates). */
function strideFor(n: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  for (const s of [7919, 104729, 1299709, 15485863]) if (gcd(s, n) === 1) return s;
  return 1;
}
const connId = (shape: Shape, i: number) =>
  `K${String((i * strideFor(shape.partners)) % shape.partners).padStart(7, "0")}`;

function partnerName(i: number): string {
  const words = 1 + Math.floor(rand(i, 1) * 3); // 1-3 words
  const head = pick(HEAD, rand(i, 2) ** 1.3);
  if (words === 1) return head;
  if (words === 2) return rand(i, 3) < 0.5 ? `${head} ${pick(MID, rand(i, 4))}` : `${head} ${pick(TAIL, rand(i, 5))}`;
  return `${head} ${pick(MID, rand(i, 4))} ${pick(TAIL, rand(i, 5))}`;
}

function partnerDomains(i: number): string[] {
  const r = rand(i, 6);
  const n = r < 0.15 ? 0 : r < 0.8 ? 1 : 2;
  const name = partnerName(i).split(" ");
  const base = ascii(name.slice(0, 2).join("")) || "team";
  const out: string[] = [];
  const t1 = Math.floor(rand(i, 7) * TLD.length);
  if (n >= 1) out.push(`${base}${i}.${TLD[t1]}`);
  // A second domain: the first word's, or (one-word names) the same name under another TLD.
  if (n >= 2)
    out.push(
      `${ascii(name[0] ?? "") || "team"}${i}.${TLD[(t1 + 1 + Math.floor(rand(i, 8) * (TLD.length - 1))) % TLD.length]}`,
    );
  return out;
}

const YEAR = 365 * 24 * 3600 * 1000;
const T_END = Date.UTC(2026, 11, 1);
const acceptedAt = (i: number) => T_END - Math.floor((rand(i, 8) ** 0.7 * 5 * YEAR) / 60_000) * 60_000; // minute grain: ties
const disconnected = (i: number) => rand(i, 9) < 0.15;

/** The invitation's connection: skewed (a few connections hold many channels, many none). */
const inviteConn = (shape: Shape, j: number) => Math.floor(shape.partners * rand(j, 10) ** 2.2);
function inviteStatus(shape: Shape, j: number): string {
  const i = inviteConn(shape, j);
  const r = rand(j, 11);
  if (disconnected(i)) return r < 0.85 ? "ended" : "cancelled";
  return r < 0.75 ? "accepted" : r < 0.85 ? "pending" : r < 0.95 ? "ended" : "declined";
}

/** Partner-level prefs: which payload (index into PARTNER_PATCHES) a partner has, or -1 for none (70%). */
function partnerPrefsKind(i: number): number {
  const r = rand(i, 12);
  return r < 0.7 ? -1 : Math.floor(((r - 0.7) / 0.3) * PARTNER_PATCHES.length);
}
const PARTNER_PATCHES: Array<Record<string, unknown>> = [
  { auto_approval: { mode: "all" } },
  { auto_approval: { mode: "listed", users: ["U0000001", "U0000002"] } },
  { channel_creation: { who: "nobody" } },
  { channel_creation: { who: "admins" } },
  { auto_approval: { mode: "all" }, channel_creation: { who: "nobody" } },
  { file_uploads: { allowed: false } },
  { auto_approval: { mode: "off" }, channel_creation: { who: "members" } },
];
const ORG_PATCH: Record<string, unknown> = { channel_creation: { who: "members" } };

const container = new PrefContainer();

/** A level's protobuf payload, made by the project's own PrefContainer (patch, then encode). */
function payloadOf(patch: Record<string, unknown>, level: "org" | "partner"): Uint8Array {
  const prefs = create(ConnectPrefsSchema, {});
  const problems: PrefProblem[] = [];
  container.patch(prefs, level, patch, problems);
  return container.encode(prefs);
}

// --- bulk SQL ---------------------------------------------------------------

const ROWS = 5000;
const MYSQL_ROWS = 2000;

const isMysql = (env: Env) => env.STORAGE === "planetscale";

/** Bulk INSERTs: D1, one statement per 5,000 rows (a JSON array through json_each); MySQL, multi-row VALUES of 2,000. */
function bulk(env: Env, table: string, columns: string[], rows: unknown[][]): Statement[] {
  const out: Statement[] = [];
  if (!isMysql(env)) {
    const picks = columns.map((_, i) => `j.value->>${i}`).join(", ");
    for (let i = 0; i < rows.length; i += ROWS) {
      out.push({
        sql: `INSERT INTO ${table} (${columns.join(", ")}) SELECT ${picks} FROM json_each(?) AS j`,
        params: [JSON.stringify(rows.slice(i, i + ROWS))],
      });
    }
    return out;
  }
  const one = `(${columns.map(() => "?").join(", ")})`;
  const cols = columns.map((c) => `\`${c}\``).join(", ");
  for (let i = 0; i < rows.length; i += MYSQL_ROWS) {
    const chunk = rows.slice(i, i + MYSQL_ROWS);
    out.push({ sql: `INSERT INTO ${table} (${cols}) VALUES ${chunk.map(() => one).join(", ")}`, params: chunk.flat() });
  }
  return out;
}

/** A few statements per atomic unit: one D1 batch / one MySQL transaction each. */
async function runAll(env: Env, statements: Statement[], driver = driverFor(env)) {
  const per = isMysql(env) ? 5 : 10;
  for (let i = 0; i < statements.length; i += per) await driver.atomic(statements.slice(i, i + per));
}

const HUB = "TCXHUB";
const HUB_ADMIN = "UHUBADMIN";

const routes: Record<string, (req: Request, env: Env) => Promise<unknown>> = {
  async "/bench/seed/hub"(_req, env) {
    const now = Date.now();
    await driverFor(env).atomic([
      {
        sql: "INSERT INTO teams (id, name, plan, claimed_domains, created_at) VALUES (?, ?, 'enterprise', ?, ?)",
        params: [HUB, "Hub Corp", JSON.stringify(["hub.example"]), now],
      },
      {
        sql: "INSERT INTO users (team_id, id, email, domain, role, created_at, updated_at, name, real_name) VALUES (?, ?, ?, ?, 'admin', ?, ?, 'hub admin', 'Hub Admin')",
        params: [HUB, HUB_ADMIN, "admin@hub.example", "hub.example", now, now],
      },
      {
        sql: "INSERT INTO connect_prefs (team_id, target_team_id, prefs, date_create, date_update) VALUES (?, '0', ?, ?, ?)",
        params: [HUB, payloadOf(ORG_PATCH, "org"), now, now],
      },
    ]);
    return { ok: true };
  },

  /** Partner teams, their connection with the hub, and their partner-level prefs rows, for [from, to). */
  async "/bench/seed/partners"(req, env) {
    const { shape, from, to } = await body<{ shape: Shape; from: number; to: number }>(req);
    const teams: unknown[][] = [];
    const conns: unknown[][] = [];
    const prefs: string[][] = PARTNER_PATCHES.map(() => []);
    for (let i = from; i < to; i++) {
      const p = partnerId(i);
      const at = acceptedAt(i);
      teams.push([p, partnerName(i), "standard", JSON.stringify(partnerDomains(i)), at - 86_400_000]);
      const hubInvited = rand(i, 13) < 0.5;
      const [inviter, invitee] = hubInvited ? [HUB, p] : [p, HUB];
      const gone = disconnected(i);
      conns.push([
        connId(shape, i),
        inviter,
        invitee,
        HUB < p ? HUB : p,
        HUB < p ? p : HUB,
        gone ? null : 1,
        gone ? "disconnected" : "accepted",
        `I${i}`,
        hubInvited ? HUB_ADMIN : "UPARTNERADMIN",
        at - 3_600_000,
        hubInvited ? "UPARTNERADMIN" : HUB_ADMIN,
        at,
        gone ? (rand(i, 14) < 0.5 ? HUB : p) : null,
        gone ? "UADMIN" : null,
        gone ? at + Math.floor(rand(i, 15) * 200 * 86_400_000) : null,
      ]);
      const kind = partnerPrefsKind(i);
      if (kind >= 0) prefs[kind]?.push(p);
    }
    const now = Date.now();
    const statements = [
      ...bulk(env, "teams", ["id", "name", "plan", "claimed_domains", "created_at"], teams),
      ...bulk(
        env,
        "connections",
        [
          "id",
          "inviter",
          "invitee",
          "team_low",
          "team_high",
          "live",
          "status",
          "invitation_id",
          "requested_user",
          "requested_at",
          "accepted_user",
          "accepted_at",
          "disconnected_team",
          "disconnected_user",
          "disconnected_at",
        ],
        conns,
      ),
    ];
    PARTNER_PATCHES.forEach((patch, k) => {
      const targets = prefs[k] ?? [];
      if (targets.length === 0) return;
      const bytes = payloadOf(patch, "partner");
      if (!isMysql(env)) {
        statements.push({
          sql: "INSERT INTO connect_prefs (team_id, target_team_id, prefs, date_create, date_update) SELECT ?, j.value, ?, ?, ? FROM json_each(?) AS j",
          params: [HUB, bytes, now, now, JSON.stringify(targets)],
        });
      } else {
        statements.push(
          ...bulk(
            env,
            "connect_prefs",
            ["team_id", "target_team_id", "prefs", "date_create", "date_update"],
            targets.map((t) => [HUB, t, bytes, now, now]),
          ),
        );
      }
    });
    await runAll(env, statements);
    return { teams: teams.length };
  },

  /** Shared-channel invitations [from, to). */
  async "/bench/seed/invites"(req, env) {
    const { shape, from, to } = await body<{ shape: Shape; from: number; to: number }>(req);
    const rows: unknown[][] = [];
    for (let j = from; j < to; j++) {
      const i = inviteConn(shape, j);
      const p = partnerId(i);
      const hubHosts = rand(j, 16) < 0.6;
      const status = inviteStatus(shape, j);
      const created = acceptedAt(i) + Math.floor(rand(j, 17) * 100 * 86_400_000);
      const open = status === "pending" || status === "accepted";
      const answered = status !== "pending" && status !== "cancelled";
      rows.push([
        `H${String(j).padStart(8, "0")}`,
        connId(shape, i),
        hubHosts ? HUB : p,
        hubHosts ? p : HUB,
        `C${String(j).padStart(8, "0")}`,
        `shared-${j}`,
        status,
        open ? 1 : null,
        hubHosts ? HUB_ADMIN : "UPARTNERADMIN",
        created,
        answered ? "UANSWER" : null,
        answered ? created + 60_000 : null,
        status === "ended" ? (hubHosts ? HUB : p) : null,
        status === "ended" ? "UEND" : null,
        status === "ended" ? created + 86_400_000 : null,
        1,
        created,
      ]);
    }
    await runAll(
      env,
      bulk(
        env,
        "shared_channel_invites",
        [
          "id",
          "connection_id",
          "host_team",
          "guest_team",
          "channel_id",
          "channel_name",
          "status",
          "live",
          "created_user",
          "created_at",
          "answered_user",
          "answered_at",
          "ended_team",
          "ended_user",
          "ended_at",
          "applied",
          "updated_at",
        ],
        rows,
      ),
    );
    return { invites: rows.length };
  },

  async "/bench/db-counts"(_req, env) {
    const driver = driverFor(env);
    const one = async (sql: string) => Number((await driver.all(sql))[0]?.n ?? 0);
    return {
      teams: await one("SELECT COUNT(*) AS n FROM teams"),
      connections: await one("SELECT COUNT(*) AS n FROM connections"),
      accepted: await one("SELECT COUNT(*) AS n FROM connections WHERE status = 'accepted'"),
      invites: await one("SELECT COUNT(*) AS n FROM shared_channel_invites"),
      invites_accepted: await one("SELECT COUNT(*) AS n FROM shared_channel_invites WHERE status = 'accepted'"),
      invites_pending: await one("SELECT COUNT(*) AS n FROM shared_channel_invites WHERE status = 'pending'"),
      prefs_rows: await one("SELECT COUNT(*) AS n FROM connect_prefs"),
      max_channels: await one(
        "SELECT MAX(c) AS n FROM (SELECT COUNT(*) AS c FROM shared_channel_invites WHERE status = 'accepted' GROUP BY connection_id) AS g",
      ),
    };
  },

  /** Sample seeded names and domains (the questions' prefixes are drawn from them) and lag partners. */
  async "/bench/sample"(req, env) {
    const { n } = await body<{ n: number }>(req);
    // Partners in id order whose connection is accepted (the seed's own rule).
    const rows = (
      await driverFor(env).all<{ id: string; name: string; domains: string }>(
        "SELECT id, name, claimed_domains AS domains FROM teams WHERE id LIKE 'TP%' ORDER BY id LIMIT ?",
        [Math.ceil(n * 1.3)],
      )
    )
      .filter((r) => !disconnected(Number(r.id.slice(2))))
      .slice(0, n);
    return rows.map((r) => ({ id: r.id, name: r.name, domains: JSON.parse(r.domains) as string[] }));
  },

  // --- the baseline's indexes ------------------------------------------------

  async "/bench/baseline/build"(req, env) {
    const { step, after } = await body<{ step: "create" | "teams" | "prefs" | "counts" | "analyze"; after?: string }>(
      req,
    );
    const mysql = isMysql(env);
    // Building the baseline's indexes is a one-off job, not a request: on MySQL
    // without the request path's 5 s statement guard (a GROUP BY over every
    // invitation, ANALYZE TABLE).
    const driver = mysql && env.DATABASE_URL ? planetscaleDriver({ url: env.DATABASE_URL }) : driverFor(env);
    if (step === "create") {
      for (const sql of mysql ? BASELINE_DDL_MYSQL : BASELINE_DDL) await driver.run(sql);
      return { ok: true };
    }
    if (step === "teams") {
      // Folded name key and words (name and domain parts) per team, a page at a time.
      const page = await driver.all<{ id: string; name: string; claimed_domains: string }>(
        "SELECT id, name, claimed_domains FROM teams WHERE id > ? ORDER BY id LIMIT 10000",
        [after ?? ""],
      );
      const names: unknown[][] = [];
      const words: unknown[][] = [];
      for (const t of page) {
        names.push([t.id, nameKey(t.name)]);
        let domains: string[] = [];
        try {
          const parsed: unknown = JSON.parse(t.claimed_domains);
          if (Array.isArray(parsed)) domains = parsed.map(String);
        } catch {
          // none to search by, as the index
        }
        for (const w of new Set([...foldedWords(t.name), ...domains.flatMap(foldedWords)])) words.push([w, t.id]);
      }
      await runAll(
        env,
        [
          ...bulk(env, "bench_cx_name", ["team_id", "name_key"], names),
          ...bulk(env, "bench_cx_word", ["word", "team_id"], words),
        ],
        driver,
      );
      return { after: page.length < 10000 ? null : page.at(-1)?.id, names: names.length, words: words.length };
    }
    if (step === "prefs") {
      // Each level's own values (the product's store and PrefContainer), flattened as the index flattens effective values.
      const rows = await connectPrefsStore(driver).list(HUB);
      const out: unknown[][] = [];
      for (const r of rows) {
        const level = r.targetTeamId === "0" ? "org" : "partner";
        const problems: PrefProblem[] = [];
        const values = container.levelValues(container.decode(r.prefs, level, problems), level, problems);
        const resolved: Record<string, Resolved> = {};
        for (const [k, v] of Object.entries(values)) resolved[k] = { value: v, source: level };
        for (const [k, v] of Object.entries(container.index(resolved, problems))) {
          out.push([HUB, r.targetTeamId, k, String(v)]);
        }
      }
      await runAll(env, bulk(env, "bench_cx_pref", ["team_id", "target_team_id", "key", "value"], out), driver);
      return { rows: out.length };
    }
    if (step === "counts") {
      await driver.run(`INSERT INTO bench_cx_count (connection_id, inviter, invitee, channels, pending)
          SELECT k.id, k.inviter, k.invitee,
            COALESCE(SUM(s.status = 'accepted'), 0), COALESCE(SUM(s.status = 'pending'), 0)
          FROM connections k LEFT JOIN shared_channel_invites s ON s.connection_id = k.id GROUP BY k.id, k.inviter, k.invitee`);
      // Kept up to date by the database itself from then on (a maintained count).
      for (const sql of mysql ? BASELINE_TRIGGERS_MYSQL : BASELINE_TRIGGERS) await driver.run(sql);
      return { ok: true };
    }
    await driver.run(
      mysql
        ? "ANALYZE TABLE bench_cx_name, bench_cx_word, bench_cx_pref, bench_cx_count, connections, teams, shared_channel_invites, connect_prefs"
        : "ANALYZE",
    );
    const one = async (sql: string) => Number((await driver.all(sql))[0]?.n ?? 0);
    return {
      names: await one("SELECT COUNT(*) AS n FROM bench_cx_name"),
      words: await one("SELECT COUNT(*) AS n FROM bench_cx_word"),
      prefs: await one("SELECT COUNT(*) AS n FROM bench_cx_pref"),
      counts: await one("SELECT COUNT(*) AS n FROM bench_cx_count"),
    };
  },
};

const BASELINE_DDL = [
  // Folded sort key per team (nameKey), in name order.
  "CREATE TABLE bench_cx_name (team_id TEXT PRIMARY KEY, name_key TEXT NOT NULL) WITHOUT ROWID",
  "CREATE INDEX bench_cx_name_by_key ON bench_cx_name (name_key, team_id)",
  // Every folded word of a team's name and claimed domains (prefix search: a range of this key).
  "CREATE TABLE bench_cx_word (word TEXT NOT NULL, team_id TEXT NOT NULL, PRIMARY KEY (word, team_id)) WITHOUT ROWID",
  // Each prefs level's own values, flattened; effective = partner level, else org level, else default.
  `CREATE TABLE bench_cx_pref (team_id TEXT NOT NULL, target_team_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
     PRIMARY KEY (team_id, target_team_id, key)) WITHOUT ROWID`,
  "CREATE INDEX bench_cx_pref_by_value ON bench_cx_pref (team_id, key, value, target_team_id)",
  // Shared-channel counts per connection, kept by triggers, ordered per side of the connection.
  `CREATE TABLE bench_cx_count (connection_id TEXT PRIMARY KEY, inviter TEXT NOT NULL, invitee TEXT NOT NULL,
     channels INTEGER NOT NULL, pending INTEGER NOT NULL) WITHOUT ROWID`,
  "CREATE INDEX bench_cx_count_inviter ON bench_cx_count (inviter, channels, connection_id)",
  "CREATE INDEX bench_cx_count_invitee ON bench_cx_count (invitee, channels, connection_id)",
];

const BIN = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";
const BASELINE_DDL_MYSQL = [
  `CREATE TABLE bench_cx_name (team_id VARCHAR(40) ${BIN} NOT NULL PRIMARY KEY, name_key VARCHAR(400) ${BIN} NOT NULL,
     INDEX bench_cx_name_by_key (name_key, team_id))`,
  `CREATE TABLE bench_cx_word (word VARCHAR(200) ${BIN} NOT NULL, team_id VARCHAR(40) ${BIN} NOT NULL, PRIMARY KEY (word, team_id))`,
  `CREATE TABLE bench_cx_pref (team_id VARCHAR(40) ${BIN} NOT NULL, target_team_id VARCHAR(40) ${BIN} NOT NULL,
     \`key\` VARCHAR(64) ${BIN} NOT NULL, value VARCHAR(400) ${BIN} NOT NULL,
     PRIMARY KEY (team_id, target_team_id, \`key\`), INDEX bench_cx_pref_by_value (team_id, \`key\`, value(100), target_team_id))`,
  `CREATE TABLE bench_cx_count (connection_id VARCHAR(40) ${BIN} NOT NULL PRIMARY KEY, inviter VARCHAR(40) ${BIN} NOT NULL,
     invitee VARCHAR(40) ${BIN} NOT NULL, channels INT NOT NULL, pending INT NOT NULL,
     INDEX bench_cx_count_inviter (inviter, channels, connection_id), INDEX bench_cx_count_invitee (invitee, channels, connection_id))`,
];
const mdelta = (row: "NEW" | "OLD", sign: "+" | "-") =>
  `UPDATE bench_cx_count SET channels = channels ${sign} (${row}.status = 'accepted'), pending = pending ${sign} (${row}.status = 'pending') WHERE connection_id = ${row}.connection_id`;
const BASELINE_TRIGGERS_MYSQL = [
  `CREATE TRIGGER bench_cx_count_ins AFTER INSERT ON shared_channel_invites FOR EACH ROW ${mdelta("NEW", "+")}`,
  `CREATE TRIGGER bench_cx_count_del AFTER DELETE ON shared_channel_invites FOR EACH ROW ${mdelta("OLD", "-")}`,
  `CREATE TRIGGER bench_cx_count_upd AFTER UPDATE ON shared_channel_invites FOR EACH ROW BEGIN ${mdelta("OLD", "-")}; ${mdelta("NEW", "+")}; END`,
  `CREATE TRIGGER bench_cx_count_conn AFTER INSERT ON connections FOR EACH ROW
     INSERT IGNORE INTO bench_cx_count (connection_id, inviter, invitee, channels, pending) VALUES (NEW.id, NEW.inviter, NEW.invitee, 0, 0)`,
];

const delta = (row: "NEW" | "OLD", sign: "+" | "-") =>
  `UPDATE bench_cx_count SET channels = channels ${sign} (${row}.status = 'accepted'), pending = pending ${sign} (${row}.status = 'pending') WHERE connection_id = ${row}.connection_id`;
const BASELINE_TRIGGERS = [
  `CREATE TRIGGER bench_cx_count_ins AFTER INSERT ON shared_channel_invites BEGIN ${delta("NEW", "+")}; END`,
  `CREATE TRIGGER bench_cx_count_del AFTER DELETE ON shared_channel_invites BEGIN ${delta("OLD", "-")}; END`,
  `CREATE TRIGGER bench_cx_count_upd AFTER UPDATE OF status ON shared_channel_invites BEGIN ${delta("OLD", "-")}; ${delta("NEW", "+")}; END`,
  `CREATE TRIGGER bench_cx_count_conn AFTER INSERT ON connections BEGIN
     INSERT OR IGNORE INTO bench_cx_count (connection_id, inviter, invitee, channels, pending) VALUES (NEW.id, NEW.inviter, NEW.invitee, 0, 0); END`,
];

// --- the baseline's answer ------------------------------------------------------

const problems0: PrefProblem[] = [];
/** Every pref's default, flattened as the index flattens it. */
const DEFAULTS: Record<string, string> = Object.fromEntries(
  Object.entries(container.index(container.resolve(null, null, problems0), problems0)).map(([k, v]) => [k, String(v)]),
);

const PAGE_COLUMNS = `k.id AS id, t.id AS partner_id, t.name AS name, t.claimed_domains AS domains, k.status AS status,
  c.channels AS channels, c.pending AS pending, k.accepted_at AS connected_at, n.name_key AS name_key,
  (SELECT json_group_object(x.key, x.value) FROM bench_cx_pref x WHERE x.team_id = ?1 AND x.target_team_id = t.id) AS prefs,
  (SELECT json_group_object(o.key, o.value) FROM bench_cx_pref o WHERE o.team_id = ?1 AND o.target_team_id = '0') AS org_prefs`;

interface PageRow {
  id: string;
  partner_id: string;
  name: string;
  domains: string;
  status: string;
  channels: number;
  pending: number;
  connected_at: number;
  name_key: string;
  prefs: string | null;
  org_prefs: string | null;
}

/**
 * One question, from the source tables and the baseline's indexes. The
 * plan follows the sort: name: walk the folded names in order and probe the
 * hub's connection with each (connections_live_pair); date: the two sides'
 * (inviter|invitee, accepted_at, id) indexes, each read in order and limited,
 * merged; channels: the kept counts' (inviter|invitee, channels, id) indexes
 * the same way. A text search starts from its words' matches (intersected)
 * and sorts them; a pref filter whose value is not the org/default one
 * starts from the partners whose level sets it (pref index), else is
 * checked per row (no partner level overriding it).
 */
/** Keyset "after (value, id)" as plain comparisons (both engines use the leading column's range). */
function keyAfter(col: string, cmp: string, v: string, id: string, idCol = "k.id"): string {
  return `AND ${col} ${cmp}= ${v} AND (${col} ${cmp} ${v} OR ${idCol} ${cmp} ${id})`;
}

/** The same statement for MySQL: numbered parameters made positional, SQLite's spellings replaced. */
function forMysql(sql: string, args: unknown[]): { sql: string; params: unknown[] } {
  let derived = 0;
  const out = sql
    .replace(/MIN\(\?1, /g, "LEAST(?1, ")
    .replace(/MAX\(\?1, /g, "GREATEST(?1, ")
    .replace(/json_group_object\((\w)\.key, /g, "JSON_OBJECTAGG($1.`key`, ")
    .replace(/(\w)\.key = /g, "$1.`key` = ")
    .replace(/ AND key = /g, " AND `key` = ")
    .replace(/SELECT key, value/g, "SELECT `key`, value")
    .replace(/CROSS JOIN/g, "STRAIGHT_JOIN")
    .replace(/LIMIT (\d+)\)/g, (_, n: string) => `LIMIT ${n}) AS d${derived++}`);
  const params: unknown[] = [];
  const positional = out.replace(/\?(\d+)/g, (_, n: string) => {
    params.push(args[Number(n) - 1]);
    return "?";
  });
  return { sql: positional, params };
}

async function baselineSearch(env: Env, team: string, q: SearchQuery) {
  const mysql = isMysql(env);
  const driver = driverFor(env);
  const run = async <T extends Record<string, unknown>>(sql: string, args: unknown[]): Promise<T[]> => {
    if (!mysql)
      return (
        await env.DB.prepare(sql)
          .bind(...args)
          .all<T>()
      ).results;
    const m = forMysql(sql, args);
    return driver.all<T>(m.sql, m.params);
  };
  const args: unknown[] = [team];
  const arg = (v: unknown) => {
    args.push(v);
    return `?${args.length}`;
  };
  // The org level's values (one small read) decide how each pref filter is asked.
  let org: Record<string, string> = {};
  const prefFilters = Object.entries(q.prefs);
  if (prefFilters.length > 0) {
    const rows = await run<{ key: string; value: string }>(
      "SELECT key, value FROM bench_cx_pref WHERE team_id = ?1 AND target_team_id = '0'",
      [team],
    );
    org = Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }
  // Partner sets that restrict candidates (intersected), and per-row conditions.
  const sets: string[] = [];
  const conds: string[] = [];
  for (const w of q.words) {
    sets.push(`SELECT DISTINCT team_id FROM bench_cx_word WHERE word >= ${arg(w)} AND word < ${arg(`${w}\u{10FFFF}`)}`);
  }
  for (const [key, value] of prefFilters) {
    const base = org[key] ?? DEFAULTS[key];
    if (base === value) {
      conds.push(
        `NOT EXISTS (SELECT 1 FROM bench_cx_pref x WHERE x.team_id = ?1 AND x.target_team_id = t.id AND x.key = ${arg(key)} AND x.value <> ${arg(value)})`,
      );
    } else if (base === undefined && !(key in DEFAULTS)) {
      // No such pref: the index holds no value for it, nothing matches.
      conds.push("0");
    } else {
      sets.push(
        `SELECT target_team_id FROM bench_cx_pref WHERE team_id = ?1 AND key = ${arg(key)} AND value = ${arg(value)}`,
      );
    }
  }
  if (q.status === "accepted") conds.push("k.status = 'accepted'");
  if (q.status === "disconnected") conds.push("k.status <> 'accepted'");
  const dir = q.order === "asc" ? "ASC" : "DESC";
  const cmp = q.order === "asc" ? ">" : "<";
  const limit = q.limit + 1;
  let sql: string;
  if (sets.length > 0) {
    // Matches first (intersected), then the hub's connections with them, sorted.
    const col = q.sort === "name" ? "n.name_key" : q.sort === "date" ? "k.accepted_at" : "c.channels";
    const after = q.after ? keyAfter(col, cmp, arg(q.after.value), arg(q.after.id)) : "";
    sql = `WITH m(team_id) AS (${sets.join(" INTERSECT ")})
      SELECT ${PAGE_COLUMNS} FROM m CROSS JOIN connections k ON k.team_low = MIN(?1, m.team_id) AND k.team_high = MAX(?1, m.team_id)
        JOIN teams t ON t.id = m.team_id JOIN bench_cx_name n ON n.team_id = m.team_id JOIN bench_cx_count c ON c.connection_id = k.id
      WHERE m.team_id <> ?1 ${conds.map((c) => `AND ${c}`).join(" ")} ${after}
      ORDER BY ${col} ${dir}, k.id ${dir} LIMIT ${limit}`;
  } else if (q.sort === "name") {
    const after = q.after ? keyAfter("n.name_key", cmp, arg(q.after.value), arg(q.after.id)) : "";
    const walk = `FROM bench_cx_name n CROSS JOIN connections k ON k.team_low = MIN(?1, n.team_id) AND k.team_high = MAX(?1, n.team_id)
        CROSS JOIN teams t ON t.id = n.team_id CROSS JOIN bench_cx_count c ON c.connection_id = k.id
      WHERE n.team_id <> ?1 ${conds.map((c) => `AND ${c}`).join(" ")} ${after}`;
    let bound = "";
    if (mysql) {
      // MySQL cannot walk the name index and sort only the ties (the tie-break
      // is the joined connection's id): it would sort the whole join. So two
      // steps: the name index walked in order to the (limit+1)-th match's key,
      // then the page up to that key, sorted with its tie-break.
      const keys = await run<{ name_key: string }>(
        `SELECT n.name_key AS name_key ${walk} ORDER BY n.name_key ${dir} LIMIT ${limit}`,
        args,
      );
      const last = keys.length === limit ? keys.at(-1)?.name_key : undefined;
      if (last !== undefined) bound = `AND n.name_key ${q.order === "asc" ? "<=" : ">="} ${arg(last)}`;
    }
    sql = `SELECT ${PAGE_COLUMNS} ${walk} ${bound}
      ORDER BY n.name_key ${dir}, k.id ${dir} LIMIT ${limit}`;
  } else {
    // date / channels: per side of the connection, an ordered, limited read of its index; merged.
    const side = (column: "inviter" | "invitee") => {
      const other = column === "inviter" ? "invitee" : "inviter";
      const order =
        q.sort === "date"
          ? {
              from: "connections k CROSS JOIN bench_cx_count c ON c.connection_id = k.id",
              col: "k.accepted_at",
              id: "k.id",
              where: `k.${column} = ?1`,
            }
          : {
              // Ordered by the count index's own (channels, connection_id): no sort of the side's rows.
              from: "bench_cx_count c CROSS JOIN connections k ON k.id = c.connection_id",
              col: "c.channels",
              id: "c.connection_id",
              where: `c.${column} = ?1`,
            };
      const after = q.after ? keyAfter(order.col, cmp, arg(q.after.value), arg(q.after.id), order.id) : "";
      return `SELECT * FROM (SELECT ${PAGE_COLUMNS.replace("t.id AS partner_id", `k.${other} AS partner_id`)}
          FROM ${order.from} JOIN teams t ON t.id = k.${other} JOIN bench_cx_name n ON n.team_id = t.id
          WHERE ${order.where} ${conds.map((c) => `AND ${c}`).join(" ")} ${after}
          ORDER BY ${order.col} ${dir}, ${order.id} ${dir} LIMIT ${limit})`;
    };
    const col = q.sort === "date" ? "connected_at" : "channels";
    sql = `${side("inviter")} UNION ALL ${side("invitee")} ORDER BY ${col} ${dir}, id ${dir} LIMIT ${limit}`;
  }
  const rows = (await run<PageRow & Record<string, unknown>>(sql.replaceAll("__L__", String(limit)), args)).map(
    (r) => ({
      ...r,
      channels: Number(r.channels),
      pending: Number(r.pending),
      connected_at: Number(r.connected_at),
      prefs: typeof r.prefs === "string" || r.prefs === null ? r.prefs : JSON.stringify(r.prefs),
      org_prefs: typeof r.org_prefs === "string" || r.org_prefs === null ? r.org_prefs : JSON.stringify(r.org_prefs),
    }),
  );
  const more = rows.length > q.limit;
  const page = rows.slice(0, q.limit);
  const tail = page.at(-1);
  const sortValue = (r: PageRow) => (q.sort === "name" ? r.name_key : q.sort === "date" ? r.connected_at : r.channels);
  return {
    connections: page.map((r) => ({
      connection: r.id,
      partner: { id: r.partner_id, name: r.name, domains: domainsOf(r.domains) },
      status: r.status === "accepted" ? "accepted" : "disconnected",
      channels: r.channels,
      pending_invitations: r.pending,
      connected_at: r.connected_at,
      prefs: {
        ...DEFAULTS,
        ...(r.org_prefs ? (JSON.parse(r.org_prefs) as Record<string, string>) : {}),
        ...(r.prefs ? (JSON.parse(r.prefs) as Record<string, string>) : {}),
      },
    })),
    // The baseline's own cursor: its last (sort value, id), as plain JSON.
    next_cursor: more && tail ? JSON.stringify({ v: sortValue(tail), i: tail.id }) : null,
    ...(EXPLAIN_ON ? { sql, args } : {}),
  };
}
let EXPLAIN_ON = false;

function domainsOf(json: string): string[] {
  try {
    const parsed: unknown = JSON.parse(json);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}

/** GET /bench/baseline/connections: the admin search's question, answered by the database (same auth as the route). */
async function handleBaseline(request: Request, env: Env): Promise<Response> {
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  const verified = token ? await verifyToken(token, env.JWT_SECRET) : null;
  if (!verified?.ok) return Response.json({ error: { code: "unauthorized" } }, { status: 401 });
  const { team, user } = verified.identity;
  // The product route's check: the caller is a live owner or admin of its team (the team cache's row).
  const live = await liveActor(env, team, user);
  if (!live?.active || !isAdminRole(live.role)) return Response.json({ error: { code: "forbidden" } }, { status: 403 });
  const url = new URL(request.url);
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) if (k !== "after") params[k] = v;
  const q = parseSearchQuery(params);
  const after = url.searchParams.get("after");
  if (after) {
    const c = JSON.parse(after) as { v: string | number; i: string };
    q.after = { value: c.v, id: c.i };
  }
  EXPLAIN_ON = url.searchParams.has("explain");
  if (EXPLAIN_ON) {
    const out = await baselineSearch(env, team, q);
    const o = out as { sql?: string; args?: unknown[] };
    const sql = (o.sql ?? "").replaceAll("__L__", String(q.limit + 1));
    let plan: unknown;
    if (isMysql(env)) {
      const m = forMysql(sql, o.args ?? []);
      plan = await driverFor(env).all(`EXPLAIN ${m.sql.replaceAll("__L__", String(q.limit + 1))}`, m.params);
    } else {
      plan = (
        await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .bind(...(o.args ?? []))
          .all()
      ).results;
    }
    EXPLAIN_ON = false;
    return Response.json({ ...out, plan });
  }
  return Response.json(await baselineSearch(env, team, q));
}

export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    try {
      if (path === "/bench/baseline/connections") return await handleBaseline(request, env);
      const route = routes[path];
      if (!route) return worker.fetch(request, env, ctx);
      return Response.json(await route(request, env));
    } catch (error) {
      const status = error instanceof HttpFail ? error.status : 500;
      return Response.json({ error: String(error instanceof Error ? error.stack : error) }, { status });
    }
  },
  queue: worker.queue,
  scheduled: worker.scheduled,
} satisfies ExportedHandler<Env>;
