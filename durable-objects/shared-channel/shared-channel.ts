import { DurableObject } from "cloudflare:workers";
import { directorySourceFor } from "../../platform/deps";
import { teamCacheOf } from "../../platform/stubs";
import type { Membership } from "../../src/directory/model";
import type { DirectorySource } from "../../src/directory/source";

// A channel shared by several teams lives once, here: its complete member
// list (every team's members), which no team cache copies. Each team cache
// keeps only its own users' memberships (for visibility and "my channels"),
// so the teams' data partitions the list instead of duplicating it; queries
// that need the whole list (member count, member pages, mentions) gather
// from this object and the member teams' caches.

export interface SharedMemberPage {
  items: Array<{ userId: string; teamId: string }>;
  nextCursor: string | null;
}

export interface SharedChannelStats {
  channelId: string | null;
  hostTeamId: string | null;
  members: number;
  byTeam: Record<string, number>;
  databaseBytes: number;
}

const LOAD_PAGE = 10_000;

/**
 * The object's name: host team and channel. Channel ids are chosen per team,
 * so a name of the channel id alone would let another team's channel with
 * the same id address this one (and read its members).
 */
export function sharedChannelName(hostTeamId: string, channelId: string): string {
  return `${hostTeamId}:${channelId}`;
}
/**
 * Membership changes reach this object through the host team's cache. When
 * that cache is cold it drops events (its next load reads the database), so
 * this object also re-reads its member list when it is older than this.
 */
export const SHARED_RESYNC_MS = 60_000;

export class SharedChannel extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private loading: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS members (user_id TEXT PRIMARY KEY, team_id TEXT NOT NULL) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS members_by_team ON members (team_id, user_id);
      `);
    });
  }

  protected source(): DirectorySource {
    return directorySourceFor(this.env);
  }

  async memberCount(hostTeamId: string, channelId: string): Promise<number> {
    await this.ready(hostTeamId, channelId);
    return Number(this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM members").one().n);
  }

  async members(
    hostTeamId: string,
    channelId: string,
    cursor: string | null,
    limit: number,
  ): Promise<SharedMemberPage> {
    await this.ready(hostTeamId, channelId);
    const rows = this.sql
      .exec<{ user_id: string; team_id: string }>(
        "SELECT user_id, team_id FROM members WHERE user_id > ? ORDER BY user_id LIMIT ?",
        cursor ?? "",
        limit + 1,
      )
      .toArray();
    const items = rows.slice(0, limit).map((r) => ({ userId: r.user_id, teamId: r.team_id }));
    return { items, nextCursor: rows.length > limit ? (items.at(-1)?.userId ?? null) : null };
  }

  /** The member teams, so a query can ask each one's cache for its members' profiles. */
  async teams(hostTeamId: string, channelId: string): Promise<string[]> {
    await this.ready(hostTeamId, channelId);
    return this.sql
      .exec<{ team_id: string }>("SELECT DISTINCT team_id FROM members")
      .toArray()
      .map((r) => r.team_id);
  }

  /**
   * A membership change, forwarded by the host team's cache as it applies
   * the host's change log. A member from another team is then forwarded to
   * that team's cache, which keeps its own users' memberships.
   */
  async applyMembership(hostTeamId: string, m: Membership, added: boolean): Promise<void> {
    await this.ready(hostTeamId, m.channelId);
    if (added) this.sql.exec("INSERT OR REPLACE INTO members (user_id, team_id) VALUES (?, ?)", m.userId, m.userTeamId);
    else this.sql.exec("DELETE FROM members WHERE user_id = ?", m.userId);
    if (m.userTeamId !== hostTeamId) {
      const cache = teamCacheOf(this.env, m.userTeamId);
      await cache.applyForeignMembership(m.userTeamId, m, added);
    }
  }

  /** Reloads from the database (the host cache asks after its own reload). */
  async resync(hostTeamId: string, channelId: string): Promise<void> {
    this.sql.exec("DELETE FROM meta WHERE key = 'loaded'");
    await this.ready(hostTeamId, channelId);
  }

  async stats(): Promise<SharedChannelStats> {
    const byTeam: Record<string, number> = {};
    for (const r of this.sql
      .exec<{ team_id: string; n: number }>("SELECT team_id, COUNT(*) AS n FROM members GROUP BY team_id")
      .toArray()) {
      byTeam[r.team_id] = Number(r.n);
    }
    return {
      channelId: this.meta("channel_id"),
      hostTeamId: this.meta("host_team_id"),
      members: Object.values(byTeam).reduce((a, b) => a + b, 0),
      byTeam,
      databaseBytes: this.sql.databaseSize,
    };
  }

  private meta(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private async ready(hostTeamId: string, channelId: string): Promise<void> {
    // Defence in depth: the object serves the one channel it was first asked
    // for, whatever a caller passes later.
    const host = this.meta("host_team_id");
    const channel = this.meta("channel_id");
    if ((host !== null && host !== hostTeamId) || (channel !== null && channel !== channelId)) {
      throw new Error(`shared channel object ${host}:${channel} asked for ${hostTeamId}:${channelId}`);
    }
    if (this.meta("loaded") === "1") {
      if (Date.now() - Number(this.meta("synced_at") ?? 0) > SHARED_RESYNC_MS && !this.loading) {
        this.loading = this.load(hostTeamId, channelId).finally(() => {
          this.loading = null;
        });
        this.ctx.waitUntil(this.loading.catch((error) => console.error("shared channel resync failed", error)));
      }
      return;
    }
    this.loading ??= this.load(hostTeamId, channelId).finally(() => {
      this.loading = null;
    });
    await this.loading;
  }

  /** Reads the whole list, then swaps it in with no await in between: readers never see half a list. */
  private async load(hostTeamId: string, channelId: string): Promise<void> {
    const src = this.source();
    const rows: Array<[string, string]> = [];
    for (let after: string | null = null; ; ) {
      const page = await src.pageChannelMembers(hostTeamId, channelId, after, LOAD_PAGE);
      for (const m of page) rows.push([m.userId, m.userTeamId]);
      if (page.length < LOAD_PAGE) break;
      after = page.at(-1)?.userId ?? null;
    }
    this.sql.exec("DELETE FROM members");
    for (let i = 0; i < rows.length; i += LOAD_PAGE) {
      this.sql.exec(
        "INSERT OR REPLACE INTO members (user_id, team_id) SELECT value->>0, value->>1 FROM json_each(?)",
        JSON.stringify(rows.slice(i, i + LOAD_PAGE)),
      );
    }
    for (const [k, v] of [
      ["channel_id", channelId],
      ["host_team_id", hostTeamId],
      ["loaded", "1"],
      ["synced_at", String(Date.now())],
    ]) {
      this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", k, v);
    }
  }
}
