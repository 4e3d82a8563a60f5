"""Export a fitted model to ONNX plus the manifest the Worker loads.

No converter packages (skl2onnx, onnxmltools) exist here, so the graphs are
built with ``onnx.helper`` directly:

* ``lr``: two nodes, ``features -> ai.onnx.ml.LinearRegressor -> Sigmoid ->
  score`` [N, 1], with the standardization folded into the weights in float64
  (w = coef / scale, b = intercept - sum(w * mean)). ORT's fixed cost is per
  node: the six-node graph below took 2.9x onnxruntime-node's time in
  onnxruntime-web at batch 500, this one about 1.5x. Folding subtracts large,
  nearly equal numbers in float32 when a feature's mean is large, so when the
  folded graph misses the native scores by more than a tenth of the parity
  tolerance the exporter writes the unfolded graph instead:
  ``features -> Sub(mean) -> Div(scale) -> MatMul(coef) -> Add(intercept) ->
  Sigmoid -> Reshape([-1]) -> score``.
* ``xgboost``: ``features -> ai.onnx.ml.TreeEnsembleRegressor (margin) ->
  Sigmoid -> Reshape([-1]) -> score``, read from the booster's full JSON model
  (not ``get_dump``): thresholds and leaf values there are the exact float32
  values xgboost compares and adds.

Opsets: ai.onnx 17 and ai.onnx.ml 3 (TreeEnsembleRegressor v3, not the v5
TreeEnsemble), IR version 8: all supported by onnxruntime-web/-node 1.30.

Files written to ``out_dir``:

* ``model.onnx``: input ``features`` float32 [N, F], output ``score`` float32 [N].
* ``manifest.json``: see ``write_model``.
* ``parity.json``: up to 64 sample rows (float32 values; NaN written as null)
  and the scores of the NATIVE Python model for them. Before writing, the ONNX
  graph is evaluated on those rows and must match to 1e-5.
* ``linear.json`` (lr only): ``{features, mean, scale, coef, intercept}`` so the
  plain TypeScript scorer (src/models/linear.ts) can score without parsing ONNX.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ONNX_OPSET = 17
ML_OPSET = 3
IR_VERSION = 8
PARITY_ROWS = 64
PARITY_TOLERANCE = 1e-5

INPUT_NAME = "features"
OUTPUT_NAME = "score"


def write_model(
    out_dir: str,
    *,
    kind: str,
    model,
    source: str,
    name: str,
    version: str,
    features: list[dict],
    output_meaning: str,
    metrics: dict,
    X_sample: "np.ndarray",
    feature_stats: dict | None = None,
) -> dict:
    """Write model.onnx, manifest.json and parity.json (and linear.json for lr).

    ``kind`` is "lr" (a fitted sklearn Pipeline(StandardScaler, LogisticRegression)
    or a bare LogisticRegression) or "xgboost" (an XGBClassifier or a Booster with
    objective binary:logistic). ``features`` lists ``{"name", "default"}`` in
    model input order. ``feature_stats`` (feature_stats.feature_stats of the
    training rows: mean, std, min, max, missing_rate per feature) goes into the
    manifest as is; the Worker measures served-feature drift against it.
    Returns the manifest dict.
    """
    names = [str(f["name"]) for f in features]
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    n_features = len(names)
    rows = np.asarray(X_sample, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != n_features:
        raise ValueError(f"X_sample must be [N, {n_features}], got {rows.shape}")
    rows = rows[:PARITY_ROWS]
    if rows.shape[0] == 0:
        raise ValueError("X_sample has no rows")

    extra: dict[str, dict] = {}
    if kind == "lr":
        params = linear_params(model, n_features)
        native = _native_lr_scores(model, rows)
        graph_model = build_lr_onnx(params, n_features, name)
        if not _max_diff(graph_model, rows, native) <= PARITY_TOLERANCE / 10:
            graph_model = build_lr_onnx_standardized(params, n_features, name)
        extra["linear.json"] = {
            "features": names,
            "mean": params["mean"].tolist(),
            "scale": params["scale"].tolist(),
            "coef": params["coef"].tolist(),
            "intercept": float(params["intercept"]),
        }
    elif kind == "xgboost":
        booster = _booster(model)
        graph_model = build_xgboost_onnx(booster, n_features, name)
        native = _native_xgboost_scores(model, rows)
    else:
        raise ValueError(f"unknown kind {kind!r} (expected 'lr' or 'xgboost')")

    onnx.checker.check_model(graph_model)
    worst = _max_diff(graph_model, rows, native)
    if not worst <= PARITY_TOLERANCE:
        raise AssertionError(f"ONNX graph differs from the native model by {worst:.3g} (> {PARITY_TOLERANCE})")

    manifest = {
        "name": name,
        "source": source,
        "kind": kind,
        "version": version,
        "features": [{"name": n, "default": float(f["default"])} for n, f in zip(names, features)],
        "input": INPUT_NAME,
        "output": {"name": OUTPUT_NAME, "meaning": output_meaning},
        "metrics": _jsonable(metrics),
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    if feature_stats is not None:
        unknown = set(feature_stats) - set(names)
        if unknown or len(feature_stats) != len(names):
            raise ValueError(f"feature_stats must cover exactly the features (extra: {sorted(unknown)})")
        manifest["feature_stats"] = {n: feature_stats[n] for n in names}
    parity = {
        "features": names,
        "rows": [[_json_float(v) for v in row] for row in rows.tolist()],
        "scores": [float(s) for s in np.asarray(native, dtype=np.float64)],
    }

    os.makedirs(out_dir, exist_ok=True)
    onnx.save_model(graph_model, os.path.join(out_dir, "model.onnx"))
    _write_json(os.path.join(out_dir, "manifest.json"), manifest)
    _write_json(os.path.join(out_dir, "parity.json"), parity)
    for file, doc in extra.items():
        _write_json(os.path.join(out_dir, file), doc)
    return manifest


# --- logistic regression -------------------------------------------------------


def linear_params(model, n_features: int) -> dict:
    """mean, scale, coef (float64 [F]) and intercept of a (scaled) binary LR."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in model.steps] if isinstance(model, Pipeline) else [model]
    steps = [s for s in steps if s is not None and s != "passthrough"]
    lr = steps[-1]
    if not isinstance(lr, LogisticRegression):
        raise ValueError("the last step must be a LogisticRegression")
    if len(steps) > 2 or (len(steps) == 2 and not isinstance(steps[0], StandardScaler)):
        raise ValueError("only Pipeline(StandardScaler, LogisticRegression) or a bare LogisticRegression is supported")
    coef = np.asarray(lr.coef_, dtype=np.float64)
    if coef.shape != (1, n_features):
        raise ValueError(f"expected a binary LR over {n_features} features, coef_ is {coef.shape}")
    mean = np.zeros(n_features)
    scale = np.ones(n_features)
    if len(steps) == 2:
        scaler = steps[0]
        if scaler.with_mean:
            mean = np.asarray(scaler.mean_, dtype=np.float64)
        if scaler.with_std:
            scale = np.asarray(scaler.scale_, dtype=np.float64)
    return {"mean": mean, "scale": scale, "coef": coef[0], "intercept": float(np.asarray(lr.intercept_)[0])}


