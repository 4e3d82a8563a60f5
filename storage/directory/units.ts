import type { ChangeEvent, DirChannel } from "../../src/directory/model";
import type { DirectorySource } from "../../src/directory/source";
import { conflict } from "../../src/errors";
import type { IdempotencyRecord } from "../../src/teams/team-store";
import { type Guard, versionStatements } from "../change-log";
import { idempotencyInsert } from "../idempotency-sql";
import { type Statement, UniqueViolation } from "../sql-driver";
import type { DirectoryLookups } from "./lookups";

// A directory write's atomic unit and its read-back: the statements run as
// one unit, then the events they produced are read back from the change log
// (carrying committed state and the versions the database assigned).

/** Page size when reading back a write's events. */
const READ_BACK_PAGE = 1000;

export type DirectoryUnits = ReturnType<typeof directoryUnits>;

/** A condition a unit's writes depend on, checked inside the unit (see bulkChange). */
export interface UnitGuard {
  guard: Guard;
  /** Statements the unit starts with (MySQL row locks on what the condition reads). */
  lock: Statement[];
  /** The error when the condition did not hold. */
  lost: () => Error;
}

export function directoryUnits(lookups: DirectoryLookups, source: Pick<DirectorySource, "changesSince">) {
  const { driver, d } = lookups;

  /**
   * Runs the unit, then reads back the events it produced in every team it
   * bumped: those after the version each team had before, that `mine` claims
   * (a concurrent write's events are its own to publish).
   */
  async function commit(
    statements: Statement[],
    before: Map<string, number>,
    mine: (e: ChangeEvent) => boolean,
  ): Promise<ChangeEvent[]> {
    await driver.atomic(statements);
    return readBack(before, mine);
  }

  /**
   * The events after each team's version in `before` that `mine` claims:
   * commit's read-back, for a write that runs its unit itself (to read the
   * unit's results, e.g. whether a compare-and-set held).
   */
  async function readBack(before: Map<string, number>, mine: (e: ChangeEvent) => boolean): Promise<ChangeEvent[]> {
    const events: ChangeEvent[] = [];
    for (const [teamId, since] of before) {
      let after = since;
      for (;;) {
        const page = await source.changesSince(teamId, after, READ_BACK_PAGE);
        events.push(...page.filter(mine));
        if (page.length < READ_BACK_PAGE) break;
        after = page.at(-1)?.version ?? after;
      }
    }
    return events;
  }

  /** Channel events for the host and every team the channel is shared with (sorted: a stable lock order). */
  function channelFanOut(channel: DirChannel, teams: string[], now: number): Statement[] {
    return [...new Set(teams)]
      .sort()
      .flatMap((t) => versionStatements(d, t, [{ kind: "channel", entityId: channel.id, extra: channel.teamId }], now));
  }

  /**
   * Rows and one `bulk` log row (a reload) as one unit. Guarded: the rows
   * must be guarded by the same condition; the unit starts with `lock`, and
   * when the condition no longer holds, nothing is written and `lost()` is
   * thrown.
   */
  async function bulkChange(teamId: string, what: string, rows: Statement[], now: number, guarded?: UnitGuard) {
    const before = await lookups.versionsBefore([teamId]);
    const log = versionStatements(d, teamId, [{ kind: "bulk", entityId: "", extra: what }], now, guarded?.guard);
    const lock = guarded?.lock ?? [];
    const results = await driver.atomic([...lock, ...rows, ...log]);
    // The log starts with the version bump, which changes a row whenever the guard holds.
    if (guarded && (results[lock.length + rows.length]?.changes ?? 0) === 0) throw guarded.lost();
    return readBack(before, (e) => e.change.kind === "reload");
  }

  /**
   * An import: its rows, the Idempotency-Key record of its answer and one
   * reload, as one unit; a unique violation is a conflict saying `raced`.
   * Guarded as bulkChange is (the rows guarded by the caller).
   */
  async function keyedImport(
    teamId: string,
    what: "channels" | "memberships",
    rows: Statement[],
    imported: number,
    record: ((answer: { imported: number }) => IdempotencyRecord) | undefined,
    now: number,
    raced: string,
    guarded?: UnitGuard,
  ): Promise<{ imported: number; events: ChangeEvent[] }> {
    try {
      const keyed = idempotencyInsert(teamId, record?.({ imported }), guarded?.guard);
      const events = await bulkChange(teamId, what, [...rows, ...keyed], now, guarded);
      return { imported, events };
    } catch (error) {
      if (error instanceof UniqueViolation) throw conflict(raced);
      throw error;
    }
  }

  return { commit, readBack, channelFanOut, bulkChange, keyedImport };
}
