import { mayManageConnections } from "../../src/auth/policy";
import type { Actor } from "../../src/connect/connections";
import { authorize } from "../auth";
import type { AppContext } from "../http";

/** The caller, once the policy has found it a live owner or admin of its own team (the Slack Connect routes). */
export async function connectAdminOf(c: AppContext): Promise<Actor> {
  const { team, user } = c.get("identity");
  await authorize(c, (p) => mayManageConnections(p, team));
  return { team, user };
}
