import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { signToken } from "../src/auth/tokens";
import {
  type CollabDataset,
  channelIdOf,
  dayOf,
  isoOf,
  readDataset,
  snapshotAt,
  userIdOf,
} from "../src/datasets/collab";
import { buildSnapshot, type EmbeddingArtifact, snapshotToRows } from "../src/recommend/features/index";

// Loads a dataset in the rails-collab format into a team at a cut date,
// through the platform's own admin API (so through the normal storage
// ports): people → users, places → channels, activity before the cut →
// memberships, and the feature store snapshot (counts in windows, pair
// counts, embedding vectors) → POST …/features/import. Used by
// `npm run import-dataset`, `npm start` (the TRAILS demo team), the replay
// loop and bench:recommend.

export interface ImportOptions {
  /** The platform's base URL. */
  url: string;
  secret: string;
  /** A directory holding channels/activity/interactions/hours .csv.gz. */
  data: string;
  team: string;
  /** ISO date: everything before it is history. */
  cut: string;
  /** Embedding artifact (training output); its vectors are keyed by dataset ids. */
  embeddings: string;
  /** Share of places marked private (the data has none; for visibility rules). */
  privateShare?: number;
  log?: (line: string) => void;
}

export interface ImportSummary {
  team: string;
  cut: string;
  users: number;
  channels: number;
  privateChannels: number;
  memberships: number;
  featureRows: number;
}

export function loadDataset(dir: string): CollabDataset {
  const read = (name: string) => {
    const gz = join(dir, `${name}.csv.gz`);
    if (existsSync(gz)) return gunzipSync(readFileSync(gz)).toString("utf8");
    return readFileSync(join(dir, `${name}.csv`), "utf8");
  };
  return readDataset(basename(dir.replace(/\/+$/, "")), {
    channels: read("channels"),
    activity: read("activity"),
    interactions: read("interactions"),
    hours: read("hours"),
  });
}

export function loadEmbeddings(file: string): EmbeddingArtifact {
  return JSON.parse(readFileSync(file, "utf8")) as EmbeddingArtifact;
}

/** The latest cut a dataset supports with a year of labels after it is the training's; any earlier date works too. */
export function lastDay(ds: CollabDataset): string {
  return isoOf(ds.activity.reduce((m, a) => Math.max(m, a.day), 0));
}

export async function importDataset(o: ImportOptions, ds: CollabDataset = loadDataset(o.data)): Promise<ImportSummary> {
  const log = o.log ?? (() => {});
  const cut = dayOf(o.cut);
  const platform = await signToken({ team: "TPLATFORM", user: "UOPERATOR" }, o.secret);
  const admin = platform; // the operator administers any team
  const call = async (method: string, path: string, body: string, type: string, token: string, ok: number[]) => {
    const res = await fetch(`${o.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": type },
      body,
    });
    if (!ok.includes(res.status))
      throw new Error(`${method} ${path}: ${res.status} ${(await res.text()).slice(0, 300)}`);
    return res;
  };
  const ndjson = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n");
  const base = `/v1/admin/teams/${o.team}`;

  const snap = snapshotAt(ds, cut, o.privateShare ?? 0);
  await call(
    "POST",
    "/v1/admin/teams",
    JSON.stringify({ id: o.team, name: `${ds.name} @ ${o.cut}` }),
    "application/json",
    platform,
    [201, 409],
  );
  const users = snap.users.map((u) => ({ id: userIdOf(u), email: `u${u}@${ds.name}.example` }));
  await call("POST", `${base}/users/import`, ndjson(users), "application/x-ndjson", admin, [201]);
  log(`users: ${users.length}`);
  const channels = snap.channels.map((c) => ({
    id: channelIdOf(c.channel),
    name: c.name,
    purpose: c.path,
    private: c.isPrivate,
  }));
  await call("POST", `${base}/channels/import`, ndjson(channels), "application/x-ndjson", admin, [201]);
  log(`channels: ${channels.length} (${channels.filter((c) => c.private).length} private)`);
  const memberships = snap.memberships.map((m) => ({ channel_id: channelIdOf(m.channel), user_id: userIdOf(m.user) }));
  for (let i = 0; i < memberships.length; i += 100_000) {
    await call(
      "POST",
      `${base}/memberships/import`,
      ndjson(memberships.slice(i, i + 100_000)),
      "application/x-ndjson",
      admin,
      [201],
    );
  }
  log(`memberships: ${memberships.length}`);
  const rows = snapshotToRows(buildSnapshot(ds, cut, loadEmbeddings(o.embeddings)));
  await call(
    "POST",
    `${base}/features/import?as_of=${o.cut}&dataset=${encodeURIComponent(ds.name)}`,
    ndjson(rows.map((r) => ({ kind: r.kind, key: r.key, data: JSON.parse(r.data) }))),
    "application/x-ndjson",
    admin,
    [201],
  );
  log(`feature snapshot: ${rows.length} rows`);
  return {
    team: o.team,
    cut: o.cut,
    users: users.length,
    channels: channels.length,
    privateChannels: channels.filter((c) => c.private).length,
    memberships: memberships.length,
    featureRows: rows.length,
  };
}
