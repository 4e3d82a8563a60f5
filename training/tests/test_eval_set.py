"""The eval-set export (export_eval_set.py): the NDJSON the Worker's promotion gate takes
(src/recommend/eval-set.ts), from the same groups train.py evaluates."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from export_eval_set import FORMAT, write_eval_set  # noqa: E402
from features import Group, feature_names  # noqa: E402

SRC = "channel_browser"


class EvalSetTest(unittest.TestCase):
    def test_lines_follow_the_groups(self):
        names = feature_names(SRC)
        x = np.arange(2 * len(names), dtype=np.float64).reshape(2, len(names)) / 3.0
        x[1, 0] = np.nan
        groups = [Group(5, np.array([11, 7]), x, np.array([0.0, 1.0]), 3),
                  Group(6, np.array([], dtype=np.int64), np.zeros((0, len(names))), np.zeros(0), 1)]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "out", "cb.ndjson")
            n = write_eval_set(path, "ds", SRC, [("2024-01-01", groups)])
            with open(path) as f:
                lines = [json.loads(line) for line in f.read().splitlines()]
        self.assertEqual(n, 1)  # the empty ranking is left out
        self.assertEqual(lines[0], {"format": FORMAT, "source": SRC, "dataset": "ds", "features": names})
        r = lines[1]
        self.assertEqual((r["cut"], r["query"], r["positives"], r["items"], r["labels"]),
                         ("2024-01-01", 5, 3, [11, 7], [0, 1]))
        # Exact float64 values (a rounding would move near-ties of the rule scores); NaN as null.
        self.assertEqual(r["x"][0], [float(v) for v in x[0]])
        self.assertIsNone(r["x"][1][0])


if __name__ == "__main__":
    unittest.main()
