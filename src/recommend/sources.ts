// The places in the product that ask for recommendations, and what each ranks.

export type Corpus = "channel" | "user" | "hour";

export const SOURCES = {
  /** Channels to join, in the channel browser. */
  channel_browser: "channel",
  /** People to add to a conversation, given who is already in it. */
  composer_dm: "user",
  /** People a new member will work with. */
  invite: "user",
  /** Channels the user has gone quiet in. */
  leave: "channel",
  /** Channels gone quiet for everyone (for admins). */
  archive: "channel",
  /** The local hour of day to send a user an invite reminder. */
  send_time: "hour",
} as const satisfies Record<string, Corpus>;

export type Source = keyof typeof SOURCES;

export const SOURCE_NAMES = Object.keys(SOURCES) as Source[];

export function isSource(value: unknown): value is Source {
  return typeof value === "string" && Object.hasOwn(SOURCES, value);
}

/** Sources whose answer is about someone other than the caller when a team admin names them (context.user). */
export const SUBJECT_SOURCES: readonly Source[] = ["invite", "send_time"];

export function takesSubject(source: Source): boolean {
  return SUBJECT_SOURCES.includes(source);
}
