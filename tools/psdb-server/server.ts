// A local HTTP server that speaks PlanetScale's database API
// (`/psdb.v1alpha1.Database/Execute`, `/CreateSession`) to the real
// `@planetscale/database` driver and runs the SQL on MySQL/MariaDB.
//
//   const server = await startPsdbServer({ mysql: { host, port, user, database } });
//   const conn = connect({ url: server.url });   // http://root:@127.0.0.1:PORT
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import mysql, { type PoolOptions } from "mysql2/promise";
import { vitessError, type WireError } from "./errors";
import { type ExecuteResponse, Executor, UNPINNED } from "./executor";
import { SessionStore } from "./sessions";

export interface PsdbServerOptions {
  mysql: { host: string; port: number; user: string; password?: string; database: string };
  /** Listen address, default "127.0.0.1". */
  host?: string;
  /** Default 0 = ephemeral. */
  port?: number;
  /** Basic-auth user the driver must send; default "root". */
  username?: string;
  /** Default ""; when set, wrong credentials get 401. */
  password?: string;
  /** Connections for autocommit statements; default 8. */
  poolSize?: number;
  /** Pinned transaction connections are rolled back and released after this idle time; default 30000. */
  sessionIdleMs?: number;
  /** A transaction open longer is killed, mid-statement too (PlanetScale's per-transaction timeout); default 20000. */
  maxTransactionMs?: number;
  /** Most transactions open at once (more BEGINs wait); default 64. */
  maxSessions?: number;
}

export interface PsdbServer {
  /** Usable as the driver's `url` config. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const EXECUTE_PATH = "/psdb.v1alpha1.Database/Execute";
const CREATE_SESSION_PATH = "/psdb.v1alpha1.Database/CreateSession";
const MAX_BODY_BYTES = 64 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: WireError["code"],
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(data)),
    ...headers,
  });
  res.end(data);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, "RESOURCE_EXHAUSTED", `request body exceeds ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJsonObject(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new HttpError(400, "INVALID_ARGUMENT", "request body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, "INVALID_ARGUMENT", "request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** The pinned session id a request carries, or null for none. */
function sessionIdOf(session: unknown): string | null {
  if (session === undefined || session === null) return null;
  if (typeof session !== "object" || Array.isArray(session)) {
    throw new HttpError(400, "INVALID_ARGUMENT", "session must be an object or null");
  }
  const id = (session as { id?: unknown }).id;
  if (id === undefined || id === null) return null;
  if (typeof id !== "string") throw new HttpError(400, "INVALID_ARGUMENT", "session.id must be a string");
  return id;
}

function decodeUserInfo(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Checks `Authorization: Basic` (the driver sends URL-encoded user/password). */
function authorized(header: string | undefined, username: string, password: string): boolean {
  const match = header === undefined ? null : /^Basic\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) return false;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return false;
  const user = decodeUserInfo(decoded.slice(0, colon));
  const pass = decodeUserInfo(decoded.slice(colon + 1));
  // Evaluate both so timing does not reveal which one was wrong.
  const userOk = sameString(user, username);
  const passOk = sameString(pass, password);
  return userOk && passOk;
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

export async function startPsdbServer(options: PsdbServerOptions): Promise<PsdbServer> {
  const listenHost = options.host ?? "127.0.0.1";
  const username = options.username ?? "root";
  const password = options.password ?? "";
  const poolSize = options.poolSize ?? 8;
  const maxSessions = options.maxSessions ?? 64;
  const sessionIdleMs = options.sessionIdleMs ?? 30_000;
  const { database } = options.mysql;

  const base: PoolOptions = {
    host: options.mysql.host,
    port: options.mysql.port,
    user: options.mysql.user,
    password: options.mysql.password ?? "",
    database,
    // Raw text-protocol cells (Buffer | null) in column order: re-encoded as
    // Vitess rows byte for byte, no parsing into JS values and back.
    rowsAsArray: true,
    typeCast: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
    // Affected rows = changed rows (MySQL's default, and PlanetScale's), so an
    // upsert reports 1 (insert), 2 (update) or 0 (no change).
    flags: ["-FOUND_ROWS"],
    multipleStatements: false,
    trace: false,
    enableKeepAlive: true,
    waitForConnections: true,
    queueLimit: 0,
  };
  const pool = mysql.createPool({ ...base, connectionLimit: poolSize, maxIdle: poolSize });
  const txPool = mysql.createPool({ ...base, connectionLimit: maxSessions, maxIdle: poolSize });
  for (const p of [pool, txPool]) {
    // PlanetScale runs in UTC; make NOW(), TIMESTAMP columns etc. match.
    p.pool.on("connection", (conn) => {
      conn.query("SET time_zone = '+00:00'", () => {});
    });
  }
  const endPools = async (): Promise<void> => {
    await Promise.allSettled([pool.end(), txPool.end()]);
  };

  // Fail fast when MySQL is unreachable or the database is missing.
  try {
    const probe = await pool.getConnection();
    probe.release();
  } catch (error) {
    await endPools();
    throw error;
  }

  const sessions = new SessionStore(sessionIdleMs, options.maxTransactionMs ?? 20_000, async (conn) => {
    // From the autocommit pool: the pinned connection itself may be busy.
    await pool.query(`KILL ${Number(conn.threadId)}`);
  });
  const executor = new Executor({ pool, txPool, sessions, database, callerId: username });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== EXECUTE_PATH && path !== CREATE_SESSION_PATH) {
      throw new HttpError(404, "NOT_FOUND", `unknown path ${JSON.stringify(path)}`);
    }
    if (req.method !== "POST") {
      throw new HttpError(405, "UNIMPLEMENTED", `method ${req.method ?? "?"} not allowed; use POST`);
    }
    if (password !== "" && !authorized(req.headers.authorization, username, password)) {
      throw new HttpError(
        401,
        "UNAUTHENTICATED",
        `access denied for user ${JSON.stringify(username)}: invalid credentials`,
      );
    }
    const body = parseJsonObject(await readBody(req));
    if (path === CREATE_SESSION_PATH) {
      sendJson(res, 200, { branch: database, user: { username }, session: UNPINNED });
      return;
    }
    const { query } = body;
    if (typeof query !== "string") throw new HttpError(400, "INVALID_ARGUMENT", "query must be a string");
    const response: ExecuteResponse = await executor.execute(query, sessionIdOf(body.session));
    sendJson(res, 200, response);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const code = error instanceof HttpError ? error.code : "INTERNAL";
      const message = error instanceof Error ? error.message : String(error);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const headers: Record<string, string> = status === 401 ? { "www-authenticate": 'Basic realm="psdb"' } : {};
      if (status === 413) headers.connection = "close";
      const wire = status === 500 ? vitessError(code, message, { database, callerId: username }) : { code, message };
      sendJson(res, status, { error: wire }, headers);
    });
  });
  server.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, listenHost, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await endPools();
    throw error;
  }

  const port = (server.address() as AddressInfo).port;
  const url = `http://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${urlHost(listenHost)}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        sessions.closeAll();
        await closed;
        await endPools();
      })();
      return closing;
    },
  };
}
