// Where connect prefs are kept: one row per team and level (target "0" is
// the org level), the protobuf payload as bytes, and an audit line per
// changed pref written in the same atomic unit as the payload.

/** The org level's target: every partner. */
export const ORG_LEVEL = "0";

export interface PrefLevelRow {
  targetTeamId: string;
  prefs: Uint8Array;
  dateCreate: number;
  dateUpdate: number;
}

export interface PrefAuditEntry {
  id: string;
  targetTeamId: string;
  prefKey: string;
  /** The admin who changed it (a user id of the team). */
  actor: string;
  at: number;
  /** The value at that level before and after, as JSON; null: not set there. */
  before: string | null;
  after: string | null;
}

export interface ConnectPrefsStore {
  /** The rows of these levels that exist (the org level and one partner's, for a read). */
  levels(teamId: string, targetTeamIds: readonly string[]): Promise<PrefLevelRow[]>;
  /** Every level the team has set. */
  list(teamId: string): Promise<PrefLevelRow[]>;
  /**
   * Writes a level's payload with its audit lines, all or nothing, only if
   * the level still holds `previous` (null: only if it has no row): false
   * when another write came first (the caller reads again and retries).
   */
  writeLevel(
    teamId: string,
    targetTeamId: string,
    prefs: Uint8Array,
    previous: Uint8Array | null,
    audit: readonly PrefAuditEntry[],
    now: number,
  ): Promise<boolean>;
  /** The newest audit lines first. */
  audit(teamId: string, limit: number): Promise<PrefAuditEntry[]>;
}
