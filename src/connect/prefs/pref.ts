import type { ConnectPrefs } from "../gen/connect/v1/prefs_pb";

// One Slack Connect pref, as a class the registry holds (registry.ts). The
// container reads a level's ConnectPrefs message through read(), resolves
// default -> org -> partner, and never lets one pref's failure reach another:
// every call into a class is guarded there.

/** The schema version this code writes; older payloads are migrated when read. */
export const CURRENT_VERSION = 2;

/** Where an effective value came from. */
export type PrefSource = "default" | "org" | "partner";

/** A change of one pref at one level, as stored (before/after at that level; undefined: not set there). */
export interface PrefChange<V> {
  key: string;
  level: "org" | "partner";
  before: V | undefined;
  after: V | undefined;
}

/** What a change causes beyond the write: events for clients and indexes, nothing else. */
export type PrefEffect =
  | { kind: "event"; type: string; data: Record<string, unknown> }
  /** Profile fields shown to partners changed: the viewers' caches must re-filter. */
  | { kind: "refilter_profiles" }
  /** Auto-approval widened: pending invitations from the partner are looked at again. */
  | { kind: "review_invitations" };

/** Raised by transform() for input it cannot take; the message names the problem. */
export class PrefInputError extends Error {}

export interface PrefClass<V> {
  /** The pref's name in the API and in search (also its ConnectPrefs field, in snake case). */
  readonly key: string;
  readonly description: string;
  /** The built-in default: what applies when neither level sets the pref. */
  readonly defaultValue: V;
  /** The value set at a level, or undefined when the level does not set it. */
  read(prefs: ConnectPrefs): V | undefined;
  /** Sets the value at a level; undefined clears it (the level below decides again). */
  write(prefs: ConnectPrefs, value: V | undefined): void;
  /** API input to a value; throws PrefInputError for input it cannot take. */
  transform(input: unknown): V;
  /** What is wrong with a value (empty: valid). */
  isValid(value: V): string[];
  /** Moves what an older payload held for this pref into its field (then clears the old field). */
  migrate(prefs: ConnectPrefs, fromVersion: number): void;
  /** Flat fields for the admin search index (each pref's effective value, searchable without code there). */
  index(value: V): Record<string, string | number | boolean>;
  /** What a change causes (events, reviews), beyond the audit line every change gets. */
  effects(change: PrefChange<V>): PrefEffect[];
}

/**
 * Input named in a message, at most the first few, each cut short: a refusal
 * names what was wrong without echoing a huge input back.
 */
export function shown(values: readonly string[]): string {
  const few = values.slice(0, 5).map((v) => JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v));
  return values.length > 5 ? `${few.join(", ")} and ${values.length - 5} more` : few.join(", ");
}

/** A string list from API input: strings only, trimmed, non-empty, unique, in order. */
export function stringList(input: unknown, what: string, max: number): string[] {
  if (!Array.isArray(input)) throw new PrefInputError(`${what} must be a list of strings`);
  if (input.length > max) throw new PrefInputError(`${what} takes at most ${max} entries`);
  const out: string[] = [];
  for (const item of input) {
    if (typeof item !== "string" || item.trim() === "") throw new PrefInputError(`${what} must be non-empty strings`);
    const v = item.trim();
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** The keys of an API object, refusing any other. */
export function objectWith(input: unknown, what: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new PrefInputError(`${what} must be an object`);
  }
  const extra = Object.keys(input).filter((k) => !keys.includes(k));
  if (extra.length > 0) throw new PrefInputError(`${what} does not take ${shown(extra)}`);
  return input as Record<string, unknown>;
}

/** The API name of a proto enum value, by a map from names to values; undefined for a value the map lacks. */
export function nameOf<K extends string, E>(names: Record<K, E>, value: E): K | undefined {
  return (Object.keys(names) as K[]).find((k) => names[k] === value);
}
