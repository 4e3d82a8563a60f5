import { mayManageConnections, mayShareChannels } from "../../src/auth/policy";
import type { Actor } from "../../src/connect/connections";
import type { SharingActor } from "../../src/connect/shared-channels";
import { authorize } from "../auth";
import type { AppContext } from "../http";

/** The caller, once the policy has found it a live owner or admin of its own team (the Slack Connect routes). */
export async function connectAdminOf(c: AppContext): Promise<Actor> {
  const { team, user } = c.get("identity");
  await authorize(c, (p) => mayManageConnections(p, team));
  return { team, user };
}

/** The caller as a live member of its own team, with its live role (the shared-channel routes apply the rest). */
export async function sharingActorOf(c: AppContext): Promise<SharingActor> {
  const { team, user } = c.get("identity");
  const p = await authorize(c, (principal) => mayShareChannels(principal, team));
  if (p.kind !== "member") throw new Error("mayShareChannels allows members only");
  return { team, user, role: p.role };
}
