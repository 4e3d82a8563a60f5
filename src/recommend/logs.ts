import { z } from "zod";
import { featureNames } from "./candidate-block";

// What the recommend API logs for training: every served answer with the
// features each item was scored on, and every piece of feedback. Numeric
// ids and counts only, never text. Messages travel through the rec-logs
// queue; its consumer appends them to the log store (R2) as NDJSON, one
// object per source, day and batch:
//   rec-logs/source=<source>/day=<YYYY-MM-DD>/<batch>.ndjson
// The batch name is a hash of the batch's message ids, so a retried batch
// overwrites its own object; each line carries its message id, so readers
// drop the duplicates a regrouped retry could still leave.
//
// A message travels as its NDJSON line (RecLogEnvelope), serialized once by
// the producer from typed values. The consumer then only joins lines: when it
// parsed, checked and re-serialized 100 answers (~300 KB) in one go, that
// took ~7 ms on the isolate's thread, on top of the R2 put, and whichever
// request arrived meanwhile waited for it.

export const FEEDBACK_ACTIONS = ["impression", "click", "dismiss"] as const;

// A served item's features are an array aligned with its message's
// `feature_names` (null: the item lacks that feature, the model's default
// applied): names once per answer rather than once per item and value keeps
// the message a third the size, and the queue and the consumer clone, check
// and write every byte of it.
const servedItem = z.object({
  item: z.string(),
  rank: z.number().int().nonnegative(),
  score: z.number(),
  features: z.array(z.number().nullable()),
});

export const recLogMessageSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("served"),
    request_id: z.string(),
    team: z.string(),
    user: z.string(),
    source: z.string(),
    experiment: z.string(),
    arm: z.string(),
    model: z.string(),
    version: z.string(),
    fallback: z.boolean(),
    ts: z.number(),
    feature_names: z.array(z.string()),
    items: z.array(servedItem),
  }),
  z.object({
    kind: z.literal("feedback"),
    request_id: z.string(),
    team: z.string(),
    user: z.string(),
    source: z.string(),
    arm: z.string(),
    item: z.string(),
    action: z.enum(FEEDBACK_ACTIONS),
    ts: z.number(),
  }),
]);
export type RecLogMessage = z.infer<typeof recLogMessageSchema>;
type ServedMessage = Extract<RecLogMessage, { kind: "served" }>;

/**
 * A feature value as the model saw it (float32: featureMatrix) in the fewest
 * digits that give that float32 back: 9 significant digits always do, where
 * the float64 would print 17, and the log is mostly these numbers.
 */
export function asScored(v: number): number {
  return Number(Math.fround(v).toPrecision(9));
}

/** A message the consumer can write: valid, and (served) every item's features aligned with the names. */
export function parseRecLogMessage(value: unknown): RecLogMessage | null {
  const parsed = recLogMessageSchema.safeParse(value);
  if (!parsed.success) return null;
  const m = parsed.data;
  if (m.kind === "served" && m.items.some((it) => it.features.length !== m.feature_names.length)) return null;
  return m;
}

/** What the rec-logs queue carries: a message's NDJSON line and what its log object is chosen by. */
export interface RecLogEnvelope {
  v: 2;
  source: string;
  ts: number;
  /** JSON.stringify of a RecLogMessage. */
  line: string;
}

/** Largest line the consumer accepts (an answer of 100 items with 40 features is ~60 KB). */
const MAX_LINE_BYTES = 1 << 20;

export function recLogEnvelope(m: RecLogMessage): RecLogEnvelope {
  return { v: 2, source: m.source, ts: m.ts, line: JSON.stringify(m) };
}

/**
 * A queue body the consumer can write, or null: an envelope (checked as a
 * frame, its line being the producer's own serialization of a checked type),
 * or a bare message from a producer that predates envelopes (checked in full).
 */
export function parseRecLogBody(value: unknown): RecLogEnvelope | null {
  if (isEnvelope(value)) return value;
  const m = parseRecLogMessage(value);
  return m ? recLogEnvelope(m) : null;
}

function isEnvelope(value: unknown): value is RecLogEnvelope {
  if (!value || typeof value !== "object") return false;
  const e = value as Partial<RecLogEnvelope>;
  return (
    e.v === 2 &&
    typeof e.source === "string" &&
    e.source.length > 0 &&
    typeof e.ts === "number" &&
    Number.isFinite(new Date(e.ts).getTime()) &&
    typeof e.line === "string" &&
    e.line.length > 2 &&
    e.line.length <= MAX_LINE_BYTES &&
    e.line.startsWith('{"') &&
    e.line.endsWith("}") &&
    !e.line.includes("\n") // one line of NDJSON, whatever it holds
  );
}

/** The items of an answer with their features as the log carries them (see servedItem). */
export function servedItems(
  items: ReadonlyArray<{ id: string; score: number; features: Readonly<Record<string, number>> }>,
): Pick<ServedMessage, "feature_names" | "items"> {
  const names = featureNames(items.map((it) => it.features));
  return {
    feature_names: names,
    items: items.map((it, i) => ({
      item: it.id,
      rank: i + 1,
      score: it.score,
      features: names.map((n) => {
        const v = it.features[n];
        return typeof v === "number" && Number.isFinite(v) ? asScored(v) : null;
      }),
    })),
  };
}

/** Messages grouped into the log objects they belong to, each with its NDJSON body. */
export function logObjects(
  messages: ReadonlyArray<{ id: string; body: RecLogEnvelope }>,
): Array<{ key: string; body: string; count: number }> {
  const groups = new Map<string, Array<{ id: string; body: RecLogEnvelope }>>();
  for (const m of messages) {
    const prefix = `rec-logs/source=${safe(m.body.source)}/day=${new Date(m.body.ts).toISOString().slice(0, 10)}`;
    const list = groups.get(prefix);
    if (list) list.push(m);
    else groups.set(prefix, [m]);
  }
  return [...groups].map(([prefix, list]) => ({
    key: `${prefix}/${batchName(list.map((m) => m.id))}.ndjson`,
    // The message id leads each line: `{"message_id":…,` + the line after its `{`.
    body: `${list.map((m) => `{"message_id":${JSON.stringify(m.id)},${m.body.line.slice(1)}`).join("\n")}\n`,
    count: list.length,
  }));
}

function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** A stable name for a set of message ids (order-independent), 16 hex digits. */
function batchName(ids: string[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const id of [...ids].sort()) {
    for (let i = 0; i < id.length; i++) {
      h1 = Math.imul(h1 ^ id.charCodeAt(i), 0x01000193);
      h2 = Math.imul(h2 ^ id.charCodeAt(i), 0x5bd1e995);
    }
    h1 = Math.imul(h1 ^ 0x2c, 0x01000193);
    h2 = Math.imul(h2 ^ 0x2c, 0x5bd1e995);
  }
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}
