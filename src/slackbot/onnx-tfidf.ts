import { type Field, intOf, intsOf, one, readGraph, tensorDims } from "../models/onnx-proto";

// The Slack bot's classifier without onnxruntime. training/slackbot/train.py
// exports TF-IDF and a multinomial logistic regression as seven standard ONNX
// nodes:
//
//   counts [N, V] → Mul(idf) → ReduceL2(axes [1], keepdims) → Max(eps) → Div
//     → MatMul(W [V, K]) → Add(b [K]) → Softmax(axis 1) → probabilities [N, K]
//
// A graph of exactly that shape is read here (its four initializers, from the
// model.onnx protobuf through src/models/onnx-proto.ts, as the recommenders'
// readers do) and scored in plain TypeScript, so the Worker needs no ONNX
// runtime for it (onnxruntime-web's wasm alone is ~3.5 MiB gzip, over the
// Workers free plan's 1 MiB). Any other graph (another op or order, other
// attributes, tensors that are not float32, external data, shapes that do not
// chain) reads as null: the platform then needs the ONNX build
// (platform/slackbot-model.ts).
//
// Arithmetic: the graph's float32 parameters, sums in float64, the result
// rounded to float32. onnxruntime runs float32 throughout; the difference is
// ~1e-7, well inside the parity fixture's 1e-5 (test/node/slackbot-tfidf.test.ts
// and test/workers/slackbot-onnx.test.ts measure it). A row's counts are
// sparse (a question has a handful of known tokens): only its non-zero
// columns are visited, never the whole V × K matrix.

/** The parameters of a TF-IDF → softmax regression graph. */
export interface TfidfSoftmax {
  /** V: the input's width (the manifest's vocabulary). */
  width: number;
  /** K: one probability per class (the manifest's teams). */
  classes: number;
  /** idf weight per column (float32). */
  idf: Float32Array;
  /** Lower bound of the row's L2 norm (the graph's eps). */
  eps: number;
  /** Row-major [V, K] (float32): column j's contribution to each class. */
  weights: Float32Array;
  /** Per class (float32). */
  bias: Float32Array;
}

/** TensorProto.DataType FLOAT. */
const FLOAT = 1;

/**
 * The parameters of a graph that is exactly the exporter's TF-IDF → MatMul →
 * Add → Softmax chain from `input` to `output`; null for any other graph (or
 * bytes that are not an ONNX model).
 */
export function tfidfSoftmaxFromOnnx(onnx: Uint8Array, input: string, output: string): TfidfSoftmax | null {
  try {
    return readTfidfSoftmax(onnx, input, output);
  } catch {
    return null; // malformed protobuf: not a graph this reader covers
  }
}

function readTfidfSoftmax(onnx: Uint8Array, input: string, output: string): TfidfSoftmax | null {
  const graph = readGraph(onnx);
  if (graph?.nodes.length !== 7) return null;
  if (graph.inputs.map((v) => v.name).join() !== input || graph.outputs.map((v) => v.name).join() !== output) {
    return null;
  }
  const declared = graph.inputs[0];
  if (declared?.elemType !== FLOAT) return null;
  const [mul, reduce, max, div, matmul, add, softmax] = graph.nodes;
  if (!mul || !reduce || !max || !div || !matmul || !add || !softmax) return null;
  const ops = graph.nodes.map((n) => n.op).join();
  if (ops !== "/Mul,/ReduceL2,/Max,/Div,/MatMul,/Add,/Softmax") return null;
  if (graph.nodes.some((n) => n.outputs.length !== 1)) return null;
  const out = (n: { outputs: string[] }) => n.outputs[0] as string;

  // Which input of a two-input node is the initializer, and which the running value.
  const tensors = graph.initializers;
  const split = (inputs: string[], value: string): Field[] | null => {
    if (inputs.length !== 2 || !inputs.includes(value)) return null;
    const other = inputs[0] === value ? inputs[1] : inputs[0];
    return other !== undefined && other !== value ? (tensors.get(other) ?? null) : null;
  };
  const idfTensor = split(mul.inputs, input);
  // ReduceL2: opset 17's attribute form only (axes [1], keepdims 1; axes as an input is opset 18).
  for (const name of reduce.attrs.keys()) if (name !== "axes" && name !== "keepdims") return null;
  const axes = intsOf(reduce.attrs.get("axes"));
  if (reduce.inputs.join() !== out(mul) || axes?.join() !== "1" || intOf(reduce.attrs.get("keepdims"), 1) !== 1) {
    return null;
  }
  const epsTensor = split(max.inputs, out(reduce));
  if (div.inputs.join() !== `${out(mul)},${out(max)}`) return null;
  if (matmul.inputs[0] !== out(div) || matmul.inputs.length !== 2) return null;
  const weightsTensor = tensors.get(matmul.inputs[1] as string) ?? null;
  const biasTensor = split(add.inputs, out(matmul));
  for (const name of softmax.attrs.keys()) if (name !== "axis") return null;
  // Softmax over the classes: axis 1 of [N, K], as the exporter writes it (-1 is not told apart
  // from other negative axes by onnx-proto.ts's varints, so it reads as another graph).
  const axis = intOf(softmax.attrs.get("axis"), -1);
  if (softmax.inputs.join() !== out(add) || out(softmax) !== output) return null;
  if ([mul, reduce, max, div, matmul, add].some((n) => n.attrs.size > 0 && n !== reduce)) return null;
  if (!idfTensor || !epsTensor || !weightsTensor || !biasTensor) return null;

  const idf = floatTensor(idfTensor);
  const eps = floatTensor(epsTensor);
  const weights = floatTensor(weightsTensor);
  const bias = floatTensor(biasTensor);
  if (!idf || !eps || !weights || !bias) return null;
  const [v, k] = weights.dims;
  if (weights.dims.length !== 2 || v === undefined || k === undefined || v < 1 || k < 2) return null;
  if (axis !== 1) return null;
  if (!sameShape(idf.dims, [1, v]) && !sameShape(idf.dims, [v])) return null;
  if (eps.values.length !== 1 || eps.dims.length > 1 || bias.values.length !== k || !sameShape(bias.dims, [k])) {
    return null;
  }
  const inputWidth = declared.dims?.[1];
  if (declared.dims && (declared.dims.length !== 2 || (inputWidth !== null && inputWidth !== v))) return null;
  return {
    width: v,
    classes: k,
    idf: idf.values,
    eps: eps.values[0] as number,
    weights: weights.values,
    bias: bias.values,
  };
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * A float32 TensorProto's values and dims: raw_data (9, little-endian, what
 * onnx.numpy_helper writes) or float_data (4, packed or not); null for another
 * type, external data (data_location 14 = 1) or a count that is not the dims'.
 */
