import type { SubTopic } from "../../src/realtime/topics";
import { WriteBehind } from "../write-behind";
import { FLUSH_MS } from "./positions";

// Per topic, the users whose profiles every current subscriber here was sent
// (annotator.ts `covered`), in memory and in the gateway's SQLite
// (`covered`), so a gateway woken from hibernation does not look up and
// send again, to every socket of a busy channel, the profiles of the people
// who speak in it (measured: 1,000 subscribers cost the team cache ~370 ms
// of CPU and every socket a frame, at each wake). Written behind the sends,
// for the reasons positions.ts gives; a socket that subscribes clears its
// topic's set (in memory at once, in the table within FLUSH_MS), and only an
// instance that hibernated (long after that flush) reads the table.

export class CoveredProfiles {
  private readonly behind: WriteBehind<SubTopic, string[] | null>;

  constructor(
    private readonly sql: SqlStorage,
    keep: (work: Promise<unknown>) => void,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS covered (topic TEXT PRIMARY KEY, users TEXT NOT NULL) WITHOUT ROWID");
    this.behind = new WriteBehind(FLUSH_MS, keep, (topic, users) => {
      if (users === null) sql.exec("DELETE FROM covered WHERE topic = ?", topic);
      else sql.exec("INSERT OR REPLACE INTO covered (topic, users) VALUES (?, ?)", topic, JSON.stringify(users));
    });
  }

  /** What the table says (a new instance's starting point). */
  load(): Map<SubTopic, Set<string>> {
    const out = new Map<SubTopic, Set<string>>();
    for (const row of this.sql.exec<{ topic: string; users: string }>("SELECT topic, users FROM covered").toArray()) {
      try {
        const users = JSON.parse(row.users) as unknown;
        if (Array.isArray(users)) out.set(row.topic as SubTopic, new Set(users.map(String)));
      } catch {
        // unreadable: that topic starts uncovered (profiles go out again)
      }
    }
    return out;
  }

  /** The topic's set changed (null: cleared); written within FLUSH_MS. */
  set(topic: SubTopic, users: ReadonlySet<string> | null): void {
    this.behind.set(topic, users === null ? null : [...users]);
  }
}
