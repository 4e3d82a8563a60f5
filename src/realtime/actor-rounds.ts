import type { Actor, LiveState } from "./ports";

// A socket may open only for an active member of its team, read live at
// connect. Read one by one, a team connecting at once (a morning, a
// reconnect storm) costs one call to the team's cache per socket, which is
// most of what a connect costs beyond the socket itself. Here the users asked
// about for one team go in rounds, like frames and presence: the first goes
// at once, alone; those asked while a round is out wait for it and then go
// together in one actors() call. Every answer is read after its question was
// asked, so it is as live as a call of its own; a round that fails fails
// every question in it (the caller denies).

/** Users per actors() call at most; the rest wait for the next round. */
const MAX_ROUND = 1_000;

interface Waiting {
  user: string;
  resolve: (actor: Actor | null) => void;
  reject: (error: unknown) => void;
}

export class ActorRounds {
  private readonly teams = new Map<string, { waiting: Waiting[]; running: boolean }>();

  constructor(private readonly live: Pick<LiveState, "actors">) {}

  /** The user's live role and active state in the team; null when the team has no such user. */
  actor(team: string, user: string): Promise<Actor | null> {
    let queue = this.teams.get(team);
    if (!queue) {
      queue = { waiting: [], running: false };
      this.teams.set(team, queue);
    }
    const q = queue;
    const answer = new Promise<Actor | null>((resolve, reject) => q.waiting.push({ user, resolve, reject }));
    if (!q.running) void this.run(team, q);
    return answer;
  }

  private async run(team: string, q: { waiting: Waiting[]; running: boolean }): Promise<void> {
    q.running = true;
    try {
      while (q.waiting.length > 0) {
        const round = q.waiting.splice(0, MAX_ROUND);
        try {
          const found = await this.live.actors(team, [...new Set(round.map((w) => w.user))]);
          for (const w of round) w.resolve(found.get(w.user) ?? null);
        } catch (error) {
          for (const w of round) w.reject(error);
        }
      }
    } finally {
      q.running = false;
      if (this.teams.get(team) === q && q.waiting.length === 0) this.teams.delete(team);
    }
  }
}
