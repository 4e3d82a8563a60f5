import type { UserRow } from "./checks";
import { type Attempts, sendUntilDefinitive, type Write } from "./client";

// A steady admin write load: each writer creates users (half with an id it
// picks, half with one the platform picks, the case where a retry without a
// key would make a duplicate), changes roles, deactivates and reactivates
// them, one write at a time, each with its own Idempotency-Key. Its model
// of its users is built from the answers only, so after the faults it says
// exactly what the database must hold.

const DOMAINS = ["acme.example", "globex.example", "initech.example", "umbrella.example", "gmail.com"];
const ROLES = ["member", "member", "guest", "admin"] as const;

export interface Sent {
  write: Write;
  attempts: Attempts;
}

export class Writer {
  readonly users = new Map<string, UserRow>();
  readonly sent: Sent[] = [];
  private state: number;

  constructor(
    readonly n: number,
    readonly team: string,
    readonly run: string,
  ) {
    this.state = (n + 1) * 2654435761;
  }

  /** mulberry32: the same writer makes the same choices in every run. */
  private rand(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)] as T;
  }

  private next(i: number): Write {
    const key = `${this.run}-w${this.n}-${i}`;
    const base = `/v1/admin/teams/${this.team}/users`;
    const r = this.rand();
    const all = [...this.users.values()];
    const active = all.filter((u) => !u.deactivated);
    const inactive = all.filter((u) => u.deactivated);
    if (all.length < 3 || r < 0.4) {
      const email = `w${this.n}.${this.run}.${i}@${this.pick(DOMAINS)}`;
      const role = this.pick(ROLES);
      const body =
        this.rand() < 0.5 ? { id: `UW${this.n}X${this.run}X${i}`.toUpperCase(), email, role } : { email, role };
      return { key, method: "POST", path: base, body };
    }
    if (r < 0.65 && active.length > 0) {
      const u = this.pick(active);
      const role = this.pick(ROLES.filter((x) => x !== u.role));
      return { key, method: "PATCH", path: `${base}/${u.id}`, body: { role } };
    }
    if (r < 0.85 && active.length > 0) {
      return { key, method: "DELETE", path: `${base}/${this.pick(active).id}` };
    }
    if (inactive.length > 0) {
      return { key, method: "PATCH", path: `${base}/${this.pick(inactive).id}`, body: { deactivated: false } };
    }
    const email = `w${this.n}.${this.run}.${i}@${this.pick(DOMAINS)}`;
    return { key, method: "POST", path: base, body: { email, role: "member" } };
  }

  /** Makes `count` writes, each sent until definitive; a 2xx answer updates the model. */
  async write(base: () => string, token: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const write = this.next(i);
      const attempts = await sendUntilDefinitive(base, token, write);
      this.sent.push({ write, attempts });
      const { status, body } = attempts.final;
      if (status < 200 || status >= 300) return; // reported by the test; the model stops here
      const u = (body as { user: UserRow & Record<string, unknown> }).user;
      this.users.set(u.id, { id: u.id, email: u.email, domain: u.domain, role: u.role, deactivated: u.deactivated });
    }
  }
}
