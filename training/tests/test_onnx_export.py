"""Unit tests for training/onnx_export.py.

Run: /usr/bin/python3 -m unittest discover -s training/tests -v
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import onnx_export  # noqa: E402
from onnx_export import build_xgboost_onnx, evaluate, write_model  # noqa: E402

F = 6
FEATURES = [{"name": f"x{i}", "default": float(i) / 2} for i in range(F)]


def synthetic(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(seed)
    x = rs.randn(n, F)
    # One feature with a large mean and spread, one discrete: both stress float32.
    x[:, 3] = 5000 + 300 * x[:, 3]
    x[:, 4] = rs.randint(0, 5, n)
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.004 * (x[:, 3] - 5000) + 0.5 * x[:, 4] - 1
    y = (rs.rand(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x.astype(np.float32), y


def xgb_thresholds(booster) -> list[tuple[int, float]]:
    doc = json.loads(bytes(booster.save_raw(raw_format="json")).decode())
    out = []
    for tree in doc["learner"]["gradient_booster"]["model"]["trees"]:
        for i, left in enumerate(tree["left_children"]):
            if left != -1:
                out.append((int(tree["split_indices"][i]), float(np.float32(tree["split_conditions"][i]))))
    return out


def native_proba(model, rows: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(rows)[:, 1], dtype=np.float64)


class LogisticRegressionExport(unittest.TestCase):
    def setUp(self) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.x, self.y = synthetic(3000)
        self.pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(self.x, self.y)
        self.bare = LogisticRegression(max_iter=2000).fit(self.x, self.y)
        self.dir = tempfile.mkdtemp()

    def test_pipeline_parity_and_files(self) -> None:
        manifest = write_model(
            self.dir,
            kind="lr",
            model=self.pipeline,
            source="test",
            name="lr",
            version="2026-01-01",
            features=FEATURES,
            output_meaning="probability of a click",
            metrics={"auc": np.float64(0.75), "nan": float("nan")},
            X_sample=self.x[:200],
        )
        self.assertEqual(manifest["input"], "features")
        self.assertEqual(manifest["output"], {"name": "score", "meaning": "probability of a click"})
        self.assertEqual([f["name"] for f in manifest["features"]], [f["name"] for f in FEATURES])
        self.assertEqual(manifest["metrics"], {"auc": 0.75, "nan": None})
        for f in ("model.onnx", "manifest.json", "parity.json", "linear.json"):
            self.assertTrue(os.path.exists(os.path.join(self.dir, f)), f)
        with open(os.path.join(self.dir, "manifest.json")) as fh:
            self.assertEqual(json.load(fh), manifest)
        with open(os.path.join(self.dir, "parity.json")) as fh:
            parity = json.load(fh)
        self.assertEqual(len(parity["rows"]), 64)
        self.assertEqual(len(parity["scores"]), 64)
        rows = np.asarray(parity["rows"], dtype=np.float32).astype(np.float64)
        np.testing.assert_allclose(parity["scores"], native_proba(self.pipeline, rows), atol=1e-12)
        # The graph written to disk evaluates to the same scores.
        import onnx

        onnx_scores = evaluate(onnx.load(os.path.join(self.dir, "model.onnx")), rows)
        np.testing.assert_allclose(onnx_scores, parity["scores"], atol=1e-5)

    def _write_lr(self, model, x: np.ndarray) -> None:
        write_model(self.dir, kind="lr", model=model, source="test", name="lr", version="1", features=FEATURES,
                    output_meaning="p", metrics={}, X_sample=x)

    def _export(self, x: np.ndarray, y: np.ndarray) -> list[str]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        import onnx

        self._write_lr(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y), x[:200])
        return [n.op_type for n in onnx.load(os.path.join(self.dir, "model.onnx")).graph.node]

    def test_lr_graph_folds_standardization_into_two_nodes(self) -> None:
        # ORT's cost is per node: a folded LinearRegressor and a Sigmoid.
        self.assertEqual(self._export(self.x, self.y), ["LinearRegressor", "Sigmoid"])

    def test_lr_graph_keeps_standardization_when_folding_loses_digits(self) -> None:
        # x3's mean moved from 5,000 to 100,000 (spread 300): folded, float32
        # products near 333 lose the margin's last digits; centred first, not.
        x = self.x.astype(np.float64)
        x[:, 3] += 95_000
        self.assertEqual(self._export(x.astype(np.float32), self.y)[:2], ["Sub", "Div"])

    def test_linear_json_reproduces_scores(self) -> None:
        self._write_lr(self.pipeline, self.x[:64])
        with open(os.path.join(self.dir, "linear.json")) as fh:
            lin = json.load(fh)
        rows = self.x[:64].astype(np.float64)
        z = ((rows - lin["mean"]) / lin["scale"]) @ np.asarray(lin["coef"]) + lin["intercept"]
        np.testing.assert_allclose(1 / (1 + np.exp(-z)), native_proba(self.pipeline, self.x[:64].astype(np.float64)), atol=1e-12)

    def test_bare_logistic_regression(self) -> None:
        self._write_lr(self.bare, self.x[:64])

    def test_rejects_wrong_shapes_and_kinds(self) -> None:
        common = dict(source="t", name="n", version="1", output_meaning="p", metrics={})
        with self.assertRaises(ValueError):
            write_model(self.dir, kind="lr", model=self.pipeline, features=FEATURES[:3], X_sample=self.x[:, :3], **common)
        with self.assertRaises(ValueError):
            write_model(self.dir, kind="svm", model=self.pipeline, features=FEATURES, X_sample=self.x, **common)
        with self.assertRaises(ValueError):
            write_model(self.dir, kind="lr", model=self.pipeline, features=FEATURES, X_sample=self.x[:, :5], **common)


class XGBoostExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        import xgboost as xgb

        cls.x, cls.y = synthetic(3000, seed=11)
        # Knock out 10% of values so trees learn both default directions.
        x_train = cls.x.copy()
        holes = np.random.RandomState(3).rand(*x_train.shape) < 0.1
        x_train[holes] = np.nan
        cls.x_train = x_train
        cls.model = xgb.XGBClassifier(n_estimators=40, max_depth=5, learning_rate=0.3, random_state=0).fit(
            x_train, cls.y
        )

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()

    def export(self, model, rows: np.ndarray) -> dict:
        return write_model(
            self.dir,
            kind="xgboost",
            model=model,
            source="test",
            name="xgb",
            version="1",
            features=FEATURES,
            output_meaning="p",
            metrics={"auc": 0.7},
            X_sample=rows,
        )

    def test_parity_on_random_rows(self) -> None:
        self.export(self.model, self.x[:64])
        rows = self.x[:500]
        np.testing.assert_allclose(
            evaluate(build_xgboost_onnx(self.model.get_booster(), F), rows), native_proba(self.model, rows), atol=1e-5
        )

    def test_rows_exactly_at_split_thresholds(self) -> None:
        # Every row puts one feature exactly on a split threshold: xgboost sends
        # x == threshold right (it tests x < threshold), so must BRANCH_LT.
        thresholds = xgb_thresholds(self.model.get_booster())
        self.assertGreater(len(thresholds), 50)
        rows = np.repeat(self.x[:1], len(thresholds), axis=0)
        for i, (fid, thr) in enumerate(thresholds):
            rows[i, fid] = np.float32(thr)
        # Also one ULP either side of each threshold.
        below = rows.copy()
        above = rows.copy()
        for i, (fid, thr) in enumerate(thresholds):
            below[i, fid] = np.nextafter(np.float32(thr), np.float32(-np.inf))
            above[i, fid] = np.nextafter(np.float32(thr), np.float32(np.inf))
        graph = build_xgboost_onnx(self.model.get_booster(), F)
        for r in (rows, below, above):
            np.testing.assert_allclose(evaluate(graph, r), native_proba(self.model, r), atol=1e-5)
        self.export(self.model, rows[:64])

    def test_missing_values_follow_default_direction(self) -> None:
        doc = json.loads(bytes(self.model.get_booster().save_raw(raw_format="json")).decode())
        directions = {
            int(d) for t in doc["learner"]["gradient_booster"]["model"]["trees"] for d, lc in zip(t["default_left"], t["left_children"]) if lc != -1
        }
        self.assertEqual(directions, {0, 1}, "the fixture should have both default directions")
        rows = self.x[:64].copy()
        rows[np.random.RandomState(5).rand(*rows.shape) < 0.3] = np.nan
        rows[0, :] = np.nan
        self.export(self.model, rows)
        with open(os.path.join(self.dir, "parity.json")) as fh:
            parity = json.load(fh)
        self.assertTrue(all(v is None for v in parity["rows"][0]), "NaN is written as null")

    def test_booster_input_and_base_score(self) -> None:
        import xgboost as xgb

        dtrain = xgb.DMatrix(self.x_train, label=self.y, missing=np.nan)
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 4, "base_score": 0.2, "eta": 0.2}, dtrain, num_boost_round=25
        )
        self.export(booster, self.x[:64])
        rows = self.x[:300]
        expected = booster.predict(xgb.DMatrix(rows, missing=np.nan))
        np.testing.assert_allclose(evaluate(build_xgboost_onnx(booster, F), rows), expected, atol=1e-5)

    def test_early_stopping_uses_best_iteration(self) -> None:
        import xgboost as xgb

        model = xgb.XGBClassifier(
            n_estimators=200, max_depth=3, learning_rate=0.5, early_stopping_rounds=3, random_state=0
        ).fit(self.x_train[:2000], self.y[:2000], eval_set=[(self.x_train[2000:], self.y[2000:])], verbose=False)
        self.assertLess(model.best_iteration + 1, 200)
        self.export(model, self.x[:64])

    def test_rejects_multiclass(self) -> None:
        import xgboost as xgb

        y3 = (self.x[:, 0] > 0).astype(int) + (self.x[:, 1] > 0).astype(int)
        model = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(self.x, y3)
        with self.assertRaises(ValueError):
            self.export(model, self.x[:64])


class TreeSemantics(unittest.TestCase):
    """The evaluator used for the 1e-5 check: x == threshold goes false (right), NaN follows the flag."""

    def test_branch_lt_and_missing(self) -> None:
        from onnx import helper

        def one_split(tracks_true: int):
            node = helper.make_node(
                "TreeEnsembleRegressor",
                ["features"],
                ["margin"],
                domain="ai.onnx.ml",
                n_targets=1,
                nodes_treeids=[0, 0, 0],
                nodes_nodeids=[0, 1, 2],
                nodes_featureids=[0, 0, 0],
                nodes_values=[0.5, 0.0, 0.0],
                nodes_modes=["BRANCH_LT", "LEAF", "LEAF"],
                nodes_truenodeids=[1, 0, 0],
                nodes_falsenodeids=[2, 0, 0],
                nodes_missing_value_tracks_true=[tracks_true, 0, 0],
                target_treeids=[0, 0],
                target_nodeids=[1, 2],
                target_ids=[0, 0],
                target_weights=[-1.0, 1.0],
                base_values=[0.0],
            )
            flat = onnx_export.numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat")
            reshape = helper.make_node("Reshape", ["margin", "flat"], ["score"])
            return onnx_export._model([node, reshape], [flat], 1, "t")

        rows = np.array([[0.49], [0.5], [0.51], [np.nan]], dtype=np.float32)
        np.testing.assert_array_equal(evaluate(one_split(1), rows), [-1, 1, 1, -1])
        np.testing.assert_array_equal(evaluate(one_split(0), rows), [-1, 1, 1, 1])


if __name__ == "__main__":
    unittest.main()
