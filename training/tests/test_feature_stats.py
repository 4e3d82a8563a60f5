"""feature_stats: the training-window statistics a manifest carries (hand-computed values)."""

from __future__ import annotations

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from feature_stats import feature_stats  # noqa: E402


class FeatureStatsTest(unittest.TestCase):
    def test_values(self):
        X = np.array([[1.0, 0.0], [2.0, np.nan], [3.0, 4.0], [6.0, np.inf]])
        s = feature_stats(X, ["a", "b"])
        # a: mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5
        self.assertEqual(s["a"]["mean"], 3.0)
        self.assertAlmostEqual(s["a"]["std"], 3.5 ** 0.5, places=8)
        self.assertEqual((s["a"]["min"], s["a"]["max"], s["a"]["missing_rate"]), (1.0, 6.0, 0.0))
        # b: two finite values of four, the rest missing (not finite)
        self.assertEqual(s["b"], {"mean": 2.0, "std": 2.0, "min": 0.0, "max": 4.0, "missing_rate": 0.5})

    def test_all_missing_and_shape(self):
        s = feature_stats(np.array([[np.nan], [np.nan]]), ["x"])
        self.assertEqual(s["x"]["missing_rate"], 1.0)
        with self.assertRaises(ValueError):
            feature_stats(np.zeros((3, 2)), ["only_one"])


if __name__ == "__main__":
    unittest.main()
