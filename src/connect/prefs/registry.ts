import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type ConnectPrefs, ConnectPrefsSchema } from "../gen/connect/v1/prefs_pb";
import { autoApproval } from "./auto-approval";
import { channelCreation } from "./channel-creation";
import { fileUploads } from "./file-uploads";
import {
  CURRENT_VERSION,
  type PrefChange,
  type PrefClass,
  type PrefEffect,
  PrefInputError,
  type PrefSource,
} from "./pref";
import { profileFields } from "./profile-fields";

// The container of Slack Connect prefs, built over the top-level message
// (ConnectPrefs) and a registry of pref classes. It decodes a level's blob
// (migrating older payloads), resolves each pref default -> org -> partner
// with where the value came from, applies a patch to a level, and flattens
// effective values for the search index. Every call into a class is
// guarded: a class that throws (or reads an invalid value) is reported in
// `problems` and that pref falls through to the level below; it never
// breaks another pref.

/** The registry: adding a pref is one class and one line here (and one proto field). */
export const PREF_CLASSES = [autoApproval, fileUploads, profileFields, channelCreation] as const;

export type Level = "org" | "partner";

/** An effective value, and the level it came from. */
export interface Resolved {
  value: unknown;
  source: PrefSource;
}

export interface PrefProblem {
  /** The pref, or "*" for the whole level (a blob that does not decode). */
  key: string;
  level?: Level;
  stage: "decode" | "migrate" | "read" | "validate" | "index" | "effects";
  message: string;
}

/** A patch refused: what is wrong with each pref it named (nothing was changed). */
export class PrefPatchError extends Error {
  constructor(readonly problems: Record<string, string[]>) {
    super(
      `invalid prefs: ${Object.entries(problems)
        .map(([k, p]) => `${k}: ${p.join("; ")}`)
        .join(" | ")}`,
    );
  }
}

/** Indexed fields of each pref (pref key -> field -> value), as the search index holds a level. */
export type PrefGroups = Record<string, Record<string, string | number | boolean>>;

/** A connection's effective indexed fields: its partner level's groups, else the org level's (which holds defaults). */
export function mergeGroups(org: PrefGroups, own: PrefGroups): PrefGroups {
  return { ...org, ...own };
}

/** The groups as one flat record (field names are unique across prefs). */
export function flattenGroups(groups: PrefGroups): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const fields of Object.values(groups)) Object.assign(out, fields);
  return out;
}

