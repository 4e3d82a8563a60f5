import type { FileMeta, FileStore } from "../src/files/uploads";

// Channel files in R2 (binding FILES): the bytes as the object's body, the
// file's facts as its custom metadata, its type as the HTTP content type.

export function r2FileStore(bucket: R2Bucket): FileStore {
  return {
    async put(key, bytes, meta) {
      await bucket.put(key, bytes, {
        httpMetadata: { contentType: meta.type },
        customMetadata: { meta: JSON.stringify(meta) },
      });
    },
    async get(key) {
      const object = await bucket.get(key);
      if (!object) return null;
      const raw = object.customMetadata?.meta;
      if (raw === undefined) {
        await object.body.cancel();
        return null;
      }
      return { meta: JSON.parse(raw) as FileMeta, body: object.body };
    },
    async delete(key) {
      await bucket.delete(key);
    },
  };
}
