import type { FoldedLinear } from "./linear";

// Logistic regression graphs run without onnxruntime. training/onnx_export.py
// writes LR as two nodes, ai.onnx.ml.LinearRegressor → Sigmoid. onnxruntime-web
// pays a fixed cost per run and per node that dominates a graph this small:
// ~20 µs at batch 500 against onnxruntime-node's ~13 µs (1.5×), where the
// arithmetic is 500 dot products. So a graph of exactly that shape is read
// here and scored in plain TypeScript, with the coefficients the ONNX file
// itself holds; every other graph goes to onnxruntime-web. No runtime start
// either: an isolate serving only LR never loads the 3.5 MiB wasm.
//
// The reader understands just enough protobuf (ModelProto → GraphProto →
// NodeProto / AttributeProto / ValueInfoProto) to recognize the shape; any
// surprise (another op, another domain, a post transform, more targets, an
// initializer) answers null, and onnxruntime-web takes the model as before.

/** Protobuf wire types. */
const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

interface Field {
  no: number;
  wire: number;
  /** VARINT: the value (ids and counts only: safe as a number below 2^53). */
  int: number;
  /** BYTES: the payload; FIXED32: its 4 bytes. */
  bytes: Uint8Array;
}

/** The top-level fields of one message. Throws on malformed input. */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= buf.length) throw new Error("truncated varint");
      const b = buf[at++] as number;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new Error("varint too long");
  };
  const take = (n: number): Uint8Array => {
    if (n < 0 || at + n > buf.length) throw new Error("truncated field");
    const bytes = buf.subarray(at, at + n);
    at += n;
    return bytes;
  };
  while (at < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === VARINT) out.push({ no, wire, int: varint(), bytes: new Uint8Array(0) });
    else if (wire === BYTES) out.push({ no, wire, int: 0, bytes: take(varint()) });
    else if (wire === FIXED32) out.push({ no, wire, int: 0, bytes: take(4) });
    else if (wire === FIXED64) take(8);
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const strings = (fs: Field[], no: number) =>
  fs.filter((f) => f.no === no && f.wire === BYTES).map((f) => text(f.bytes));
const one = (fs: Field[], no: number) => fs.find((f) => f.no === no);

function float32s(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** AttributeProto: name (1), f (2), i (3), s (4), floats (7, packed or not). */
function attributes(node: Field[]): Map<string, Field[]> {
  const out = new Map<string, Field[]>();
  for (const a of node.filter((f) => f.no === 5 && f.wire === BYTES)) {
    const fs = fields(a.bytes);
    out.set(strings(fs, 1)[0] ?? "", fs);
  }
  return out;
}

function floatsOf(attr: Field[] | undefined): number[] | null {
  if (!attr) return null;
  const values: number[] = [];
  for (const f of attr.filter((x) => x.no === 7)) values.push(...float32s(f.bytes));
  return values;
}

/**
 * The folded weights of a graph that is exactly `input → LinearRegressor
 * (one target, no post transform) → Sigmoid → output` with `width` inputs;
 * null for any other graph (or bytes that are not an ONNX model).
 */
export function linearFromOnnx(onnx: Uint8Array, input: string, output: string, width: number): FoldedLinear | null {
  try {
    const graphField = one(fields(onnx), 7);
    if (!graphField || graphField.wire !== BYTES) return null;
    const graph = fields(graphField.bytes);
    if (graph.some((f) => f.no === 5)) return null; // initializers: not our two-node shape
    const nodes = graph.filter((f) => f.no === 1 && f.wire === BYTES).map((f) => fields(f.bytes));
    const names = (no: number) => graph.filter((f) => f.no === no).map((f) => strings(fields(f.bytes), 1)[0]);
    if (names(11).join() !== input || names(12).join() !== output || nodes.length !== 2) return null;
    const [linear, sigmoid] = nodes as [Field[], Field[]];
    const op = (n: Field[]) => `${strings(n, 7)[0] ?? ""}/${strings(n, 4)[0] ?? ""}`;
    if (op(linear) !== "ai.onnx.ml/LinearRegressor" || op(sigmoid) !== "/Sigmoid") return null;
    const margin = strings(linear, 2);
    if (strings(linear, 1).join() !== input || margin.length !== 1) return null;
    if (strings(sigmoid, 1).join() !== margin[0] || strings(sigmoid, 2).join() !== output) return null;
    const attrs = attributes(linear);
    for (const name of attrs.keys()) {
      if (!["coefficients", "intercepts", "targets", "post_transform"].includes(name)) return null;
    }
    const targets = one(attrs.get("targets") ?? [], 3)?.int ?? 1;
    const post = one(attrs.get("post_transform") ?? [], 4);
    if (targets !== 1 || (post && text(post.bytes) !== "NONE")) return null;
    const coefficients = floatsOf(attrs.get("coefficients"));
    const intercepts = floatsOf(attrs.get("intercepts")) ?? [0];
    if (!coefficients || coefficients.length !== width || intercepts.length !== 1) return null;
    return { weights: Float64Array.from(coefficients), bias: intercepts[0] as number };
  } catch {
    return null;
  }
}
