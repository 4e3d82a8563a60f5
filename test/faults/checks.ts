import { send } from "./client";
import { sleep } from "./platform";
import type { Rig } from "./rig";

// After a fault: what the database holds against what the client was told,
// and what is derived from it (domain counts, the outbox, the team cache)
// against a recount of the database. Each waits for repair by the platform's
// own means (queue consumers, the cron sweep), never a manual heal.

export interface UserRow {
  id: string;
  email: string;
  domain: string;
  role: string;
  deactivated: boolean;
}

export async function dbUsers(rig: Rig, team: string): Promise<Map<string, UserRow>> {
  const rows = await rig.db.all<{ id: string; email: string; domain: string; role: string; deactivated: number }>(
    "SELECT id, email, domain, role, deactivated FROM users WHERE team_id = ?",
    [team],
  );
  return new Map(rows.map((r) => [r.id, { ...r, deactivated: Number(r.deactivated) === 1 }]));
}

/** Stored domain counts that differ from a recount of the active users ("domain|role" -> [stored, recount]). */
export async function countDrift(rig: Rig, team: string): Promise<Map<string, [number, number]>> {
  const recount = new Map<string, number>();
  const active = await rig.db.all<{ domain: string; role: string; n: number }>(
    "SELECT domain, role, COUNT(*) AS n FROM users WHERE team_id = ? AND deactivated = 0 GROUP BY domain, role",
    [team],
  );
  for (const r of active) {
    recount.set(`${r.domain}|${r.role}`, Number(r.n));
    recount.set(`*|${r.role}`, (recount.get(`*|${r.role}`) ?? 0) + Number(r.n));
  }
  const stored = new Map<string, number>();
  for (const r of await rig.db.all<{ domain: string; role: string; count: number }>(
    "SELECT domain, role, `count` FROM domains WHERE team_id = ?",
    [team],
  )) {
    stored.set(`${r.domain}|${r.role}`, Number(r.count));
  }
  const drift = new Map<string, [number, number]>();
  for (const k of new Set([...recount.keys(), ...stored.keys()])) {
    const s = stored.get(k) ?? 0;
    const want = recount.get(k) ?? 0;
    if (s !== want) drift.set(k, [s, want]);
  }
  return drift;
}

/** Outbox rows of the team whose mutation was never applied. */
export async function unappliedOutbox(rig: Rig, team: string): Promise<number> {
  const [row] = await rig.db.all<{ n: number }>(
    "SELECT COUNT(*) AS n FROM outbox o WHERE o.team_id = ? AND NOT EXISTS (SELECT 1 FROM applied_mutations a WHERE a.team_id = o.team_id AND a.id = o.id)",
    [team],
  );
  return Number(row?.n ?? 0);
}

export interface Converged {
  ok: boolean;
  ms: number;
  cronTicks: number;
  last: Map<string, [number, number]>;
  unapplied: number;
}

/**
 * Waits until the team's counts equal a recount and no outbox row is owed,
 * running the cron handler every few seconds (the deployed trigger runs it
 * every 15 minutes; the windows it waits out are KNOBS).
 */
export async function countsConverge(rig: Rig, team: string, timeoutMs = 120_000): Promise<Converged> {
  const t0 = Date.now();
  let cronTicks = 0;
  let lastTick = 0;
  for (;;) {
    const last = await countDrift(rig, team);
    const unapplied = await unappliedOutbox(rig, team);
    if (last.size === 0 && unapplied === 0) return { ok: true, ms: Date.now() - t0, cronTicks, last, unapplied };
    if (Date.now() - t0 > timeoutMs) return { ok: false, ms: Date.now() - t0, cronTicks, last, unapplied };
    if (Date.now() - lastTick > 4000) {
      await rig.platform.cronTick();
      cronTicks += 1;
      lastTick = Date.now();
    }
    await sleep(500);
  }
}

export interface CacheCheck {
  ok: boolean;
  ms: number;
  /** Users whose card (role, deleted) differs from the database at the last look. */
  wrong: string[];
}

/**
 * Waits until the team cache's cards (POST /v1/directory/lookup, as the
 * reader) say what the database says of every user: present, role, active.
 */
export async function cacheMatches(
  rig: Rig,
  team: string,
  reader: string,
  want: Map<string, UserRow>,
  timeoutMs = 60_000,
): Promise<CacheCheck> {
  const token = await rig.token(team, reader);
  const ids = [...want.keys()];
  const t0 = Date.now();
  for (;;) {
    const wrong: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const a = await send(rig.platform.url, token, "POST", "/v1/directory/lookup", { users: chunk });
      if (a.status !== 200) {
        wrong.push(...chunk);
        continue;
      }
      const cards = new Map(
        (a.body as { users: Array<{ id: string; role: string; deleted: boolean }> }).users.map((u) => [u.id, u]),
      );
      for (const id of chunk) {
        const card = cards.get(id);
        const row = want.get(id);
        if (!card || !row || card.role !== row.role || card.deleted !== row.deactivated) wrong.push(id);
      }
    }
    if (wrong.length === 0) return { ok: true, ms: Date.now() - t0, wrong };
    if (Date.now() - t0 > timeoutMs) return { ok: false, ms: Date.now() - t0, wrong };
    await sleep(1000);
  }
}

/**
 * For a failure message: per drifting key, what the outbox rows' deltas add
 * up to beside the stored count and the recount (rows that sum to the stored
 * count mean a change published deltas it did not make, or the reverse; rows
 * that sum to the recount mean the consumer or a heal applied something
 * wrong), and the team's heal columns.
 */
export async function explainDrift(rig: Rig, team: string, drift: Map<string, [number, number]>) {
  const sums = new Map<string, number>();
  const rows = await rig.db.all<{ body: string; sent_at: number | null }>(
    "SELECT body, sent_at FROM outbox WHERE team_id = ?",
    [team],
  );
  for (const r of rows) {
    const body = JSON.parse(r.body) as { deltas: Array<{ domain: string; role: string; delta: number }> };
    for (const d of body.deltas) {
      sums.set(`${d.domain}|${d.role}`, (sums.get(`${d.domain}|${d.role}`) ?? 0) + d.delta);
      sums.set(`*|${d.role}`, (sums.get(`*|${d.role}`) ?? 0) + d.delta);
    }
  }
  const [teamRow] = await rig.db.all<Record<string, unknown>>(
    "SELECT healed_at, heal_needed_at, heal_lease_owner FROM teams WHERE id = ?",
    [team],
  );
  const [applied] = await rig.db.all<{ n: number }>("SELECT COUNT(*) AS n FROM applied_mutations WHERE team_id = ?", [
    team,
  ]);
  return {
    outboxRows: rows.length,
    applied: Number(applied?.n ?? 0),
    team: teamRow,
    keys: [...drift].map(([k, [stored, recount]]) => ({ key: k, stored, recount, outboxSum: sums.get(k) ?? 0 })),
  };
}
