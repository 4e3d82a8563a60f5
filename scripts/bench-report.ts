import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readFaultResults, renderFaultsInto } from "./faults-table";
import { formatNumber } from "./number-format";

export { formatNumber };

// npm run bench:report [-- --check]: renders every committed
// bench/results/<area>.json into the README between
//   <!-- bench:<area> -->  and  <!-- /bench:<area> -->
// and the fault suite's test/faults/results.json between <!-- faults -->
// and <!-- /faults --> (scripts/faults-table.ts)
// so the README's benchmark figures are the JSON's, never typed by hand.
// --check changes nothing and exits 1 when the README differs from what the
// JSON renders to (npm test runs it: prose and data cannot drift).

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

/** The README with each marked area replaced by its rendering; areas without markers are left alone. */
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

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  const readme = readFileSync("README.md", "utf8");
  const rendered = renderFaultsInto(renderReadme(readme, readResults()), readFaultResults());
  if (check) {
    if (rendered !== readme) {
      console.error("README.md's benchmark tables differ from bench/results/*.json: run npm run bench:report");
      process.exit(1);
    }
    console.log("README.md's benchmark tables match bench/results/*.json");
  } else if (rendered !== readme) {
    writeFileSync("README.md", rendered);
    console.log("README.md: benchmark tables rendered from bench/results/*.json");
  } else console.log("README.md already matches bench/results/*.json");
}
