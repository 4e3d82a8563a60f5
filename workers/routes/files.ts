import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { uploadPortsOf } from "../../platform/deps";
import { teamCacheAccess } from "../../platform/team-cache-access";
import { notFound, tooLarge } from "../../src/errors";
import { downloadFile, FILE_MAX_BYTES, uploadFile } from "../../src/files/uploads";
import { bearer, errors, json, loose, pathId, routes } from "../openapi";

// POST /v1/channels/:channel/files?name=<file name>: the body is the file,
// its Content-Type the file's type (at most FILE_MAX_BYTES; a shared
// channel's organizations may allow less, or nothing: docs/connect.md).
// Answers the file's facts and the seq of the `file` event that announced
// it. GET /v1/channels/:channel/files/:file: the bytes, to whoever sees the channel.

const ChannelId = /^[A-Za-z0-9_-]{1,40}$/;

const ChannelParams = z.object({ channel: pathId });
const tags = ["files"];

const upload = createRoute({
  method: "post",
  path: "/{channel}/files",
  tags,
  summary: "Upload a file to a channel the caller sees",
  description: `The body is the file, its Content-Type the file's type; at most ${FILE_MAX_BYTES} bytes (a shared channel's organizations may allow less, or nothing).`,
  security: bearer,
  request: {
    params: ChannelParams,
    query: z.object({ name: z.string().optional().meta({ description: "the file's name" }) }),
    body: {
      required: true,
      content: { "*/*": { schema: { type: "string", contentMediaType: "application/octet-stream" } } },
    },
  },
  responses: {
    201: json(loose({ file: loose({ id: z.string() }) }), "the file's facts and the seq of the `file` event"),
    ...errors,
  },
});
const download = createRoute({
  method: "get",
  path: "/{channel}/files/{file}",
  tags,
  summary: "A file's bytes, to whoever sees the channel",
  security: bearer,
  request: { params: z.object({ channel: pathId, file: pathId }) },
  responses: {
    200: {
      description: "the bytes, as an attachment, with the type they were uploaded with",
      content: { "*/*": { schema: { type: "string", contentMediaType: "application/octet-stream" } } },
    },
    ...errors,
  },
});

export const fileRoutes = routes()
  .openapi(upload, async (c) => {
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
  .openapi(download, async (c) => {
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