def _max_diff(graph_model: onnx.ModelProto, rows: np.ndarray, native) -> float:
    got = evaluate(graph_model, rows).astype(np.float64).ravel()
    return float(np.max(np.abs(got - np.asarray(native, dtype=np.float64).ravel())))


def build_lr_onnx(params: dict, n_features: int, graph_name: str = "lr") -> onnx.ModelProto:
    """One LinearRegressor node with the standardization folded in (see the module note)."""
    mean = np.asarray(params["mean"], dtype=np.float64).reshape(n_features)
    scale = np.asarray(params["scale"], dtype=np.float64).reshape(n_features)
    w = np.asarray(params["coef"], dtype=np.float64).reshape(n_features) / scale
    b = float(params["intercept"]) - float(np.sum(w * mean))
    # post_transform stays NONE: onnxruntime (1.30, web and node) ignores LOGISTIC
    # on LinearRegressor and returns the margin, so the sigmoid is its own node.
    nodes = [
        helper.make_node(
            "LinearRegressor",
            [INPUT_NAME],
            ["margin"],
            domain="ai.onnx.ml",
            coefficients=[float(v) for v in w],
            intercepts=[b],
            targets=1,
        ),
        helper.make_node("Sigmoid", ["margin"], [OUTPUT_NAME]),
    ]
    # [N, 1]: the same N values the Worker reads as score[N].
    return _model(nodes, [], n_features, graph_name, output_shape=["N", 1])


