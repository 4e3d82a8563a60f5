import { DurableObject } from "cloudflare:workers";
import { connectPrefsFor, directorySourceFor } from "../../platform/deps";
import { sharedChannelNamed, teamCacheOf } from "../../platform/stubs";
import { mayUseTeam } from "../../src/auth/policy";
import { blankedForPartner, type ProfileFieldsValue, profileFields } from "../../src/connect/prefs/profile-fields";
import { PrefsLevelsCache } from "../../src/connect/prefs-cache";
import { effectiveValue } from "../../src/connect/prefs-service";
import type { ConnectPrefsStore, PrefLevelRow } from "../../src/connect/prefs-store";
import { type ChangeEvent, type ConversationKind, type DirectoryChange, kindOf } from "../../src/directory/model";
import type { DirectorySource } from "../../src/directory/source";
import type { VisibleSet } from "../../src/directory/visible-set";
import type { ErrorCode, ErrorKind } from "../../src/errors";
import { isRole, type Role } from "../../src/teams/model";
import { sharedChannelName } from "../shared-channel/shared-channel";
import {
  addMember,
  clearData,
  deleteChannel,
  getMeta,
  insertChannels,
  insertMemberships,
  insertUsers,
  markPrimed,
  migrate,
  rebuildPrimedWords,
  recountMembers,
  removeMember,
  setMeta,
  upsertChannel,
  upsertUser,
} from "./cache-db";
import {
  type Boot,
  type BootFocus,
  boot,
  bootFocus,
  CHANNEL_REMOVED,
  type ChannelCard,
  type ConversationItem,
  CursorError,
  channelIfVisible,
  channelMembers,
  conversations,
  type DirectoryFilter,
  decodeCursor,
  directory,
  encodeCursor,
  lookup,
  type MentionSuggestion,
  membersAmong,
  mentions,
  type Page,
  profilesFor,
  quickSwitcher,
  type Suggestion,
  type UserCard,
  type Viewer,
  viewerOf,
  visibleSet,
} from "./queries";

// One Durable Object per team: the team's directory in the object's own
// SQLite, loaded from the database once (lazily, on the first query, in
// pages), then kept current by change events. Queries never touch the
// database. After eviction the object reopens its SQLite as it was.

/** A refusal, in the domain's words (src/errors.ts): the edge maps the kind to a status. */
export type CacheError = {
  ok: false;
  kind: Extract<ErrorKind, "invalid" | "forbidden" | "not_found">;
  code: Extract<ErrorCode, "bad_request" | "forbidden" | "not_found">;
  message: string;
};
export type CacheResult<T> = { ok: true; value: T } | CacheError;

export interface CacheStats {
  teamId: string | null;
  loaded: boolean;
  version: number;
  loadMs: number | null;
  /** When the last full load finished: unchanged across evictions, since reopening never reloads. */
  loadedAt: number | null;
  rows: { users: number; channels: number; members: number; userWords: number };
  databaseBytes: number;
  /** The last finished load's steps (each its own invocation) and the longest of them, in the object's clock. */
  loadSteps: number | null;
  loadMaxStepMs: number | null;
  loadMaxStepPhase: string | null;
  /** A load under way: its phase and the steps it has taken. */
  loading: { phase: string; steps: number; maxStepMs: number; startedAt: number } | null;
}

/**
 * Rows per database page while loading. A page goes into SQLite as one JSON
 * parameter, and a SQLite-backed Durable Object refuses strings over 2 MB:
 * 2,000 users with long profiles stay well under it.
 */
export const LOAD_PAGE = { users: 2_000, channels: 5_000, memberships: 20_000 };
/**
 * How long one load step pages before it hands over to the next alarm. Each
 * step is its own invocation, so each stays far inside the default CPU
 * limit, however big the team; the largest is the last (counts and prefix
 * indexes over everything), measured by bench:directory.
 */
export const LOAD_STEP = { ms: 500 };
/** A load step that failed (the database away) is tried again this much later. */
const LOAD_RETRY_MS = 5_000;
/** How often a caller waiting for a load looks at it, and how long it waits for a step before failing. */
const LOAD_POLL_MS = 25;
/** A waiting caller checks that a stalled load still has its alarm after this long without a step. */
const LOAD_ALARM_CHECK_MS = 1_000;
const LOAD_STALLED_MS = 60_000;

/** A load in progress, kept in meta so that it resumes where it stopped (in the next alarm, after an eviction). */
interface LoadState {
  /** The database's version before the first page: the catch-up at the end replays what came after. */
  from: number;
  phase: "users" | "channels" | "members" | "foreign" | "index" | "finish";
  /** The last row the phase read: an id, or a membership's {channelId, userId} as JSON. */
  after: string | null;
  started: number;
  steps: number;
  /** The longest step so far, in the object's clock (which moves with I/O; an upper bound on its CPU). */
  maxStepMs: number;
  /** Which phase that step was in. */
  maxStepPhase: string | null;
  /** A reload event's load: the shared channels this team hosts re-read their member lists after it. */
  resyncShared: boolean;
}

/** What a query answered while the team loads needs beyond the caller's own rows (primeViewer). */
interface PrimeWants {
  /** Channels or conversations asked about (the card, with its member count). */
  channels?: string[];
  /** People asked about (their profiles). */
  users?: string[];
}

/** Change-log entries kept for incremental boot; an older `since` gets a full boot. */
export const CHANGE_LOG_KEEP = 50_000;
/** A cache that has heard nothing for this long checks the database version in the background. */
export const FRESHNESS_CHECK_MS = 30_000;
const CATCH_UP_PAGE = 500;

