import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { signToken } from "../src/auth/tokens";
import { ensureJwtSecret } from "./dev-vars";
import { modelDirs } from "./models-index";

// npm run models:upload -- --url https://edge-collab.<account>.workers.dev [--models models] [--only archive,invite]
// Puts model folders (manifest.json + model.onnx, as training writes them)
// into a deployment's MODELS bucket through its operator API: PUT
// …/manifest.json, then …/model.onnx (docs/recommendations.md). The Worker
// checks each before storing it, so a bad model is refused, not stored.
// Experiments then point arms at the uploaded versions.
//
// It uses ADMIN_TOKEN from the environment when set, else signs an operator
// token (TPLATFORM:UOPERATOR, or --operator team:user, who must be in the
// deployment's PLATFORM_OPERATORS) with JWT_SECRET from the environment (the
// deployment's secret), else .dev.vars (npm start's). npm run retrain
// (scripts/retrain.ts) uploads its candidates through uploadModels too.

export interface UploadedModel {
  dir: string;
  source: string;
  name: string;
  version: string;
  status: "uploaded" | "refused";
  detail?: string;
}

/**
 * fetch, sent once more when the connection it was given had been closed by
 * the server before the request went out: Node's fetch keeps idle
 * connections, and a local Worker (Miniflare) drops one left idle while a
 * caller trained for a minute, so the next request fails with "other side
 * closed" without having reached it.
 */
export async function fetchFresh(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
    const stale = cause?.code === "UND_ERR_SOCKET" || /other side closed/.test(cause?.message ?? "");
    if (!stale) throw error;
    return fetch(url, init);
  }
}

/** Uploads every model folder under `root` (or those named in `only`) to the platform at `url`. */
export async function uploadModels(o: {
  url: string;
  root: string;
  token: string;
  only?: string[];
}): Promise<UploadedModel[]> {
  const out: UploadedModel[] = [];
  for (const dir of modelDirs(o.root)) {
    if (o.only && !o.only.some((x) => dir === x || dir.startsWith(`${x}/`))) continue;
    const manifestText = readFileSync(join(o.root, dir, "manifest.json"), "utf8");
    const manifest = JSON.parse(manifestText) as { source?: string; name?: string; version?: string };
    const { source = "", name = "", version = "" } = manifest;
    const base = `${o.url.replace(/\/$/, "")}/v1/admin/models/${encodeURIComponent(source)}/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;
    const headers = { authorization: `Bearer ${o.token}` };
    const put = async (path: string, type: string, body: BodyInit) => {
      const res = await fetchFresh(`${base}/${path}`, {
        method: "PUT",
        headers: { ...headers, "content-type": type },
        body,
      });
      return { ok: res.ok, text: await res.text(), status: res.status };
    };
    let r = await put("manifest.json", "application/json", manifestText);
    if (r.ok) r = await put("model.onnx", "application/octet-stream", readFileSync(join(o.root, dir, "model.onnx")));
    out.push({
      dir,
      source,
      name,
      version,
      status: r.ok ? "uploaded" : "refused",
      ...(r.ok ? {} : { detail: `${r.status} ${r.text.slice(0, 300)}` }),
    });
  }
  return out;
}

/**
 * The bearer token of an operator: ADMIN_TOKEN from the environment when set
 * (CI, where only a token is handed out), else one signed here as `operator`
 * ("team:user", who must be in the deployment's PLATFORM_OPERATORS) with
 * JWT_SECRET from the environment, else .dev.vars (npm start's).
 */
export async function operatorToken(operator = "TPLATFORM:UOPERATOR", ttlSeconds = 600): Promise<string> {
  if (process.env.ADMIN_TOKEN) return process.env.ADMIN_TOKEN;
  const [team = "", user = ""] = operator.split(":");
  const secret = process.env.JWT_SECRET ?? ensureJwtSecret();
  return signToken({ team, user, ttlSeconds }, secret);
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: "http://127.0.0.1:8787" },
      models: { type: "string", default: "models" },
      only: { type: "string" },
      operator: { type: "string", default: "TPLATFORM:UOPERATOR" },
    },
  });
  if (!existsSync(values.models)) throw new Error(`no model folder at ${values.models}`);
  const token = await operatorToken(values.operator);
  const results = await uploadModels({
    url: values.url,
    root: values.models,
    token,
    ...(values.only ? { only: values.only.split(",") } : {}),
  });
  for (const m of results) {
    console.log(
      `${m.status === "uploaded" ? "uploaded" : "REFUSED "} ${m.source}/${m.name}/${m.version} (${m.dir})${m.detail ? `: ${m.detail}` : ""}`,
    );
  }
  if (results.length === 0) console.log(`no model folders (manifest.json + model.onnx) under ${values.models}`);
  if (results.some((m) => m.status !== "uploaded")) process.exit(1);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
