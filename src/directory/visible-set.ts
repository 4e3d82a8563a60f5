// The team cache's answer to "which of these may the viewer see?", compact
// for large lists: ids in order with a bit set per entry (users: deleted,
// bot; channels: archived, member, private). The cache writes it
// (durable-objects/team-cache/queries.ts), the real-time and recommend sides
// read it.

export interface VisibleSet {
  users: { ids: string[]; flags: number[] };
  channels: { ids: string[]; names: string[]; flags: number[] };
}

/** VisibleSet flags. */
export const VISIBLE = { deleted: 1, bot: 2, archived: 1, member: 2, private: 4 } as const;
