import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { importDataset } from "../../scripts/dataset-import";
import { DEMO_ADMIN, DEMO_MEMBER, DEMO_TEAM, seedDemoTeam } from "../../scripts/demo-seed";
import { signToken } from "../../src/auth/tokens";
import { type Backend, serveAsDeployed } from "../../tools/harness/backend";

// The platform as `npm start` gives it, for the node tests that drive it from
// outside (the real-time client, the console in Chromium): the Worker built
// as for a deploy, served by Miniflare on D1 with wrangler.toml's bindings and
// static assets (the console), seeded with the demo team (and, on request,
// the rails-collab dataset team the recommenders need). Miniflare on a
// random port rather than `wrangler dev`: no fixed port or shared
// .wrangler/state to collide with a developer's running `npm start`.

const SECRET = "local-platform-test-secret-0123456789abcdef";
const OPERATOR = { team: "TPLATFORM", user: "UOPERATOR" };
export const DATASET_TEAM = "TRAILS";
export const DATASET_USER = "U1341";

export interface LocalPlatform {
  url: string;
  backend: Backend;
  /** A token for any user of a seeded team (1 h). */
  token(team: string, user: string): Promise<string>;
  member: string;
  admin: string;
  operator: string;
  close(): Promise<void>;
}

export async function startLocalPlatform(name: string, options: { dataset?: boolean } = {}): Promise<LocalPlatform> {
  const { assets } = unstable_getMiniflareWorkerOptions("wrangler.toml").workerOptions;
  const backend = await serveAsDeployed(name, {
    vars: { JWT_SECRET: SECRET, PLATFORM_OPERATORS: `${OPERATOR.team}:${OPERATOR.user}` },
    ...(assets ? { extra: { assets } } : {}),
  });
  const token = (team: string, user: string) => signToken({ team, user, ttlSeconds: 3600 }, SECRET);
  const operator = await token(OPERATOR.team, OPERATOR.user);
  try {
    await seedDemoTeam(backend.url, operator);
    if (options.dataset) {
      await importDataset({
        url: backend.url,
        secret: SECRET,
        data: "datasets/rails-collab",
        team: DATASET_TEAM,
        cut: "2025-08-23",
        embeddings: "models/embeddings/rails-collab.json",
        privateShare: 0.05,
        log: () => {},
      });
    }
  } catch (error) {
    await backend.close();
    throw error;
  }
  return {
    url: backend.url,
    backend,
    token,
    member: await token(DEMO_TEAM.id, DEMO_MEMBER),
    admin: await token(DEMO_TEAM.id, DEMO_ADMIN),
    operator,
    close: () => backend.close(),
  };
}

/** The demo org of scripts/start.ts, through the admin API. */
