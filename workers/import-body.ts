import { z } from "zod";
import { invalidBody, tooLarge } from "../src/errors";
import { type AppContext, jsonBody } from "./http";
import { readNdjson } from "./ndjson";

// Bulk imports (users, channels, memberships) read their records the same
// way: NDJSON streamed one record a line, or JSON `{ "<key>": [...] }`. The
// whole request is validated before anything is written: a bad record
// anywhere means a 400 naming the lines, and no change.

/** Errors reported before an import gives up reading. */
const MAX_REPORTED_ERRORS = 50;

export type Accepted<T> = { ok: true; value: T } | { ok: false; message: string };

export function issuesOf(error: z.ZodError): { ok: false; message: string } {
  return { ok: false, message: error.issues.map((i) => `${i.path.join(".") || "line"}: ${i.message}`).join("; ") };
}

/**
 * NDJSON (one record a line, streamed) or JSON `{ "<key>": [...] }`, like the
 * user import: the whole request is validated before anything is written.
 */
export async function readImport<T>(
  c: AppContext,
  key: string,
  max: number,
  accept: (value: unknown) => Accepted<T>,
): Promise<T[]> {
  const type = c.req.header("content-type") ?? "";
  const errors: Array<{ line: number; message: string }> = [];
  const records: T[] = [];
  const take = (value: unknown, line: number) => {
    if (records.length + errors.length >= max) {
      throw tooLarge(`at most ${max} ${key} per import request`);
    }
    const result = accept(value);
    if (result.ok) records.push(result.value);
    else errors.push({ line, message: result.message });
  };
  if (type.includes("ndjson")) {
    const body = c.req.raw.body;
    if (!body) throw invalidBody("empty import");
    for await (const { line, value, error } of readNdjson(body)) {
      if (error) errors.push({ line, message: error });
      else take(value, line);
      if (errors.length >= MAX_REPORTED_ERRORS) break;
    }
  } else {
    const body = await jsonBody(c, z.strictObject({ [key]: z.array(z.unknown()).min(1) }));
    for (const [i, value] of (body[key] as unknown[]).entries()) take(value, i + 1);
  }
  if (errors.length > 0) {
    throw invalidBody(`${errors.length} invalid record(s); nothing was imported`, { errors });
  }
  if (records.length === 0) throw invalidBody("empty import");
  return records;
}
