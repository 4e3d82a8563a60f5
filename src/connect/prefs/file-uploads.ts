import { create } from "@bufbuild/protobuf";
import { FileUploadsSchema } from "../gen/connect/v1/prefs_pb";
import { objectWith, type PrefClass, PrefInputError, shown, stringList } from "./pref";

// Files in channels shared with the partner: allowed or not, a size limit
// (0: the platform's own), and blocked types (MIME types or extensions).

export interface FileUploadsValue {
  allowed: boolean;
  max_bytes: number;
  blocked_types: string[];
}

/** The largest limit one may set (the platform's own upload limit is lower anyway). */
const MAX_BYTES = 5 * 1024 ** 3;
const MAX_TYPES = 200;
const TYPE = /^(\.[a-z0-9]{1,16}|[a-z]+\/[a-z0-9.+*-]{1,100})$/;

export const fileUploads: PrefClass<FileUploadsValue> = {
  key: "file_uploads",
  description: "files in channels shared with the partner",
  defaultValue: { allowed: true, max_bytes: 0, blocked_types: [] },

  read(prefs) {
    const m = prefs.fileUploads;
    if (!m) return undefined;
    return { allowed: m.allowed, max_bytes: Number(m.maxBytes), blocked_types: [...m.blockedTypes] };
  },

  write(prefs, value) {
    prefs.fileUploads =
      value === undefined
        ? undefined
        : create(FileUploadsSchema, {
            allowed: value.allowed,
            maxBytes: BigInt(value.max_bytes),
            blockedTypes: value.blocked_types,
          });
  },

  transform(input) {
    const o = objectWith(input, "file_uploads", ["allowed", "max_bytes", "blocked_types"]);
    if (typeof o.allowed !== "boolean") throw new PrefInputError("file_uploads.allowed must be true or false");
    // Left out means no limit of its own (0); null is no number, refused like blocked_types: null.
    const maxBytes = o.max_bytes === undefined ? 0 : o.max_bytes;
    if (typeof maxBytes !== "number" || !Number.isSafeInteger(maxBytes)) {
      throw new PrefInputError("file_uploads.max_bytes must be a whole number of bytes");
    }
    const types =
      o.blocked_types === undefined ? [] : stringList(o.blocked_types, "file_uploads.blocked_types", MAX_TYPES);
    return { allowed: o.allowed, max_bytes: maxBytes, blocked_types: types.map((t) => t.toLowerCase()) };
  },

  isValid(value) {
    const problems: string[] = [];
    if (value.max_bytes < 0 || value.max_bytes > MAX_BYTES) problems.push(`max_bytes must be 0 to ${MAX_BYTES}`);
    const bad = value.blocked_types.filter((t) => !TYPE.test(t));
    if (bad.length > 0) problems.push(`not a MIME type or an extension: ${shown(bad)}`);
    return problems;
  },

  migrate() {
    // New in version 2: nothing older to move.
  },

  index(value) {
    return {
      file_uploads: value.allowed,
      file_uploads_max_bytes: value.max_bytes,
      file_uploads_blocked: value.blocked_types.join(" "),
    };
  },

  effects({ key, level }) {
    return [{ kind: "event", type: "connect_pref_changed", data: { key, level } }];
  },
};

/** Whether a file may be uploaded under these prefs: null, or why not. */
export function uploadRefusal(
  prefs: FileUploadsValue,
  file: { bytes: number; type: string; name: string },
): string | null {
  if (!prefs.allowed) return "files are not allowed in channels shared with this organization";
  if (prefs.max_bytes > 0 && file.bytes > prefs.max_bytes)
    return `files larger than ${prefs.max_bytes} bytes are not allowed`;
  const type = file.type.toLowerCase();
  const dot = file.name.lastIndexOf(".");
  const ext = dot >= 0 ? file.name.slice(dot).toLowerCase() : "";
  const blocked = prefs.blocked_types.find(
    (t) => t === type || (t.endsWith("/*") && type.startsWith(t.slice(0, -1))) || t === ext,
  );
  return blocked ? `files of type ${blocked} are not allowed` : null;
}
