import type { ModelKey, ModelManifest } from "./manifest";
import {
  type Attribute,
  floatsOf,
  int64TensorValues,
  intOf,
  intsOf,
  type OnnxNode,
  readGraph,
  stringOf,
  stringsOf,
  tensorDims,
} from "./onnx-proto";
import { type ModelScorer, plainScorer } from "./ports";

// Tree ensembles without onnxruntime, like LR graphs (onnx-linear.ts).
// training/onnx_export.py writes XGBoost as ai.onnx.ml.TreeEnsembleRegressor
// (SUM, no post transform, one target, base_values = [margin]) → Sigmoid →
// Reshape([-1]). onnxruntime-web runs that slower than onnxruntime-node and
// costs ~180 ms on first use in an isolate (runtime start, then session), so
// a graph of exactly that shape is read here into flat typed arrays and
// scored in plain TypeScript with the numbers model.onnx itself holds. Any
// other graph answers null and goes to onnxruntime-web.
//
// Semantics are onnxruntime's (TreeEnsembleCommon, ORT 1.30) to the bit:
// - a split compares the float32 input with the float32 threshold
//   (nodes_values), and a NaN input takes the true branch when
//   nodes_missing_value_tracks_true is 1, else the comparison's answer
//   (false for every mode but BRANCH_NEQ);
// - the leaf weights are summed in float32 (ORT's accumulator has the
//   threshold type, float for nodes_values), trees in the order they first
//   appear, starting from 0; base_values[0] is added last, in float32;
// - a tree's root is the first node listed for it (ORT takes the node at
//   which nodes_treeids changes); each tree must be listed in one run with
//   node ids 0..k-1, as the ONNX spec asks (else null).
// Rows are walked over the trees padded to complete binary trees
// (CompleteTrees: no data-dependent branch), in blocks of 64 rows, tree by
// tree, four rows at a time: ~2x faster than onnxruntime-node's own loop on
// the bench batch. Rows holding a NaN are walked again over the linked trees,
// which know each split's missing-value rule.
// Sigmoid is computed in float64 from the float32 margin: ORT's (MLAS's
// rational approximation) is within ~1e-7 of that.
//
// Modes: BRANCH_LT, BRANCH_LEQ, BRANCH_GTE, BRANCH_GT and LEAF; each split is
// turned into `x < threshold` with possibly swapped children (GTE: swap; LEQ:
// the next float32 up as threshold, since for float32 x, x <= t ⇔ x < next(t);
// GT: both). BRANCH_EQ / BRANCH_NEQ, AVERAGE / MIN / MAX, post transforms,
// several targets, double (`*_as_tensor`) attributes: null.

/** Flat arrays of a tree ensemble, every split normalized to `x < threshold`. */
export interface TreeEnsemble {
  /** Inputs per row (the manifest's features). */
  width: number;
  /** Per split node: the feature it reads. */
  feature: Int32Array;
  /** Per split node: go to `lt` when x < threshold (float32, compared exactly). */
  threshold: Float32Array;
  /** Children: a split node's index, or ~leaf (negative) for a leaf. */
  lt: Int32Array;
  /** Where x ≥ threshold (or the swapped branch) goes, x not NaN. */
  ge: Int32Array;
  /** Where a NaN x goes. */
  nan: Int32Array;
  /** Per tree: its root (a split node, or ~leaf for a tree that is one leaf). */
  roots: Int32Array;
  /** Leaf weights (float32). */
  leaves: Float32Array;
  /** base_values[0] (float32), added to the sum of the trees. */
  base: number;
  /** Whether the graph applies Sigmoid to the margin. */
  sigmoid: boolean;
  /** The same trees padded to complete binary trees, for rows without NaN; null when too deep to pad. */
  complete: CompleteTrees | null;
}

/**
 * Trees padded to complete binary trees, tree t of depth[t]: split i of tree t
 * is at splitAt[t] + i with children 2i + 1 (x < threshold) and 2i + 2, and
 * after depth[t] steps i − (2^depth − 1) is the leaf. A leaf above the bottom
 * fills all the bottom slots under it, so the padding splits below it can go
 * either way. The walk has no data-dependent branch (no misprediction, which
 * is what a pointer walk spends its time on), and walking four rows at once
 * lets their loads overlap.
 */
