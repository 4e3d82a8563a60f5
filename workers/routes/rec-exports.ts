import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { exportPortsFor } from "../../platform/rec-export-store";
import { mayOperate } from "../../src/auth/policy";
import { EXPORT_FILES, exportNow, listExports, readFile, readManifest } from "../../src/recommend/export";
import { authorize } from "../auth";
import type { AppContext } from "../http";
import { bearer, errors, json, loose, pathId, routes } from "../openapi";

// The retraining exports (platform operators only), mounted at /v1/admin:
//   GET  /exports                          the exported windows (newest first)
//   GET  /exports/:window                  a window's manifest (teams, row counts, files)
//   GET  /exports/:window/:team/:file      one file, as stored (the .csv.gz ones gzipped)
//   POST /exports/:window                  export a day now (a day so far: complete false)
// The cron writes each day once (workers/scheduled.ts); npm run retrain
// pulls a window through these routes (scripts/retrain.ts). A team's admin
// is no operator: every export, its own team's included, is a 403 to it.

const tags = ["recommend admin"];
const operators = "Platform operators only.";
const WindowParam = z.string().meta({ description: "a UTC day, YYYY-MM-DD" });
const Manifest = loose({
  format: z.string(),
  window: z.string(),
  complete: z.boolean(),
  exported_at: z.string(),
  teams: z.array(loose({ team: z.string(), files: z.array(z.string()) })),
});

const listRoute = createRoute({
  method: "get",
  path: "/exports",
  tags,
  summary: "The exported windows of the retraining export, newest first",
  description: operators,
  security: bearer,
  responses: {
    200: json(
      loose({
        exports: z.array(
          loose({ window: z.string(), complete: z.boolean(), exported_at: z.string(), teams: z.array(z.string()) }),
        ),
      }),
      "the windows",
    ),
    ...errors,
  },
});
const manifestRoute = createRoute({
  method: "get",
  path: "/exports/{window}",
  tags,
  summary: "A window's export manifest: its teams, their row counts and files",
  description: operators,
  security: bearer,
  request: { params: z.object({ window: WindowParam }) },
  responses: { 200: json(Manifest, "the manifest"), ...errors },
});
const exportRoute = createRoute({
  method: "post",
  path: "/exports/{window}",
  tags,
  summary: "Export a day now (the cron exports each past day once by itself)",
  description: `${operators} A day not yet over is written with complete: false, and the cron writes it again once it is; 409 when the window's complete export exists.`,
  security: bearer,
  request: { params: z.object({ window: WindowParam }) },
  responses: { 201: json(Manifest, "the export written"), ...errors },
});
const fileRoute = createRoute({
  method: "get",
  path: "/exports/{window}/{team}/{file}",
  tags,
  summary: "One file of a window's export",
  description: `${operators} Files: ${EXPORT_FILES.join(", ")} (the .csv.gz ones in training/data.py's format).`,
  security: bearer,
  request: { params: z.object({ window: WindowParam, team: pathId, file: z.enum(EXPORT_FILES) }) },
  responses: {
    200: {
      description: "the file as stored",
      content: {
        "application/gzip": { schema: { type: "string", contentMediaType: "application/gzip" } },
        "application/x-ndjson": { schema: { type: "string" } },
      },
    },
    ...errors,
  },
});

const ports = (c: AppContext) => exportPortsFor(c.env);

export const recExportRoutes = routes()
  .openapi(listRoute, async (c) => {
    await authorize(c, mayOperate);
    return c.json(await listExports(ports(c)), 200);
  })
  .openapi(manifestRoute, async (c) => {
    await authorize(c, mayOperate);
    return c.json(await readManifest(ports(c), c.req.param("window")), 200);
  })
  .openapi(exportRoute, async (c) => {
    await authorize(c, mayOperate);
    return c.json(await exportNow(ports(c), c.req.param("window")), 201);
  })
  .openapi(fileRoute, async (c) => {
    await authorize(c, mayOperate);
    const { body, contentType } = await readFile(
      ports(c),
      c.req.param("window"),
      c.req.param("team"),
      c.req.param("file"),
    );
    return new Response(body, { headers: { "content-type": contentType, "x-content-type-options": "nosniff" } });
  });
