import { create } from "@bufbuild/protobuf";
import { conflict, DomainError } from "../errors";
import { type ConnectPrefs, ConnectPrefsSchema } from "./gen/connect/v1/prefs_pb";
import type { PrefClass, PrefEffect } from "./prefs/pref";
import {
  type Level,
  PrefContainer,
  type PrefGroups,
  PrefPatchError,
  type PrefProblem,
  type Resolved,
} from "./prefs/registry";
import { type ConnectPrefsStore, ORG_LEVEL, type PrefAuditEntry, type PrefLevelRow } from "./prefs-store";

// The connect prefs use cases: read a partner's effective prefs (each with
// its source), read what one level sets, and change a level. A change is
// validated whole by the container, written with an audit line per changed
// pref in one atomic unit guarded by the payload it replaces (two admins at
// once: the later one re-reads and re-applies its patch), and answered with
// what it causes (events, invitation reviews, profile re-filtering) for the
// caller to publish. Authorization (an admin of the team; a partner it is
// connected to) is the caller's.

export interface PrefsPorts {
  store: ConnectPrefsStore;
  newId(): string;
  now(): number;
}

const container = new PrefContainer();
/** Writes retried when another admin's write came first. */
const WRITE_ATTEMPTS = 5;

function decodeRow(row: PrefLevelRow | undefined, level: Level, problems: PrefProblem[]): ConnectPrefs | null {
  return row ? container.decode(row.prefs, level, problems) : null;
}

/** Every pref's effective value for one partner (partner -> org -> default), and what could not be read. */
export async function effectivePrefs(
  ports: Pick<PrefsPorts, "store">,
  teamId: string,
  partnerTeamId: string,
): Promise<{ prefs: Record<string, Resolved>; problems: PrefProblem[] }> {
  const rows = await ports.store.levels(teamId, [ORG_LEVEL, partnerTeamId]);
  const problems: PrefProblem[] = [];
  const org = decodeRow(
    rows.find((r) => r.targetTeamId === ORG_LEVEL),
    "org",
    problems,
  );
  const partner = decodeRow(
    rows.find((r) => r.targetTeamId === partnerTeamId),
    "partner",
    problems,
  );
  return { prefs: container.resolve(org, partner, problems), problems };
}

/** One pref's effective value toward a partner, as its class reads it (its default when no level sets it). */
export async function effectiveValue<T>(
  ports: Pick<PrefsPorts, "store">,
  teamId: string,
  partnerTeamId: string,
  cls: PrefClass<T>,
): Promise<T> {
  const { prefs } = await effectivePrefs(ports, teamId, partnerTeamId);
  const resolved = prefs[cls.key];
  // The container produced the value through this very class's read(): it has the class's type.
  return resolved ? (resolved.value as T) : cls.defaultValue;
}

/**
 * What the search index keeps of the partner levels: for each of these
 * partners, the indexed fields of each pref its own level sets (grouped by
 * pref; none: the org level's groups apply). What cannot be read falls
 * through to the org level, as for effectivePrefs.
 */
export async function partnerIndexGroups(
  ports: Pick<PrefsPorts, "store">,
  teamId: string,
  partners: readonly string[],
): Promise<Map<string, PrefGroups>> {
  const rows = await ports.store.levels(teamId, partners);
  const problems: PrefProblem[] = [];
  const out = new Map<string, PrefGroups>();
  for (const partnerId of partners) {
    out.set(
      partnerId,
      container.partnerGroups(
        decodeRow(
          rows.find((r) => r.targetTeamId === partnerId),
          "partner",
          problems,
        ),
        problems,
      ),
    );
  }
  return out;
}

/** What the search index keeps of the org level: every pref's indexed fields as the org level sets it, else its default. */
export async function orgIndexGroups(ports: Pick<PrefsPorts, "store">, teamId: string): Promise<PrefGroups> {
  const { prefs, problems } = await orgEffectivePrefs(ports, teamId);
  return container.indexGroups(prefs, problems);
}

/**
 * The org level's effective values, what a partner with no level of its own
 * gets: each pref the org level sets (source "org"), else its default.
 */
export async function orgEffectivePrefs(
  ports: Pick<PrefsPorts, "store">,
  teamId: string,
): Promise<{ prefs: Record<string, Resolved>; problems: PrefProblem[] }> {
  const [row] = await ports.store.levels(teamId, [ORG_LEVEL]);
  const problems: PrefProblem[] = [];
  return { prefs: container.resolve(decodeRow(row, "org", problems), null, problems), problems };
}

/** What one level sets (the org level: target "0"). */
export async function levelPrefs(
  ports: Pick<PrefsPorts, "store">,
  teamId: string,
  targetTeamId: string,
): Promise<{ prefs: Record<string, unknown>; problems: PrefProblem[] }> {
  const [row] = await ports.store.levels(teamId, [targetTeamId]);
  const problems: PrefProblem[] = [];
  const level: Level = targetTeamId === ORG_LEVEL ? "org" : "partner";
  const prefs = decodeRow(row, level, problems);
  return { prefs: prefs ? container.levelValues(prefs, level, problems) : {}, problems };
}

export interface PrefsChange {
  teamId: string;
  targetTeamId: string;
  actor: string;
  /** `{ key: value }` sets, `{ key: null }` clears. */
  patch: Record<string, unknown>;
}

/** Changes a level; invalid input (any pref) changes nothing and names every problem. */
export async function changePrefs(
  ports: PrefsPorts,
  change: PrefsChange,
): Promise<{ changed: string[]; effects: PrefEffect[]; problems: PrefProblem[] }> {
  const level: Level = change.targetTeamId === ORG_LEVEL ? "org" : "partner";
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const [row] = await ports.store.levels(change.teamId, [change.targetTeamId]);
    const problems: PrefProblem[] = [];
    const prefs = decodeRow(row, level, problems) ?? create(ConnectPrefsSchema, {});
    let planned: ReturnType<PrefContainer["patch"]>;
    try {
      planned = container.patch(prefs, level, change.patch, problems);
    } catch (error) {
      if (error instanceof PrefPatchError) {
        throw new DomainError("invalid", "invalid_body", error.message, { prefs: error.problems });
      }
      throw error;
    }
    if (planned.changes.length === 0) return { changed: [], effects: [], problems };
    const at = ports.now();
    const audit: PrefAuditEntry[] = planned.changes.map((c) => ({
      id: ports.newId(),
      targetTeamId: change.targetTeamId,
      prefKey: c.key,
      actor: change.actor,
      at,
      before: c.before === undefined ? null : JSON.stringify(c.before),
      after: c.after === undefined ? null : JSON.stringify(c.after),
    }));
    const written = await ports.store.writeLevel(
      change.teamId,
      change.targetTeamId,
      container.encode(prefs),
      row ? row.prefs : null,
      audit,
      at,
    );
    if (written) return { changed: planned.changes.map((c) => c.key), effects: planned.effects, problems };
  }
  throw conflict("the prefs kept changing under this write; try again");
}
