import { badRequest, forbidden, notFound } from "../errors";
import { newId } from "../ids";
import { publishToChannel } from "../realtime/messages";
import type { TopicAccess, TopicPublisher } from "../realtime/ports";
import type { ClientTopic } from "../realtime/protocol";

// Files posted to a channel. The bytes go to the file store under the
// channel's host team (a shared channel's files live once, with its host,
// like its topic); a `file` event on the channel's topic tells its
// subscribers. Who may post is who may post a message; in a channel shared
// over Slack Connect each organization's `file_uploads` pref toward the
// other also decides (the refusal port, src/connect/shared-channels-service.ts).
// Downloading asks the same question as reading the channel: a file of a
// channel the caller cannot see is not found, exactly like one that does not exist.

/** The platform's own limit on one file (a `file_uploads` pref may set a lower one). */
export const FILE_MAX_BYTES = 10 * 1024 * 1024;
const MAX_NAME_LENGTH = 255;
/** `type/subtype`, as a Content-Type names it (parameters dropped before the check). */
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
const FILE_ID = /^F[A-Z0-9]{8,20}$/;

export interface FileMeta {
  id: string;
  name: string;
  /** MIME type, lower-cased. */
  type: string;
  bytes: number;
  channel: string;
  /** The uploader's team and user. */
  team: string;
  user: string;
  /** Milliseconds since the epoch, when the edge accepted it. */
  ts: number;
}

export interface StoredFile {
  meta: FileMeta;
  body: ReadableStream<Uint8Array>;
}

/** Where file bytes live (R2 when deployed: platform/r2-file-store.ts). Keys are the store's, named by the host team. */
export interface FileStore {
  put(key: string, bytes: ArrayBuffer, meta: FileMeta): Promise<void>;
  get(key: string): Promise<StoredFile | null>;
  delete(key: string): Promise<void>;
}

export interface UploadPorts {
  access: Pick<TopicAccess, "channel">;
  /** Why the organizations of a shared channel refuse this file from the uploader's team, or null. */
  refusal(host: string, channelId: string, team: string, file: FileFacts): Promise<string | null>;
  files: FileStore;
  publisher: TopicPublisher;
  now(): number;
}

export interface FileFacts {
  bytes: number;
  type: string;
  name: string;
}

export interface Upload {
  team: string;
  user: string;
  channelId: string;
  name: string;
  /** The request's Content-Type. */
  contentType: string | undefined;
  bytes: ArrayBuffer;
}

export interface FileEvent {
  type: "file";
  channel: string;
  user: string;
  file: { id: string; name: string; type: string; bytes: number };
  ts: number;
}

/** A file's key in the store: host team, channel, id (a channel id alone is per team). */
export function fileKey(host: string, channelId: string, fileId: string): string {
  return `files/${host}/${channelId}/${fileId}`;
}

export function newFileId(): string {
  return `F${newId("T").slice(1)}`;
}

/** The file's name as given: 1 to 255 characters, no control characters, no path. */
export function checkFileName(name: string | undefined): string {
  if (name === undefined || name.length === 0) throw badRequest("name the file: ?name=<file name>");
  if (name.length > MAX_NAME_LENGTH) throw badRequest(`file name longer than ${MAX_NAME_LENGTH} characters`);
  for (const ch of name) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f) throw badRequest("file name has a control character");
  }
  if (name.includes("/") || name.includes("\\")) throw badRequest("file name must not contain a path");
  return name;
}

/** The file's MIME type from a Content-Type header (absent: application/octet-stream). */
export function checkFileType(contentType: string | undefined): string {
  const type = (contentType ?? "application/octet-stream").split(";")[0]?.trim().toLowerCase() ?? "";
  if (!MIME.test(type)) throw badRequest("Content-Type must be the file's MIME type, as type/subtype");
  return type;
}

/**
 * Stores the file and announces it on the channel's topic. The poster must
 * see the channel (else not_found, as for a channel that does not exist); a
 * shared channel's organizations may refuse it (forbidden, saying why, with
 * `details.pref`). The bytes are stored before the event is published, so
 * no subscriber hears of a file that is not there; a publish refused by the
 * rate limits removes them again (429, as for a message).
 */
export async function uploadFile(
  ports: UploadPorts,
  u: Upload,
): Promise<{ file: FileMeta; topic: ClientTopic; seq: number }> {
  const name = checkFileName(u.name);
  const type = checkFileType(u.contentType);
  const access = await ports.access.channel(u.team, u.user, u.channelId);
  if (!access.ok) throw access.code === "forbidden" ? forbidden(access.message) : notFound(access.message);
  const facts = { bytes: u.bytes.byteLength, type, name };
  const refused = await ports.refusal(access.host, u.channelId, u.team, facts);
  if (refused) throw forbidden(refused, { pref: "file_uploads" });
  const meta: FileMeta = {
    id: newFileId(),
    name,
    type,
    bytes: facts.bytes,
    channel: u.channelId,
    team: u.team,
    user: u.user,
    ts: ports.now(),
  };
  const key = fileKey(access.host, u.channelId, meta.id);
  await ports.files.put(key, u.bytes, meta);
  const event: FileEvent = {
    type: "file",
    channel: u.channelId,
    user: u.user,
    file: { id: meta.id, name, type, bytes: meta.bytes },
    ts: meta.ts,
  };
  try {
    const posted = await publishToChannel(ports.publisher, access.host, u.team, u.user, u.channelId, event);
    return { file: meta, ...posted };
  } catch (error) {
    // Never announced: nobody can have it. (A crash right here leaves bytes no event names; never a dangling event.)
    await ports.files.delete(key).catch(() => undefined);
    throw error;
  }
}

/** A file of a channel the caller sees; anything else is not found. */
export async function downloadFile(
  ports: Pick<UploadPorts, "access" | "files">,
  q: { team: string; user: string; channelId: string; fileId: string },
): Promise<StoredFile> {
  const missing = () => notFound(`file ${q.fileId} not found`);
  if (!FILE_ID.test(q.fileId)) throw missing();
  const access = await ports.access.channel(q.team, q.user, q.channelId);
  if (!access.ok) throw missing();
  const stored = await ports.files.get(fileKey(access.host, q.channelId, q.fileId));
  if (!stored) throw missing();
  return stored;
}
