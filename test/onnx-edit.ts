import { type Field, fields, strings, text } from "../src/models/onnx-proto";
import type { TreeEnsemble } from "../src/models/onnx-trees";

// Test helpers for ONNX graphs (node and workerd tests alike): a protobuf
// writer to edit the exporter's graphs into variants (another aggregation,
// other split modes, the margin instead of the probability), and feature
// rows that sit on a tree ensemble's split thresholds.

/** A protobuf writer for the fields onnx-proto.ts reads: enough to edit a graph in a test. */
export function encode(fs: Field[]): Uint8Array {
  const out: number[] = [];
  const varint = (n: number) => {
    for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 128);
    out.push(n);
  };
  for (const f of fs) {
    varint(f.no * 8 + f.wire);
    if (f.wire === 0) varint(f.int);
    else if (f.wire === 5) out.push(f.int & 0xff, (f.int >>> 8) & 0xff, (f.int >>> 16) & 0xff, f.int >>> 24);
    else {
      varint(f.bytes.length);
      for (const b of f.bytes) out.push(b);
    }
  }
  return Uint8Array.from(out);
}

export const bytesField = (no: number, bytes: Uint8Array): Field => ({ no, wire: 2, int: 0, bytes });
export const textField = (no: number, s: string) => bytesField(no, new TextEncoder().encode(s));

/** The model with graph node `index` replaced by `edit` of its fields. */
export function editNode(onnx: Uint8Array, index: number, edit: (node: Field[]) => Field[]): Uint8Array {
  const model = fields(onnx);
  const graph = fields(model.find((f) => f.no === 7)?.bytes ?? new Uint8Array(0));
  let seen = -1;
  const nodes = graph.map((f) => (f.no === 1 && ++seen === index ? bytesField(1, encode(edit(fields(f.bytes)))) : f));
  return encode(model.map((f) => (f.no === 7 ? bytesField(7, encode(nodes)) : f)));
}

/** The model with the TreeEnsembleRegressor's attribute `name` replaced by `edit` of its fields. */
export const editTreeAttr = (onnx: Uint8Array, name: string, edit: (attr: Field[]) => Field[]) =>
  editNode(onnx, 0, (node) =>
    node.map((f) => {
      if (f.no !== 5) return f;
      const attr = fields(f.bytes);
      return strings(attr, 1)[0] === name ? bytesField(5, encode(edit(attr))) : f;
    }),
  );

/** Every split's mode set by `mode(i)` (leaves stay LEAF). */
export const withModes = (onnx: Uint8Array, mode: (i: number) => string) => {
  let i = 0;
  return editTreeAttr(onnx, "nodes_modes", (attr) =>
    attr.map((f) => (f.no === 9 && text(f.bytes) !== "LEAF" ? textField(9, mode(i++)) : f)),
  );
};

/** Sigmoid → Flatten (identity on [N, 1]): the graph answers the margin. */
export const marginGraph = (onnx: Uint8Array) =>
  editNode(onnx, 1, (node) => [...node.filter((f) => f.no !== 4), textField(4, "Flatten")]);

/** xorshift32: the same rows every run. */
function random(seed: number) {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const float32Neighbours = (t: number) => {
  const f = new Float32Array([t, t]);
  const i = new Int32Array(f.buffer);
  i[0] = (i[0] as number) + 1;
  i[1] = (i[1] as number) - 1;
  return [f[0] as number, f[1] as number];
};

/**
 * `base` (row-major, the ensemble's width) followed by `extra` generated rows:
 * per value, a split threshold of that feature exactly or one float32 either
 * side, NaN, ±0, or a value of `base`. The same rows for the same seed.
 */
export function thresholdRows(e: TreeEnsemble, base: Float32Array, extra: number, seed: number): Float32Array {
  const width = e.width;
  const byFeature = Array.from({ length: width }, () => [] as number[]);
  e.feature.forEach((f, s) => {
    byFeature[f]?.push(e.threshold[s] as number);
  });
  const rnd = random(seed * 7919 + 1);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
  const matrix = new Float32Array(base.length + extra * width);
  matrix.set(base);
  for (let i = base.length; i < matrix.length; i++) {
    const thresholds = byFeature[i % width] as number[];
    const u = rnd();
    const t = thresholds.length > 0 ? pick(thresholds) : 0;
    if (u < 0.1) matrix[i] = Number.NaN;
    else if (u < 0.45) matrix[i] = t;
    else if (u < 0.65) matrix[i] = pick(float32Neighbours(t));
    else if (u < 0.7) matrix[i] = pick([0, -0]);
    else matrix[i] = base.length > 0 ? (base[Math.floor(rnd() * base.length)] as number) : 0;
  }
  return matrix;
}