function floatTensor(tensor: Field[]): { dims: number[]; values: Float32Array } | null {
  if ((one(tensor, 2)?.int ?? 0) !== FLOAT || (one(tensor, 14)?.int ?? 0) !== 0) return null;
  const dims = tensorDims(tensor);
  const count = dims.reduce((n, d) => n * d, 1);
  const raw = one(tensor, 9);
  let values: Float32Array;
  if (raw && raw.wire === 2) {
    if (raw.bytes.byteLength !== count * 4) return null;
    const view = new DataView(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength);
    values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
  } else {
    const floats: number[] = [];
    for (const f of tensor) {
      if (f.no !== 4) continue;
      if (f.wire === 5) floats.push(new Float32Array(new Uint32Array([f.int]).buffer)[0] as number);
      else if (f.wire === 2) {
        if (f.bytes.byteLength % 4 !== 0) return null;
        const view = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
        for (let at = 0; at < f.bytes.byteLength; at += 4) floats.push(view.getFloat32(at, true));
      }
    }
    if (floats.length !== count) return null;
    values = Float32Array.from(floats);
  }
  return { dims, values };
}

/**
 * Probabilities for `rows` rows of term counts (row-major, rows × width), as
 * the graph computes them: one float32 per class per row.
 */
export function scoreTfidfSoftmax(model: TfidfSoftmax, counts: Float32Array, rows: number): Float32Array {
  const { width, classes, idf, eps, weights, bias } = model;
  if (counts.length !== rows * width)
    throw new Error(`counts have ${counts.length} values, expected ${rows} × ${width}`);
  const out = new Float32Array(rows * classes);
  const logits = new Float64Array(classes);
  const columns: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    // Mul(idf), then the row's L2 norm (ReduceL2 → Max(eps)), over its non-zero columns only.
    columns.length = 0;
    values.length = 0;
    let squares = 0;
    for (let j = 0, at = r * width; j < width; j++, at++) {
      const c = counts[at] as number;
      if (c === 0) continue;
      const w = c * (idf[j] as number);
      columns.push(j);
      values.push(w);
      squares += w * w;
    }
    const norm = Math.max(Math.sqrt(squares), eps);
    // Div, MatMul(W), Add(b).
    for (let k = 0; k < classes; k++) logits[k] = bias[k] as number;
    for (let i = 0; i < columns.length; i++) {
      const x = (values[i] as number) / norm;
      const base = (columns[i] as number) * classes;
      for (let k = 0; k < classes; k++) logits[k] = (logits[k] as number) + x * (weights[base + k] as number);
    }
    // Softmax, shifted by the largest logit (exp never overflows).
    let top = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < classes; k++) top = Math.max(top, logits[k] as number);
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      const e = Math.exp((logits[k] as number) - top);
      logits[k] = e;
      sum += e;
    }
    for (let k = 0; k < classes; k++) out[r * classes + k] = (logits[k] as number) / sum;
  }
  return out;
}