/** A pref class as the container holds it (each class's own value type stays inside the class). */
type Registered = PrefClass<unknown>;

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class PrefContainer {
  private readonly byKey: Map<string, Registered>;

  constructor(classes: ReadonlyArray<PrefClass<never>> = PREF_CLASSES as unknown as ReadonlyArray<PrefClass<never>>) {
    this.byKey = new Map(classes.map((c) => [c.key, c as unknown as Registered]));
  }

  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** A level's message from its stored blob (null: no row), migrated to the current version. */
  decode(blob: Uint8Array | null, level: Level, problems: PrefProblem[]): ConnectPrefs {
    let prefs: ConnectPrefs;
    try {
      prefs =
        blob === null ? create(ConnectPrefsSchema, { version: CURRENT_VERSION }) : fromBinary(ConnectPrefsSchema, blob);
    } catch (error) {
      problems.push({ key: "*", level, stage: "decode", message: messageOf(error) });
      return create(ConnectPrefsSchema, { version: CURRENT_VERSION });
    }
    if (prefs.version < CURRENT_VERSION) {
      const from = prefs.version;
      for (const c of this.byKey.values()) {
        try {
          c.migrate(prefs, from);
        } catch (error) {
          problems.push({ key: c.key, level, stage: "migrate", message: messageOf(error) });
        }
      }
      prefs.version = CURRENT_VERSION;
    }
    return prefs;
  }

  encode(prefs: ConnectPrefs): Uint8Array {
    prefs.version = CURRENT_VERSION;
    return toBinary(ConnectPrefsSchema, prefs);
  }

  /** What one level sets, pref by pref (absent: not set there). */
  levelValues(prefs: ConnectPrefs, level: Level, problems: PrefProblem[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of this.byKey.values()) {
      const v = this.readValid(c, prefs, level, problems);
      if (v !== undefined) out[c.key] = v;
    }
    return out;
  }

  /** Every pref's effective value: the partner level's, else the org level's, else the default. */
  resolve(org: ConnectPrefs | null, partner: ConnectPrefs | null, problems: PrefProblem[]): Record<string, Resolved> {
    const out: Record<string, Resolved> = {};
    for (const c of this.byKey.values()) {
      const fromPartner = partner ? this.readValid(c, partner, "partner", problems) : undefined;
      if (fromPartner !== undefined) {
        out[c.key] = { value: fromPartner, source: "partner" };
        continue;
      }
      const fromOrg = org ? this.readValid(c, org, "org", problems) : undefined;
      out[c.key] =
        fromOrg !== undefined ? { value: fromOrg, source: "org" } : { value: c.defaultValue, source: "default" };
    }
    return out;
  }

  /**
   * Applies a patch to one level: `{ key: value }` sets, `{ key: null }`
   * clears (the level below decides again). Every named pref is transformed
   * and validated first; any problem refuses the whole patch (PrefPatchError)
   * and changes nothing. Answers the changes and what they cause.
   */
  patch(
    prefs: ConnectPrefs,
    level: Level,
    input: Record<string, unknown>,
    problems: PrefProblem[],
  ): { changes: Array<PrefChange<unknown>>; effects: PrefEffect[] } {
    // No prototype: a pref named "__proto__" (JSON.parse makes it an own key)
    // must land here as a refusal, not replace the object's prototype and
    // vanish from Object.keys, which would let the rest of the patch through.
    const refused: Record<string, string[]> = Object.create(null);
    const planned: Array<{ c: Registered; value: unknown }> = [];
    for (const [key, raw] of Object.entries(input)) {
      const c = this.byKey.get(key);
      if (!c) {
        refused[key] = [`no such pref; known: ${this.keys().join(", ")}`];
        continue;
      }
      if (raw === null) {
        planned.push({ c, value: undefined });
        continue;
      }
      try {
        const value = c.transform(raw);
        const wrong = c.isValid(value);
        if (wrong.length > 0) refused[key] = wrong;
        else planned.push({ c, value });
      } catch (error) {
        refused[key] = [error instanceof PrefInputError ? error.message : `could not be read: ${messageOf(error)}`];
      }
    }
    if (Object.keys(refused).length > 0) throw new PrefPatchError(refused);
    const changes: Array<PrefChange<unknown>> = [];
    const effects: PrefEffect[] = [];
    for (const { c, value } of planned) {
      const before = this.readValid(c, prefs, level, problems);
      if (JSON.stringify(before) === JSON.stringify(value)) continue;
      c.write(prefs, value);
      const change = { key: c.key, level, before, after: value };
      changes.push(change);
      try {
        effects.push(...c.effects(change));
      } catch (error) {
        problems.push({ key: c.key, level, stage: "effects", message: messageOf(error) });
      }
    }
    return { changes, effects };
  }

  /** Effective values flattened for the search index (a new pref is indexed without code there). */
  index(resolved: Record<string, Resolved>, problems: PrefProblem[]): Record<string, string | number | boolean> {
    return flattenGroups(this.indexGroups(resolved, problems));
  }

  /**
   * Each pref's value flattened, grouped by pref: the search index keeps the
   * org level's groups once and a connection's own groups only for the prefs
   * its partner level sets, and answers their merge (mergeGroups). A pref
   * whose index() throws gets an empty group (reported): none of its fields,
   * as if it had none, and it still counts as set at that level.
   */
  indexGroups(values: Record<string, { value: unknown }>, problems: PrefProblem[]): PrefGroups {
    const out: PrefGroups = {};
    for (const [key, r] of Object.entries(values)) {
      const c = this.byKey.get(key);
      if (!c) continue;
      try {
        out[key] = { ...c.index(r.value) };
      } catch (error) {
        problems.push({ key, stage: "index", message: messageOf(error) });
        out[key] = {};
      }
    }
    return out;
  }

  /** The groups of the prefs one partner level sets (null: no row, nothing set). */
  partnerGroups(prefs: ConnectPrefs | null, problems: PrefProblem[]): PrefGroups {
    if (!prefs) return {};
    const set = this.levelValues(prefs, "partner", problems);
    return this.indexGroups(Object.fromEntries(Object.entries(set).map(([k, value]) => [k, { value }])), problems);
  }

  /** A class's value at a level, or undefined when unset, unreadable or invalid (reported). */
  private readValid(c: Registered, prefs: ConnectPrefs, level: Level, problems: PrefProblem[]): unknown {
    let value: unknown;
    try {
      value = c.read(prefs);
    } catch (error) {
      problems.push({ key: c.key, level, stage: "read", message: messageOf(error) });
      return undefined;
    }
    if (value === undefined) return undefined;
    try {
      const wrong = c.isValid(value);
      if (wrong.length === 0) return value;
      problems.push({ key: c.key, level, stage: "validate", message: wrong.join("; ") });
    } catch (error) {
      problems.push({ key: c.key, level, stage: "validate", message: messageOf(error) });
    }
    return undefined;
  }
}