export interface CompleteTrees {
  depth: Int32Array;
  splitAt: Int32Array;
  /** Per tree: its first bottom slot minus (2^depth − 1), so that slot = leafAt[t] + i. */
  leafAt: Int32Array;
  feature: Int32Array;
  /** float32 values, held as float64 so the compare needs no conversion. */
  threshold: Float64Array;
  leaves: Float32Array;
}

/** Deeper trees are not padded (2^12 slots per tree at most). */
const MAX_COMPLETE_DEPTH = 12;

const ALLOWED = new Set([
  "aggregate_function",
  "base_values",
  "n_targets",
  "nodes_falsenodeids",
  "nodes_featureids",
  "nodes_hitrates",
  "nodes_missing_value_tracks_true",
  "nodes_modes",
  "nodes_nodeids",
  "nodes_treeids",
  "nodes_truenodeids",
  "nodes_values",
  "post_transform",
  "target_ids",
  "target_nodeids",
  "target_treeids",
  "target_weights",
]);

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** The smallest float32 above `t` (t finite or −∞). */
function nextFloat32(t: number): number {
  if (t === 0) return 2 ** -149;
  f32[0] = t;
  i32[0] = (i32[0] as number) + (t > 0 ? 1 : -1);
  return f32[0] as number;
}

/**
 * The ensemble of a graph that is exactly `input → TreeEnsembleRegressor
 * (ai.onnx.ml, SUM, post_transform NONE, n_targets 1) [→ Sigmoid]
 * [→ Reshape(shape = [-1])] → output`, with a float32 input of `width`
 * columns; null for any other graph (or bytes that are not an ONNX model).
 */
export function treesFromOnnx(onnx: Uint8Array, input: string, output: string, width: number): TreeEnsemble | null {
  try {
    const graph = readGraph(onnx);
    if (graph?.inputs.length !== 1 || graph.outputs.length !== 1) return null;
    const [x] = graph.inputs;
    if (x?.name !== input || x.elemType !== 1 || x.dims?.length !== 2 || x.dims[1] !== width) return null;
    if (graph.outputs[0]?.name !== output) return null;

    const [trees, ...rest] = graph.nodes;
    if (trees?.op !== "ai.onnx.ml/TreeEnsembleRegressor" || trees.inputs.join() !== input) return null;
    if (trees.outputs.length !== 1) return null;
    let last = trees.outputs[0] as string;
    let sigmoid = false;
    let reshape: OnnxNode | undefined;
    for (const node of rest) {
      if (node.inputs[0] !== last || node.outputs.length !== 1 || node.attrs.size > 0 || reshape) return null;
      if (node.op === "/Sigmoid" && !sigmoid && node.inputs.length === 1) sigmoid = true;
      else if (node.op === "/Reshape" && node.inputs.length === 2) reshape = node;
      else return null;
      last = node.outputs[0] as string;
    }
    if (last !== output) return null;
    // The only initializer allowed is Reshape's shape, and it must be [-1] (margin [N, 1] → [N]).
    if (graph.initializers.size !== (reshape ? 1 : 0)) return null;
    if (reshape) {
      const shape = graph.initializers.get(reshape.inputs[1] as string);
      if (!shape || tensorDims(shape).join() !== "1" || int64TensorValues(shape)?.join() !== "-1") return null;
    }
    const ensemble = ensembleOf(trees.attrs, width);
    return ensemble && { ...ensemble, sigmoid };
  } catch {
    return null;
  }
}

