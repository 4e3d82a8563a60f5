"""Metric definitions on hand-computed examples."""

from __future__ import annotations

import math
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from metrics import auc, circular_distance, circular_hit, evaluate_group, ndcg_at_k, rank_order, recall_at_k  # noqa: E402


class NdcgRecallTest(unittest.TestCase):
    def test_ndcg(self):
        # positives at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); IDCG(2) = 1 + 1/log2(3)
        dcg = 1 / math.log2(3) + 1 / math.log2(5)
        self.assertAlmostEqual(ndcg_at_k([0, 1, 0, 1], 2), dcg / (1 + 1 / math.log2(3)))
        self.assertAlmostEqual(ndcg_at_k([0, 1, 0, 1], 2), 0.650920, places=5)
        # a third positive the candidates missed still counts in the ideal ranking
        self.assertAlmostEqual(ndcg_at_k([0, 1, 0, 1], 3), dcg / (1 + 1 / math.log2(3) + 0.5))
        self.assertAlmostEqual(ndcg_at_k([1, 1, 0], 2), 1.0)
        self.assertEqual(ndcg_at_k([0, 0], 1), 0.0)
        self.assertEqual(ndcg_at_k([], 0), 0.0)
        # only the first k ranks count
        self.assertEqual(ndcg_at_k([0] * 10 + [1], 1, k=10), 0.0)
        # with 12 positives IDCG stops at 10 ranks
        self.assertAlmostEqual(ndcg_at_k([1] * 12, 12, k=10), 1.0)

    def test_recall(self):
        self.assertAlmostEqual(recall_at_k([0, 1, 0, 1], 3), 2 / 3)
        self.assertAlmostEqual(recall_at_k([0, 1, 0, 1], 2, k=2), 0.5)
        self.assertAlmostEqual(recall_at_k([1] * 12, 12, k=10), 10 / 12)

    def test_ties_go_to_the_smaller_item(self):
        order = rank_order([0.5, 0.9, 0.5, 0.5], [7, 3, 2, 9])
        self.assertEqual(order.tolist(), [1, 2, 0, 3])
        nd, rc = evaluate_group(np.zeros(3), np.array([30, 10, 20]), np.array([1.0, 0.0, 0.0]), 1, "channel_browser")
        self.assertAlmostEqual(nd, 1 / math.log2(4))          # item 30 is ranked third
        self.assertEqual(rc, 1.0)


class CircularHitTest(unittest.TestCase):
    def test_distance(self):
        self.assertEqual(circular_distance(23, 0), 1)
        self.assertEqual(circular_distance(0, 23), 1)
        self.assertEqual(circular_distance(22, 1), 3)
        self.assertEqual(circular_distance(5, 17), 12)

    def test_hit(self):
        self.assertEqual(circular_hit(23, [0]), 1.0)
        self.assertEqual(circular_hit(0, [23]), 1.0)
        self.assertEqual(circular_hit(22, [0]), 0.0)
        self.assertEqual(circular_hit(5, [7, 3]), 0.0)
        self.assertEqual(circular_hit(5, [6]), 1.0)
        self.assertEqual(circular_hit(5, []), 0.0)

    def test_send_time_group(self):
        hours = np.arange(24)
        y = np.zeros(24)
        y[0] = 1
        scores = np.zeros(24)
        scores[23] = 1.0                                      # top hour 23, active hour 0
        nd, hit = evaluate_group(scores, hours, y, 1, "send_time")
        self.assertEqual(hit, 1.0)
        self.assertAlmostEqual(nd, 1 / math.log2(3))          # hour 0 ranks second (tie order)
        scores[23], scores[12] = 0.0, 1.0
        nd, hit = evaluate_group(scores, hours, y, 1, "send_time")
        self.assertEqual(hit, 0.0)


class AucTest(unittest.TestCase):
    def test_auc(self):
        self.assertAlmostEqual(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75)
        self.assertAlmostEqual(auc([1, 1, 1, 1], [0, 1, 0, 1]), 0.5)
        self.assertIsNone(auc([0.2, 0.3], [1, 1]))


if __name__ == "__main__":
    unittest.main()