def build_lr_onnx_standardized(params: dict, n_features: int, graph_name: str = "lr") -> onnx.ModelProto:
    f32 = np.float32
    inits = [
        numpy_helper.from_array(params["mean"].astype(f32).reshape(1, n_features), "mean"),
        numpy_helper.from_array(params["scale"].astype(f32).reshape(1, n_features), "scale"),
        numpy_helper.from_array(params["coef"].astype(f32).reshape(n_features, 1), "coef"),
        numpy_helper.from_array(np.array([params["intercept"]], dtype=f32), "intercept"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "mean"], ["centered"]),
        helper.make_node("Div", ["centered", "scale"], ["standardized"]),
        helper.make_node("MatMul", ["standardized", "coef"], ["dot"]),
        helper.make_node("Add", ["dot", "intercept"], ["margin"]),
        helper.make_node("Sigmoid", ["margin"], ["probability"]),
        helper.make_node("Reshape", ["probability", "flat"], [OUTPUT_NAME]),
    ]
    return _model(nodes, inits, n_features, graph_name)


def _native_lr_scores(model, rows: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(rows.astype(np.float64))[:, 1], dtype=np.float64)


# --- xgboost --------------------------------------------------------------------

_LOGISTIC_OBJECTIVES = {"binary:logistic", "reg:logistic"}


def _booster(model):
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return model
    if hasattr(model, "get_booster"):
        missing = model.get_params().get("missing", np.nan)
        if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
            raise ValueError("only missing=np.nan is supported (the ONNX graph treats NaN as missing)")
        return model.get_booster()
    raise ValueError("expected an xgboost Booster or XGBClassifier")


def _booster_json(booster) -> dict:
    # save_raw("json") exists from xgboost 1.6; it is the same document save_model writes.
    return json.loads(bytes(booster.save_raw(raw_format="json")).decode("utf-8"))


def _rounds_used(booster) -> int | None:
    """Boosting rounds predict() uses: best_iteration + 1 after early stopping, else all."""
    best = booster.attr("best_iteration")
    return None if best is None else int(best) + 1