function ensembleOf(attrs: Map<string, Attribute>, width: number): Omit<TreeEnsemble, "sigmoid"> | null {
  for (const name of attrs.keys()) if (!ALLOWED.has(name)) return null;
  if (stringOf(attrs.get("aggregate_function"), "SUM") !== "SUM") return null;
  if (stringOf(attrs.get("post_transform"), "NONE") !== "NONE") return null;
  if (intOf(attrs.get("n_targets"), 0) !== 1) return null;
  const ints = (name: string) => intsOf(attrs.get(name)) ?? [];
  const treeIds = ints("nodes_treeids");
  const nodeIds = ints("nodes_nodeids");
  const featureIds = ints("nodes_featureids");
  const trueIds = ints("nodes_truenodeids");
  const falseIds = ints("nodes_falsenodeids");
  const tracks = ints("nodes_missing_value_tracks_true");
  const modes = stringsOf(attrs.get("nodes_modes")) ?? [];
  const values = floatsOf(attrs.get("nodes_values")) ?? [];
  const n = treeIds.length;
  if (n === 0 || tracks.length > n) return null;
  for (const list of [nodeIds, featureIds, trueIds, falseIds, modes, values]) if (list.length !== n) return null;
  const base = floatsOf(attrs.get("base_values")) ?? [];
  if (base.length > 1) return null;

  // Trees in order, each listed in one run whose first node is its root (as ORT takes it), with
  // node ids 0..k-1 (as the ONNX spec asks): node (tree, id) is at runStart[tree] + id.
  const runOf = new Map<number, number>();
  const runStart: number[] = [];
  const at = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const tree = treeIds[i] as number;
    if (i === 0 || tree !== treeIds[i - 1]) {
      if (runOf.has(tree)) return null;
      runOf.set(tree, runStart.length);
      runStart.push(i);
    }
    const start = runStart[runStart.length - 1] as number;
    const id = nodeIds[i] as number;
    if (!(id >= 0 && start + id < n) || at[start + id] !== -1) return null;
    at[start + id] = i;
    const feature = featureIds[i] as number;
    if (!(feature >= 0 && feature < width)) return null; // ORT refuses a feature id beyond the input, even a leaf's
  }
  const runEnd = (run: number) => runStart[run + 1] ?? n;
  /** The position of node `id` of the tree whose run is `run`; -1 when there is none. */
  const positionIn = (run: number | undefined, id: number) => {
    if (run === undefined) return -1;
    const start = runStart[run] as number;
    return id >= 0 && start + id < runEnd(run) ? (at[start + id] as number) : -1;
  };
  const runAt = new Int32Array(n);
  for (let r = 0; r < runStart.length; r++) runAt.fill(r, runStart[r], runEnd(r));
  // Ids dense within each run: every slot of the run is taken.
  for (let r = 0; r < runStart.length; r++) {
    for (let k = runStart[r] as number; k < runEnd(r); k++) if (at[k] === -1) return null;
  }
  const roots = runStart;

  // One weight per leaf, target 0; none on a split.
  const targetTrees = ints("target_treeids");
  const targetNodes = ints("target_nodeids");
  const targetIds = ints("target_ids");
  const weights = floatsOf(attrs.get("target_weights")) ?? [];
  const m = targetTrees.length;
  if (targetNodes.length !== m || targetIds.length !== m || weights.length !== m) return null;
  const weightOf = new Float64Array(n).fill(Number.NaN);
  for (let j = 0; j < m; j++) {
    const i = positionIn(runOf.get(targetTrees[j] as number), targetNodes[j] as number);
    const w = weights[j] as number;
    if (i < 0 || targetIds[j] !== 0 || !Number.isNaN(weightOf[i] as number) || modes[i] !== "LEAF" || Number.isNaN(w))
      return null;
    weightOf[i] = w;
  }

  // Number leaves and splits in one pass, then link children (resolved within the tree).
  const index = new Int32Array(n);
  const leaves: number[] = [];
  let splits = 0;
  for (let i = 0; i < n; i++) {
    if (modes[i] === "LEAF") {
      const w = weightOf[i] as number;
      if (Number.isNaN(w)) return null;
      index[i] = ~leaves.length;
      leaves.push(w);
    } else index[i] = splits++;
  }
  const feature = new Int32Array(splits);
  const threshold = new Float32Array(splits);
  const lt = new Int32Array(splits);
  const ge = new Int32Array(splits);
  const nan = new Int32Array(splits);
  for (let i = 0; i < n; i++) {
    if (modes[i] === "LEAF") continue;
    const s = index[i] as number;
    const yesAt = positionIn(runAt[i], trueIds[i] as number);
    const noAt = positionIn(runAt[i], falseIds[i] as number);
    if (yesAt < 0 || noAt < 0 || yesAt === i || noAt === i) return null;
    const yes = index[yesAt] as number;
    const no = index[noAt] as number;
    const t = values[i] as number;
    const mode = modes[i];
    // x < t, x <= t ⇔ x < next(t), x >= t ⇔ !(x < t), x > t ⇔ !(x < next(t)); NaN compares false.
    if (Number.isNaN(t) || ((mode === "BRANCH_LEQ" || mode === "BRANCH_GT") && t === Number.POSITIVE_INFINITY))
      return null;
    if (mode === "BRANCH_LT" || mode === "BRANCH_LEQ") {
      lt[s] = yes;
      ge[s] = no;
    } else if (mode === "BRANCH_GTE" || mode === "BRANCH_GT") {
      lt[s] = no;
      ge[s] = yes;
    } else return null;
    threshold[s] = mode === "BRANCH_LEQ" || mode === "BRANCH_GT" ? nextFloat32(t) : t;
    feature[s] = featureIds[i] as number;
    nan[s] = tracks[i] === 1 ? yes : no;
  }
  const rootIndex = Int32Array.from(roots, (i) => index[i] as number);
  const depth = depths(rootIndex, lt, ge);
  if (!depth) return null;
  const trees = { width, feature, threshold, lt, ge, nan, roots: rootIndex, leaves: Float32Array.from(leaves) };
  return { ...trees, base: base[0] ?? 0, complete: completeTrees(trees, depth) };
}

