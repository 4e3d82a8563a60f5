import { parseArgs } from "node:util";
import { importDataset } from "./dataset-import";
import { ensureJwtSecret } from "./dev-vars";

// npm run import-dataset -- --data datasets/rails-collab --team TRAILS --cut 2025-08-23
//   [--url http://127.0.0.1:8787] [--embeddings models/embeddings/rails-collab.json] [--private-share 0.05]
// Against a running platform: npm start's (signs its tokens with .dev.vars' JWT_SECRET) or a
// deployment (--url https://…, JWT_SECRET=<its secret> in the environment; docs/deploy.md).

const { values } = parseArgs({
  options: {
    data: { type: "string", default: "datasets/rails-collab" },
    team: { type: "string", default: "TRAILS" },
    cut: { type: "string", default: "2025-08-23" },
    url: { type: "string", default: "http://127.0.0.1:8787" },
    embeddings: { type: "string", default: "models/embeddings/rails-collab.json" },
    "private-share": { type: "string", default: "0.05" },
  },
});

const summary = await importDataset({
  url: values.url,
  // A deployment's secret from the environment (a remote import), else npm start's.
  secret: process.env.JWT_SECRET ?? ensureJwtSecret(),
  data: values.data,
  team: values.team,
  cut: values.cut,
  embeddings: values.embeddings,
  privateShare: Number(values["private-share"]),
  log: (l) => console.log(l),
});
console.log(JSON.stringify(summary));