def build_xgboost_onnx(booster, n_features: int, graph_name: str = "xgboost") -> onnx.ModelProto:
    doc = _booster_json(booster)
    learner = doc["learner"]
    objective = learner["objective"]["name"]
    if objective not in _LOGISTIC_OBJECTIVES | {"binary:logitraw"}:
        raise ValueError(f"unsupported objective {objective!r} (expected binary:logistic)")
    gb = learner["gradient_booster"]
    if gb["name"] != "gbtree":
        raise ValueError(f"unsupported booster {gb['name']!r} (only gbtree; dart weights trees differently)")
    model = gb["model"]
    if int(learner["learner_model_param"].get("num_class", "0")) > 1:
        raise ValueError("multi-class models are not supported")
    trees = model["trees"]
    rounds = _rounds_used(booster)
    if rounds is not None:
        per_round = int(model["gbtree_model_param"].get("num_parallel_tree", "1"))
        trees = trees[: rounds * per_round]

    # base_score is stored as a probability for logistic objectives (xgboost 1.x
    # and 2.x alike); predictions start from its logit in margin space.
    # xgboost >= 3 writes a vector ("[5E-1]"); binary models have one entry.
    base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]").split(",")[0])
    if objective in _LOGISTIC_OBJECTIVES:
        if not 0.0 < base_score < 1.0:
            raise ValueError(f"base_score {base_score} is not a probability")
        base_margin = math.log(base_score / (1.0 - base_score))
    else:
        base_margin = base_score

    a: dict[str, list] = {
        k: []
        for k in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for tree_id, tree in enumerate(trees):
        if any(int(t) != 0 for t in tree.get("split_type", [])):
            raise ValueError("categorical splits are not supported")
        left = tree["left_children"]
        right = tree["right_children"]
        cond = tree["split_conditions"]
        feat = tree["split_indices"]
        default_left = tree["default_left"]
        for node in range(len(left)):
            a["nodes_treeids"].append(tree_id)
            a["nodes_nodeids"].append(node)
            if left[node] == -1:
                # A leaf: xgboost keeps the (learning-rate scaled) leaf value in split_conditions.
                a["nodes_featureids"].append(0)
                a["nodes_values"].append(0.0)
                a["nodes_modes"].append("LEAF")
                a["nodes_truenodeids"].append(0)
                a["nodes_falsenodeids"].append(0)
                a["nodes_missing_value_tracks_true"].append(0)
                a["target_treeids"].append(tree_id)
                a["target_nodeids"].append(node)
                a["target_ids"].append(0)
                a["target_weights"].append(float(np.float32(cond[node])))
            else:
                fid = int(feat[node])
                if not 0 <= fid < n_features:
                    raise ValueError(f"tree {tree_id} splits on feature {fid}, model has {n_features}")
                # xgboost goes left ("yes") when x < threshold, compared in float32,
                # and left on NaN when default_left: BRANCH_LT's true branch.
                a["nodes_featureids"].append(fid)
                a["nodes_values"].append(float(np.float32(cond[node])))
                a["nodes_modes"].append("BRANCH_LT")
                a["nodes_truenodeids"].append(int(left[node]))
                a["nodes_falsenodeids"].append(int(right[node]))
                a["nodes_missing_value_tracks_true"].append(1 if int(default_left[node]) else 0)

    ensemble = helper.make_node(
        "TreeEnsembleRegressor",
        [INPUT_NAME],
        ["margin"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[float(base_margin)],
        **a,
    )
    nodes = [ensemble]
    if objective in _LOGISTIC_OBJECTIVES:
        nodes.append(helper.make_node("Sigmoid", ["margin"], ["probability"]))
        nodes.append(helper.make_node("Reshape", ["probability", "flat"], [OUTPUT_NAME]))
    else:
        nodes.append(helper.make_node("Reshape", ["margin", "flat"], [OUTPUT_NAME]))
    inits = [numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat")]
    return _model(nodes, inits, n_features, graph_name)


def _native_xgboost_scores(model, rows: np.ndarray) -> np.ndarray:
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        rounds = _rounds_used(model)
        dm = xgb.DMatrix(rows, missing=np.nan)
        out = model.predict(dm, iteration_range=(0, rounds or 0))
    else:
        out = model.predict_proba(rows)[:, 1]
    return np.asarray(out, dtype=np.float64)


# --- graph helpers ----------------------------------------------------------------


def _model(nodes, inits, n_features: int, graph_name: str, output_shape=("N",)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        graph_name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, list(output_shape))],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    if any(n.domain == "ai.onnx.ml" for n in nodes):
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="edge-collab training/onnx_export.py")
    model.ir_version = IR_VERSION
    return model


def evaluate(model: onnx.ModelProto, rows: np.ndarray) -> np.ndarray:
    """Scores (flat) of the graph on float32 rows: onnx.reference when this onnx has it (>= 1.13),
    else the small float32 interpreter below (covers exactly the ops this module emits)."""
    x = np.asarray(rows, dtype=np.float32)
    try:
        from onnx.reference import ReferenceEvaluator  # type: ignore[import-not-found]
    except ImportError:
        return _interpret(model, x).reshape(-1)
    # score[N] whether the graph ends in [N] or [N, 1]
    return np.asarray(ReferenceEvaluator(model).run(None, {INPUT_NAME: x})[0]).reshape(-1)


def _interpret(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    values: dict[str, np.ndarray] = {INPUT_NAME: x}
    for init in model.graph.initializer:
        values[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        ins = [values[i] for i in node.input]
        op = node.op_type
        if op == "Sub":
            out = ins[0] - ins[1]
        elif op == "Div":
            out = ins[0] / ins[1]
        elif op == "Mul":
            out = ins[0] * ins[1]
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "MatMul":
            out = np.matmul(ins[0], ins[1])
        elif op == "Sigmoid":
            out = (1.0 / (1.0 + np.exp(-ins[0].astype(np.float64)))).astype(np.float32)
        elif op == "Reshape":
            out = ins[0].reshape(tuple(int(d) for d in ins[1]))
        elif op == "LinearRegressor" and node.domain == "ai.onnx.ml":
            out = _linear_regressor(node, ins[0])
        elif op == "TreeEnsembleRegressor" and node.domain == "ai.onnx.ml":
            out = _tree_ensemble(node, ins[0])
        else:
            raise NotImplementedError(f"interpreter has no {node.domain or 'ai.onnx'}.{op}")
        values[node.output[0]] = np.asarray(out, dtype=np.float32)
    return values[model.graph.output[0].name]


def _linear_regressor(node, x: np.ndarray) -> np.ndarray:
    """ORT's LinearRegressor in float32: x @ coefficients + intercepts."""
    at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    targets = int(at.get("targets", 1))
    coef = np.asarray(at["coefficients"], dtype=np.float32).reshape(targets, -1).T
    z = x.astype(np.float32) @ coef + np.asarray(at.get("intercepts", [0.0] * targets), dtype=np.float32)
    post = at.get("post_transform", b"NONE")
    if (post.decode() if isinstance(post, bytes) else post) != "NONE":
        raise NotImplementedError("interpreter supports LinearRegressor post_transform NONE only (as onnxruntime does)")
    return z


def _tree_ensemble(node, x: np.ndarray) -> np.ndarray:
    at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if at.get("aggregate_function", b"SUM") not in (b"SUM", "SUM") or at.get("post_transform", b"NONE") not in (
        b"NONE",
        "NONE",
    ):
        raise NotImplementedError("interpreter supports SUM / NONE only")
    nodes: dict[tuple[int, int], tuple] = {}
    for i, (t, n) in enumerate(zip(at["nodes_treeids"], at["nodes_nodeids"])):
        tracks = at.get("nodes_missing_value_tracks_true", [])
        nodes[(t, n)] = (
            at["nodes_modes"][i].decode() if isinstance(at["nodes_modes"][i], bytes) else at["nodes_modes"][i],
            at["nodes_featureids"][i],
            np.float32(at["nodes_values"][i]),
            at["nodes_truenodeids"][i],
            at["nodes_falsenodeids"][i],
            bool(tracks[i]) if i < len(tracks) else False,
        )
    leaf: dict[tuple[int, int], float] = {}
    for t, n, w in zip(at["target_treeids"], at["target_nodeids"], at["target_weights"]):
        leaf[(t, n)] = leaf.get((t, n), 0.0) + float(np.float32(w))
    # Vectorized over rows: every row walks each tree from its root at once (the
    # same comparisons and the same float64 sum over trees, in tree order, as a row-by-row walk).
    keys = list(nodes)
    index = {key: i for i, key in enumerate(keys)}
    is_leaf = np.array([nodes[k][0] == "LEAF" for k in keys], dtype=bool)
    for k in keys:
        if nodes[k][0] not in ("LEAF", "BRANCH_LT"):
            raise NotImplementedError(f"interpreter has no {nodes[k][0]}")
    fid = np.array([nodes[k][1] for k in keys], dtype=np.int64)
    thr = np.array([nodes[k][2] for k in keys], dtype=np.float32)
    yes = np.array([index[(k[0], nodes[k][3])] if not is_leaf[i] else i for i, k in enumerate(keys)], dtype=np.int64)
    no = np.array([index[(k[0], nodes[k][4])] if not is_leaf[i] else i for i, k in enumerate(keys)], dtype=np.int64)
    tracks = np.array([nodes[k][5] for k in keys], dtype=bool)
    value = np.array([leaf.get(k, 0.0) for k in keys], dtype=np.float64)
    trees = sorted({t for t, _ in nodes})
    base = float(at.get("base_values", [0.0])[0])
    n_rows = x.shape[0]
    rows = np.arange(n_rows)
    total = np.zeros(n_rows, dtype=np.float64)
    for t in trees:
        cur = np.full(n_rows, index[(t, 0)], dtype=np.int64)
        while True:
            active = ~is_leaf[cur]
            if not active.any():
                break
            c = cur[active]
            v = x[rows[active], fid[c]]
            go_yes = (v < thr[c]) | (tracks[c] & np.isnan(v))
            cur[active] = np.where(go_yes, yes[c], no[c])
        total += value[cur]
    return (total + base).astype(np.float32).reshape(n_rows, 1)


def _json_float(v: float):
    return None if not math.isfinite(v) else float(v)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _write_json(path: str, doc: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")


def reexport_lr(model_dir: str) -> str:
    """Rebuild an lr folder's model.onnx from its linear.json with this module's
    graph, checked against the native scores its parity.json recorded (the
    manifest and parity rows stay as trained). Returns the graph's op types."""
    with open(os.path.join(model_dir, "linear.json")) as f:
        lin = json.load(f)
    with open(os.path.join(model_dir, "parity.json")) as f:
        parity = json.load(f)
    with open(os.path.join(model_dir, "manifest.json")) as f:
        name = json.load(f)["name"]
    n = len(lin["features"])
    params = {k: np.asarray(lin[k], dtype=np.float64) for k in ("mean", "scale", "coef")}
    params["intercept"] = float(lin["intercept"])
    rows = np.array([[np.nan if v is None else v for v in r] for r in parity["rows"]], dtype=np.float32)
    native = np.asarray(parity["scores"], dtype=np.float64)
    graph_model = build_lr_onnx(params, n, name)
    if not _max_diff(graph_model, rows, native) <= PARITY_TOLERANCE / 10:
        graph_model = build_lr_onnx_standardized(params, n, name)
    onnx.checker.check_model(graph_model)
    worst = _max_diff(graph_model, rows, native)
    if not worst <= PARITY_TOLERANCE:
        raise AssertionError(f"{model_dir}: ONNX graph differs from the recorded native scores by {worst:.3g}")
    onnx.save(graph_model, os.path.join(model_dir, "model.onnx"))
    return " ".join(node.op_type for node in graph_model.graph.node)


if __name__ == "__main__":
    import sys

    # python3 training/onnx_export.py reexport-lr DIR...: rebuild lr folders' graphs (after a change to build_lr_onnx)
    if len(sys.argv) < 3 or sys.argv[1] != "reexport-lr":
        sys.exit("usage: onnx_export.py reexport-lr MODEL_DIR...")
    for d in sys.argv[2:]:
        print(d, reexport_lr(d))
