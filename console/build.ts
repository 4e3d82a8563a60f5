import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

// The console's one build step: console/src (and client/realtime, partysocket)
// bundled into console/public/dist/console.js, which Workers static assets
// serve with the rest of console/public. Run by `npm start` and by the
// console's test before the platform starts; by hand: `npx tsx console/build.ts`.
// dist/ is git-ignored.

const root = dirname(fileURLToPath(import.meta.url));

export async function buildConsole(): Promise<string> {
  const outfile = join(root, "public", "dist", "console.js");
  await build({
    entryPoints: [join(root, "src", "main.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "warning",
  });
  return outfile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildConsole();
  console.log(`console built: ${out}`);
}
