import { describe, expect, it } from "vitest";
import { ActorRounds } from "../../src/realtime/actor-rounds";
import type { Actor } from "../../src/realtime/ports";

// The connect-time live check in rounds: one question goes at once; those
// asked while it is out go together next; every answer is the user's own.

function teamOf(rows: Record<string, Actor>) {
  const calls: string[][] = [];
  let fail: Error | null = null;
  return {
    calls,
    failNext(error: Error) {
      fail = error;
    },
    live: {
      async actors(_team: string, users: string[]): Promise<Map<string, Actor>> {
        calls.push(users);
        await new Promise((r) => setTimeout(r, 5));
        if (fail) {
          const e = fail;
          fail = null;
          throw e;
        }
        return new Map(users.filter((u) => rows[u]).map((u) => [u, rows[u] as Actor]));
      },
    },
  };
}

describe("ActorRounds", () => {
  const rows: Record<string, Actor> = {
    U1: { role: "member", active: true },
    U2: { role: "guest", active: true },
    U3: { role: "admin", active: false },
  };

  it("asks once alone, then once for everyone who asked meanwhile, and answers each their own row", async () => {
    const t = teamOf(rows);
    const rounds = new ActorRounds(t.live);
    const first = rounds.actor("T1", "U1");
    const rest = ["U2", "U3", "U9", "U2"].map((u) => rounds.actor("T1", u));
    expect(await first).toEqual(rows.U1);
    expect(await Promise.all(rest)).toEqual([rows.U2, rows.U3, null, rows.U2]);
    expect(t.calls).toEqual([["U1"], ["U2", "U3", "U9"]]);
  });

  it("keeps teams apart: each team's round asks that team only", async () => {
    const calls: Array<[string, string[]]> = [];
    const rounds = new ActorRounds({
      async actors(team, users) {
        calls.push([team, users]);
        return new Map(users.map((u) => [u, { role: team === "T1" ? "member" : "guest", active: true } as Actor]));
      },
    });
    const [a, b] = await Promise.all([rounds.actor("T1", "U1"), rounds.actor("T2", "U1")]);
    expect(a?.role).toBe("member");
    expect(b?.role).toBe("guest");
    expect(calls).toEqual([
      ["T1", ["U1"]],
      ["T2", ["U1"]],
    ]);
  });

  it("fails every question of a failed round, and the next round asks afresh", async () => {
    const t = teamOf(rows);
    const rounds = new ActorRounds(t.live);
    t.failNext(new Error("cache unavailable"));
    const failed = rounds.actor("T1", "U1");
    await expect(failed).rejects.toThrow("cache unavailable");
    expect(await rounds.actor("T1", "U1")).toEqual(rows.U1);
    expect(t.calls).toEqual([["U1"], ["U1"]]);
  });
});
