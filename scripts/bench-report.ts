import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type FaultResults, readFaultResults, renderFaultsInto } from "./faults-table";
import { formatNumber } from "./number-format";

export { formatNumber };

// npm run bench:report [-- --check]: renders every committed
// bench/results/<area>.json between
//   <!-- bench:<area> -->  and  <!-- /bench:<area> -->
// and the fault suite's test/faults/results.json between <!-- faults -->
// and <!-- /faults --> (scripts/faults-table.ts), in every file of
// renderedFiles(): the benchmark tables live in bench/README.md, the fault
// table in docs/storage.md, and README.md or any docs page may hold a marked
// region too. So the figures in prose are the JSON's, never typed by hand.
// --check changes nothing and exits 1 when a file differs from what the
// JSON renders to, or when a results file is rendered nowhere
// (test/node/bench-report.test.ts checks the same in npm test: prose and
// data cannot drift).

export interface BenchFigure {
  name: string;
  unit: string;
  better: "lower" | "higher";
  value: number;
  runs?: number;
  baseline?: { name: string; value: number; config?: string };
  identical?: number;
  ratio?: number;
  target?: string;
  notes?: string;
}

export interface BenchFile {
  area: string;
  date: string;
  machine: { cpus: number; node: string; wrangler?: string; notes?: string };
  results: BenchFigure[];
  notes?: string;
}

function withUnit(n: number, unit: string): string {
  if (unit === "ratio" || unit === "") return formatNumber(n);
  if (unit === "µs" || unit === "us") return `${formatNumber(n)} µs`;
  return `${formatNumber(n)} ${unit}`;
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** One area's table: every figure with its baseline, ratio (> 1: we are better), samples and identical share. */
export function renderArea(file: BenchFile): string {
  const anyIdentical = file.results.some((r) => r.identical !== undefined);
  const head = ["figure", "value", "baseline (same run)", "ratio", "runs", ...(anyIdentical ? ["identical"] : [])];
  const rows = file.results.map((r) => {
    const baseline = r.baseline ? `${r.baseline.name}: ${withUnit(r.baseline.value, r.unit)}` : "—";
    const ratio = r.ratio === undefined ? "—" : `${formatNumber(r.ratio)}×`;
    const identical = r.identical === undefined ? "—" : `${formatNumber(r.identical * 100)}%`;
    return [r.name, withUnit(r.value, r.unit), baseline, ratio, r.runs === undefined ? "—" : String(r.runs)]
      .concat(anyIdentical ? [identical] : [])
      .map(cell);
  });
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const machine = `${file.machine.cpus} CPUs, Node ${file.machine.node}${file.machine.wrangler ? `, wrangler ${file.machine.wrangler}` : ""}`;
  return [
    `_From \`bench/results/${file.area}.json\`, ${file.date.slice(0, 10)} (${machine}; ${cell(file.machine.notes ?? "")})._`,
    "",
    line(head),
    line(head.map(() => "---")),
    ...rows.map(line),
  ].join("\n");
}

export function readResults(dir = "bench/results"): BenchFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as BenchFile);
}

/** The text with each marked area replaced by its rendering; areas without markers are left alone. */
export function renderReadme(readme: string, files: BenchFile[]): string {
  let out = readme;
  for (const file of files) {
    const open = `<!-- bench:${file.area} -->`;
    const close = `<!-- /bench:${file.area} -->`;
    const start = out.indexOf(open);
    const end = out.indexOf(close);
    if (start < 0 || end < start) continue;
    out = `${out.slice(0, start + open.length)}\n${renderArea(file)}\n${out.slice(end)}`;
  }
  return out;
}

/** Every marked region of one file rendered: the benchmark areas, then the fault table. */
export function renderMarked(text: string, files: BenchFile[], faults: FaultResults | null): string {
  return renderFaultsInto(renderReadme(text, files), faults);
}

/** The files bench:report renders into: README.md, bench/README.md and every page in docs/. */
export function renderedFiles(): string[] {
  const docs = readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`);
  return ["README.md", "bench/README.md", ...docs];
}

/** Marker names ("bench:<area>", "faults") that no text holds: figures that would be rendered nowhere. */
export function unrendered(texts: string[], files: BenchFile[], faults: FaultResults | null): string[] {
  const names = [...files.map((f) => `bench:${f.area}`), ...(faults ? ["faults"] : [])];
  return names.filter((name) => !texts.some((t) => t.includes(`<!-- ${name} -->`) && t.includes(`<!-- /${name} -->`)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  const results = readResults();
  const faults = readFaultResults();
  const paths = renderedFiles();
  const texts = paths.map((path) => readFileSync(path, "utf8"));
  const missing = unrendered(texts, results, faults);
  if (missing.length > 0) {
    console.error(`no file has a marked region for ${missing.join(", ")} (files: ${paths.join(", ")})`);
    process.exit(1);
  }
  const stale: string[] = [];
  for (const [i, path] of paths.entries()) {
    const text = texts[i] ?? "";
    const rendered = renderMarked(text, results, faults);
    if (rendered === text) continue;
    stale.push(path);
    if (!check) writeFileSync(path, rendered);
  }
  if (stale.length === 0) console.log(`${paths.join(", ")}: tables match bench/results/*.json`);
  else if (check) {
    console.error(`${stale.join(", ")}: tables differ from bench/results/*.json: run npm run bench:report`);
    process.exit(1);
  } else console.log(`${stale.join(", ")}: tables rendered from bench/results/*.json`);
}