/** Each tree's depth (splits on its longest path); null unless every tree is a tree (no split reached twice: no cycle). */
function depths(roots: Int32Array, lt: Int32Array, ge: Int32Array): Int32Array | null {
  const seen = new Uint8Array(lt.length);
  const out = new Int32Array(roots.length);
  for (let t = 0; t < roots.length; t++) {
    const stack = [roots[t] as number, 0];
    let deepest = 0;
    while (stack.length > 0) {
      const d = stack.pop() as number;
      const s = stack.pop() as number;
      deepest = Math.max(deepest, d);
      if (s < 0) continue;
      if (seen[s]) return null;
      seen[s] = 1;
      stack.push(lt[s] as number, d + 1, ge[s] as number, d + 1);
    }
    out[t] = deepest;
  }
  return out;
}

type Linked = Pick<TreeEnsemble, "feature" | "threshold" | "lt" | "ge" | "roots" | "leaves">;

function completeTrees(trees: Linked, depth: Int32Array): CompleteTrees | null {
  const count = depth.length;
  const splitAt = new Int32Array(count);
  const leafAt = new Int32Array(count);
  let splits = 0;
  let slots = 0;
  for (let t = 0; t < count; t++) {
    const d = depth[t] as number;
    if (d > MAX_COMPLETE_DEPTH) return null;
    splitAt[t] = splits;
    leafAt[t] = slots - (2 ** d - 1);
    splits += 2 ** d - 1;
    slots += 2 ** d;
  }
  // Lopsided trees would pad to far more than they hold: keep the pointer walk for those.
  if (splits > 8 * trees.feature.length + 4096) return null;
  const feature = new Int32Array(splits);
  const threshold = new Float64Array(splits);
  const leaves = new Float32Array(slots);
  for (let t = 0; t < count; t++) {
    const d = depth[t] as number;
    // [node, complete index, level]
    const stack = [trees.roots[t] as number, 0, 0];
    while (stack.length > 0) {
      const level = stack.pop() as number;
      const i = stack.pop() as number;
      const s = stack.pop() as number;
      if (s < 0) {
        const below = 2 ** (d - level);
        leaves.fill(
          trees.leaves[~s] as number,
          (leafAt[t] as number) + (i + 1) * below - 1,
          (leafAt[t] as number) + (i + 2) * below - 1,
        );
        continue;
      }
      feature[(splitAt[t] as number) + i] = trees.feature[s] as number;
      threshold[(splitAt[t] as number) + i] = trees.threshold[s] as number;
      stack.push(trees.lt[s] as number, 2 * i + 1, level + 1, trees.ge[s] as number, 2 * i + 2, level + 1);
    }
  }
  return { depth, splitAt, leafAt, feature, threshold, leaves };
}

export function treeEnsembleScorer(key: ModelKey, manifest: ModelManifest, ensemble: TreeEnsemble): ModelScorer {
  if (ensemble.width !== manifest.features.length) throw new Error("ensemble width differs from the manifest's");
  return plainScorer(key, manifest, "trees", (matrix, rows) => scoreTrees(ensemble, matrix, rows));
}

