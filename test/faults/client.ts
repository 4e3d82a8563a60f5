import { sleep } from "./platform";

// What a careful client does: every write carries an Idempotency-Key, and a
// write that got no definitive answer (the connection died, 502/503/504) is
// sent again, same key and body, until it gets one.

export interface Answer {
  /** 0: no HTTP answer (connection refused or reset). */
  status: number;
  body: unknown;
  replayed: boolean;
  retryAfter: string | null;
  ms: number;
  at: number;
}

export interface Write {
  key: string;
  method: "POST" | "PATCH" | "DELETE";
  path: string;
  body?: unknown;
  contentType?: string;
}

export async function send(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text (a proxy's error page)
    }
    return {
      status: res.status,
      body: parsed,
      replayed: res.headers.get("idempotent-replayed") === "true",
      retryAfter: res.headers.get("retry-after"),
      ms: performance.now() - t0,
      at: Date.now(),
    };
  } catch {
    return { status: 0, body: null, replayed: false, retryAfter: null, ms: performance.now() - t0, at: Date.now() };
  }
}

/** Answers that say "not now, try again": no answer, or the platform's (or wrangler's proxy's) 502/503/504. */
export const isRetryable = (a: Answer) => a.status === 0 || a.status === 502 || a.status === 503 || a.status === 504;

export interface Attempts {
  final: Answer;
  /** Every answer before the final one. */
  failed: Answer[];
}

/** Sends the write until it gets a definitive answer (2xx or 4xx, or a 500: a bug, returned to be reported). */
export async function sendUntilDefinitive(
  base: () => string,
  token: string,
  w: Write,
  deadlineMs = 180_000,
): Promise<Attempts> {
  const failed: Answer[] = [];
  const stop = Date.now() + deadlineMs;
  for (;;) {
    const headers: Record<string, string> = { "idempotency-key": w.key };
    if (w.contentType) headers["content-type"] = w.contentType;
    const a = await send(base(), token, w.method, w.path, w.body, headers);
    if (!isRetryable(a)) return { final: a, failed };
    failed.push(a);
    if (Date.now() > stop)
      throw new Error(
        `${w.method} ${w.path}: no definitive answer in ${deadlineMs} ms (${failed.length} tries, last ${a.status} ${JSON.stringify(a.body).slice(0, 300)})`,
      );
    const hinted = a.retryAfter ? Number(a.retryAfter) * 1000 : 200;
    await sleep(Math.min(Number.isFinite(hinted) ? hinted : 200, 500));
  }
}
