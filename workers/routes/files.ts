import { Hono } from "hono";
import { teamCacheAccess } from "../../durable-objects/gateway/access";
import { uploadPortsOf } from "../../platform/deps";
import { notFound, tooLarge } from "../../src/errors";
import { downloadFile, FILE_MAX_BYTES, uploadFile } from "../../src/files/uploads";
import type { AppEnv } from "../http";

// POST /v1/channels/:channel/files?name=<file name>: the body is the file,
// its Content-Type the file's type (at most FILE_MAX_BYTES; a shared
// channel's organizations may allow less, or nothing: docs/connect.md).
// Answers the file's facts and the seq of the `file` event that announced
// it. GET /v1/channels/:channel/files/:file: the bytes, to whoever sees the channel.

const ChannelId = /^[A-Za-z0-9_-]{1,40}$/;

export const fileRoutes = new Hono<AppEnv>()
  .post("/:channel/files", async (c) => {
    const channelId = c.req.param("channel");
    if (!ChannelId.test(channelId)) throw notFound(`channel ${channelId} not found`);
    const bytes = await c.req.arrayBuffer();
    if (bytes.byteLength > FILE_MAX_BYTES) throw tooLarge(`files larger than ${FILE_MAX_BYTES} bytes are not allowed`);
    const { team, user } = c.get("identity");
    const posted = await uploadFile(uploadPortsOf(c.env, c.get("deps"), teamCacheAccess(c.env)), {
      team,
      user,
      channelId,
      name: c.req.query("name") ?? "",
      contentType: c.req.header("content-type"),
      bytes,
    });
    return c.json(posted, 201);
  })
  .get("/:channel/files/:file", async (c) => {
    const channelId = c.req.param("channel");
    if (!ChannelId.test(channelId)) throw notFound(`channel ${channelId} not found`);
    const { team, user } = c.get("identity");
    const { meta, body } = await downloadFile(uploadPortsOf(c.env, c.get("deps"), teamCacheAccess(c.env)), {
      team,
      user,
      channelId,
      fileId: c.req.param("file"),
    });
    return new Response(body, {
      headers: {
        "content-type": meta.type,
        "content-length": String(meta.bytes),
        "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(meta.name)}`,
        "x-content-type-options": "nosniff",
      },
    });
  });