export class TeamCache extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private loading: Promise<void> | null = null;
  /**
   * This team's connect prefs levels asked about lately: every read of them
   * in the platform comes here (platform/deps.ts), and every write clears
   * it before it returns (src/connect/prefs-cache.ts).
   */
  private readonly prefsCache = new PrefsLevelsCache((team, targets) => this.prefsSource().levels(team, targets));
  /** Serializes event application and catch-up, so versions advance one at a time. */
  private applying: Promise<unknown> = Promise.resolve();
  private lastFreshnessCheck = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(this.sql));
  }

  /** Where the directory comes from. Overridable (a subclass could load from elsewhere). */
  protected source(): DirectorySource {
    return directorySourceFor(this.env);
  }

  // --- change events ----------------------------------------------------------

  /**
   * Applies events in version order. A duplicate is skipped; a gap (a version
   * beyond the next one) means events were missed, and the cache fetches what
   * changed since its version instead of reloading. A cache that has not been
   * loaded yet ignores events: its load will see the database as it is.
   */
  async applyChanges(teamId: string, events: ChangeEvent[]): Promise<{ version: number; loaded: boolean }> {
    // A cache that is loading applies them too: what they cause beyond this
    // cache (a shared channel's member list, its resync) must not wait for
    // the load; the load's last step replays everything after its starting
    // version anyway, over whatever its pages brought.
    const live = () => this.isLoaded() || this.loadState() !== null;
    if (!live()) return { version: 0, loaded: false };
    await this.serialized(async () => {
      for (const e of [...events].sort((a, b) => a.version - b.version)) {
        // A reload among them started a new load, which sees the rest.
        if (!live()) return;
        const local = this.version();
        if (e.version <= local) continue;
        if (e.version > local + 1) {
          await this.catchUp(teamId);
          continue;
        }
        await this.apply(teamId, e);
      }
    });
    return { version: this.version(), loaded: this.isLoaded() };
  }

  // --- queries ----------------------------------------------------------------

  /**
   * The caller as live state knows it (src/auth/policy.ts): its role and
   * whether it is active, or null for a user this team does not have. Every
   * authorization decision reads this, never a token's claims.
   */
  async actor(teamId: string, userId: string): Promise<{ role: Role; active: boolean } | null> {
    if (!this.isLoaded()) return (await this.actorsWhileLoading(teamId, [userId]))[userId] ?? null;
    this.checkFreshness(teamId);
    return this.liveActor(userId);
  }

  /**
   * A cache that is not loaded (cold, or loading a big team: tens of
   * seconds) answers who the callers are from the database itself, which is
   * as live as it gets, and starts the load without waiting for it: an
   * admin's write to a cold team does not wait for the whole team to load.
   */
  private async actorsWhileLoading(
    teamId: string,
    userIds: string[],
  ): Promise<Record<string, { role: Role; active: boolean }>> {
    this.ctx.waitUntil(
      this.startLoad(teamId).catch((error) => console.error("team cache load failed to start", error)),
    );
    const out: Record<string, { role: Role; active: boolean }> = {};
    for (const u of await this.source().users(teamId, userIds)) out[u.id] = { role: u.role, active: !u.deleted };
    return out;
  }

  /**
   * actor() for many users in one call (a gateway checking the sockets that
   * connect together, or re-checking all of its users): users the team does
   * not have are left out.
   */
  async actors(teamId: string, userIds: string[]): Promise<Record<string, { role: Role; active: boolean }>> {
    if (!this.isLoaded()) return this.actorsWhileLoading(teamId, userIds);
    this.checkFreshness(teamId);
    const out: Record<string, { role: Role; active: boolean }> = {};
    for (const row of this.sql
      .exec<{ id: string; role: string; deleted: number }>(
        "SELECT id, role, deleted FROM users WHERE id IN (SELECT value FROM json_each(?))",
        JSON.stringify(userIds),
      )
      .toArray()) {
      if (isRole(row.role)) out[row.id] = { role: row.role, active: !row.deleted };
    }
    return out;
  }

  async quickSwitcher(teamId: string, viewerId: string, q: string, limit: number): Promise<CacheResult<Suggestion[]>> {
    return this.asViewer(teamId, viewerId, (v) => ok(quickSwitcher(this.sql, v, q, limit)));
  }

  async mentions(
    teamId: string,
    viewerId: string,
    channelId: string,
    q: string,
    limit: number,
  ): Promise<CacheResult<MentionSuggestion[]>> {
    const local = await this.asViewer(teamId, viewerId, (v) =>
      channelIfVisible(this.sql, v, channelId)
        ? ok(mentions(this.sql, v, channelId, q, limit))
        : notFound(`channel ${channelId} not found`),
    );
    const host = local.ok ? this.sharedHost(channelId) : null;
    if (!local.ok || !host) return local;
    // A shared channel: members from the other teams come from their caches;
    // members (of every team) first, then this team's non-members.
    const teams = (await this.sharedChannel(host, channelId).teams(host, channelId)).filter((t) => t !== teamId);
    const foreign: MentionSuggestion[] = [];
    for (const other of teams) {
      const found = await this.teamCache(other).sharedMemberSearch(other, channelId, q, limit, teamId);
      foreign.push(...found.map((u) => ({ ...u, in_channel: true })));
    }
    const members = [...local.value.filter((u) => u.in_channel), ...foreign].sort((a, b) =>
      (a.display_name || a.real_name || a.name).localeCompare(b.display_name || b.real_name || b.name),
    );
    const others = local.value.filter((u) => !u.in_channel);
    return ok([...members, ...others].slice(0, limit));
  }

  // --- shared channels: what other teams' caches ask of this one --------------

  /**
   * A membership of one of this team's users in a channel another team
   * hosts, forwarded by that channel's SharedChannel object. It carries no
   * version of this team's log: the host's log orders it.
   */
  async applyForeignMembership(
    teamId: string,
    m: { channelId: string; userId: string; userTeamId: string },
    added: boolean,
  ): Promise<void> {
    // Applied while loading too; the load's last step re-reads these rows (they have no log to replay).
    if ((!this.isLoaded() && this.loadState() === null) || m.userTeamId !== teamId) return;
    // A late add for a channel this team no longer has (unshared meanwhile)
    // would leave a member row that a later share would make visible again.
    if (added && this.sql.exec("SELECT 1 FROM channels WHERE id = ?", m.channelId).toArray().length === 0) return;
    if (added) addMember(this.sql, m);
    else removeMember(this.sql, m);
  }

  /** The database's prefs store, built once per instance (the cache's loader and the reads it cannot serve). */
  private prefsStore: ConnectPrefsStore | null = null;
  /** That store with its level reads served by prefsCache. */
  private cachedPrefs: ConnectPrefsStore | null = null;
  private prefsSource(): ConnectPrefsStore {
    this.prefsStore ??= connectPrefsFor(this.env);
    return this.prefsStore;
  }

  /** This team's `profile_fields` pref toward a partner (what the partner's users may see of this team's users). */
  private partnerFields(teamId: string, partner: string): Promise<ProfileFieldsValue> {
    this.cachedPrefs ??= { ...this.prefsSource(), levels: this.prefsCache.levels.bind(this.prefsCache) };
    const store = this.cachedPrefs;
    return effectiveValue({ store }, teamId, partner, profileFields);
  }

  /** The rows of these prefs levels of the team that exist (ConnectPrefsStore.levels), from memory where fresh. */
  async prefsLevels(teamId: string, targets: string[]): Promise<PrefLevelRow[]> {
    this.ownTeam(teamId);
    return this.prefsCache.levels(teamId, targets);
  }

  /** A prefs level of the team changed: read every level again (called by every write before it returns). */
  async forgetPrefs(teamId: string): Promise<void> {
    this.ownTeam(teamId);
    this.prefsCache.forget();
  }

  /**
   * Defence in depth without loading the team: once this object has loaded
   * a team (its name is that team's id), it answers for no other.
   */
  private ownTeam(teamId: string): void {
    const bound = getMeta(this.sql, "team_id");
    if (bound !== null && bound !== teamId) throw new Error(`team cache of ${bound} asked about ${teamId}`);
  }

  /** This team's users as `viewerTeam`'s users see them: its profile_fields pref toward that team applied. */
  private async forViewerTeam<T extends UserCard>(teamId: string, viewerTeam: string, cards: T[]): Promise<T[]> {
    if (viewerTeam === teamId || cards.length === 0) return cards;
    const fields = await this.partnerFields(teamId, viewerTeam);
    return cards.map((c) => blankedForPartner(c, fields));
  }

  /** Profiles of this team's members of a shared channel (never of anyone else), as `viewerTeam` may see them. */
  async sharedMemberProfiles(
    teamId: string,
    channelId: string,
    userIds: string[],
    viewerTeam: string,
  ): Promise<UserCard[]> {
    await this.ready(teamId);
    if (!this.sharedHost(channelId)) return [];
    const members = new Set(
      this.sql
        .exec<{ user_id: string }>(
          "SELECT user_id FROM members WHERE channel_id = ? AND user_id IN (SELECT value FROM json_each(?))",
          channelId,
          JSON.stringify(userIds),
        )
        .toArray()
        .map((r) => r.user_id),
    );
    return this.forViewerTeam(teamId, viewerTeam, this.profilesOf([...members]));
  }

  /**
   * This team's members of a shared channel matching a mention query, as
   * `viewerTeam` may see them (the match itself may use any field: the
   * viewer learns only that someone matched, and sees the visible fields).
   */
  async sharedMemberSearch(
    teamId: string,
    channelId: string,
    q: string,
    limit: number,
    viewerTeam: string,
  ): Promise<UserCard[]> {
    await this.ready(teamId);
    if (!this.sharedHost(channelId)) return [];
    const anyone: Viewer = { id: "", isGuest: false };
    return this.forViewerTeam(
      teamId,
      viewerTeam,
      mentions(this.sql, anyone, channelId, q, limit).filter((u) => u.in_channel),
    );
  }

  async channel(teamId: string, viewerId: string, channelId: string): Promise<CacheResult<ChannelCard>> {
    const result = await this.asViewer(teamId, viewerId, (v) => {
      const c = channelIfVisible(this.sql, v, channelId);
      return c ? ok(c) : notFound(`channel ${channelId} not found`);
    });
    const host = result.ok && result.value.is_shared ? this.sharedHost(channelId) : null;
    if (result.ok && host)
      result.value.member_count = await this.sharedChannel(host, channelId).memberCount(host, channelId);
    return result;
  }

  /** Whether the viewer may follow the channel's topic, and the team hosting it (which keys the topic). */
  async channelAccess(teamId: string, viewerId: string, channelId: string): Promise<CacheResult<{ host: string }>> {
    // Sockets subscribe on connect: a cold team answers from the caller's rows (asViewerWhileLoading).
    return this.asViewerWhileLoading(teamId, viewerId, { channels: [channelId] }, (v) =>
      channelIfVisible(this.sql, v, channelId)
        ? ok({ host: this.sharedHost(channelId) ?? teamId })
        : notFound(`channel ${channelId} not found`),
    );
  }

  /** Profiles for the gateways' just-in-time annotation (see profilesFor). */
  async profiles(
    teamId: string,
    viewerIds: string[],
    userIds: string[],
  ): Promise<{ profiles: UserCard[]; hidden: Record<string, string[]> }> {
    await this.ready(teamId);
    return profilesFor(this.sql, viewerIds, userIds);
  }

  /** Of these active users, the members of each channel: a gateway's audience for a DM's announcement (queries.ts). */
  async membersAmong(teamId: string, channelIds: string[], userIds: string[]): Promise<Record<string, string[]>> {
    await this.ready(teamId);
    return membersAmong(this.sql, channelIds, userIds);
  }

  async channelMembers(
    teamId: string,
    viewerId: string,
    channelId: string,
    cursor: string | null,
    limit: number,
  ): Promise<CacheResult<Page<UserCard>>> {
    const local = await this.asViewer(teamId, viewerId, (v) =>
      channelIfVisible(this.sql, v, channelId)
        ? ok(channelMembers(this.sql, channelId, cursor, limit))
        : notFound(`channel ${channelId} not found`),
    );
    const host = local.ok ? this.sharedHost(channelId) : null;
    if (!host) return local;
    // A shared channel: the member list comes from its own object, the
    // profiles from each member's team cache.
    const page = await this.sharedChannel(host, channelId).members(
      host,
      channelId,
      cursor ? (decodeCursor(cursor)[0] ?? "") : null,
      limit,
    );
    const byTeam = new Map<string, string[]>();
    for (const m of page.items) byTeam.set(m.teamId, [...(byTeam.get(m.teamId) ?? []), m.userId]);
    const cards = new Map<string, UserCard>();
    for (const [memberTeam, ids] of byTeam) {
      const found =
        memberTeam === teamId
          ? this.profilesOf(ids)
          : await this.teamCache(memberTeam).sharedMemberProfiles(memberTeam, channelId, ids, teamId);
      for (const card of found) cards.set(card.id, card);
    }
    const items = page.items.flatMap((m) => {
      const card = cards.get(m.userId);
      return card && !card.deleted ? [card] : [];
    });
    return ok({ items, next_cursor: page.nextCursor ? encodeCursor([page.nextCursor]) : null });
  }

  async directory(teamId: string, viewerId: string, filter: DirectoryFilter): Promise<CacheResult<Page<UserCard>>> {
    return this.asViewer(teamId, viewerId, (v) => ok(directory(this.sql, v, filter)));
  }

  async lookup(
    teamId: string,
    viewerId: string,
    userIds: string[],
    channelIds: string[],
  ): Promise<CacheResult<{ users: UserCard[]; channels: ChannelCard[] }>> {
    // Profiles for a history page or a DM being opened: a cold team answers from these rows (asViewerWhileLoading).
    return this.asViewerWhileLoading(teamId, viewerId, { users: userIds, channels: channelIds }, (v) =>
      ok(lookup(this.sql, v, userIds, channelIds)),
    );
  }

  /** Which of these the viewer may see, flags only (recommendation filters: see visibleSet). */
  async visible(
    teamId: string,
    viewerId: string,
    userIds: string[],
    channelIds: string[],
  ): Promise<CacheResult<VisibleSet>> {
    return this.asViewer(teamId, viewerId, (v) => ok(visibleSet(this.sql, v, userIds, channelIds)));
  }

  /** The viewer's conversations of these kinds, by id (GET /v1/conversations). */
  async conversations(
    teamId: string,
    viewerId: string,
    kinds: ConversationKind[],
    cursor: string | null,
    limit: number,
  ): Promise<CacheResult<Page<ConversationItem>>> {
    return this.asViewerWhileLoading(teamId, viewerId, {}, (v) => ok(conversations(this.sql, v, kinds, cursor, limit)));
  }

  /**
   * A cold team answers a boot without waiting for its load
   * (asViewerWhileLoading): a full one, since the change log an incremental
   * boot reads is what the load's catch-up writes.
   */
  async boot(teamId: string, viewerId: string, since: number | null): Promise<CacheResult<Boot>> {
    if (!this.isLoaded())
      return this.asViewerWhileLoading(teamId, viewerId, {}, (v) => ok(boot(this.sql, v, teamId, null)));
    return this.asViewer(teamId, viewerId, (v) => ok(boot(this.sql, v, teamId, since)));
  }

  /**
   * A boot focused on one conversation (GET /v1/directory/boot?focus=): the
   * boot's header and the conversation's card, or the 404 of an unknown id
   * when the viewer does not see it (the same answer channelAccess gives the
   * history route). A shared channel's member count is every team's, as in
   * channel().
   */
  async focusedBoot(teamId: string, viewerId: string, conversationId: string): Promise<CacheResult<BootFocus>> {
    // A cold team answers it from the caller's rows and the conversation's (asViewerWhileLoading).
    const result = await this.asViewerWhileLoading(teamId, viewerId, { channels: [conversationId] }, (v) => {
      const focus = bootFocus(this.sql, v, teamId, conversationId);
      return focus ? ok(focus) : notFound(`channel ${conversationId} not found`);
    });
    const card = result.ok ? result.value.conversation : null;
    const host = card?.is_shared ? this.sharedHost(conversationId) : null;
    if (card && host)
      card.member_count = await this.sharedChannel(host, conversationId).memberCount(host, conversationId);
    return result;
  }

  /** For benchmarks and operators: what the cache holds and what it costs. */
  async stats(): Promise<CacheStats> {
    const count = (t: string) => Number(this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t}`).one().n);
    return {
      ...this.progress(),
      rows: {
        users: count("users"),
        channels: count("channels"),
        members: count("members"),
        userWords: count("user_words"),
      },
      databaseBytes: this.sql.databaseSize,
    };
  }

  private progress(): Omit<CacheStats, "rows" | "databaseBytes"> {
    const loadMs = getMeta(this.sql, "load_ms");
    const loadedAt = getMeta(this.sql, "loaded_at");
    const num = (key: string) => {
      const v = getMeta(this.sql, key);
      return v === null ? null : Number(v);
    };
    const state = this.loadState();
    return {
      teamId: getMeta(this.sql, "team_id"),
      loaded: this.isLoaded(),
      version: this.version(),
      loadMs: loadMs === null ? null : Number(loadMs),
      loadedAt: loadedAt === null ? null : Number(loadedAt),
      loadSteps: num("load_steps"),
      loadMaxStepMs: num("load_max_step_ms"),
      loadMaxStepPhase: getMeta(this.sql, "load_max_step_phase"),
      loading: state
        ? { phase: state.phase, steps: state.steps, maxStepMs: state.maxStepMs, startedAt: state.started }
        : null,
    };
  }

  /**
   * Where a load stands, from meta only (stats() counts every table, which a
   * caller polling a big team's load would pay for again and again).
   */
  async loadProgress(): Promise<
    Pick<CacheStats, "loaded" | "loading" | "loadSteps" | "loadMaxStepMs" | "loadMaxStepPhase" | "loadMs">
  > {
    const { loaded, loading, loadSteps, loadMaxStepMs, loadMaxStepPhase, loadMs } = this.progress();
    return { loaded, loading, loadSteps, loadMaxStepMs, loadMaxStepPhase, loadMs };
  }

  /** Loads now (a benchmark's cold load, or warming a cache ahead of traffic). */
  async warm(teamId: string): Promise<CacheStats> {
    await this.ready(teamId);
    return this.stats();
  }

  // --- internals --------------------------------------------------------------

  private async asViewer<T>(
    teamId: string,
    viewerId: string,
    run: (v: Viewer) => CacheResult<T>,
  ): Promise<CacheResult<T>> {
    await this.ready(teamId);
    this.checkFreshness(teamId);
    return this.decide(teamId, viewerId, run);
  }

  /** The live-state check every query passes, then the query. */
  private decide<T>(teamId: string, viewerId: string, run: (v: Viewer) => CacheResult<T>): CacheResult<T> {
    const live = this.liveActor(viewerId);
    const decision = mayUseTeam(
      live
        ? { kind: "member", team: teamId, user: viewerId, ...live }
        : { kind: "unknown", team: teamId, user: viewerId },
      teamId,
    );
    const v = decision.ok ? viewerOf(this.sql, viewerId) : null;
    if (!v) return { ok: false, kind: "forbidden", code: "forbidden", message: "not an active member of this team" };
    try {
      return run(v);
    } catch (error) {
      if (error instanceof CursorError)
        return { ok: false, kind: "invalid", code: "bad_request", message: error.message };
      throw error;
    }
  }

  /**
   * This team's users' memberships in channels other teams host arrive by
   * forwarding (applyForeignMembership), which has no log to recover gaps
   * from; the freshness check re-reads them (only this team's rows, by index).
   */
  private async resyncForeignMemberships(teamId: string): Promise<void> {
    const sharedIn = this.sql
      .exec<{ id: string }>("SELECT id FROM channels WHERE host_team <> ?", teamId)
      .toArray()
      .map((r) => r.id);
    if (sharedIn.length === 0) return;
    const src = this.source();
    const rows: Array<{ channelId: string; userId: string; userTeamId: string }> = [];
    for (let after: { channelId: string; userId: string } | null = null; ; ) {
      const page = await src.pageForeignMemberships(teamId, after, LOAD_PAGE.memberships);
      rows.push(...page);
      if (page.length < LOAD_PAGE.memberships) break;
      const last = page.at(-1);
      after = last ? { channelId: last.channelId, userId: last.userId } : null;
    }
    this.sql.exec("DELETE FROM members WHERE channel_id IN (SELECT value FROM json_each(?))", JSON.stringify(sharedIn));
    insertMemberships(
      this.sql,
      rows.filter((m) => m.userTeamId === teamId),
    );
  }

  /** The host team of a shared channel this cache knows, or null for a team-local channel. */
  private sharedHost(channelId: string): string | null {
    const row = this.sql
      .exec<{ host_team: string; shared_with: string }>(
        "SELECT host_team, shared_with FROM channels WHERE id = ?",
        channelId,
      )
      .toArray()[0];
    return row && row.shared_with !== "[]" ? row.host_team : null;
  }

  private hostedSharedChannels(teamId: string): string[] {
    return this.sql
      .exec<{ id: string }>("SELECT id FROM channels WHERE host_team = ? AND shared_with <> '[]'", teamId)
      .toArray()
      .map((r) => r.id);
  }

  private liveActor(userId: string): { role: Role; active: boolean } | null {
    const row = this.sql
      .exec<{ role: string; deleted: number }>("SELECT role, deleted FROM users WHERE id = ?", userId)
      .toArray()[0];
    if (!row || !isRole(row.role)) return null;
    return { role: row.role, active: !row.deleted };
  }

  private profilesOf(ids: string[]): UserCard[] {
    return lookup(this.sql, { id: "", isGuest: false }, ids, []).users;
  }

  /** A shared channel's object is named by its host team and channel: another team's same id is another object. */
  private sharedChannel(hostTeamId: string, channelId: string) {
    return sharedChannelNamed(this.env, sharedChannelName(hostTeamId, channelId));
  }

  private teamCache(teamId: string) {
    return teamCacheOf(this.env, teamId);
  }

  /**
   * Whether the team is loaded, kept in memory beside its meta row: every
   * query asks, and a meta read per query cost more than an actor lookup.
   * Only setLoaded() changes the row, so the two cannot disagree.
   */
  private loaded: boolean | null = null;

  private isLoaded(): boolean {
    this.loaded ??= getMeta(this.sql, "loaded") === "1";
    return this.loaded;
  }

  private setLoaded(loaded: boolean): void {
    setMeta(this.sql, "loaded", loaded ? "1" : "0");
    this.loaded = loaded;
  }

  private version(): number {
    return Number(getMeta(this.sql, "version") ?? 0);
  }

  /**
   * Resolves once the team is fully loaded. A load runs in steps (loadStep),
   * each its own alarm invocation: a caller that needs the whole team waits
   * for them rather than run them, so no request's CPU grows with the team.
   * Steps go through the same queue as events, so a step and an event never
   * interleave; a step must then never queue (it would wait on itself when a
   * reload event starts a load). A load that makes no step for
   * LOAD_STALLED_MS (the database away) fails the waiting callers.
   */
  private async ready(teamId: string): Promise<void> {
    if (this.isLoaded()) return;
    this.loading ??= (async () => {
      let seen = -1;
      let since = Date.now();
      while (!this.isLoaded()) {
        await this.startLoad(teamId);
        const steps = this.loadState()?.steps ?? 0;
        if (steps !== seen) {
          seen = steps;
          since = Date.now();
        } else if (Date.now() - since > LOAD_STALLED_MS) {
          throw new Error(`team cache load of ${teamId} made no step for ${LOAD_STALLED_MS} ms`);
        }
        // An alarm lost with its instance (or never set) is set again: looked
        // at only once the load has not moved for a while, not every poll.
        if (Date.now() - since > LOAD_ALARM_CHECK_MS && (await this.ctx.storage.getAlarm()) === null)
          await this.ctx.storage.setAlarm(Date.now());
        await new Promise((resolve) => setTimeout(resolve, LOAD_POLL_MS));
      }
    })().finally(() => {
      this.loading = null;
    });
    await this.loading;
  }

  /** Starts a load unless one is under way (or done): the state, the version it replays from, the alarm. */
  private async startLoad(teamId: string): Promise<void> {
    if (this.isLoaded() || this.loadState() !== null) return;
    await this.serialized(async () => {
      if (this.isLoaded() || this.loadState() !== null) return;
      await this.beginLoad(teamId, false);
    });
  }

  /**
   * Empties the cache and records a new load. The version is read first:
   * everything committed after it is replayed by the catch-up at the end, so
   * a write racing the load (or a caller's rows primed during it) is never
   * missed. Call only from inside serialized().
   */
  private async beginLoad(teamId: string, resyncShared: boolean): Promise<void> {
    const from = await this.source().version(teamId);
    const state: LoadState = {
      from,
      phase: "users",
      after: null,
      started: Date.now(),
      steps: 0,
      maxStepMs: 0,
      maxStepPhase: null,
      resyncShared,
    };
    this.ctx.storage.transactionSync(() => {
      clearData(this.sql);
      this.setLoaded(false);
      setMeta(this.sql, "team_id", teamId);
      // What a caller primed while loading answers with: the catch-up at the
      // end replays everything after it.
      setMeta(this.sql, "version", String(from));
      this.saveLoadState(state);
    });
    await this.ctx.storage.setAlarm(Date.now());
  }

  private loadState(): LoadState | null {
    const raw = getMeta(this.sql, "load_state");
    return raw ? (JSON.parse(raw) as LoadState) : null;
  }

  private saveLoadState(state: LoadState | null): void {
    if (state) setMeta(this.sql, "load_state", JSON.stringify(state));
    else this.sql.exec("DELETE FROM meta WHERE key = 'load_state'");
  }

  /** The alarm drives a load in the background, one step per alarm, until the team is loaded. */
  override async alarm(): Promise<void> {
    const teamId = getMeta(this.sql, "team_id");
    if (!teamId || this.isLoaded() || this.loadState() === null) return;
    try {
      await this.serialized(() => this.loadStep(teamId));
    } catch (error) {
      // A page that failed (the database away) is read again later: the
      // cursor only moves with the rows it read.
      console.error("team cache load step failed; retrying", error);
      await this.ctx.storage.setAlarm(Date.now() + LOAD_RETRY_MS);
      return;
    }
    if (!this.isLoaded() && this.loadState() !== null) await this.ctx.storage.setAlarm(Date.now());
  }

  /**
   * One step of a load: pages until LOAD_STEP.ms have passed, or the last
   * step, which derives what the pages do not carry (member counts, team
   * counts, prefix indexes) and catches up. Each page and the cursor after
   * it are one transaction, so a load resumes where it stopped, in another
   * instance after an eviction. Call only from inside serialized().
   */
  private async loadStep(teamId: string): Promise<void> {
    const state = this.loadState();
    if (!state || this.isLoaded()) return;
    const t0 = Date.now();
    const src = this.source();
    if (state.phase === "finish") {
      await this.finishLoad(teamId, state, t0);
      return;
    }
    if (state.phase === "index") {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, channel_id)");
        state.phase = "finish";
        this.endStep(state, t0, "index");
      });
      return;
    }
    // commitPage moves the phase on: read it afresh each round (TypeScript would keep the narrowing above).
    const phase = (): LoadState["phase"] => state.phase;
    const began = phase();
    // At least one page per step, however short the step.
    do {
      switch (phase()) {
        case "users": {
          const page = await src.pageUsers(teamId, state.after, LOAD_PAGE.users);
          this.commitPage(state, page.length < LOAD_PAGE.users ? "channels" : "users", page.at(-1)?.id ?? null, () =>
            insertUsers(this.sql, page),
          );
          break;
        }
        case "channels": {
          const page = await src.pageChannels(teamId, state.after, LOAD_PAGE.channels);
          const last = page.length < LOAD_PAGE.channels;
          this.commitPage(state, last ? "members" : "channels", page.at(-1)?.id ?? null, () => {
            insertChannels(this.sql, page);
            // The by-user index is built once the memberships are in (the
            // "index" step) rather than kept up row by row: pages come in
            // channel order, and keeping it up cost most of the members phase.
            if (last) this.sql.exec("DROP INDEX IF EXISTS members_by_user");
          });
          break;
        }
        case "members":
        case "foreign": {
          // Only this team's users' memberships: other teams' members of a
          // shared channel live in that channel's SharedChannel object.
          const after = state.after ? (JSON.parse(state.after) as { channelId: string; userId: string }) : null;
          const page =
            state.phase === "members"
              ? await src.pageMemberships(teamId, after, LOAD_PAGE.memberships)
              : await src.pageForeignMemberships(teamId, after, LOAD_PAGE.memberships);
          const last = page.at(-1);
          const full = page.length === LOAD_PAGE.memberships;
          this.commitPage(
            state,
            full ? state.phase : state.phase === "members" ? "foreign" : "index",
            last ? JSON.stringify({ channelId: last.channelId, userId: last.userId }) : null,
            () =>
              insertMemberships(
                this.sql,
                page.filter((m) => m.userTeamId === teamId),
              ),
          );
          break;
        }
      }
      // The index and the last step are steps of their own: each is the whole of one invocation.
    } while (phase() !== "index" && phase() !== "finish" && Date.now() - t0 < LOAD_STEP.ms);
    this.endStep(state, t0, began === phase() ? began : `${began}..${phase()}`);
  }

  /** A page's rows and the cursor after them, as one transaction. */
  private commitPage(state: LoadState, next: LoadState["phase"], last: string | null, insert: () => void): void {
    this.ctx.storage.transactionSync(() => {
      insert();
      if (next === state.phase) state.after = last;
      else {
        state.phase = next;
        state.after = null;
      }
      this.saveLoadState(state);
    });
  }

  /** Counts a step, `phase` being the one it worked in. */
  private endStep(state: LoadState, t0: number, phase: string): void {
    state.steps += 1;
    const ms = Date.now() - t0;
    if (ms >= state.maxStepMs) {
      state.maxStepMs = ms;
      state.maxStepPhase = phase;
    }
    this.saveLoadState(state);
  }

  /** The last step: counts, the words of primed rows, loaded (which builds the prefix indexes), then the catch-up. */
  private async finishLoad(teamId: string, state: LoadState, t0: number): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      recountMembers(this.sql);
      this.recountTotals();
      rebuildPrimedWords(this.sql);
      setMeta(this.sql, "version", String(state.from));
      this.setLoaded(true);
      state.steps += 1;
      if (Date.now() - t0 >= state.maxStepMs) {
        state.maxStepMs = Date.now() - t0;
        state.maxStepPhase = "finish";
      }
      setMeta(this.sql, "load_ms", String(Date.now() - state.started));
      setMeta(this.sql, "loaded_at", String(Date.now()));
      setMeta(this.sql, "load_steps", String(state.steps));
      setMeta(this.sql, "load_max_step_ms", String(state.maxStepMs));
      setMeta(this.sql, "load_max_step_phase", state.maxStepPhase ?? "");
      this.saveLoadState(null);
    });
    await this.catchUp(teamId);
    // Forwarded memberships in channels shared in have no log: one that came
    // before its channel's page was dropped, so the last step reads them again.
    await this.resyncForeignMemberships(teamId);
    // The last step's catch-up belongs to it too.
    const ms = Date.now() - t0;
    if (ms > state.maxStepMs) {
      setMeta(this.sql, "load_max_step_ms", String(ms));
      setMeta(this.sql, "load_max_step_phase", "finish");
    }
    // A reload event's load: the shared channels this team hosts reload their member lists too.
    if (state.resyncShared)
      for (const id of this.hostedSharedChannels(teamId)) await this.sharedChannel(teamId, id).resync(teamId, id);
  }

  // --- answering while loading ------------------------------------------------

  /**
   * A query that needs only the caller's own rows (their user, memberships,
   * the channels and conversations they are in, the members of their DMs)
   * does not wait for a cold team: those rows come straight from the
   * database into the cache, the load keeps going in the background, and
   * the query runs as it would on a loaded cache. The rows are the
   * database's current state, newer than the load's starting version, and
   * the load's catch-up replays everything after that version: what the
   * cache ends with is what a load without them would have.
   */
  private async asViewerWhileLoading<T>(
    teamId: string,
    viewerId: string,
    want: PrimeWants,
    run: (v: Viewer) => CacheResult<T>,
  ): Promise<CacheResult<T>> {
    if (this.isLoaded()) return this.asViewer(teamId, viewerId, run);
    await this.startLoad(teamId);
    const primed = await this.primeViewer(teamId, viewerId, want);
    // Loaded meanwhile: the loaded cache answers (the primed rows were not written).
    if (!primed) return this.asViewer(teamId, viewerId, run);
    // Whom a guest may see depends on everyone's memberships in its
    // channels, which only the whole team has: a guest asking about people waits.
    if (want.users?.length && viewerOf(this.sql, viewerId)?.isGuest) return this.asViewer(teamId, viewerId, run);
    return this.decide(teamId, viewerId, run);
  }

  /** Copies one caller's rows from the database; false when the team finished loading first (nothing written). */
  private async primeViewer(teamId: string, viewerId: string, want: PrimeWants): Promise<boolean> {
    const src = this.source();
    const asked = want.channels ?? [];
    const [users, memberships, counts, sizes] = await Promise.all([
      src.users(teamId, [viewerId, ...(want.users ?? [])]),
      src.membershipsOfUser(teamId, viewerId),
      src.counts(teamId),
      // The card of a channel asked about carries its member count.
      asked.length > 0 ? src.memberCounts(teamId, asked) : Promise.resolve({} as Record<string, number>),
    ]);
    const own = memberships.filter((m) => m.userTeamId === teamId);
    const channels = await src.channels(teamId, [...new Set([...own.map((m) => m.channelId), ...asked])]);

    const mine = new Set(own.map((m) => m.channelId));
    const dms = channels.filter((c) => kindOf(c) !== "channel" && mine.has(c.id));
    const dmMembers = (
      await src.membersOf(
        teamId,
        dms.map((c) => c.id),
      )
    ).filter((m) => m.userTeamId === teamId);
    const people = await src.users(
      teamId,
      [...new Set(dmMembers.map((m) => m.userId))].filter((id) => id !== viewerId),
    );
    if (this.isLoaded() || this.loadState() === null) return false;
    this.ctx.storage.transactionSync(() => {
      for (const u of [...users, ...people]) upsertUser(this.sql, u);
      for (const c of channels) upsertChannel(this.sql, c);
      markPrimed(
        this.sql,
        "user",
        [...users, ...people].map((u) => u.id),
      );
      markPrimed(
        this.sql,
        "channel",
        channels.map((c) => c.id),
      );
      // The caller's memberships and their DMs' member lists as they are now.
      this.sql.exec("DELETE FROM members WHERE user_id = ?", viewerId);
      this.sql.exec(
        "DELETE FROM members WHERE channel_id IN (SELECT value FROM json_each(?))",
        JSON.stringify(dms.map((c) => c.id)),
      );
      insertMemberships(this.sql, [...own, ...dmMembers]);
      setMeta(this.sql, "active_users", String(counts.activeUsers));
      setMeta(this.sql, "channels", String(counts.channels));
      for (const id of asked) this.sql.exec("UPDATE channels SET member_count = ? WHERE id = ?", sizes[id] ?? 0, id);
    });
    return true;
  }

  private recountTotals(): void {
    const n = (q: string) => Number(this.sql.exec<{ n: number }>(q).one().n);
    setMeta(this.sql, "active_users", String(n("SELECT COUNT(*) AS n FROM users WHERE deleted = 0")));
    setMeta(this.sql, "channels", String(n("SELECT COUNT(*) AS n FROM channels WHERE kind = 'channel'")));
  }

  /** Replays everything after the local version, in pages. */
  private async catchUp(teamId: string): Promise<void> {
    const src = this.source();
    for (;;) {
      const events = await src.changesSince(teamId, this.version(), CATCH_UP_PAGE);
      for (const e of events) {
        // A reload replayed here started a new load, which ends in its own catch-up.
        if (!this.isLoaded()) return;
        if (e.version > this.version()) await this.apply(teamId, e);
      }
      if (events.length < CATCH_UP_PAGE) return;
    }
  }

  private async apply(teamId: string, e: ChangeEvent): Promise<void> {
    const change = e.change as DirectoryChange | { kind: "reload" };
    switch (change.kind) {
      case "user": {
        const before = this.sql
          .exec<{ deleted: number }>("SELECT deleted FROM users WHERE id = ?", change.user.id)
          .toArray()[0];
        upsertUser(this.sql, change.user);
        const wasActive = before ? before.deleted === 0 : false;
        const isActive = !change.user.deleted;
        if (wasActive !== isActive) this.bumpMeta("active_users", isActive ? 1 : -1);
        this.logChange(e.version, "user", change.user.id, null);
        break;
      }
      case "channel": {
        const c = change.channel;
        if (c.teamId !== teamId && !c.sharedWith.includes(teamId)) {
          // No longer shared with this team (unshareChannel): the channel and
          // this team's memberships in it leave the cache, so every query
          // answers as for a channel it never had.
          // Only channels are shared, so what leaves is one.
          if (deleteChannel(this.sql, c.teamId, c.id)) this.bumpMeta("channels", -1);
          this.logChange(e.version, CHANNEL_REMOVED, c.id, null);
          break;
        }
        const wasShared = this.sharedHost(c.id) !== null;
        const existed = this.sql.exec("SELECT 1 FROM channels WHERE id = ?", c.id).toArray().length > 0;
        upsertChannel(this.sql, c);
        // The team's channel count (boot) counts channels, not DMs.
        if (!existed && kindOf(c) === "channel") this.bumpMeta("channels", 1);
        this.logChange(e.version, "channel", c.id, null);
        // A channel this team hosts turning shared (again): its object may
        // hold the list of an earlier share, missing what changed while no
        // membership events were forwarded to it.
        if (c.teamId === teamId && !wasShared && c.sharedWith.length > 0) {
          // Best effort: the object also re-reads its list on its own (SHARED_RESYNC_MS).
          await this.sharedChannel(teamId, c.id)
            .resync(teamId, c.id)
            .catch((error) => console.error(`shared channel ${c.id} resync after a share failed`, error));
        }
        break;
      }
      case "member_added":
      case "member_removed": {
        const m = change.membership;
        const added = change.kind === "member_added";
        if (m.userTeamId === teamId) {
          if (added) addMember(this.sql, m);
          else removeMember(this.sql, m);
        }
        if (this.sharedHost(m.channelId) === teamId)
          await this.sharedChannel(teamId, m.channelId).applyMembership(teamId, m, added);
        this.logChange(e.version, change.kind, m.channelId, m.userId);
        break;
      }
      case "reload": {
        // A bulk import changed too much to replay: load again (in steps,
        // like any load), and have the shared channels this team hosts
        // reload their member lists once it is done.
        await this.beginLoad(teamId, true);
        return;
      }
    }
    setMeta(this.sql, "version", String(e.version));
  }

  private logChange(version: number, kind: string, entityId: string, userId: string | null): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO changes (version, kind, entity_id, user_id) VALUES (?, ?, ?, ?)",
      version,
      kind,
      entityId,
      userId,
    );
    if (version % 1000 === 0) this.sql.exec("DELETE FROM changes WHERE version <= ?", version - CHANGE_LOG_KEEP);
  }

  private bumpMeta(key: string, by: number): void {
    setMeta(this.sql, key, String(Number(getMeta(this.sql, key) ?? 0) + by));
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.applying.then(fn, fn);
    this.applying = next.catch(() => {});
    return next;
  }

  /**
   * Events can be lost (a publish that failed after its write committed). A
   * cache in use compares its version with the database's at most every
   * FRESHNESS_CHECK_MS, in the background: queries never wait on it.
   */
  private checkFreshness(teamId: string): void {
    const now = Date.now();
    if (now - this.lastFreshnessCheck < FRESHNESS_CHECK_MS) return;
    this.lastFreshnessCheck = now;
    this.ctx.waitUntil(
      (async () => {
        const latest = await this.source().version(teamId);
        if (latest > this.version()) await this.serialized(() => this.catchUp(teamId));
        await this.resyncForeignMemberships(teamId);
      })().catch((error) => console.error("team cache freshness check failed", error)),
    );
  }
}

function ok<T>(value: T): CacheResult<T> {
  return { ok: true, value };
}

function notFound(message: string): CacheError {
  return { ok: false, kind: "not_found", code: "not_found", message };
}
