"""feature_trials.py: a --quick run on the committed fixture's rows, and a few candidate features
recomputed by brute force from their written definitions."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import feature_trials as FT  # noqa: E402
import synth_data  # noqa: E402
from data import default_cuts, load_dataset  # noqa: E402
from features import Cut  # noqa: E402

FIXTURE = os.path.join(HERE, "..", "fixtures", "rails-collab", "fixture.json")


class FeatureTrialsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The fixture's rows are a small real slice of rails-collab, channel names included.
        cls.tmp = tempfile.TemporaryDirectory()
        with open(FIXTURE) as f:
            rows = json.load(f)["rows"]
        cls.data = synth_data.write_dir(os.path.join(cls.tmp.name, "rails-slice"), rows)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_quick_run_writes_a_complete_report(self):
        out = os.path.join(self.tmp.name, "trials.md")
        FT.main(["--data", self.data, "--out", out, "--quick", "--quiet"])
        with open(out) as f:
            text = f.read()
        for src in FT.SOURCES:
            self.assertIn(f"## {src}", text)
            for fam in list(FT.FAMILIES[src]) + ["all families"]:
                self.assertIn(f"- {fam}: **", text)
        for v in FT.variants("composer_dm"):
            self.assertIn(f"| {v['name']} |", text)
        self.assertIn("QUICK", text)

    def test_quick_needs_its_own_out(self):
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            FT.main(["--data", self.data, "--quick", "--quiet"])

    def test_features_match_their_definitions(self):
        ds = load_dataset(self.data)
        names = FT.ChannelNames(self.data, ds)
        T = default_cuts(ds)[-1]
        cut = Cut(ds, T)
        ex = FT.CutExtras(cut, names)
        t = cut.t
        B = t.B[None].toarray() > 0
        B365 = t.B[365].toarray() > 0
        last = t.uc_last.toarray()
        first = t.uc_first.toarray()
        u = int(np.argmax(B365.sum(axis=1)))        # the busiest person of the last year
        others = np.array([v for v in range(t.U) if v != u])

        cb = ex.channel_browser(u, np.arange(t.C))
        self.assertTrue((cb["nj90"] > 0).any() and (cb["cf_dec90"] > 0).any())
        for c in range(t.C):
            nj90 = sum((B365[u] & B365[v]).sum() for v in others if first[v, c] >= T - 90)
            self.assertAlmostEqual(cb["nj90"][c], math.log1p(nj90), places=9)
            cf90 = sum(math.exp(-(T - last[u, k]) / 90) * t.sim[k, c] for k in np.flatnonzero(B[u]))
            self.assertAlmostEqual(cb["cf_dec90"][c], cf90, places=9)

        dm = ex.composer_dm(u, others)
        self.assertTrue((dm["sh_dec90"] > 0).any() and (dm["pin_frac"] > 0).any())
        P365 = t.P[365].toarray() > 0
        for i, v in enumerate(others):
            sh = sum(math.exp(-(T - min(last[u, c], last[v, c])) / 90) for c in np.flatnonzero(B[u] & B[v]))
            self.assertAlmostEqual(dm["sh_dec90"][i], sh, places=9)
            xs = [x for x in np.flatnonzero(P365[v]) if x != u and (B365[x] & B365[u]).any()]
            self.assertAlmostEqual(dm["pin_frac"][i], len(xs) / max(P365[v].sum(), 1), places=9)


if __name__ == "__main__":
    unittest.main()
