import type { FoldedLinear } from "./linear";
import { floatsOf, intOf, type OnnxNode, readGraph, stringOf } from "./onnx-proto";

// Logistic regression graphs run without onnxruntime. training/onnx_export.py
// writes LR as two nodes, ai.onnx.ml.LinearRegressor → Sigmoid. onnxruntime-web
// pays a fixed cost per run and per node that dominates a graph this small:
// ~20 µs at batch 500 against onnxruntime-node's ~13 µs (1.5×), where the
// arithmetic is 500 dot products. So a graph of exactly that shape is read
// here and scored in plain TypeScript, with the coefficients the ONNX file
// itself holds; every other graph goes to onnxruntime-web. No runtime start
// either: an isolate serving only LR never loads the 3.5 MiB wasm.
//
// The reader (protobuf in onnx-proto.ts, shared with onnx-trees.ts) only
// recognizes that shape; any surprise (another op, another domain, a post
// transform, more targets, an initializer) answers null, and onnxruntime-web
// takes the model as before.

/**
 * The folded weights of a graph that is exactly `input → LinearRegressor
 * (one target, no post transform) → Sigmoid → output` with `width` inputs;
 * null for any other graph (or bytes that are not an ONNX model).
 */
export function linearFromOnnx(onnx: Uint8Array, input: string, output: string, width: number): FoldedLinear | null {
  try {
    const graph = readGraph(onnx);
    if (!graph || graph.initializers.size > 0) return null; // initializers: not our two-node shape
    const names = (vs: { name: string }[]) => vs.map((v) => v.name).join();
    if (names(graph.inputs) !== input || names(graph.outputs) !== output || graph.nodes.length !== 2) return null;
    const [linear, sigmoid] = graph.nodes as [OnnxNode, OnnxNode];
    if (linear.op !== "ai.onnx.ml/LinearRegressor" || sigmoid.op !== "/Sigmoid") return null;
    const margin = linear.outputs;
    if (linear.inputs.join() !== input || margin.length !== 1) return null;
    if (sigmoid.inputs.join() !== margin[0] || sigmoid.outputs.join() !== output) return null;
    const attrs = linear.attrs;
    for (const name of attrs.keys()) {
      if (!["coefficients", "intercepts", "targets", "post_transform"].includes(name)) return null;
    }
    if (intOf(attrs.get("targets"), 1) !== 1 || stringOf(attrs.get("post_transform"), "NONE") !== "NONE") return null;
    const coefficients = floatsOf(attrs.get("coefficients"));
    const intercepts = floatsOf(attrs.get("intercepts")) ?? [0];
    if (!coefficients || coefficients.length !== width || intercepts.length !== 1) return null;
    return { weights: Float64Array.from(coefficients), bias: intercepts[0] as number };
  } catch {
    return null;
  }
}
