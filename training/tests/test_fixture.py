"""The cross-language fixture: shape, determinism, and that its vectors are the
features of its own rows."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import fixture  # noqa: E402
import synth_data  # noqa: E402
from data import day_of, from_rows  # noqa: E402
from features import SOURCES, Cut, cosine_rows, feature_names  # noqa: E402

RAILS = os.path.join(HERE, "..", "..", "datasets", "rails-collab")


class FixtureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = synth_data.write_dir(os.path.join(cls.tmp.name, "synth"), synth_data.rows())
        fixture.main(["--data", cls.data, "--out", os.path.join(cls.tmp.name, "a"), "--users", "30"])
        fixture.main(["--data", cls.data, "--out", os.path.join(cls.tmp.name, "b"), "--users", "30"])
        with open(os.path.join(cls.tmp.name, "a", "fixture.json")) as f:
            cls.fx = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_deterministic(self):
        with open(os.path.join(self.tmp.name, "b", "fixture.json")) as f:
            other = json.load(f)
        self.assertEqual(self.fx, other)

    def test_shape(self):
        fx = self.fx
        self.assertEqual(set(fx["rows"]), {"channels", "activity", "interactions", "hours"})
        self.assertEqual(fx["feature_names"], {s: feature_names(s) for s in SOURCES})
        self.assertTrue(any(r["day"] >= fx["cut"] for r in fx["rows"]["activity"]), "rows after the cut are kept")
        sources = {c["source"] for c in fx["cases"]}
        self.assertTrue({"channel_browser", "composer_dm", "leave", "archive", "send_time"} <= sources, sources)
        for case in fx["cases"]:
            for item in case["items"]:
                self.assertEqual(len(item["features"]), len(feature_names(case["source"])))
                self.assertEqual(list(item["by_name"]), feature_names(case["source"]))
                self.assertIn(item["item"], case["candidates"])

    def test_vectors_are_features_of_the_rows(self):
        fx = self.fx
        rows = {k: [{c: str(v) for c, v in r.items()} for r in rs] for k, rs in fx["rows"].items()}
        ds = from_rows(fx["dataset"], rows)
        cut = Cut(ds, day_of(fx["cut"]), dims=fx["embeddings"]["dims"])
        # the embedding cosines come from the vectors in the fixture
        for uid, vec in list(fx["embeddings"]["users"].items())[:5]:
            np.testing.assert_array_equal(cut.emb.users[ds.user_index[uid]], vec)
        for case in fx["cases"]:
            src = case["source"]
            s = -1 if case["subject"] is None else ds.user_index[case["subject"]]
            if src in ("channel_browser", "leave", "archive"):
                items = [ds.channel_index[i] for i in (x["item"] for x in case["items"])]
            elif src == "send_time":
                items = [x["item"] for x in case["items"]]
            else:
                items = [ds.user_index[x["item"]] for x in case["items"]]
            X = cut.features(src, s, items)
            np.testing.assert_allclose(X, [x["features"] for x in case["items"]], rtol=1e-12, err_msg=src)

    def test_cosine_from_given_vectors(self):
        a = np.array([[0.6, 0.8], [0.0, 0.0]])
        np.testing.assert_allclose(cosine_rows(a, np.array([1.0, 0.0])), [0.6, 0.0])

    @unittest.skipUnless(os.path.exists(os.path.join(RAILS, "activity.csv.gz")), "vendored dataset missing")
    def test_vendored_dataset(self):
        out = os.path.join(self.tmp.name, "rails")
        fixture.main(["--data", RAILS, "--out", out])
        with open(os.path.join(out, "fixture.json")) as f:
            fx = json.load(f)
        self.assertEqual({c["source"] for c in fx["cases"]}, set(SOURCES))
        self.assertGreater(len(fx["rows"]["interactions"]), 10)


if __name__ == "__main__":
    unittest.main()
