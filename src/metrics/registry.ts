// Counters and histograms in Prometheus' text format. Each isolate keeps its
// own registry; snapshots (deltas since the last flush) are merged into one
// aggregate (the Metrics Durable Object), which /metrics renders. Only
// counters and cumulative histograms, so merging is addition and a lost
// flush only loses a few counts, never corrupts a series. Gauges say how
// they merge (sum, min, max, last), so they merge the same way.

export type Labels = Readonly<Record<string, string>>;

export interface MetricHelp {
  name: string;
  help: string;
  type: "counter" | "histogram" | "gauge";
  /** Histogram bucket upper bounds (the +Inf bucket is implied). */
  buckets?: readonly number[];
  /**
   * How a gauge's values from two isolates (or two flushes) combine: "sum"
   * (a total that may go down, e.g. a sum of signed values), "min", "max",
   * or "last" (the newer wins: a value derived from the totals).
   */
  merge?: "sum" | "min" | "max" | "last";
}

/** Milliseconds: request latencies and model scoring. */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2.5, 5, 10, 20, 50, 100, 250, 500, 1000, 2500] as const;

/** A series' values: a counter or gauge has [value]; a histogram has [count per bucket..., +Inf count, sum]. */
export interface Snapshot {
  series: Record<string, Record<string, number[]>>;
}

export class Registry {
  private readonly defs = new Map<string, MetricHelp>();
  private series = new Map<string, Map<string, number[]>>();

  constructor(defs: readonly MetricHelp[]) {
    for (const d of defs) this.defs.set(d.name, d);
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const values = this.values(name, labels, 1);
    values[0] = (values[0] ?? 0) + by;
  }

  /** Folds a value into a gauge by its merge rule (the first value of a series is taken as is). */
  gauge(name: string, labels: Labels, value: number): void {
    const def = this.def(name);
    this.fold(def, name, labelKey(labels), value);
  }

  /** Every series of a metric with its labels and values (a gauge or counter: [value]). */
  read(name: string): Array<{ labels: Record<string, string>; values: readonly number[] }> {
    const byLabels = this.series.get(name);
    if (!byLabels) return [];
    return [...byLabels].map(([key, values]) => ({ labels: JSON.parse(key) as Record<string, string>, values }));
  }

  observe(name: string, labels: Labels, value: number): void {
    const def = this.def(name);
    const buckets = def.buckets ?? [];
    const values = this.values(name, labels, buckets.length + 2);
    const i = buckets.findIndex((b) => value <= b);
    const at = i === -1 ? buckets.length : i;
    values[at] = (values[at] ?? 0) + 1;
    values[buckets.length + 1] = (values[buckets.length + 1] ?? 0) + value;
  }

  /** Everything counted since the last take, and a fresh start. */
  take(): Snapshot {
    const out: Snapshot = { series: {} };
    for (const [name, byLabels] of this.series) out.series[name] = Object.fromEntries(byLabels);
    this.series = new Map();
    return out;
  }

  /** Adds another registry's snapshot (unknown metric names are ignored: a newer isolate may know more). */
  merge(s: Snapshot): void {
    for (const [name, byLabels] of Object.entries(s.series)) {
      const def = this.defs.get(name);
      if (!def) continue;
      for (const [key, values] of Object.entries(byLabels)) {
        if (def.type === "gauge") {
          if (typeof values[0] === "number") this.fold(def, name, key, values[0]);
          continue;
        }
        const mine = this.valuesByKey(name, key, values.length);
        for (const [i, v] of values.entries()) mine[i] = (mine[i] ?? 0) + v;
      }
    }
  }

  render(): string {
    const lines: string[] = [];
    for (const def of this.defs.values()) {
      lines.push(`# HELP ${def.name} ${def.help}`, `# TYPE ${def.name} ${def.type}`);
      const byLabels = this.series.get(def.name);
      if (!byLabels) continue;
      for (const [key, values] of [...byLabels].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const labels = JSON.parse(key) as Record<string, string>;
        if (def.type === "counter") {
          lines.push(`${def.name}${labelText(labels)} ${values[0] ?? 0}`);
          continue;
        }
        if (def.type === "gauge") {
          lines.push(`${def.name}${labelText(labels)} ${gaugeText(values[0] ?? 0)}`);
          continue;
        }
        const buckets = def.buckets ?? [];
        let cumulative = 0;
        for (const [i, le] of [...buckets.map(String), "+Inf"].entries()) {
          cumulative += values[i] ?? 0;
          lines.push(`${def.name}_bucket${labelText({ ...labels, le })} ${cumulative}`);
        }
        lines.push(`${def.name}_sum${labelText(labels)} ${round(values[buckets.length + 1] ?? 0)}`);
        lines.push(`${def.name}_count${labelText(labels)} ${cumulative}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }

  private def(name: string): MetricHelp {
    const def = this.defs.get(name);
    if (!def) throw new Error(`unknown metric ${name}`);
    return def;
  }

  private fold(def: MetricHelp, name: string, key: string, value: number): void {
    const fresh = !this.series.get(name)?.has(key);
    const values = this.valuesByKey(name, key, 1);
    const old = values[0] ?? 0;
    const rule = def.merge ?? "last";
    if (fresh || rule === "last") values[0] = value;
    else if (rule === "sum") values[0] = old + value;
    else if (rule === "min") values[0] = Math.min(old, value);
    else values[0] = Math.max(old, value);
  }

  private values(name: string, labels: Labels, size: number): number[] {
    this.def(name);
    return this.valuesByKey(name, labelKey(labels), size);
  }

  private valuesByKey(name: string, key: string, size: number): number[] {
    let byLabels = this.series.get(name);
    if (!byLabels) {
      byLabels = new Map();
      this.series.set(name, byLabels);
    }
    let values = byLabels.get(key);
    if (!values) {
      values = new Array(size).fill(0);
      byLabels.set(key, values);
    }
    return values;
  }
}

/** Canonical keys by the labels as the caller wrote them (bounded: label values are route patterns, codes, sources). */
const keyCache = new Map<string, string>();
const KEY_CACHE_MAX = 4096;

/**
 * Labels in a canonical order, as the key of a series (JSON: snapshots from
 * every isolate merge by it). Memoized on a cheap join of the labels as
 * given: sorting and stringifying them on every count cost ~30 µs a call in
 * a connect profile, a sixth of the Worker's own CPU per WebSocket connect.
 */
export function labelKey(labels: Labels): string {
  let raw = "";
  for (const k in labels) {
    const v = labels[k] ?? "";
    // Length-prefixed, so no two label sets join to the same string.
    raw += `${k.length}:${k}${v.length}:${v}`;
  }
  const known = keyCache.get(raw);
  if (known !== undefined) return known;
  const key = JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))));
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear();
  keyCache.set(raw, key);
  return key;
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** A gauge's value as Prometheus writes it (+Inf, -Inf, NaN spelled its way). */
function gaugeText(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  if (n === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(n);
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
