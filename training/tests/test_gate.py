"""The promotion gate (gate.py): the rule, the spread across cuts, and end to end through train.py:
a deliberately worse model is refused and the serving files stay byte-identical, a clearly better
one is registered, every decision is in gate.json."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import gate as G  # noqa: E402
import models  # noqa: E402
import planted_data  # noqa: E402
import synth_data  # noqa: E402
import train  # noqa: E402

SRC = "channel_browser"
CUTS = ["2021-01-01", "2022-01-01", "2023-01-01"]


class RuleTest(unittest.TestCase):
    def test_spread_is_across_cuts(self):
        s = G.spread([0.20, 0.30, 0.40])
        self.assertAlmostEqual(s["mean"], 0.30)
        self.assertAlmostEqual(s["std"], 0.10)            # sample std (ddof 1) of the three cut values
        self.assertEqual((s["min"], s["max"]), (0.20, 0.40))
        self.assertEqual(s["per_cut"], [0.20, 0.30, 0.40])
        self.assertIsNone(G.spread([0.5])["std"])

    def test_compare_uses_the_per_cut_improvement(self):
        c = G.compare([0.30, 0.32, 0.34], [0.25, 0.25, 0.25], k=1.0, min_margin=0.005)
        self.assertAlmostEqual(c["improvement"], 0.07)
        self.assertAlmostEqual(c["improvement_std"], 0.02)
        self.assertAlmostEqual(c["required"], 0.02)
        self.assertTrue(c["passes"])
        # a larger mean improvement that swings across cuts does not pass
        noisy = G.compare([0.40, 0.20, 0.40], [0.25, 0.25, 0.25], k=1.0, min_margin=0.005)
        self.assertGreater(noisy["improvement"], 0.05)
        self.assertFalse(noisy["passes"])
        # the floor: a tiny but steady gain is not enough
        self.assertFalse(G.compare([0.252, 0.252, 0.252], [0.25, 0.25, 0.25], min_margin=0.005)["passes"])

    def series(self, lr, xgb=(0.1, 0.1, 0.1)):
        return {"popularity": [0.20, 0.22, 0.21], "recent_popularity": [0.25, 0.26, 0.24],
                "hand_tuned": [0.24, 0.25, 0.25], "lr": list(lr), "xgboost": list(xgb)}

    def test_decide_without_serving_compares_with_the_best_baseline(self):
        d = G.decide(SRC, CUTS, self.series([0.35, 0.36, 0.34]))
        self.assertEqual(d["decision"], "register")
        self.assertEqual(d["registered"], "lr")
        self.assertEqual(d["references"], ["best_baseline:recent_popularity"])
        self.assertIn("xgboost", d["not_eligible"])
        worse = G.decide(SRC, CUTS, self.series([0.24, 0.25, 0.23]))
        self.assertEqual(worse["decision"], "keep")
        self.assertIsNone(worse["registered"])
        self.assertIn("-0.0100", worse["reason"])

    def test_decide_against_the_serving_model(self):
        serving = {"present": True, "comparable": True, "per_cut": [0.33, 0.34, 0.33]}
        same = G.decide(SRC, CUTS, self.series([0.335, 0.34, 0.33]), serving=serving)
        self.assertEqual(same["decision"], "keep")          # better than the baseline, not than the serving model
        self.assertTrue(same["comparisons"]["lr"]["best_baseline:recent_popularity"]["passes"])
        self.assertFalse(same["comparisons"]["lr"]["serving"]["passes"])
        better = G.decide(SRC, CUTS, self.series([0.33, 0.34, 0.33], [0.40, 0.41, 0.40]), serving=serving)
        self.assertEqual((better["decision"], better["registered"]), ("register", "xgboost"))
        self.assertEqual(better["candidates"]["serving"]["per_cut"], [0.33, 0.34, 0.33])

    def test_decide_needs_enough_cuts_and_fitted_models(self):
        two = G.decide(SRC, CUTS[:2], {m: v[:2] for m, v in self.series([0.9, 0.9, 0.9]).items()})
        self.assertEqual(two["decision"], "keep")
        self.assertIn("needs 3", two["reason"])
        fb = G.decide(SRC, CUTS, self.series([0.9, 0.9, 0.9]), fitted_everywhere={"lr": False, "xgboost": True})
        self.assertEqual(fb["decision"], "keep")
        self.assertIn("fell back", fb["not_eligible"]["lr"])
        none = G.decide(SRC, CUTS, {m: v for m, v in self.series([0.9, 0.9, 0.9]).items() if m not in G.SERVABLE})
        self.assertEqual(none["decision"], "keep")
        self.assertIn("no model was fitted", none["reason"])


def tree_digest(path: str) -> dict:
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return out


_real_fit = models.fit


def worse_fit(kind, X, y, **kw):
    """Deliberately worse models: lr with negated weights, xgboost fitted on shuffled labels (a random scorer)."""
    if kind == "lr":
        m = _real_fit(kind, X, y, **kw)
        lr = m.named_steps["lr"]
        lr.coef_ = -lr.coef_
        lr.intercept_ = -lr.intercept_
        return m
    return _real_fit(kind, X, np.random.RandomState(1).permutation(y), **kw)


class GatePipelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.data = synth_data.write_dir(os.path.join(cls.tmp, "planted-team"),
                                        planted_data.rows(n_users=150, crew=60))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_train(self, out, registry=None, worse=False):
        argv = ["--data", self.data, "--out", out, "--quick", "--train-cuts", "2", "--threads", "1", "--quiet",
                "--sources", SRC]
        if registry:
            argv += ["--register", registry]
        if worse:
            with mock.patch.object(models, "fit", worse_fit):
                train.main(argv)
        else:
            train.main(argv)
        with open(os.path.join(registry or os.path.join(out, "models"), "gate.json")) as f:
            doc = json.load(f)
        with open(os.path.join(out, "gate.json")) as f:
            self.assertEqual(json.load(f), doc)
        return doc["sources"][SRC]

    def test_gate_end_to_end(self):
        reg = os.path.join(self.tmp, "registry")
        # 1. nothing serves: the fitted model beats the best baseline by far more than its noise
        first = self.run_train(os.path.join(self.tmp, "out1"), reg)
        self.assertEqual(first["decision"], "register", first["reason"])
        self.assertEqual(first["references"], ["best_baseline:hand_tuned"])
        for kind in ("lr", "xgboost", "popularity", "recent_popularity", "hand_tuned"):
            self.assertEqual(len(first["candidates"][kind]["per_cut"]), 3)   # spread over the three cuts
            self.assertIsNotNone(first["candidates"][kind]["std"])
        for f in ("model.onnx", "manifest.json", "parity.json", "hand_tuned.json"):
            self.assertTrue(os.path.exists(os.path.join(reg, SRC, f)), f)
        with open(os.path.join(reg, SRC, "manifest.json")) as f:
            man = json.load(f)
        self.assertEqual(man["kind"], first["registered"])
        self.assertEqual(sorted(man["metrics"]["per_cut"]), first["cuts"])
        with open(os.path.join(self.tmp, "out1", "report.md")) as f:
            self.assertIn("Promotion gate", f.read())

        # 2. deliberately worse candidates (negated lr, xgboost on shuffled labels): refused, serving untouched
        before = tree_digest(os.path.join(reg, SRC))
        worse = self.run_train(os.path.join(self.tmp, "out2"), reg, worse=True)
        self.assertEqual(worse["decision"], "keep", worse["reason"])
        self.assertIsNone(worse["registered"])
        self.assertEqual(worse["references"][0], "serving")
        self.assertTrue(worse["serving_before"]["present"])
        for kind in ("lr", "xgboost"):
            vs = worse["comparisons"][kind]["serving"]
            self.assertLess(vs["improvement"], 0)
            self.assertFalse(vs["passes"])
        self.assertEqual(tree_digest(os.path.join(reg, SRC)), before)

        # 3. the same worse model serving: the honest one clears it and replaces it
        reg3 = os.path.join(self.tmp, "registry3")
        os.makedirs(os.path.join(reg3, SRC))
        for f in ("model.onnx", "manifest.json", "parity.json", "linear.json"):
            shutil.copy2(os.path.join(self.tmp, "out2", "models", SRC, "lr", f), os.path.join(reg3, SRC, f))
        # without its recorded per-cut numbers (like a model from before the gate) it is re-scored here
        with open(os.path.join(reg3, SRC, "manifest.json")) as f:
            man = json.load(f)
        del man["metrics"]["per_cut"]
        with open(os.path.join(reg3, SRC, "manifest.json"), "w") as f:
            json.dump(man, f)
        bad = tree_digest(os.path.join(reg3, SRC))
        better = self.run_train(os.path.join(self.tmp, "out3"), reg3)
        self.assertEqual(better["decision"], "register", better["reason"])
        vs = better["comparisons"][better["registered"]]["serving"]
        self.assertTrue(vs["passes"])
        self.assertGreater(vs["improvement"], vs["required"])
        self.assertNotEqual(tree_digest(os.path.join(reg3, SRC)), bad)
        self.assertEqual(better["serving_before"]["how"], "re-scored on this run's rankings")
        # trained on this dataset up to the latest cut: the earlier cuts' labels were its training labels
        self.assertEqual(better["serving_before"]["saw_labels"], better["cuts"][:2])

    def test_registry_gate_json_keeps_other_sources(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "gate.json")
            G.write_gate(path, {"dataset": "a", "eval_cuts": CUTS, "sources": {"leave": {"decision": "keep"},
                                                                             SRC: {"decision": "keep"}}})
            merged = G.merged_with_earlier(path, {"dataset": "b", "sources": {SRC: {"decision": "register"}}})
            self.assertEqual(merged["sources"][SRC], {"decision": "register"})
            self.assertEqual(merged["sources"]["leave"]["from_earlier_run"], {"dataset": "a", "eval_cuts": CUTS})
            self.assertEqual(merged["dataset"], "b")

    def test_rerun_with_the_same_recipe_keeps_the_serving_model(self):
        """Default slot OUT/models: a second identical run is not better than what it registered."""
        out = os.path.join(self.tmp, "same")
        first = self.run_train(out)
        self.assertEqual(first["decision"], "register", first["reason"])
        slot = os.path.join(out, "models", SRC)
        served = {f: d for f, d in tree_digest(slot).items() if os.sep not in f}
        second = self.run_train(out)
        self.assertEqual(second["decision"], "keep")
        self.assertEqual(second["serving_before"]["how"], "recorded in its manifest by the run that produced it")
        self.assertEqual(second["comparisons"][first["registered"]]["serving"]["improvement"], 0.0)
        self.assertEqual({f: d for f, d in tree_digest(slot).items() if os.sep not in f}, served)


if __name__ == "__main__":
    unittest.main()
