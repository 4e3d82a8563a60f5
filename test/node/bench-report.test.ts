import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type BenchFile,
  formatNumber,
  readResults,
  renderArea,
  renderedFiles,
  renderMarked,
  renderReadme,
  unrendered,
} from "../../scripts/bench-report";
import { readFaultResults, renderFaults } from "../../scripts/faults-table";

// The benchmark figures in bench/README.md (and the fault table in
// docs/storage.md) are rendered from bench/results/*.json and
// test/faults/results.json (npm run bench:report): this fails when someone
// edits one without the other, or moves a table out of every rendered file.

const file: BenchFile = {
  area: "demo",
  date: "2026-12-06T00:00:00Z",
  machine: { cpus: 2, node: "v24.21.0", notes: "shared" },
  results: [
    {
      name: "switcher p99",
      unit: "ms",
      better: "lower",
      value: 0.4213,
      runs: 400,
      baseline: { name: "indexed DB query", value: 1.3 },
      identical: 1,
      ratio: 3.09,
    },
    { name: "load", unit: "s", better: "lower", value: 27.61 },
  ],
};

describe("bench:report", () => {
  it("formats three significant digits and thousands", () => {
    expect([0.4213, 1.3, 27.61, 313.95, 167211, 0.000123].map(formatNumber)).toEqual([
      "0.421",
      "1.30",
      "27.6",
      "314",
      "167,211",
      "0.000123",
    ]);
  });

  it("renders a figure with its baseline, ratio, runs and identical share", () => {
    const table = renderArea(file);
    expect(table).toContain("| switcher p99 | 0.421 ms | indexed DB query: 1.30 ms | 3.09× | 400 | 100% |");
    expect(table).toContain("| load | 27.6 s | — | — | — | — |");
  });

  it("replaces only what stands between an area's markers", () => {
    const readme =
      "intro\n<!-- bench:demo -->\nold\n<!-- /bench:demo -->\nafter\n<!-- bench:other -->x<!-- /bench:other -->";
    const out = renderReadme(readme, [file]);
    expect(out.startsWith("intro\n<!-- bench:demo -->\n_From")).toBe(true);
    expect(out).toContain("<!-- /bench:demo -->\nafter\n<!-- bench:other -->x<!-- /bench:other -->");
    expect(renderReadme(out, [file])).toBe(out);
  });

  it("renders the fault suite's figures per database", () => {
    const table = renderFaults({
      date: "2026-12-06T00:00:00Z",
      node: "v24.21.0",
      adapters: {
        mysql: {
          platform_killed_mid_heal: {
            attempts: [{ midHeal: true, driftAtKill: 8, flaggedAtKill: true }],
            healed_after_restart_ms: 1637,
          },
        },
      },
    });
    expect(table).toContain(
      "| platform killed mid-heal | — | killed while the heal held its lease (8 keys still off, team flagged); healed by the cron sweep 1.64 s after the restart |",
    );
  });

  it("names the areas no text has markers for", () => {
    const texts = ["<!-- bench:demo -->\n<!-- /bench:demo -->", "<!-- faults -->"];
    expect(unrendered(texts, [file, { ...file, area: "other" }], null)).toEqual(["bench:other"]);
    expect(unrendered(texts, [file], { date: "2026-12-06T00:00:00Z", node: "v24.21.0", adapters: {} })).toEqual([
      "faults",
    ]);
  });

  it("renders into the README, bench/README.md and every docs page", () => {
    const files = renderedFiles();
    expect(files.slice(0, 2)).toEqual(["README.md", "bench/README.md"]);
    expect(files).toContain("docs/storage.md");
  });

  it("every committed results file is rendered somewhere", () => {
    const texts = renderedFiles().map((path) => readFileSync(path, "utf8"));
    expect(unrendered(texts, readResults(), readFaultResults())).toEqual([]);
  });

  it.each(renderedFiles())("%s: its tables are the committed JSON's", (path) => {
    const text = readFileSync(path, "utf8");
    expect(renderMarked(text, readResults(), readFaultResults()) === text, "run npm run bench:report").toBe(true);
  });
});