/** The synchronous core, exported for the bench's inner loop: one score per row (the margin without Sigmoid). */
export function scoreTrees(ensemble: TreeEnsemble, matrix: Float32Array, rows: number): Float32Array {
  const { width, base, sigmoid, complete } = ensemble;
  if (matrix.length !== rows * width)
    throw new Error(`matrix has ${matrix.length} values, expected ${rows} × ${width}`);
  // Float32Array: every `sums[r] = sums[r] + leaf` rounds to float32, as ORT's float accumulator does.
  const sums = new Float32Array(rows);
  if (complete) {
    sumComplete(complete, width, matrix, rows, sums);
    // NaN follows per-split rules the padded walk does not know: those rows again, the long way.
    // (featureMatrix never leaves a NaN: this is for matrices built otherwise.)
    for (let i = 0; i < matrix.length; i++) {
      if (Number.isNaN(matrix[i])) {
        const r = Math.floor(i / width);
        sums[r] = sumLinked(ensemble, matrix, r * width);
        i = (r + 1) * width - 1;
      }
    }
  } else {
    for (let r = 0; r < rows; r++) sums[r] = sumLinked(ensemble, matrix, r * width);
  }
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const margin = Math.fround((sums[r] as number) + base);
    out[r] = sigmoid ? 1 / (1 + Math.exp(-margin)) : margin;
  }
  return out;
}

/** One row's sum of leaves, in float32, walking the linked trees (NaN rules included). */
function sumLinked(ensemble: TreeEnsemble, matrix: Float32Array, at: number): number {
  const { feature, threshold, lt, ge, nan, roots, leaves } = ensemble;
  let sum = 0;
  for (let t = 0; t < roots.length; t++) {
    let s = roots[t] as number;
    while (s >= 0) {
      const x = matrix[at + (feature[s] as number)] as number;
      s = (x < (threshold[s] as number) ? lt[s] : Number.isNaN(x) ? nan[s] : ge[s]) as number;
    }
    sum = Math.fround(sum + (leaves[~s] as number));
  }
  return sum;
}

/** Rows in blocks that stay in cache; per block tree by tree (trees in order: the same float32 sums), four rows at a time. */
function sumComplete(c: CompleteTrees, width: number, matrix: Float32Array, rows: number, sums: Float32Array): void {
  const { depth, splitAt, leafAt, feature, threshold, leaves } = c;
  const BLOCK = 64;
  for (let r0 = 0; r0 < rows; r0 += BLOCK) {
    const r1 = Math.min(rows, r0 + BLOCK);
    const r4 = r0 + ((r1 - r0) & ~3);
    for (let t = 0; t < depth.length; t++) {
      const d = depth[t] as number;
      const sa = splitAt[t] as number;
      const la = leafAt[t] as number;
      let r = r0;
      for (; r < r4; r += 4) {
        const a0 = r * width;
        const a1 = a0 + width;
        const a2 = a1 + width;
        const a3 = a2 + width;
        let i0 = 0;
        let i1 = 0;
        let i2 = 0;
        let i3 = 0;
        for (let level = 0; level < d; level++) {
          const k0 = sa + i0;
          const k1 = sa + i1;
          const k2 = sa + i2;
          const k3 = sa + i3;
          // `+(x >= t)`: 0 or 1 without a branch (x < t goes to 2i + 1).
          i0 = 2 * i0 + 1 + +((matrix[a0 + (feature[k0] as number)] as number) >= (threshold[k0] as number));
          i1 = 2 * i1 + 1 + +((matrix[a1 + (feature[k1] as number)] as number) >= (threshold[k1] as number));
          i2 = 2 * i2 + 1 + +((matrix[a2 + (feature[k2] as number)] as number) >= (threshold[k2] as number));
          i3 = 2 * i3 + 1 + +((matrix[a3 + (feature[k3] as number)] as number) >= (threshold[k3] as number));
        }
        sums[r] = (sums[r] as number) + (leaves[la + i0] as number);
        sums[r + 1] = (sums[r + 1] as number) + (leaves[la + i1] as number);
        sums[r + 2] = (sums[r + 2] as number) + (leaves[la + i2] as number);
        sums[r + 3] = (sums[r + 3] as number) + (leaves[la + i3] as number);
      }
      for (; r < r1; r++) {
        const a = r * width;
        let i = 0;
        for (let level = 0; level < d; level++) {
          const k = sa + i;
          i = 2 * i + 1 + +((matrix[a + (feature[k] as number)] as number) >= (threshold[k] as number));
        }
        sums[r] = (sums[r] as number) + (leaves[la + i] as number);
      }
    }
  }
}
