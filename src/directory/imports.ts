import type { Clock } from "../clock";
import { type IdempotencyRequest, type Once, recordOf, writeOnce } from "../teams/idempotency";
import type { TeamStore } from "../teams/team-store";
import type { ChangeEvent } from "./model";
import type { DirectoryWriter, MembershipInput, NewChannel } from "./writer";

// Channel and membership imports, at most once per Idempotency-Key. Each is
// one atomic unit already (all rows or none), so the key's record simply
// joins that unit: a client that lost the answer sends the same request
// again and gets the first summary, instead of a conflict for channels it just
// created. A retry writes nothing and publishes nothing.

export interface DirectoryImportDeps {
  store: Pick<TeamStore, "idempotencyRecord">;
  directory: Pick<DirectoryWriter, "importChannels" | "importMemberships">;
  clock: Clock;
}

export interface ImportAnswer {
  imported: number;
}

/** The import's answer, and the events to publish (none on a replay). */
export type ImportOutcome = Once<ImportAnswer> & { events: ChangeEvent[] };

type Import = (
  now: number,
  record: ((answer: ImportAnswer) => ReturnType<typeof recordOf>) | undefined,
) => Promise<{ imported: number; events: ChangeEvent[] }>;

export function importChannelsOnce(
  deps: DirectoryImportDeps,
  teamId: string,
  channels: NewChannel[],
  idempotency: IdempotencyRequest | null,
): Promise<ImportOutcome> {
  return once(deps, teamId, idempotency, (now, record) => deps.directory.importChannels(teamId, channels, now, record));
}

export function importMembershipsOnce(
  deps: DirectoryImportDeps,
  teamId: string,
  rows: MembershipInput[],
  idempotency: IdempotencyRequest | null,
): Promise<ImportOutcome> {
  return once(deps, teamId, idempotency, (now, record) => deps.directory.importMemberships(teamId, rows, now, record));
}

async function once(
  deps: DirectoryImportDeps,
  teamId: string,
  idempotency: IdempotencyRequest | null,
  write: Import,
): Promise<ImportOutcome> {
  let events: ChangeEvent[] = [];
  const outcome = await writeOnce<ImportAnswer>(deps.store, teamId, idempotency, async (idem) => {
    const now = deps.clock.now();
    const written = await write(now, idem ? (answer) => recordOf(idem, answer, now) : undefined);
    events = written.events;
    return { imported: written.imported };
  });
  return { ...outcome, events: outcome.replayed ? [] : events };
}
